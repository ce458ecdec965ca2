"""LTI tasks: thin wrappers that take ids and call one service. Names are stable: a rename
breaks messages already queued."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from edu_dl.lti.models import Context
from edu_dl.lti.services.grades import (
    GRADE_PASSBACK_SWEEP_TASK_NAME,
    GRADE_PASSBACK_TASK_NAME,
    PlatformUnavailable,
    lti_grade_passback,
    lti_grade_passback_sweep,
)
from edu_dl.lti.services.roster import ROSTER_SYNC_TASK_NAME, lti_roster_sync
from edu_dl.models import Submission

# An LMS that is down or busy comes back: six more tries, up to 1, 2, 4 ... 30 minutes apart
# (jittered); a score still unsent then waits in its GradeSync row with the error.
RETRY_OPTIONS = {
    "autoretry_for": (PlatformUnavailable, OperationalError),
    "retry_backoff": 60,
    "retry_backoff_max": 30 * 60,
    "retry_jitter": True,
    "max_retries": 6,
}


@shared_task(name=GRADE_PASSBACK_TASK_NAME, ignore_result=True, **RETRY_OPTIONS)
def grade_passback_task(submission_id: int) -> int:
    submission = Submission.objects.filter(pk=submission_id).first()
    if submission is None:  # deleted since: nothing to send
        return 0
    return len(lti_grade_passback(submission=submission))


@shared_task(name=GRADE_PASSBACK_SWEEP_TASK_NAME, ignore_result=True)
def grade_passback_sweep_task() -> int:
    return lti_grade_passback_sweep()


@shared_task(name=ROSTER_SYNC_TASK_NAME, ignore_result=True, **RETRY_OPTIONS)
def roster_sync_task(context_id: int) -> int:
    context = Context.objects.select_related("platform", "course").filter(pk=context_id).first()
    if context is None:
        return 0
    return lti_roster_sync(context=context).members
