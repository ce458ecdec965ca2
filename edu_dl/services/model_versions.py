"""Model versions: creation from a training run, the evaluation gate, activation and rollback,
and the per-process cache of active models that workers use for inference."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from edu_dl.models import ModelKind, ModelVersion, ScopeType, TrainingRun
from edu_dl.selectors.grading import cold_start_items_with_rescorable_answers
from edu_dl.services.artifacts import (
    ArtifactIntegrityError,
    artifact_read_verified,
    artifact_write,
)
from edu_dl.services.audit import audit_record
from edu_dl.services.errors import Conflict, NotFound
from edu_dl.services.scopes import Scope

logger = logging.getLogger(__name__)

# Sent by name (services never import tasks, and this module runs in the web process, which
# must stay free of the grading code and torch).
MASTERY_REFRESH_TASK_NAME = "edu_dl.mastery.refresh_course"  # a course's KT model changed
RESCORE_WAITING_TASK_NAME = "edu_dl.grading.rescore_waiting"  # an item's grader changed
# The most items one activation of the cold-start grader sends to be re-scored, those whose
# answers have waited longest first: one message each, sent from the process that activated it.
COLD_START_RESCORE_MAX_ITEMS = 1000


def _after_serving_changed(version: ModelVersion) -> None:
    """Once the change commits, bring what the model serves up to date: a course's mastery
    under its new KT model; an item's answers waiting for the teacher under its new grader."""
    if version.kind == ModelKind.GRADER:
        _rescore_waiting_after_commit(version)
        return
    if version.kind != ModelKind.KT or version.course_id is None:
        return
    course_id = version.course_id

    def send() -> None:
        current_app.send_task(MASTERY_REFRESH_TASK_NAME, args=[course_id])

    # robust: the activation has committed; a broker that is down must not report it failed.
    transaction.on_commit(send, robust=True)


def _rescore_waiting_after_commit(version: ModelVersion) -> None:
    """Once the change commits, have the answers that ``version`` now grades and that wait for
    the teacher scored again: the item's, for an item grader; for the cold-start grader, those
    of every item it grades (a reference answer, no grader of its own) that has such answers,
    at most :data:`COLD_START_RESCORE_MAX_ITEMS` items."""
    item_id = version.item_id if version.scope_type == ScopeType.ITEM else None
    if item_id is None and version.scope_type != ScopeType.GLOBAL:
        return

    def send() -> None:
        if item_id is not None:
            item_ids = [item_id]
        else:
            # Chosen after commit, so an item grader activated meanwhile is seen.
            item_ids = cold_start_items_with_rescorable_answers(
                limit=COLD_START_RESCORE_MAX_ITEMS + 1
            )
            if len(item_ids) > COLD_START_RESCORE_MAX_ITEMS:
                item_ids = item_ids[:COLD_START_RESCORE_MAX_ITEMS]
                logger.warning(
                    "%s: more than %d items have answers to re-score; the %d waiting longest "
                    "were sent",
                    version,
                    COLD_START_RESCORE_MAX_ITEMS,
                    COLD_START_RESCORE_MAX_ITEMS,
                )
        for each in item_ids:
            current_app.send_task(RESCORE_WAITING_TASK_NAME, args=[each])

    # robust: the activation has committed; a broker that is down must not report it failed.
    transaction.on_commit(send, robust=True)


@transaction.atomic
def model_version_create(
    *,
    scope: Scope,
    architecture: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    artifact: bytes,
    data_fingerprint: str,
    training_run: TrainingRun | None = None,
) -> ModelVersion:
    """Store the artifact and record it as the scope's next candidate version."""
    # Lock the scope's versions so two runs finishing together cannot take the same number.
    existing = ModelVersion.objects.select_for_update().filter(kind=scope.kind, scope_key=scope.key)
    number = (existing.aggregate(top=Max("version"))["top"] or 0) + 1
    stored = artifact_write(
        name=f"{scope.kind}/{scope.key.replace(':', '-')}/v{number}.pt", data=artifact
    )
    return ModelVersion.objects.create(
        **scope.fields(),
        version=number,
        status=ModelVersion.Status.CANDIDATE,
        architecture=architecture,
        config=config,
        metrics=metrics,
        artifact_path=stored.path,
        artifact_sha256=stored.sha256,
        artifact_size=stored.size,
        data_fingerprint=data_fingerprint,
        training_run=training_run,
    )


