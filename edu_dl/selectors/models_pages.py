"""What the models page of a course's staff reads: the course's training runs (its knowledge
tracing and recommender models, and the graders of its items), the model versions they made,
each version's audit trail, and the per-epoch metrics of a run as chart series.

Course staff (and superusers) only: anyone else gets nothing or :class:`NotFound`, as
:mod:`edu_dl.selectors.access` decides. Runs and versions of the site-wide (cross-item) grader
belong to no course and are not listed here.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

from edu_dl.models import AuditEvent, Course, Item, ModelKind, ModelVersion, TrainingRun
from edu_dl.selectors.access import UserLike, course_is_staff
from edu_dl.services.errors import NotFound

# How many training runs the models page lists (the newest first).
RECENT_RUNS = 20
# Keys of an epoch's entry in ``TrainingRun.epoch_metrics`` that are not metrics to draw.
EPOCH_BOOKKEEPING_KEYS = frozenset({"epoch", "epochs", "seconds"})
# The value of the retrain form's choice for an item's grader: "grader:<item id>".
GRADER_CHOICE_PREFIX = "grader:"


def _versions_made() -> Prefetch:
    return Prefetch("model_versions", queryset=ModelVersion.objects.order_by("-version", "-pk"))


def course_training_runs(
    *, viewer: UserLike, course: Course, limit: int = RECENT_RUNS
) -> list[TrainingRun]:
    """The course's newest training runs, course-wide and per item, newest first, each with
    its item, who asked for it and the versions it made. Two queries; course staff only."""
    if not course_is_staff(user=viewer, course=course):
        return []
    return list(
        TrainingRun.objects.filter(course=course)
        .select_related("item", "requested_by")
        .prefetch_related(_versions_made())
        .order_by("-created_at", "-pk")[:limit]
    )


def course_training_run_get(*, viewer: UserLike, course: Course, run_id: int) -> TrainingRun:
    """One training run of the course (course-wide or of one of its items), with what
    :func:`course_training_runs` loads; :class:`NotFound` for another course's run and for
    viewers who are not staff."""
    run = None
    if course_is_staff(user=viewer, course=course):
        run = (
            TrainingRun.objects.filter(course=course, pk=run_id)
            .select_related("item", "requested_by")
            .prefetch_related(_versions_made())
            .first()
        )
    if run is None:
        raise NotFound("No such training run.")
    return run


def course_model_versions(*, viewer: UserLike, course: Course) -> QuerySet[ModelVersion]:
    """The course's model versions (course-wide and of its items): the active ones first, then
    by kind, scope and newest version; course staff only (others get none)."""
    if not course_is_staff(user=viewer, course=course):
        return ModelVersion.objects.none()
    return (
        ModelVersion.objects.filter(course=course)
        .select_related("item", "training_run__requested_by")
        .order_by("kind", "scope_key", "-version", "-pk")
    )


def course_active_versions(*, viewer: UserLike, course: Course) -> list[ModelVersion]:
    """The versions that serve the course now, one per kind and scope. One query."""
    return list(course_model_versions(viewer=viewer, course=course).filter(status="active"))


def course_model_version_get(*, viewer: UserLike, course: Course, version_id: int) -> ModelVersion:
    """One model version of the course; :class:`NotFound` for another course's version and for
    viewers who are not staff."""
    version = course_model_versions(viewer=viewer, course=course).filter(pk=version_id).first()
    if version is None:
        raise NotFound("No such model version.")
    return version


def model_version_can_roll_back(*, version: ModelVersion) -> bool:
    """Whether rolling back ``version`` has somewhere to go: it is active and an earlier
    version of its scope served before it (what ``model_version_rollback`` goes back to)."""
    if version.status != ModelVersion.Status.ACTIVE:
        return False
    return ModelVersion.objects.filter(
        kind=version.kind,
        scope_key=version.scope_key,
        status=ModelVersion.Status.RETIRED,
        activated_at__isnull=False,
        version__lt=version.version,
    ).exists()


def model_version_audit_trail(*, viewer: UserLike, version: ModelVersion) -> list[AuditEvent]:
    """Who activated or rolled back to ``version``, when and why, newest first. One query;
    course staff of the version's course only."""
    if version.course is None or not course_is_staff(user=viewer, course=version.course):
        return []
    return list(
        AuditEvent.objects.filter(target_type="modelversion", target_id=str(version.pk))
        .select_related("actor")
        .order_by("-created_at", "-pk")
    )


# --- "Retrain now" -------------------------------------------------------------------------------


def retrain_choices(*, viewer: UserLike, course: Course) -> list[tuple[str, str]]:
    """What the staff may ask to train, as ``(value, label)`` for the retrain form: the
    course's knowledge tracing and recommender, and a grader for each active item that a
    model grades (short answers and essays). One query; course staff only."""
    if not course_is_staff(user=viewer, course=course):
        return []
    choices = [
        (ModelKind.KT.value, _("Knowledge tracing (whole course)")),
        (ModelKind.RECOMMENDER.value, _("Recommender (whole course)")),
    ]
    items = (
        Item.objects.filter(course=course, kind__in=Item.MODEL_GRADED_KINDS, is_active=True)
        .order_by("title", "pk")
        .values_list("pk", "title")
    )
    for item_id, title in items:
        label = _("Grader of the item “%(item)s”") % {"item": title or f"#{item_id}"}
        choices.append((f"{GRADER_CHOICE_PREFIX}{item_id}", label))
    return choices


