"""What a person may see of a submission: its answers to everyone who may open it, its scores
only under the release rules.

A student sees the score of their own response only when it is released and its assessment does
not hold grades until a due date still ahead. Course staff (and superusers) see every score.
Anyone else sees nothing. Answers are returned exactly as the student wrote them: escaping is
the template's job, never the store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from edu_dl.models import Assessment, AssessmentItem, Course, Enrollment, Response, Submission
from edu_dl.selectors.access import UserLike, course_is_staff, course_role
from edu_dl.services.errors import NotFound


@dataclass(frozen=True)
class ResponseView:
    """One response as its page shows it; ``score`` and ``feedback`` are blank when hidden.

    ``options`` are the item's choices as they are now (``[{"id": ..., "text": ...}]``, empty for
    other kinds), so that the ``answer_text`` filter, given the view, shows a chosen option by its
    text, and by its id once the option is no longer there.
    """

    response_id: int
    item_id: int
    position: int
    item_title: str
    item_kind: str
    answer: Any
    status: str
    score_visible: bool
    score: float | None
    min_score: float
    max_score: float
    feedback: str
    options: list[dict[str, Any]]


def assessment_grades_held(*, assessment: Assessment, now: datetime | None = None) -> bool:
    """Whether the assessment still hides its grades from students (held until a due date
    that has not passed)."""
    now = timezone.now() if now is None else now
    return bool(
        assessment.hold_grades_until_due
        and assessment.due_at is not None
        and assessment.due_at > now
    )


def _viewer_is_author(*, viewer: UserLike, submission: Submission) -> bool:
    """The viewer wrote the submission and is (still) a student of its course."""
    return bool(
        viewer.is_authenticated
        and viewer.pk == submission.student_id
        and course_role(user=viewer, course=submission.assessment.course) == Enrollment.Role.STUDENT
    )


def _score_released(*, response: Response, assessment: Assessment, now: datetime) -> bool:
    return (
        response.released
        and response.score is not None
        and not assessment_grades_held(assessment=assessment, now=now)
    )


def response_visible_score(
    *, response: Response, viewer: UserLike, now: datetime | None = None
) -> float | None:
    """The score of ``response`` that ``viewer`` may see, or None (not graded, or hidden)."""
    now = timezone.now() if now is None else now
    submission = response.submission
    assessment = submission.assessment
    if course_is_staff(user=viewer, course=assessment.course):
        return response.score
    if _viewer_is_author(viewer=viewer, submission=submission) and _score_released(
        response=response, assessment=assessment, now=now
    ):
        return response.score
    return None


def responses_for_student_view(
    *, student: UserLike, submission: Submission, now: datetime | None = None
) -> list[ResponseView]:
    """The responses of ``submission`` in the assessment's order, as ``student`` may see them.

    Its author sees every answer and the scores and feedback that are released (see the
    module's doc); course staff see everything; anyone else gets an empty list.
    """
    now = timezone.now() if now is None else now
    assessment = submission.assessment
    staff = course_is_staff(user=student, course=assessment.course)
    if not staff and not _viewer_is_author(viewer=student, submission=submission):
        return []
    positions = dict(
        AssessmentItem.objects.filter(assessment=assessment).values_list("item_id", "position")
    )
    views = []
    for response in Response.objects.filter(submission=submission).select_related("item"):
        visible = staff or _score_released(response=response, assessment=assessment, now=now)
        item = response.item
        views.append(
            ResponseView(
                response_id=response.pk,
                item_id=item.pk,
                position=positions.get(item.pk, 0),
                item_title=item.title,
                item_kind=item.kind,
                answer=response.answer,
                status=response.status,
                score_visible=visible and response.score is not None,
                score=response.score if visible else None,
                min_score=item.min_score,
                max_score=item.max_score,
                feedback=response.feedback if visible else "",
                options=list(item.options or []),
            )
        )
    views.sort(key=lambda view: (view.position, view.response_id))
    return views


def submission_get_for_viewer(
    *, viewer: UserLike, course: Course, submission_id: int
) -> Submission:
    """The submission of ``course`` with this id, if ``viewer`` may open it: its author (while a
    student of the course) or the course's staff. Anyone else gets :class:`NotFound`, exactly as
    for a submission that does not exist."""
    submission = (
        Submission.objects.select_related("assessment__course", "student")
        .filter(pk=submission_id, assessment__course=course)
        .first()
    )
    if submission is None or not (
        _viewer_is_author(viewer=viewer, submission=submission)
        or course_is_staff(user=viewer, course=course)
    ):
        raise NotFound("No such submission.")
    return submission
