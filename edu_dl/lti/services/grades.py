"""Assignment and Grade Services: a submission's released score sent to the LMS gradebook.

Grade release calls :func:`lti_grade_released` (cheap: one query when no LTI link points at the
assessment), which sends :func:`lti_grade_passback` to a worker after commit. The score of a
submission is the sum of its responses' scores, each counted from its item's minimum, out of the
sum of its items' ranges; it is sent once every response of the submission is released, and only
for the student's latest submission of the assessment, so a late change to an older attempt never
overwrites the newer one in the LMS. An assessment that holds grades until its due date has its
scores held until then too (the LMS would show them at once); the sweep sends them afterwards.

The score goes, as ``userId`` = the student's ``sub``, to every line item of a resource link that
opens the assessment on a platform that knows the student, with an access token obtained by a
client-credentials grant whose assertion is signed by the tool's key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from celery import current_app
from django.db import transaction
from django.utils import timezone
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade

from edu_dl.lti.models import GradeSync, LtiUser, ResourceLink
from edu_dl.lti.tool import service_connector
from edu_dl.models import Assessment, AssessmentItem, Response, Submission
from edu_dl.selectors.submissions import assessment_grades_held

logger = logging.getLogger(__name__)

GRADE_PASSBACK_TASK_NAME = "edu_dl.lti.grade_passback"
GRADE_PASSBACK_SWEEP_TASK_NAME = "edu_dl.lti.grade_passback_sweep"
# A score still pending after this was lost on its way to a worker (broker down): sent again.
PENDING_GRACE = timedelta(minutes=10)
ERROR_MAX_LENGTH = 2000


class PlatformUnavailable(Exception):
    """The platform did not answer, or answered 429 or 5xx: trying again later may work."""


@dataclass(frozen=True)
class SubmissionScore:
    given: float
    maximum: float
    # Every response of the submission has a released score.
    complete: bool


def assessment_score_maximum(*, assessment: Assessment) -> float:
    """The most an assessment gives: the sum of its items' ranges (max - min score)."""
    return float(
        sum(
            entry.item.max_score - entry.item.min_score
            for entry in AssessmentItem.objects.filter(assessment=assessment).select_related("item")
        )
    )


def submission_score(*, submission: Submission) -> SubmissionScore | None:
    """The submission's score as the LMS gets it (0 .. maximum), None when it has no answers."""
    responses = list(Response.objects.filter(submission=submission).select_related("item"))
    if not responses:
        return None
    given = 0.0
    maximum = 0.0
    for response in responses:
        scale = response.item.max_score - response.item.min_score
        maximum += scale
        if response.released and response.score is not None:
            given += min(max(response.score - response.item.min_score, 0.0), scale)
    complete = all(response.released and response.score is not None for response in responses)
    return SubmissionScore(given=given, maximum=maximum, complete=complete)


def lti_grades_released(*, response_ids: Iterable[int]) -> None:
    """Grades of these responses were released: send their submissions' scores to the LMS
    gradebooks after commit, for assessments an LTI link with a gradebook column opens.

    Two queries whatever the number of responses (a grading batch releases hundreds). Call it
    inside the transaction that releases the grades; it writes nothing and never fails the
    release (a broker that is down leaves the scores for the sweep).
    """
    assessment_of = dict(
        Response.objects.filter(pk__in=list(response_ids)).values_list(
            "submission_id", "submission__assessment_id"
        )
    )
    if not assessment_of:
        return
    linked = set(
        ResourceLink.objects.filter(
            assessment_id__in=set(assessment_of.values()),
            accepts_scores=True,
            platform__is_active=True,
        )
        .exclude(lineitem_url="")
        .values_list("assessment_id", flat=True)
    )
    for submission_id in sorted(s for s, a in assessment_of.items() if a in linked):

        def send(submission_id: int = submission_id) -> None:
            current_app.send_task(GRADE_PASSBACK_TASK_NAME, args=[submission_id])

        transaction.on_commit(send, robust=True)


def lti_grade_released(*, response_id: int) -> None:
    """:func:`lti_grades_released` for one response."""
    lti_grades_released(response_ids=[response_id])


