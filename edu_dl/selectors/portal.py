"""Reads of a student's own pages in a course: my assessments, my drafts and results, my mastery
history, the answers that counted as evidence, my suggestions.

Every function here answers for the signed-in student about themself only: someone who is not a
student of the course gets nothing (an empty list) or :class:`NotFound`, exactly as for a record
that does not exist. Scores go through :func:`edu_dl.selectors.submissions.response_visible_score`,
so a score that is not released, or that an assessment holds until its due date, never leaves
this module. Each function costs a fixed number of queries, whatever the size of the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    AssessmentDraft,
    AssessmentItem,
    Course,
    Enrollment,
    Interaction,
    Item,
    MasteryEstimate,
    Recommendation,
    Response,
    Skill,
    Submission,
)
from edu_dl.selectors.access import UserLike, assessments_visible, course_role
from edu_dl.selectors.submissions import (
    ResponseView,
    assessment_grades_held,
    response_visible_score,
)
from edu_dl.services.errors import NotFound

# How many points per skill the mastery chart draws (the newest ones).
MASTERY_HISTORY_POINTS = 30
# How many of the latest answers "what counted" lists.
LATEST_EVIDENCE = 10


def _is_student(*, user: UserLike, course: Course) -> bool:
    return course_role(user=user, course=course) == Enrollment.Role.STUDENT


# --- My assessments ------------------------------------------------------------------------------


class Availability:
    """Whether an assessment takes answers now."""

    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"


def assessment_availability(*, assessment: Assessment, now: datetime) -> str:
    """``upcoming`` before it opens, ``closed`` after its due date, ``open`` in between."""
    if assessment.opens_at is not None and now < assessment.opens_at:
        return Availability.UPCOMING
    if assessment.due_at is not None and now > assessment.due_at:
        return Availability.CLOSED
    return Availability.OPEN


@dataclass(frozen=True)
class StudentAssessment:
    """One published assessment as its student sees it on the course's front page."""

    assessment: Assessment
    item_count: int
    availability: str  # see Availability
    submission_id: int | None  # my latest submission
    submission_status: str | None
    submission_status_label: str | None
    has_draft: bool

    @property
    def title(self) -> str:
        return self.assessment.title

    @property
    def can_take(self) -> bool:
        return self.availability == Availability.OPEN and self.item_count > 0


def student_assessments(
    *, student: UserLike, course: Course, now: datetime | None = None
) -> list[StudentAssessment]:
    """The course's published assessments, the soonest due first (those without a due date
    last), each with my latest submission, whether I keep a draft of it and whether it is open
    now. One query; empty to non-students."""
    if not _is_student(user=student, course=course):
        return []
    now = timezone.now() if now is None else now
    drafts = AssessmentDraft.objects.filter(student=student, assessment=OuterRef("pk"))
    labels = dict(Submission.Status.choices)
    return [
        StudentAssessment(
            assessment=assessment,
            item_count=assessment.item_count,
            availability=assessment_availability(assessment=assessment, now=now),
            submission_id=assessment.my_submission_id,
            submission_status=assessment.my_submission_status,
            submission_status_label=labels.get(assessment.my_submission_status),
            has_draft=assessment.has_draft,
        )
        for assessment in assessments_visible(user=student, course=course)
        .annotate(has_draft=Exists(drafts))
        # The soonest due first and those without a due date last, on every database.
        .order_by(F("due_at").asc(nulls_last=True), "pk")
    ]


def assessment_for_student(*, student: UserLike, course: Course, assessment_id: int) -> Assessment:
    """A published assessment of ``course``, for its students; :class:`NotFound` otherwise."""
    assessment = None
    if _is_student(user=student, course=course):
        assessment = (
            Assessment.objects.select_related("course")
            .filter(pk=assessment_id, course=course, is_published=True)
            .first()
        )
    if assessment is None:
        raise NotFound("No such assessment.")
    return assessment


