"""Knowledge tracing: training a course's model from its interactions.

Torch is imported inside the functions: only workers and CLI commands call them.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from edu_dl.conf import edu_settings
from edu_dl.models import TrainingRun
from edu_dl.selectors.interactions import StudentHistory, course_history
from edu_dl.services.errors import ValidationFailed

DEFAULT_MAX_LENGTH = 200


def validation_students(student_ids: list[int], *, share: float, salt: str) -> set[int]:
    """A stable, seeded choice of held-out students: the same students are held out run after
    run, so the evaluation gate compares versions on the same people."""

    def rank(student_id: int) -> str:
        return hashlib.sha256(f"{salt}:{student_id}".encode()).hexdigest()

    ordered = sorted(student_ids, key=rank)
    count = max(1, round(share * len(ordered))) if len(ordered) >= 2 else 0
    return set(ordered[:count])


def _to_sequences(histories: list[StudentHistory], skill_vocabulary, item_vocabulary):
    from edu_dl.ml.kt.data import KTSequence

    return [
        KTSequence(
            skills=[tuple(skill_vocabulary.index(s) for s in skills) for skills in h.skill_ids],
            correct=h.correct,
            items=[item_vocabulary.index(i) for i in h.item_ids],
            key=str(h.student_id),
        )
        for h in histories
    ]


def kt_train(*, run: TrainingRun, reporter) -> Any:
    """Train the course's knowledge-tracing model; return a TrainingOutcome for the gate."""
    import torch

    from edu_dl.ml.checkpoint import checkpoint_bytes, load_checkpoint
    from edu_dl.ml.config import config_from_dict, config_to_dict
    from edu_dl.ml.kt.data import Vocabulary, split_into_windows
    from edu_dl.ml.registry import build_model, registered
    from edu_dl.ml.train import TrainConfig, evaluate_kt, fit_kt, seed_everything
    from edu_dl.services.runtime import torch_device
    from edu_dl.services.training import TrainingOutcome

    params = run.params or {}
    model_name = params.get("model", edu_settings.KT_MODEL)
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
    train_histories = [h for h in history.students if h.student_id not in held_out]
    validation_histories = [h for h in history.students if h.student_id in held_out]
    skill_vocabulary = Vocabulary.from_keys(
        s for h in train_histories for skills in h.skill_ids for s in skills
    )
    item_vocabulary = Vocabulary.from_keys(
        i for h in train_histories for i in h.item_ids if i is not None
    )
    train = split_into_windows(
        _to_sequences(train_histories, skill_vocabulary, item_vocabulary), max_length
    )
    validation = split_into_windows(
        _to_sequences(validation_histories, skill_vocabulary, item_vocabulary), max_length
    )
    if not train or not validation:
        raise ValidationFailed(
            f"not enough answer history: {len(train)} training and {len(validation)} validation "
            "sequences of two or more answers (need at least one of each)"
        )
    model_config = {
        **params.get("model_config", {}),
        "num_skills": skill_vocabulary.size,
        "num_items": item_vocabulary.size,
    }
    seed_everything(train_config.seed)  # the initial weights too, not only the batch order
    model = build_model(model_name, model_config)

    reporter.stage(f"training {model_name} on {len(train_histories)} students", 8)

    def on_epoch(report) -> None:
        reporter.epoch(
            report.as_dict(),
            epoch=report.epoch,
            epochs=report.epochs,
            progress=8 + 87 * report.epoch / report.epochs,
        )

    started = time.perf_counter()
    result = fit_kt(model, train, validation, train_config, device=device, on_epoch=on_epoch)
    train_seconds = time.perf_counter() - started
    model.load_state_dict(result.best_state_dict)
    reporter.stage("evaluating the best epoch", 95)
    best = evaluate_kt(model, validation, device=device)
    extra = {
        "skill_vocabulary": skill_vocabulary.keys,
        "item_vocabulary": item_vocabulary.keys,
        "max_length": max_length,
    }
    artifact = checkpoint_bytes(model, metrics=best, extra=extra)

    def score_other(other_artifact: bytes) -> float:
        other = load_checkpoint(other_artifact, device=device)
        other_skills = Vocabulary(other.extra.get("skill_vocabulary", []))
        other_items = Vocabulary(other.extra.get("item_vocabulary", []))
        sequences = split_into_windows(
            _to_sequences(validation_histories, other_skills, other_items),
            int(other.extra.get("max_length", max_length)),
        )
        return evaluate_kt(other.model, sequences, device=device)["auc"]

    metrics = {
        "val_auc": best["auc"],
        "val_accuracy": best["accuracy"],
        "val_log_loss": best["log_loss"],
        "val_positions": best["positions"],
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "train_students": len(train_histories),
        "validation_students": len(validation_histories),
        "interactions": history.interaction_count,
        "skills": len(skill_vocabulary.keys),
        "train_seconds": round(train_seconds, 2),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    return TrainingOutcome(
        architecture=model_name,
        config={
            "model": config_to_dict(model.config),
            "train": config_to_dict(train_config),
            "max_length": max_length,
        },
        artifact=artifact,
        metrics=metrics,
        gate_metric="val_auc",
        data_fingerprint=history.fingerprint,
        score_other=score_other,
    )
