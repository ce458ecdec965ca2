"""The recommender's learnt signal: training a course's model of which resources helped
students like this one, from their feedback on resources and the mastery that followed.

The examples come from :func:`edu_dl.selectors.recommending.resource_feedback_examples`; the
training is :func:`edu_dl.ml.recommend.helpfulness.train_helpfulness`. The data check runs in
the web process (``training_request``) and imports no torch; :func:`recommender_train`, which
only workers call, imports it inside.
"""

from __future__ import annotations

import logging
from typing import Any

from edu_dl.conf import edu_settings
from edu_dl.models import Course, ResourceInteraction, TrainingRun
from edu_dl.selectors.recommending import (
    ResourceFeedbackExample,
    labelled_feedback_count,
    resource_feedback_examples,
    resource_feedback_fingerprint,
)
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.scopes import Scope

logger = logging.getLogger(__name__)

ARCHITECTURE = "resource-helpfulness"  # edu_dl.ml.recommend.helpfulness.MODEL_NAME, torch-free
PARAM_KEYS = {"model", "model_config", "train_config"}


def _enough_check(course: Course, count: int) -> None:
    needed = edu_settings.RECOMMENDER_MIN_FEEDBACK
    if count < needed:
        raise ValidationFailed(
            f"course {course.slug!r} has {count} labelled resource feedback examples "
            "(helpful / not helpful votes, and completions followed by a new mastery "
            f"estimate); the recommender needs at least {needed} to train",
            field="course",
        )


def recommender_training_data_check(*, scope: Scope) -> None:
    """Refuse (:class:`ValidationFailed`) a recommender training request for a course with
    fewer than ``EDU_DL['RECOMMENDER_MIN_FEEDBACK']`` labelled feedback examples; called by
    ``training_request`` before anything is written."""
    needed = edu_settings.RECOMMENDER_MIN_FEEDBACK
    _enough_check(scope.course, labelled_feedback_count(course_id=scope.course.pk, enough=needed))


def _params(run: TrainingRun) -> dict[str, Any]:
    params = run.params or {}
    unknown = sorted(set(params) - PARAM_KEYS)
    if unknown:
        raise ValidationFailed(
            f"training parameter(s) {', '.join(unknown)} do not apply to the recommender; "
            f"it takes {', '.join(sorted(PARAM_KEYS))}",
            field="params",
        )
    if params.get("model", ARCHITECTURE) != ARCHITECTURE:
        raise ValidationFailed(
            f"the recommender trains {ARCHITECTURE!r}, not {params['model']!r}",
            field="params.model",
        )
    return params


def _feedback_example(row: ResourceFeedbackExample) -> Any:
    from edu_dl.ml.recommend.helpfulness import FeedbackExample

    return FeedbackExample(
        student_key=row.student_id,
        resource_key=row.resource_id,
        skills=row.skills,
        mastery=row.mastery,
        label=row.label,
        weight=row.weight,
    )


def recommender_train(*, run: TrainingRun, reporter: Any) -> Any:
    """Train the course's resource-helpfulness model; return a TrainingOutcome for the gate.

    Validation holds out whole students, the same ones run after run (a hash of the course and
    the student), and the gate compares versions by validation AUC on them. The metrics also
    carry a baseline (each resource's mean helpfulness) measured on the same students, so the
    model card shows whether learning beat counting.

    Refused (:class:`ValidationFailed`, the run fails with the message): too little feedback,
    parameters that do not apply, or feedback from a single student.
    """
    import torch

    from edu_dl.ml.checkpoint import CheckpointError
    from edu_dl.ml.config import config_to_dict
    from edu_dl.ml.recommend.helpfulness import (
        HelpfulnessUnavailable,
        TrainedHelpfulness,
        train_helpfulness,
    )
    from edu_dl.services.runtime import torch_device
    from edu_dl.services.training import TrainingOutcome

    params = _params(run)
    device = torch_device()
    reporter.stage("reading the course's resource feedback", 3)
    rows = resource_feedback_examples(course_id=run.course_id)
    _enough_check(run.course, len(rows))
    examples = [_feedback_example(row) for row in rows]
    students = len({row.student_id for row in rows})
    reporter.stage(f"training on {len(rows)} feedback examples from {students} students", 8)

    def on_epoch(report) -> None:
        reporter.epoch(
            report.as_dict(),
            epoch=report.epoch,
            epochs=report.epochs,
            progress=8 + 87 * report.epoch / report.epochs,
        )

    try:
        trained = train_helpfulness(
            examples,
            device=device,
            validation_salt=f"course:{run.course_id}",
            # The gap the model reads is to the mastery the recommender aims at.
            model_config={
                "target_mastery": edu_settings.RECOMMENDER_TARGET_MASTERY,
                **params.get("model_config", {}),
            },
            train_config=params.get("train_config", {}),
            on_epoch=on_epoch,
        )
    except ValueError as error:
        raise ValidationFailed(str(error)) from error
    validation = trained.validation

    def score_other(artifact: bytes) -> float:
        """The other version's validation AUC on this run's held-out students (NaN when it
        cannot be read as this kind of model, which the gate counts as beaten)."""
        try:
            other = TrainedHelpfulness.from_bytes(artifact, device=device)
        except (CheckpointError, HelpfulnessUnavailable) as error:
            logger.warning("gate of run %s: the active recommender cannot score: %s", run.pk, error)
            return float("nan")
        return other.evaluate(validation)["auc"]

    metrics = {
        **trained.metrics,
        "feedback_examples": len(rows),
        "votes": sum(1 for row in rows if row.event != ResourceInteraction.Event.COMPLETED),
        "completions": sum(1 for row in rows if row.event == ResourceInteraction.Event.COMPLETED),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    reporter.stage("saving the model", 95)
    return TrainingOutcome(
        architecture=trained.model.registered_name,
        config={
            "model": config_to_dict(trained.model.config),
            "train": config_to_dict(trained.train_config),
        },
        artifact=trained.to_bytes(),
        metrics=metrics,
        gate_metric="validation_auc",
        data_fingerprint=resource_feedback_fingerprint(rows),
        score_other=score_other,
        held_out=(
            f"the {len(validation)} feedback examples of "
            f"{trained.metrics['validation_students']} held-out students"
        ),
    )