def assessment_items(*, assessment: Assessment) -> list[Item]:
    """The assessment's items in their order (one query)."""
    return [
        entry.item
        for entry in AssessmentItem.objects.filter(assessment=assessment)
        .select_related("item")
        .order_by("position")
    ]


def student_draft(*, student: UserLike, assessment: Assessment) -> AssessmentDraft | None:
    """My draft of the assessment, if I saved one (only ever my own)."""
    if not student.is_authenticated:
        return None
    return AssessmentDraft.objects.filter(student=student, assessment=assessment).first()


def student_latest_submission(*, student: UserLike, assessment: Assessment) -> Submission | None:
    """My latest handed-in submission of the assessment, if any."""
    if not student.is_authenticated:
        return None
    return (
        Submission.objects.filter(student=student, assessment=assessment)
        .exclude(status=Submission.Status.DRAFT)
        .order_by("-submitted_at", "-pk")
        .first()
    )


# --- My results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionResult:
    """One of my submissions with what I may see of each answer's grade."""

    submission: Submission
    responses: list[ResponseView]
    grades_held: bool  # the assessment hides its grades until its due date, still ahead
    # The sum of my scores and of the maximums, when every score is visible; else None.
    total_score: float | None
    total_max: float

    @property
    def waiting_count(self) -> int:
        return sum(1 for view in self.responses if not view.score_visible)


def _response_view(*, response: Response, position: int, score: float | None) -> ResponseView:
    item = response.item
    return ResponseView(
        response_id=response.pk,
        item_id=item.pk,
        position=position,
        item_title=item.title,
        item_kind=item.kind,
        answer=response.answer,
        status=response.status,
        score_visible=score is not None,
        score=score,
        min_score=item.min_score,
        max_score=item.max_score,
        feedback=response.feedback if score is not None else "",
        options=list(item.options or []),
    )


def student_results(
    *, student: UserLike, course: Course, now: datetime | None = None
) -> list[SubmissionResult]:
    """My handed-in submissions of the course, newest first, each answer with the score and
    feedback I may see (see :func:`response_visible_score`). Three queries whatever the class
    size; empty to non-students."""
    if not _is_student(user=student, course=course):
        return []
    now = timezone.now() if now is None else now
    submissions = list(
        Submission.objects.filter(student=student, assessment__course=course)
        .exclude(status=Submission.Status.DRAFT)
        .select_related("assessment__course")
        .order_by("-submitted_at", "-pk")
    )
    if not submissions:
        return []
    assessment_ids = {submission.assessment_id for submission in submissions}
    positions = {
        (assessment_id, item_id): position
        for assessment_id, item_id, position in AssessmentItem.objects.filter(
            assessment_id__in=assessment_ids
        ).values_list("assessment_id", "item_id", "position")
    }
    by_submission: dict[int, list[ResponseView]] = {submission.pk: [] for submission in submissions}
    responses = Response.objects.filter(submission__in=submissions).select_related(
        "item", "submission__assessment__course"
    )
    for response in responses:
        assessment_id = response.submission.assessment_id
        by_submission[response.submission_id].append(
            _response_view(
                response=response,
                position=positions.get((assessment_id, response.item_id), 0),
                score=response_visible_score(response=response, viewer=student, now=now),
            )
        )
    results = []
    for submission in submissions:
        views = sorted(
            by_submission[submission.pk], key=lambda view: (view.position, view.response_id)
        )
        every_score = bool(views) and all(view.score_visible for view in views)
        results.append(
            SubmissionResult(
                submission=submission,
                responses=views,
                grades_held=assessment_grades_held(assessment=submission.assessment, now=now),
                total_score=sum(view.score for view in views) if every_score else None,
                total_max=sum(view.max_score for view in views),
            )
        )
    return results


# --- My progress ---------------------------------------------------------------------------------