def model_version_active(*, kind: str, scope_key: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=kind, scope_key=scope_key, status="active").first()


@transaction.atomic
def model_version_activate(
    *, version: ModelVersion, actor: AbstractBaseUser | None = None, note: str = ""
) -> ModelVersion:
    """Make ``version`` the one that serves its scope; the previous active one is retired.

    Atomic: readers see either the old or the new active version, never none or two. A version
    whose artifact fails its checksum is refused, and the active one keeps serving.
    """
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == ModelVersion.Status.ACTIVE:
        return version
    artifact_read_verified(version=version)  # raises ArtifactIntegrityError
    previous = (
        ModelVersion.objects.select_for_update()
        .filter(kind=version.kind, scope_key=version.scope_key, status="active")
        .first()
    )
    return _serve(version, replacing=previous, actor=actor, action="model.activate", note=note)


def _serve(
    version: ModelVersion,
    *,
    replacing: ModelVersion | None,
    actor: AbstractBaseUser | None,
    action: str,
    note: str = "",
) -> ModelVersion:
    """Retire ``replacing`` and make ``version`` active, audited (inside the caller's
    transaction, with both rows locked)."""
    if replacing is not None:
        replacing.status = ModelVersion.Status.RETIRED
        replacing.save(update_fields=["status"])
    version.status = ModelVersion.Status.ACTIVE
    version.activated_at = timezone.now()
    version.save(update_fields=["status", "activated_at"])
    audit_record(
        actor=actor,
        action=action,
        target=version,
        course=version.course,
        before={"active_version": replacing.version if replacing else None},
        after={"active_version": version.version},
        note=note,
    )
    _after_serving_changed(version)
    return version


@transaction.atomic
def model_version_rollback(
    *, kind: str, scope_key: str, actor: AbstractBaseUser | None = None
) -> ModelVersion:
    """Go back to the version that was active before the current one."""
    current = (
        ModelVersion.objects.select_for_update()
        .filter(kind=kind, scope_key=scope_key, status="active")
        .first()
    )
    if current is None:
        raise NotFound(f"no active {kind} model for {scope_key} to roll back")
    earlier = (
        ModelVersion.objects.filter(
            kind=kind,
            scope_key=scope_key,
            status=ModelVersion.Status.RETIRED,
            activated_at__isnull=False,
            version__lt=current.version,
        )
        .order_by("-version")
        .first()
    )
    if earlier is None:
        raise Conflict(
            f"{current} is the first version that served {scope_key}; nothing to roll back to"
        )
    artifact_read_verified(version=earlier)
    return _serve(earlier, replacing=current, actor=actor, action="model.rollback")


# --- The worker-side cache of active models --------------------------------------------------


class ModelUnavailable(Conflict):
    """No usable model serves this scope (none trained yet, or its artifact was refused)."""


@dataclass
class CachedModel:
    version_id: int
    version_number: int
    sha256: str
    loaded: Any  # edu_dl.ml.checkpoint.LoadedCheckpoint


_cache: dict[tuple[str, str], CachedModel] = {}
_cache_lock = threading.Lock()


def active_model_load(*, kind: str, scope_key: str) -> CachedModel:
    """The scope's active model, loaded once per process and reloaded when the active version
    changes. If the new active version's artifact is refused, the model this process already
    serves keeps serving, and the refusal is logged."""
    from edu_dl.ml.checkpoint import load_checkpoint
    from edu_dl.services.runtime import torch_device

    active = model_version_active(kind=kind, scope_key=scope_key)
    key = (kind, scope_key)
    with _cache_lock:
        cached = _cache.get(key)
        if active is None:
            raise ModelUnavailable(f"no active {kind} model for {scope_key}")
        if cached is not None and cached.version_id == active.pk:
            return cached
        try:
            data = artifact_read_verified(version=active)
            loaded = load_checkpoint(data, device=torch_device())
        except Exception as error:
            if cached is not None:
                logger.error(
                    "keeping %s v%s for %s: the active version %s could not be loaded: %s",
                    kind,
                    cached.version_number,
                    scope_key,
                    active.version,
                    error,
                )
                return cached
            if isinstance(error, ArtifactIntegrityError):
                raise ModelUnavailable(error.message) from error
            raise ModelUnavailable(f"{active} could not be loaded: {error}") from error
        fresh = CachedModel(active.pk, active.version, active.artifact_sha256, loaded)
        _cache[key] = fresh
        return fresh


def active_model_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()
