"""Training as a job: request a run, execute it in a worker, gate and activate its model, and
sweep up runs whose worker died.

Job state lives in TrainingRun rows, not in Celery: a page or the API reads progress from the
database, and the sweeper can tell a dead worker from a slow one by the run's heartbeat.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from edu_dl.conf import edu_settings
from edu_dl.models import Course, Item, ModelVersion, TrainingRun
from edu_dl.services.artifacts import ArtifactIntegrityError, artifact_read_verified
from edu_dl.services.errors import Conflict, ValidationFailed
from edu_dl.services.model_versions import (
    model_version_activate,
    model_version_active,
    model_version_create,
)
from edu_dl.services.scopes import Scope, scope_of, scope_resolve
from edu_dl.services.webhooks import webhook_training_finished

logger = logging.getLogger(__name__)

TRAINING_TASK_NAME = "edu_dl.training.run"
# Keys a request may set in ``params``; the trainer checks their contents.
PARAM_KEYS = {"model", "model_config", "train_config", "max_length"}
MAX_ENQUEUES = 5


class RunCancelled(Exception):
    """A cancel request was seen between two epochs."""


@dataclass
class TrainingOutcome:
    """What a trainer hands back: the candidate, and how to score another model the same way."""

    architecture: str
    config: dict[str, Any]
    artifact: bytes
    metrics: dict[str, Any]
    gate_metric: str
    data_fingerprint: str
    # Scores another version's artifact on this run's held-out data (the evaluation gate).
    score_other: Callable[[bytes], float]
    notes: list[str] = field(default_factory=list)
    # What score_other measures on, for the gate's verdict ("" = the run's validation students).
    held_out: str = ""


class ProgressReporter:
    """Writes a run's progress to its row (and its heartbeat); stops the run if cancelled."""

    def __init__(self, run: TrainingRun):
        self.run_id = run.pk

    def _write(self, **fields: Any) -> None:
        now = timezone.now()
        TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=now, **fields)
        if TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists():
            raise RunCancelled()

    def stage(self, text: str, progress: int) -> None:
        self._write(stage=text[:200], progress=max(0, min(100, int(progress))))

    def epoch(self, metrics: dict[str, Any], *, epoch: int, epochs: int, progress: int) -> None:
        run = TrainingRun.objects.only("epoch_metrics").get(pk=self.run_id)
        self._write(
            epoch_metrics=[*run.epoch_metrics, metrics],
            stage=f"training: epoch {epoch} of at most {epochs}",
            progress=max(0, min(99, int(progress))),
        )


def _trainers() -> dict[str, Callable[..., TrainingOutcome]]:
    from edu_dl.services.grader_training import grader_train
    from edu_dl.services.recommender_training import recommender_train
    from edu_dl.services.tracing import kt_train

    return {"kt": kt_train, "grader": grader_train, "recommender": recommender_train}


def _enqueue(run: TrainingRun) -> None:
    """Send the run to the training queue by the task's stable name (no import of tasks here)."""
    result = current_app.send_task(
        TRAINING_TASK_NAME,
        args=[run.pk],
        # Per message, so the EDU_DL settings are read when sending, not at import time.
        soft_time_limit=edu_settings.TRAINING_SOFT_TIME_LIMIT_S,
        time_limit=edu_settings.TRAINING_HARD_TIME_LIMIT_S,
    )
    TrainingRun.objects.filter(pk=run.pk).update(
        task_id=result.id or "", enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1
    )