def mastery_history(
    *, student: UserLike, course: Course, points_per_skill: int = MASTERY_HISTORY_POINTS
) -> dict[int, list[tuple[datetime, float]]]:
    """My mastery estimates of each skill of the course over time, oldest first, at most the
    newest ``points_per_skill`` of each skill: skill id -> [(as_of, probability)]. One query;
    empty to non-students."""
    if not _is_student(user=student, course=course) or points_per_skill < 1:
        return {}
    rows = (
        MasteryEstimate.objects.filter(student=student, skill__course=course)
        .annotate(
            newest_first=Window(
                RowNumber(),
                partition_by=[F("skill_id")],
                order_by=[F("as_of").desc(), F("pk").desc()],
            )
        )
        .filter(newest_first__lte=points_per_skill)
        .order_by("skill_id", "as_of", "pk")
        .values_list("skill_id", "as_of", "probability")
    )
    history: dict[int, list[tuple[datetime, float]]] = {}
    for skill_id, as_of, probability in rows:
        history.setdefault(skill_id, []).append((as_of, probability))
    return history


@dataclass(frozen=True)
class Evidence:
    """One of my answers that the mastery estimates count."""

    timestamp: datetime
    item_title: str
    correct: bool
    skills: list[str]
    source_label: str


def latest_evidence(
    *, student: UserLike, course: Course, limit: int = LATEST_EVIDENCE, now: datetime | None = None
) -> list[Evidence]:
    """My latest answers that count as evidence of mastery, newest first: each with its item,
    whether it was right and the skills it counts for. An answer whose grade I may not see
    yet (not released, or held until the due date) is left out, so that its verdict does not
    show before its score. One query, plus one for the skill names; empty to non-students."""
    if not _is_student(user=student, course=course):
        return []
    now = timezone.now() if now is None else now
    held = Q(
        response__submission__assessment__hold_grades_until_due=True,
        response__submission__assessment__due_at__gt=now,
    )
    visible = Q(response__isnull=True) | (Q(response__released=True) & ~held)
    rows = list(
        Interaction.objects.filter(course=course, student=student)
        .filter(visible)
        .select_related("item")
        .order_by("-timestamp", "-pk")[:limit]
    )
    if not rows:
        return []
    names = skill_names(course=course)
    sources = dict(Interaction.Source.choices)
    return [
        Evidence(
            timestamp=row.timestamp,
            item_title=str(row.item) if row.item is not None else "",
            correct=row.correct,
            skills=[
                names[skill_id]
                for skill_id in row.skill_ids or []
                if isinstance(skill_id, int) and skill_id in names
            ],
            source_label=str(sources.get(row.source, row.source)),
        )
        for row in rows
    ]


def skill_names(*, course: Course) -> dict[int, str]:
    """The course's skills by id: their names (for reasons and evidence)."""
    return dict(Skill.objects.filter(course=course).values_list("pk", "name"))


# --- What to study next --------------------------------------------------------------------------


def _my_recommendations(*, student: UserLike, course: Course) -> QuerySet[Recommendation]:
    if not _is_student(user=student, course=course):
        return Recommendation.objects.none()
    return Recommendation.objects.filter(student=student, course=course).select_related(
        "resource", "item", "skill"
    )


def student_recommendations(*, student: UserLike, course: Course) -> list[Recommendation]:
    """My current suggestions in the course, best first (one query); empty to non-students."""
    return list(
        _my_recommendations(student=student, course=course)
        .filter(is_current=True)
        .order_by("rank", "pk")
    )


def recommendation_for_student(
    *, student: UserLike, course: Course, recommendation_id: int
) -> Recommendation:
    """One of my suggestions in the course (a current one or an earlier one);
    :class:`NotFound` for anyone else's, exactly as for one that does not exist."""
    recommendation = (
        _my_recommendations(student=student, course=course).filter(pk=recommendation_id).first()
    )
    if recommendation is None:
        raise NotFound("No such suggestion.")
    return recommendation