def _latest_submission_id(submission: Submission) -> int | None:
    return (
        Submission.objects.filter(
            student_id=submission.student_id,
            assessment_id=submission.assessment_id,
            submitted_at__isnull=False,
        )
        .order_by("-submitted_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )


@transaction.atomic
def _sync_record(
    *,
    submission: Submission,
    link: ResourceLink,
    sub: str,
    score: SubmissionScore,
    held_until: datetime | None,
) -> GradeSync:
    """The submission's sync row for ``link`` holding the score to send now."""
    values = {
        "lineitem_url": link.lineitem_url,
        "user_sub": sub,
        "score_given": score.given,
        "score_maximum": score.maximum,
    }
    sync, created = GradeSync.objects.select_for_update().get_or_create(
        submission=submission,
        resource_link=link,
        defaults={**values, "status": GradeSync.Status.PENDING},
    )
    unchanged = all(getattr(sync, name) == value for name, value in values.items())
    if not created and unchanged and sync.status == GradeSync.Status.SENT:
        return sync
    if not unchanged:
        for name, value in values.items():
            setattr(sync, name, value)
        sync.attempts = 0
        sync.error = ""
    sync.status = GradeSync.Status.HELD if held_until is not None else GradeSync.Status.PENDING
    sync.not_before = held_until
    sync.save()
    return sync


def _send(*, sync: GradeSync, link: ResourceLink, now: datetime) -> None:
    """POST the score of ``sync`` to its line item; raises PlatformUnavailable to be retried."""
    grade = (
        Grade()
        .set_score_given(sync.score_given)
        .set_score_maximum(sync.score_maximum)
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
        .set_user_id(sync.user_sub)
        .set_timestamp(now.isoformat(timespec="milliseconds"))
    )
    retry: str | None = None
    sync.attempts += 1
    try:
        service = AssignmentsGradesService(
            service_connector(link.platform),
            {
                "scope": link.ags_scopes,
                "lineitem": sync.lineitem_url,
                "lineitems": link.lineitems_url,
            },
        )
        service.put_grade(grade)
    except LtiServiceException as error:
        status = error.response.status_code
        sync.status, sync.error = GradeSync.Status.FAILED, str(error)[:ERROR_MAX_LENGTH]
        if status == 429 or status >= 500:
            retry = sync.error
    except requests.RequestException as error:
        sync.status, sync.error = GradeSync.Status.FAILED, str(error)[:ERROR_MAX_LENGTH]
        retry = sync.error
    except LtiException as error:  # a registration or a scope that does not allow it
        sync.status, sync.error = GradeSync.Status.FAILED, str(error)[:ERROR_MAX_LENGTH]
    else:
        sync.status, sync.error, sync.sent_at = GradeSync.Status.SENT, "", now
    sync.save(update_fields=["status", "error", "attempts", "sent_at", "updated_at"])
    if retry is not None:
        raise PlatformUnavailable(retry)


def lti_grade_passback(*, submission: Submission, now: datetime | None = None) -> list[GradeSync]:
    """Send the submission's score to the line item of every LTI link that opens its assessment
    (see the module's doc); the sync rows it wrote, empty when there is nothing to send.

    Safe to run twice: a score already sent is not sent again. The network calls run outside
    any transaction (a slow LMS must not hold database locks); each row is written on its own.
    Raises :class:`PlatformUnavailable` after trying every link when one of them may work
    later; the other failures are kept in the rows.
    """
    now = timezone.now() if now is None else now
    submission = Submission.objects.select_related("assessment").get(pk=submission.pk)
    if _latest_submission_id(submission) != submission.pk:
        return []
    score = submission_score(submission=submission)
    if score is None or not score.complete or score.maximum <= 0:
        return []
    assessment = submission.assessment
    links = list(
        ResourceLink.objects.filter(
            assessment=assessment,
            course_id=assessment.course_id,
            accepts_scores=True,
            platform__is_active=True,
        )
        .exclude(lineitem_url="")
        .select_related("platform")
        .order_by("pk")
    )
    subs = dict(
        LtiUser.objects.filter(
            user_id=submission.student_id, platform__in=[link.platform_id for link in links]
        ).values_list("platform_id", "sub")
    )
    held_until = (
        assessment.due_at if assessment_grades_held(assessment=assessment, now=now) else None
    )
    syncs: list[GradeSync] = []
    unavailable: list[PlatformUnavailable] = []
    for link in links:
        sub = subs.get(link.platform_id)
        if sub is None:  # the student never came from that platform
            continue
        sync = _sync_record(
            submission=submission, link=link, sub=sub, score=score, held_until=held_until
        )
        syncs.append(sync)
        if sync.status in (GradeSync.Status.SENT, GradeSync.Status.HELD):
            continue
        try:
            _send(sync=sync, link=link, now=now)
        except PlatformUnavailable as error:
            unavailable.append(error)
    if unavailable:
        raise unavailable[0]
    return syncs


def lti_grade_syncs_due(*, now: datetime | None = None) -> list[int]:
    """Submissions whose scores wait to be sent: held until a due date that has passed, or
    pending for longer than ``PENDING_GRACE`` (the message to the worker was lost)."""
    now = timezone.now() if now is None else now
    held = GradeSync.objects.filter(status=GradeSync.Status.HELD, not_before__lte=now)
    lost = GradeSync.objects.filter(
        status=GradeSync.Status.PENDING, updated_at__lte=now - PENDING_GRACE
    )
    return sorted(
        set(held.values_list("submission_id", flat=True)).union(
            lost.values_list("submission_id", flat=True)
        )
    )


def lti_grade_passback_sweep(*, now: datetime | None = None) -> int:
    """Send the waiting scores (see :func:`lti_grade_syncs_due`) to the workers; how many."""
    submission_ids = lti_grade_syncs_due(now=now)
    for submission_id in submission_ids:
        current_app.send_task(GRADE_PASSBACK_TASK_NAME, args=[submission_id])
    return len(submission_ids)
