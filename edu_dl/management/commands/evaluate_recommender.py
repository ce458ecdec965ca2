"""Evaluate the practice policy against baselines on simulated students and real sequences.

    python manage.py evaluate_recommender --format akt --data ../shared/data/assist2009/akt_folds \
        --policies ours,random,weakest-skill,in-order --students 300 --steps 30 --json out.json

The students are split in five chunks (the files' own chunks for ``akt``, seeded chunks by
student for ``csv``): the simulator trains on chunks 1-2 (validated on 3), the recommender's
own model on chunk 4, and the simulated students and the ranking check come from chunk 5, so
no model has seen the students it is tested on and the two models share no student.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import random
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from edu_dl.conf import edu_settings


def _read_prerequisites(path: Path) -> dict[str, tuple[str, ...]]:
    graph: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or {"skill", "prerequisite"} - set(reader.fieldnames):
            raise CommandError(f"{path}: the header must hold the columns skill,prerequisite")
        for line, row in enumerate(reader, start=2):
            skill, prerequisite = (row["skill"] or "").strip(), (row["prerequisite"] or "").strip()
            if not skill or not prerequisite:
                raise CommandError(f"{path} line {line}: skill and prerequisite are both needed")
            graph.setdefault(skill, []).append(prerequisite)
    return {skill: tuple(prerequisites) for skill, prerequisites in graph.items()}


class Command(BaseCommand):
    help = "Compare practice policies on simulated students; JSON report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["akt", "csv"], required=True)
        parser.add_argument("--data", required=True, help="akt: directory of chunks; csv: file")
        parser.add_argument("--policies", default="ours,random,weakest-skill,in-order")
        parser.add_argument("--students", type=int, default=300)
        parser.add_argument("--steps", type=int, default=30)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default=None)
        parser.add_argument("--epochs", type=int, default=None, help="maximum epochs per model")
        parser.add_argument("--simulator-model", default="akt")
        parser.add_argument("--recommender-model", default="dkt-rasch")
        parser.add_argument("--pool-per-skill", type=int, default=8)
        parser.add_argument("--hit-positions", type=int, default=20, help="per held-out student")
        parser.add_argument(
            "--prerequisites", default=None, help="CSV skill,prerequisite in the data's skill ids"
        )
        parser.add_argument(
            "--policy-config",
            default="{}",
            help='JSON overrides of the policy\'s settings, e.g. {"streak_limit": 3}',
        )
        parser.add_argument(
            "--models-cache",
            default=None,
            help="folder to keep the two trained models in and reuse them from (a run with "
            "the same data, models, epochs and seed then skips training)",
        )
        parser.add_argument("--json", dest="json_out", default="-", help="output file, - = stdout")

    def handle(self, *args, **options) -> None:
        import torch

        from edu_dl.ml.kt.folds import akt_chunks, csv_chunks
        from edu_dl.ml.kt.pipeline import train_kt
        from edu_dl.ml.recommend.policy import PolicyConfig
        from edu_dl.ml.recommend.simulation import (
            POLICIES,
            Classroom,
            ModelView,
            hit_rate_at_k,
            practice_pool,
            simulate,
        )
        from edu_dl.ml.registry import resolve_device

        started = time.perf_counter()
        policies = [p.strip() for p in options["policies"].split(",") if p.strip()]
        unknown = [p for p in policies if p not in POLICIES]
        if not policies or unknown:
            raise CommandError(
                f"--policies must list some of {', '.join(POLICIES)}; unknown: {unknown}"
            )
        if options["students"] < 1 or options["steps"] < 1:
            raise CommandError("--students and --steps must be at least 1")
        if options["simulator_model"] == options["recommender_model"]:
            raise CommandError(
                "the simulator must be another architecture than the recommender's model, "
                "or the policy could exploit its own model"
            )
        try:
            device = resolve_device(options["device"] or edu_settings.DEVICE)
        except (RuntimeError, ValueError) as error:
            raise CommandError(str(error)) from None
        if edu_settings.TORCH_THREADS:
            torch.set_num_threads(edu_settings.TORCH_THREADS)
        data = Path(options["data"])
        if not data.exists():
            raise CommandError(f"--data {data} does not exist")
        prerequisites = (
            _read_prerequisites(Path(options["prerequisites"])) if options["prerequisites"] else {}
        )
        try:
            if options["format"] == "akt":
                chunks, extra = akt_chunks(data)
            else:
                chunks, extra = csv_chunks(data, options["seed"]), []
        except (ValueError, FileNotFoundError) as error:
            raise CommandError(f"cannot read {data}: {error}") from None

        # Keys are compared as strings everywhere (prerequisite files name skills as text).
        def textual(sequences):
            for sequence in sequences:
                sequence.skills = [tuple(str(s) for s in tags) for tags in sequence.skills]
            return sequences

        for chunk in chunks.values():
            textual(chunk)
        textual(extra)
        train_config = {
            "epochs": options["epochs"] or edu_settings.KT_EPOCHS,
            "seed": options["seed"],
        }

        def log(text: str) -> None:
            self.stderr.write(text)

        cache = Path(options["models_cache"]) if options["models_cache"] else None

        def train(name, train_set, validation_set, label):
            from edu_dl.ml.checkpoint import load_checkpoint
            from edu_dl.ml.kt.pipeline import TrainedKT

            key = hashlib.sha256(
                json.dumps(
                    [str(data.resolve()), name, train_config, len(train_set), len(validation_set)]
                ).encode()
            ).hexdigest()[:16]
            cached = cache / f"{label}-{name}-{key}.pt" if cache else None
            if cached is not None and cached.exists():
                loaded = load_checkpoint(cached.read_bytes(), device=device)
                log(f"{label}: {name} loaded from {cached}")
                return TrainedKT.from_checkpoint(loaded), float(loaded.metrics["best_val_auc"])
            log(f"{label}: training {name} on {len(train_set)} students")
            trained = train_kt(
                train_set,
                validation_set,
                model_name=name,
                train_config=train_config,
                device=device,
                on_epoch=lambda e: log(f"  {label} {json.dumps(e.as_dict())}"),
            )
            auc = trained.fit.best_val_auc
            log(f"{label}: best validation AUC {auc:.4f}")
            if cached is not None:
                cache.mkdir(parents=True, exist_ok=True)
                cached.write_bytes(trained.checkpoint({"best_val_auc": auc}))
            return trained, auc

        simulator_train = chunks[1] + chunks[2] + list(extra)
        simulator, simulator_auc = train(
            options["simulator_model"], simulator_train, chunks[3], "simulator"
        )
        own_students = list(chunks[4])
        random.Random(options["seed"]).shuffle(own_students)
        cut = max(1, int(0.8 * len(own_students)))
        recommender, recommender_auc = train(
            options["recommender_model"], own_students[:cut], own_students[cut:], "recommender"
        )

        held_out = [s for s in chunks[5] if len(s) >= 10]
        random.Random(options["seed"]).shuffle(held_out)
        students = held_out[: options["students"]]
        if len(students) < options["students"]:
            log(f"only {len(students)} held-out students have 10 or more answers")
        starts = []
        for sequence in students:
            length = min(max(len(sequence) // 2, 5), 100)
            starts.append(
                type(sequence)(
                    key=sequence.key,
                    skills=sequence.skills[:length],
                    correct=sequence.correct[:length],
                    items=None if sequence.items is None else sequence.items[:length],
                )
            )
        pool = practice_pool(simulator_train + own_students, per_skill=options["pool_per_skill"])
        if not pool:
            raise CommandError("no item was answered often enough to form a practice pool")
        skills = sorted(
            {s for item in pool for s in item.skills},
            key=lambda s: (0, int(s)) if str(s).isdigit() else (1, str(s)),
        )
        try:
            config = PolicyConfig(
                target_mastery=edu_settings.RECOMMENDER_TARGET_MASTERY,
                band_low=edu_settings.RECOMMENDER_BAND[0],
                band_high=edu_settings.RECOMMENDER_BAND[1],
                **json.loads(options["policy_config"]),
            )
        except (TypeError, ValueError) as error:
            raise CommandError(f"--policy-config: {error}") from None
        classroom = Classroom(
            simulator=ModelView(simulator, device, skills),
            recommender=ModelView(recommender, device, skills),
            pool=pool,
            starts=starts,
            config=config,
            prerequisites=prerequisites,
            skill_order=skills,
        )
        log(
            f"simulating {len(starts)} students x {options['steps']} steps over a pool of "
            f"{len(pool)} items on {len(skills)} skills"
        )

        def progress(policy: str, step: int) -> None:
            if step % 10 == 0 or step == options["steps"]:
                log(f"  {policy}: step {step}")

        report = simulate(
            classroom,
            policies=policies,
            steps=options["steps"],
            seed=options["seed"],
            on_step=progress,
        )
        log("ranking check on held-out sequences")
        hits = hit_rate_at_k(
            classroom.recommender,
            chunks[5],
            k=5,
            positions_per_student=options["hit_positions"],
            seed=options["seed"],
            config=config,
            prerequisites=prerequisites,
        )
        output = {
            **report,
            "hit_rate_at_5": round(hits["ours"], 5),
            "hit_rate_at_5_detail": {
                key: round(value, 5) if isinstance(value, float) else value
                for key, value in hits.items()
            },
            "simulator": {
                "model": simulator.model.registered_name,
                "train_students": len(simulator_train),
                "validation_students": len(chunks[3]),
                "validation_auc": round(simulator_auc, 5),
                "chunks": "train 1-2, validation 3",
            },
            "recommender_model": {
                "model": recommender.model.registered_name,
                "train_students": cut,
                "validation_students": len(own_students) - cut,
                "validation_auc": round(recommender_auc, 5),
                "chunks": "chunk 4 (80 % train, 20 % validation)",
            },
            "students": len(starts),
            "steps": options["steps"],
            "seed": options["seed"],
            "pool_items": len(pool),
            "skills": len(skills),
            "target_mastery": config.target_mastery,
            "target_band": [config.band_low, config.band_high],
            "policy_config": dataclasses.asdict(config),
            "prerequisites": len(prerequisites),
            "device": str(device),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if "weakest-skill" in output["policies"] and "ours" in output["policies"]:
            base = output["policies"]["weakest-skill"]["gain_unmastered"]
            ours = output["policies"]["ours"]["gain_unmastered"]
            output["ours_vs_weakest_skill_relative"] = (
                round((ours - base) / abs(base), 5) if base else None
            )
        text = json.dumps(output, indent=2)
        if options["json_out"] == "-":
            sys.stdout.write(text + "\n")
        else:
            Path(options["json_out"]).write_text(text + "\n")
            self.stdout.write(text)
