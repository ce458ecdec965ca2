"""Retraining on schedule: celery beat asks, every few minutes, which courses have collected
enough new answers since their knowledge-tracing model was last trained, and requests a run for
each of them."""

from __future__ import annotations

import logging

from django.db.models import Exists, F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from edu_dl.conf import edu_settings
from edu_dl.models import Course, Interaction, ModelKind, TrainingRun
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.training import training_request

logger = logging.getLogger(__name__)

KT_RETRAIN_DUE_TASK_NAME = "edu_dl.tracing.retrain_due"


def kt_retrain_due_courses() -> list[TrainingRun]:
    """Request a KT training run for every active course with at least
    ``EDU_DL['KT_RETRAIN_MIN_NEW_INTERACTIONS']`` interactions created since its last run.

    The last run is the newest KT run of the course *whatever its status*, counted from when it
    started (or was created, if it never started): a run that failed or that a teacher
    cancelled also waits for that many new answers before the schedule tries again, so a
    course whose training keeps failing is not retried every few minutes (a teacher can still
    retrain at once). A course that never trained counts all its answers. A course with a run
    queued or running is left alone. Returns the runs requested.
    """
    needed = edu_settings.KT_RETRAIN_MIN_NEW_INTERACTIONS
    runs = TrainingRun.objects.filter(kind=ModelKind.KT, course=OuterRef("pk"))
    newest = runs.order_by("-created_at", "-pk").annotate(
        since=Coalesce(F("started_at"), F("created_at"))
    )
    courses = (
        Course.objects.filter(is_active=True)
        .annotate(
            last_run_at=Subquery(newest.values("since")[:1]),
            has_open_run=Exists(runs.filter(status__in=TrainingRun.OPEN_STATUSES)),
        )
        .filter(has_open_run=False)
        .order_by("pk")
    )
    requested = []
    for course in courses:
        new = Interaction.objects.filter(course=course)
        if course.last_run_at is not None:
            new = new.filter(created_at__gt=course.last_run_at)
        # Counting stops at `needed`: a busy course costs no more than a quiet one.
        if new[:needed].count() < needed:
            continue
        try:
            run = training_request(kind=ModelKind.KT, course=course)
        except ValidationFailed as error:
            logger.warning("scheduled retraining of %s refused: %s", course.slug, error.message)
            continue
        logger.info("scheduled retraining of %s: run %s", course.slug, run.pk)
        requested.append(run)
    return requested
