"""Knowledge tracing: training a course's model from its interactions.

Torch is imported inside the functions: only workers and CLI commands call them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from edu_dl.conf import edu_settings
from edu_dl.models import TrainingRun
from edu_dl.selectors.interactions import StudentHistory, course_history
from edu_dl.services.errors import ValidationFailed


def validation_students(student_ids: list[int], *, share: float, salt: str) -> set[int]:
    """A stable, seeded choice of held-out students: the same students are held out run after
    run, so the evaluation gate compares versions on the same people."""

    def rank(student_id: int) -> str:
        return hashlib.sha256(f"{salt}:{student_id}".encode()).hexdigest()

    ordered = sorted(student_ids, key=rank)
    count = max(1, round(share * len(ordered))) if len(ordered) >= 2 else 0
    return set(ordered[:count])


def kt_train(*, run: TrainingRun, reporter) -> Any:
    """Train the course's knowledge-tracing model; return a TrainingOutcome for the gate.

    The training itself is :func:`edu_dl.ml.kt.pipeline.train_kt`, the same function the
    ``evaluate_kt`` command measures on public datasets.
    """
    import torch

    from edu_dl.ml.checkpoint import load_checkpoint
    from edu_dl.ml.config import config_from_dict, config_to_dict
    from edu_dl.ml.kt.pipeline import AUTO, DEFAULT_MAX_LENGTH, RawSequence, TrainedKT, train_kt
    from edu_dl.ml.registry import registered
    from edu_dl.ml.train import TrainConfig
    from edu_dl.services.runtime import torch_device
    from edu_dl.services.training import TrainingOutcome

    params = run.params or {}
    model_name = params.get("model", edu_settings.KT_MODEL)
    if model_name != AUTO:
        try:
            entry = registered(model_name)
        except KeyError as error:
            raise ValidationFailed(str(error.args[0]), field="params.model") from error
        if entry.task != "kt":
            raise ValidationFailed(f"{model_name!r} is not a knowledge-tracing model")
    max_length = int(params.get("max_length", DEFAULT_MAX_LENGTH))
    train_config = config_from_dict(
        TrainConfig, {"epochs": edu_settings.KT_EPOCHS, **params.get("train_config", {})}
    )
    device = torch_device()

    reporter.stage("reading the course's answers", 3)
    history = course_history(course_id=run.course_id)
    held_out = validation_students(
        [h.student_id for h in history.students],
        share=edu_settings.KT_VALIDATION_SHARE,
        salt=f"course:{run.course_id}",
    )

    def raw(h: StudentHistory) -> RawSequence:
        return RawSequence(
            key=str(h.student_id), skills=h.skill_ids, correct=h.correct, items=h.item_ids
        )

    train = [raw(h) for h in history.students if h.student_id not in held_out]
    validation = [raw(h) for h in history.students if h.student_id in held_out]
    reporter.stage(f"training on {len(train)} students", 8)

    def on_epoch(report) -> None:
        reporter.epoch(
            report.as_dict(),
            epoch=report.epoch,
            epochs=report.epochs,
            progress=8 + 87 * report.epoch / report.epochs,
        )

    try:
        trained = train_kt(
            train,
            validation,
            model_name=model_name,
            model_config=params.get("model_config", {}),
            train_config=train_config,
            max_length=max_length,
            device=device,
            on_epoch=on_epoch,
        )
    except ValueError as error:
        raise ValidationFailed(str(error)) from error
    reporter.stage("evaluating the best epoch", 95)
    best = trained.evaluate(validation, device=device)

    def score_other(other_artifact: bytes) -> float:
        other = TrainedKT.from_checkpoint(load_checkpoint(other_artifact, device=device))
        return other.evaluate(validation, device=device)["auc"]

    metrics = {
        "val_auc": best["auc"],
        "val_accuracy": best["accuracy"],
        "val_log_loss": best["log_loss"],
        "val_positions": best["positions"],
        "best_epoch": trained.fit.best_epoch,
        "epochs_run": len(trained.history),
        "stopped_early": trained.fit.stopped_early,
        "train_students": len(train),
        "validation_students": len(validation),
        "interactions": history.interaction_count,
        "skills": len(trained.skill_vocabulary.keys),
        "items": len(trained.item_vocabulary.keys),
        "train_seconds": round(trained.train_seconds, 2),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    return TrainingOutcome(
        architecture=trained.model.registered_name,
        config={
            "model": config_to_dict(trained.model.config),
            "train": config_to_dict(train_config),
            "max_length": max_length,
        },
        artifact=trained.checkpoint(best),
        metrics=metrics,
        gate_metric="val_auc",
        data_fingerprint=history.fingerprint,
        score_other=score_other,
    )