def retrain_target(
    *, viewer: UserLike, course: Course, choice: str
) -> tuple[str, Item | None] | None:
    """The kind and item (None for a course-wide model) that a retrain form's choice names, or
    None when it names nothing this viewer may train in this course."""
    if not course_is_staff(user=viewer, course=course):
        return None
    if choice in (ModelKind.KT, ModelKind.RECOMMENDER):
        return str(choice), None
    if not choice.startswith(GRADER_CHOICE_PREFIX):
        return None
    item_id = choice.removeprefix(GRADER_CHOICE_PREFIX)
    if not item_id.isdigit():
        return None
    item = Item.objects.filter(
        course=course, pk=int(item_id), kind__in=Item.MODEL_GRADED_KINDS, is_active=True
    ).first()
    return (ModelKind.GRADER.value, item) if item is not None else None


# --- Per-epoch metrics ---------------------------------------------------------------------------


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def epoch_metric_series(run: TrainingRun) -> list[tuple[str, list[tuple[int, float]]]]:
    """The run's per-epoch metrics (``TrainingRun.epoch_metrics``, one dict per finished epoch,
    as the trainers' ``on_epoch`` writes it) as chart series: one per metric, named by its key,
    by name (PostgreSQL's jsonb does not keep the order the keys were written in), with
    ``(epoch, value)`` points. Bookkeeping keys
    (epoch number, epoch count, seconds) and values that are not finite numbers are left out."""
    series: dict[str, list[tuple[int, float]]] = {}
    entries = run.epoch_metrics if isinstance(run.epoch_metrics, list) else []
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            continue
        epoch = entry.get("epoch", position)
        if not _finite_number(epoch):
            epoch = position
        for key, value in entry.items():
            if key in EPOCH_BOOKKEEPING_KEYS:
                continue
            points = series.setdefault(str(key), [])
            if _finite_number(value):
                points.append((epoch, float(value)))
    return [(name, points) for name, points in sorted(series.items()) if points]


# --- The model card ------------------------------------------------------------------------------

# Keys of ``ModelVersion.metrics`` that say how much data a model learnt from.
DATA_SIZE_KEYS = frozenset(
    {
        "interactions",
        "skills",
        "items",
        "n_train",
        "n_items",
        "n_levels",
        "validated_items",
        "teacher_scored_answers",
        "trained_on",
        "feedback_examples",
        "votes",
        "completions",
        "val_positions",
    }
)
DATA_SIZE_SUFFIXES = ("_students", "_examples", "_answers")
# Keys that say how the training ran rather than how good the model is.
TRAINING_KEYS = frozenset(
    {
        "device",
        "torch_threads",
        "encoder",
        "train_seconds",
        "best_epoch",
        "epochs_run",
        "stopped_early",
        # A grader's tuned encoder layers (metrics["tuned"]).
        "layers",
        "epochs",
        "blend_weight",
        "tokens",
        "layers_kept",
        "tuned_because",
    }
)


# A grader's grades of single answers (for its successor's release curve): hundreds of rows
# that say nothing on a card; their count is a figure of its own (released_before_answers,
# validated_answers).
PER_ANSWER_KEYS = frozenset({"validation_grades", "released_before"})


def _metric_group(key: str) -> str:
    if key in DATA_SIZE_KEYS or key.endswith(DATA_SIZE_SUFFIXES):
        return "data"
    if "calibrat" in key or key.startswith(("ece", "brier")):
        return "calibration"
    if key in TRAINING_KEYS or key.endswith("_seconds"):
        return "training"
    return "quality"


def _metric_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def model_card_metrics(metrics: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """A version's metrics for its card, grouped as people read them: quality, calibration,
    the data it learnt from and how the training ran, as ``(group title, [(key, value as
    text), ...])`` with empty groups left out and keys in the stored order."""
    titles = {
        "quality": _("Quality on held-out data"),
        "calibration": _("Calibration"),
        "data": _("Data it learnt from"),
        "training": _("Training"),
    }
    groups: dict[str, list[tuple[str, str]]] = {name: [] for name in titles}
    for key, value in (metrics if isinstance(metrics, dict) else {}).items():
        if key in PER_ANSWER_KEYS:
            continue
        # A figure that holds named figures (a grader's "tuned" part) shows them one by one,
        # as "tuned.layers", each in its own group.
        parts = value.items() if isinstance(value, dict) else [(None, value)]
        for part, inner in parts:
            name = str(key) if part is None else f"{key}.{part}"
            group = _metric_group(str(key) if part is None else str(part))
            groups[group].append((name, _metric_text(inner)))
    return [(titles[name], rows) for name, rows in groups.items() if rows]
