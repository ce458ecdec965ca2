"""``manage.py evaluate_kt``: k-fold evaluation of a knowledge-tracing model on dataset files,
through the same training code that trains a course's model (edu_dl.ml.kt.pipeline)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from edu_dl.conf import edu_settings


class Command(BaseCommand):
    help = (
        "Evaluate a knowledge-tracing model with k-fold cross-validation on dataset files "
        "(akt fold files or an import-format csv) and print the figures as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["akt", "csv"], required=True)
        parser.add_argument(
            "--data",
            required=True,
            help="akt: folder with *_test{1..5}.csv[.gz]; csv: one file in the import format",
        )
        parser.add_argument("--folds", default="1,2,3,4,5", help="e.g. 1,2,3,4,5")
        parser.add_argument("--model", default=None, help="registered KT model (default: EDU_DL)")
        parser.add_argument("--epochs", type=int, default=None, help="maximum epochs per fold")
        parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--akt-lines", type=int, choices=[3, 4], default=None)
        parser.add_argument("--max-length", type=int, default=200)
        parser.add_argument(
            "--model-config", default="{}", help="JSON overrides of the model's configuration"
        )
        parser.add_argument(
            "--train-config", default="{}", help="JSON overrides of the training configuration"
        )
        parser.add_argument("--json", dest="json_out", default="-", help="output file, - = stdout")

    def handle(self, *args, **options) -> None:
        import torch

        from edu_dl.ml.kt.folds import CHUNKS, akt_chunks, csv_chunks, fold
        from edu_dl.ml.kt.pipeline import train_kt
        from edu_dl.ml.registry import resolve_device

        try:
            folds = [int(k) for k in options["folds"].split(",") if k.strip()]
        except ValueError:
            raise CommandError(
                f"--folds must be numbers like 1,2,3: {options['folds']!r}"
            ) from None
        if not folds or any(not 1 <= k <= CHUNKS for k in folds):
            raise CommandError(f"--folds must be between 1 and {CHUNKS}")
        try:
            model_config = json.loads(options["model_config"])
            train_overrides = json.loads(options["train_config"])
        except json.JSONDecodeError as error:
            raise CommandError(f"--model-config / --train-config is not JSON: {error}") from None
        model_name = options["model"] or edu_settings.KT_MODEL
        train_config = {
            "epochs": options["epochs"] or edu_settings.KT_EPOCHS,
            "seed": options["seed"],
            **train_overrides,
        }
        try:
            device = resolve_device(options["device"] or edu_settings.DEVICE)
        except (RuntimeError, ValueError) as error:
            raise CommandError(str(error)) from None
        data = Path(options["data"])
        if not data.exists():
            raise CommandError(f"--data {data} does not exist")
        if edu_settings.TORCH_THREADS:
            torch.set_num_threads(edu_settings.TORCH_THREADS)
        try:
            if options["format"] == "akt":
                chunks, extra = akt_chunks(data, options["akt_lines"])
            else:
                chunks, extra = csv_chunks(data, options["seed"]), []
        except (ValueError, FileNotFoundError) as error:
            raise CommandError(f"cannot read {data}: {error}") from None

        results = []
        for k in folds:
            split = fold(chunks, k, extra)
            self.stderr.write(
                f"fold {k}: {len(split.train)} training, {len(split.validation)} validation, "
                f"{len(split.test)} test students"
            )

            def report(epoch, k=k) -> None:
                self.stderr.write(f"  fold {k} {json.dumps(epoch.as_dict())}")

            try:
                trained = train_kt(
                    split.train,
                    split.validation,
                    model_name=model_name,
                    model_config=model_config,
                    train_config=train_config,
                    max_length=options["max_length"],
                    device=device,
                    on_epoch=report,
                )
            except (KeyError, ValueError) as error:
                raise CommandError(str(error.args[0] if error.args else error)) from None
            test = trained.evaluate(split.test, device=device)
            epoch_seconds = [e.seconds for e in trained.history]
            results.append(
                {
                    "fold": k,
                    "auc": round(test["auc"], 5),
                    "acc": round(test["accuracy"], 5),
                    "epochs": len(trained.history),
                    "best_epoch": trained.fit.best_epoch,
                    "val_auc": round(trained.fit.best_val_auc, 5),
                    "train_seconds": round(trained.train_seconds, 1),
                    "epoch_seconds_mean": round(statistics.fmean(epoch_seconds), 2),
                    "test_positions": test["positions"],
                }
            )
            self.stderr.write(f"fold {k}: {json.dumps(results[-1])}")
        aucs = [r["auc"] for r in results]
        output = {
            "dataset": data.name if data.is_dir() else data.stem,
            "format": options["format"],
            "model": trained.model.registered_name,
            "model_requested": model_name,
            "model_config": trained.model.config.__dict__,
            "train_config": train_config,
            "folds": results,
            "auc_mean": round(statistics.fmean(aucs), 5),
            "auc_std": round(statistics.pstdev(aucs), 5) if len(aucs) > 1 else 0.0,
            "acc_mean": round(statistics.fmean(r["acc"] for r in results), 5),
            "train_seconds_total": round(sum(r["train_seconds"] for r in results), 1),
            "epoch_seconds_mean": round(
                statistics.fmean(r["epoch_seconds_mean"] for r in results), 2
            ),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
        }
        text = json.dumps(output, indent=2)
        if options["json_out"] == "-":
            sys.stdout.write(text + "\n")
        else:
            Path(options["json_out"]).write_text(text + "\n")
            self.stdout.write(text)