def _validate_params(params: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise ValidationFailed("params must be an object", field="params")
    unknown = sorted(set(params) - PARAM_KEYS)
    if unknown:
        raise ValidationFailed(
            f"unknown training parameter(s): {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(PARAM_KEYS))}",
            field="params",
        )
    for key in ("model_config", "train_config"):
        if key in params and not isinstance(params[key], dict):
            raise ValidationFailed(f"params.{key} must be an object", field=f"params.{key}")
    if "model" in params and not isinstance(params["model"], str):
        raise ValidationFailed("params.model must be a model name", field="params.model")
    if "max_length" in params and (
        not isinstance(params["max_length"], int) or params["max_length"] < 2
    ):
        raise ValidationFailed(
            "params.max_length must be a whole number >= 2", field="params.max_length"
        )
    return params


def _check_enough_data(scope: Scope) -> None:
    if scope.kind == "kt":
        count = scope.course.interactions.count()
        needed = edu_settings.KT_MIN_INTERACTIONS
        if count < needed:
            raise ValidationFailed(
                f"course {scope.course.slug!r} has {count} interactions; knowledge tracing needs "
                f"at least {needed} to train",
                field="course",
            )
    elif scope.kind == "grader":
        from edu_dl.services.grader_training import grader_training_data_check

        grader_training_data_check(scope=scope)
    elif scope.kind == "recommender":
        from edu_dl.services.recommender_training import recommender_training_data_check

        recommender_training_data_check(scope=scope)
    elif scope.kind not in _trainers():
        raise ValidationFailed(f"training {scope.kind} models is not available yet", field="kind")


def training_request(
    *,
    kind: str,
    course: Course | None = None,
    item: Item | None = None,
    requested_by: AbstractBaseUser | None = None,
    params: dict[str, Any] | None = None,
) -> TrainingRun:
    """Ask for a training run. While one for the same kind and scope is queued or running, that
    run is returned instead of a second one. The task is enqueued once the row is committed."""
    scope = scope_resolve(kind=kind, course=course, item=item)
    params = _validate_params(params or {})
    key = f"{scope.kind}:{scope.key}"
    open_run = TrainingRun.objects.filter(idempotency_key=key, status__in=TrainingRun.OPEN_STATUSES)
    existing = open_run.first()
    if existing is not None:
        return existing
    _check_enough_data(scope)
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                **scope.fields(),
                idempotency_key=key,
                params=params,
                requested_by=requested_by
                if requested_by and requested_by.is_authenticated
                else None,
                stage="queued",
            )
            transaction.on_commit(lambda: _enqueue(run))
    except IntegrityError:
        # Another request created the open run between our check and our insert.
        return open_run.get()
    return run


@transaction.atomic
def training_run_cancel(*, run: TrainingRun, actor: AbstractBaseUser | None = None) -> TrainingRun:
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == TrainingRun.Status.QUEUED:
        run.status = TrainingRun.Status.CANCELLED
        run.finished_at = timezone.now()
        run.stage = "cancelled before it started"
        run.save(update_fields=["status", "finished_at", "stage"])
    elif run.status == TrainingRun.Status.RUNNING:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
    else:
        raise Conflict(f"training run {run.pk} has already ended ({run.status})")
    return run


def _finish(run_id: int, status: str, **fields: Any) -> None:
    ended = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(
        status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields
    )
    if ended:  # a cancelled run sends nothing: the hook checks
        webhook_training_finished(run_id=run_id)


def training_run_execute(*, run_id: int, task_id: str = "", worker: str = "") -> TrainingRun | None:
    """Run a queued training run to its end. Safe to call twice: only a queued run is claimed,
    so a redelivered message for a run that a dead worker had started does nothing (the sweeper
    fails that run), and the active model is never touched by a run that did not finish."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        progress=1,
        stage="starting",
        worker=worker[:255],
        task_id=task_id[:255] or F("task_id"),
        error="",
    )
    if not claimed:
        status = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        logger.info("training run %s not started: it is %s, not queued", run_id, status or "gone")
        return None
    run = TrainingRun.objects.select_related("course", "item").get(pk=run_id)
    reporter = ProgressReporter(run)
    try:
        outcome = _trainers()[run.kind](run=run, reporter=reporter)
        reporter.stage("saving the model", 96)
        version = model_version_create(
            scope=scope_of(run),
            architecture=outcome.architecture,
            config=outcome.config,
            metrics=outcome.metrics,
            artifact=outcome.artifact,
            data_fingerprint=outcome.data_fingerprint,
            training_run=run,
        )
        reporter.stage("comparing with the active model", 98)
        _evaluation_gate(version=version, outcome=outcome, run=run)
    except RunCancelled:
        _finish(run_id, TrainingRun.Status.CANCELLED, stage="cancelled")
    except Exception as error:
        logger.exception("training run %s failed", run_id)
        _finish(run_id, TrainingRun.Status.FAILED, error=f"{type(error).__name__}: {error}"[:5000])
    else:
        _finish(run_id, TrainingRun.Status.SUCCEEDED, progress=100, stage="done")
    return TrainingRun.objects.get(pk=run_id)


def _json_number(value: float) -> float | None:
    """None for NaN and infinities, which PostgreSQL's jsonb refuses."""
    return value if math.isfinite(value) else None


def _evaluation_gate(*, version: ModelVersion, outcome: TrainingOutcome, run: TrainingRun) -> None:
    """Activate the candidate only if it scores at least the active version on the same
    held-out data; otherwise leave it a candidate with the reason written on it."""
    metric = outcome.gate_metric
    candidate_score = outcome.metrics.get(metric)
    active = model_version_active(kind=version.kind, scope_key=version.scope_key)
    if candidate_score is None or (
        isinstance(candidate_score, float) and math.isnan(candidate_score)
    ):
        reason = f"not activated: the candidate's {metric} could not be computed"
        if active is None:
            reason = f"activated as the first version, although its {metric} is undefined"
            model_version_activate(version=version, actor=run.requested_by, note=reason)
        ModelVersion.objects.filter(pk=version.pk).update(gate_reason=reason)
        return
    if active is None:
        reason = f"activated: first version ({metric} {candidate_score:.4f})"
    else:
        try:
            active_score = outcome.score_other(artifact_read_verified(version=active))
        except ArtifactIntegrityError as error:
            active_score = float("-inf")
            logger.error("gate: active %s cannot be scored: %s", active, error.message)
        held_out = outcome.held_out or (
            f"{outcome.metrics.get('validation_students', 'the same')} validation students"
        )
        if not active_score <= candidate_score:  # NaN for the active counts as beaten
            reason = (
                f"not activated: {metric} {candidate_score:.4f} is below active "
                f"v{active.version}'s {active_score:.4f} on {held_out}"
            )
            ModelVersion.objects.filter(pk=version.pk).update(
                gate_reason=reason,
                metrics={**version.metrics, f"active_{metric}": _json_number(active_score)},
            )
            return
        reason = (
            f"activated: {metric} {candidate_score:.4f} >= active v{active.version}'s "
            f"{active_score:.4f} on {held_out}"
        )
        ModelVersion.objects.filter(pk=version.pk).update(
            metrics={**version.metrics, f"active_{metric}": _json_number(active_score)}
        )
    model_version_activate(version=version, actor=run.requested_by, note=reason)
    ModelVersion.objects.filter(pk=version.pk).update(gate_reason=reason)


def training_runs_sweep() -> dict[str, int]:
    """Fail running runs whose worker stopped sending heartbeats; enqueue again queued runs whose
    message was lost. Run by celery beat every minute."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=edu_settings.TRAINING_HEARTBEAT_TIMEOUT_S)
    stale = TrainingRun.objects.filter(
        status=TrainingRun.Status.RUNNING, heartbeat_at__lt=stale_before
    )
    failed = 0
    # One run at a time, so that each run failed here, and only those, sends its webhooks.
    for run_id in list(stale.values_list("pk", flat=True)):
        if stale.filter(pk=run_id).update(
            status=TrainingRun.Status.FAILED,
            finished_at=now,
            error=(
                "the worker stopped responding (no heartbeat for "
                f"{edu_settings.TRAINING_HEARTBEAT_TIMEOUT_S} s); the active model is unchanged"
            ),
        ):
            failed += 1
            webhook_training_finished(run_id=run_id)
    requeue_before = now - timedelta(seconds=edu_settings.TRAINING_REQUEUE_AFTER_S)
    requeued = given_up = 0
    for run in TrainingRun.objects.filter(
        status=TrainingRun.Status.QUEUED, enqueued_at__lt=requeue_before
    ):
        if run.enqueue_count >= MAX_ENQUEUES:
            if TrainingRun.objects.filter(pk=run.pk, status="queued").update(
                status=TrainingRun.Status.FAILED,
                finished_at=now,
                error=f"no worker took the run after {run.enqueue_count} attempts to enqueue it",
            ):
                given_up += 1
                webhook_training_finished(run_id=run.pk)
            continue
        _enqueue(run)
        requeued += 1
    # A run whose enqueue never happened (the process died between commit and send).
    for run in TrainingRun.objects.filter(
        status=TrainingRun.Status.QUEUED, enqueued_at__isnull=True, created_at__lt=requeue_before
    ):
        _enqueue(run)
        requeued += 1
    if failed or requeued or given_up:
        logger.warning(
            "sweep: %d stale runs failed, %d runs enqueued again, %d given up",
            failed,
            requeued,
            given_up,
        )
    return {"failed": failed, "requeued": requeued, "given_up": given_up}
