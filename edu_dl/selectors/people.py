"""What a course's staff read about its students: the class list with each student's mastery
in one line, and one student's record (mastery history, submissions with their scores, the
suggestions made to them and what they did with them).

Every function here is for course staff (and superusers) only; anyone else gets nothing or
:class:`NotFound`, as :mod:`edu_dl.selectors.access` decides. Each costs a fixed number of
queries whatever the size of the class or of the student's record, so the pages that use them
stay fast for a class of hundreds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from edu_dl.models import (
    Course,
    MasteryEstimate,
    Recommendation,
    Response,
    Skill,
    Submission,
)
from edu_dl.selectors.access import UserLike, course_is_staff, students_visible
from edu_dl.selectors.progress import DEFAULT_WINDOW_DAYS
from edu_dl.services.class_summary import course_mastery_summary_for_page
from edu_dl.services.errors import NotFound

# How many of a student's latest suggestions the student page reads (older ones stay stored
# for evaluation, but a page need not show years of them).
RECOMMENDATION_HISTORY_LIMIT = 120


# --- The class list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudentSummary:
    """One line of the class list."""

    student: Any
    # The mean of the student's current mastery over the skills that have an estimate; None
    # when no skill has one yet.
    overall_mastery: float | None
    skills_estimated: int
    skills_needing_attention: int


def class_summaries(
    *,
    viewer: UserLike,
    course: Course,
    students: Sequence[Any],
    window_days: int = DEFAULT_WINDOW_DAYS,
    now: datetime | None = None,
) -> list[StudentSummary]:
    """A summary line for each of ``students`` (a page of :func:`students_visible`), in their
    order: overall mastery, how many skills have an estimate and how many need attention,
    read from the course's class summary (:mod:`edu_dl.services.class_summary`, the same
    figures as the class overview, by the rule of
    :func:`edu_dl.selectors.progress.student_progress`).

    One query when the stored summary will do; course staff only (others get an empty list).
    """
    if not course_is_staff(user=viewer, course=course) or not students:
        return []
    summary, _ = course_mastery_summary_for_page(course=course, window_days=window_days, now=now)
    summaries = []
    for student in students:
        row = summary.students.get(str(student.pk))
        summaries.append(
            StudentSummary(
                student=student,
                overall_mastery=None if row is None else row["overall"],
                skills_estimated=0 if row is None else row["estimates"],
                skills_needing_attention=0 if row is None else row["flagged"],
            )
        )
    return summaries


def course_skill_count(*, viewer: UserLike, course: Course) -> int:
    """How many skills the course has (what "3 of 8 skills estimated" counts against)."""
    if not course_is_staff(user=viewer, course=course):
        return 0
    return Skill.objects.filter(course=course).count()


# --- One student ---------------------------------------------------------------------------------


def course_student_get(*, viewer: UserLike, course: Course, student_id: int) -> Any:
    """The student of ``course`` with this id, for its staff; :class:`NotFound` for anyone who
    is not a student of the course (a teacher's id included) and for viewers who are not staff."""
    if not course_is_staff(user=viewer, course=course):
        raise NotFound("No such student.")
    student = students_visible(user=viewer, course=course).filter(pk=student_id).first()
    if student is None:
        raise NotFound("No such student.")
    return student


def student_mastery_history(
    *, viewer: UserLike, course: Course, student: Any
) -> dict[int, list[tuple[datetime, float]]]:
    """Every mastery estimate of ``student`` in ``course``, as ``{skill id: [(as_of,
    probability), ...]}`` in time order: what the student page draws. One query; course staff
    only (others get an empty dict)."""
    if not course_is_staff(user=viewer, course=course):
        return {}
    history: dict[int, list[tuple[datetime, float]]] = {}
    rows = (
        MasteryEstimate.objects.filter(student=student, skill__course=course)
        .order_by("skill_id", "as_of", "pk")
        .values_list("skill_id", "as_of", "probability")
    )
    for skill_id, as_of, probability in rows:
        history.setdefault(skill_id, []).append((as_of, probability))
    return history


def student_submissions(*, viewer: UserLike, course: Course, student: Any) -> QuerySet[Submission]:
    """Every submission of ``student`` to the course's assessments, newest first, with its
    assessment and its responses (each with its item and the model version that graded it).
    Two queries; course staff only (others get none)."""
    if not course_is_staff(user=viewer, course=course):
        return Submission.objects.none()
    responses = Response.objects.select_related("item", "model_version").order_by("item_id", "pk")
    return (
        Submission.objects.filter(student=student, assessment__course=course)
        .select_related("assessment")
        .prefetch_related(Prefetch("responses", queryset=responses))
        .order_by("-submitted_at", "-created_at", "-pk")
    )


@dataclass
class RecommendationSet:
    """The suggestions made to a student at one time, in rank order."""

    is_current: bool
    created_at: datetime
    recommendations: list[Recommendation] = field(default_factory=list)


def student_recommendation_sets(
    *,
    viewer: UserLike,
    course: Course,
    student: Any,
    limit: int = RECOMMENDATION_HISTORY_LIMIT,
) -> list[RecommendationSet]:
    """The suggestions made to ``student`` in ``course``, as the sets they were shown in,
    newest first (the current set, then earlier ones), at most ``limit`` suggestions back.

    A set is what one refresh stored: the refresh writes its rows together, ranked from 1, so
    rows in id order start a new set where the rank starts again. One query; course staff
    only (others get an empty list). What the student did with each suggestion is on the row
    itself (``viewed_at``, ``completed_at``, ``feedback``), which
    :func:`edu_dl.services.recommending.recommendation_feedback` keeps beside its
    ResourceInteraction log.
    """
    if not course_is_staff(user=viewer, course=course):
        return []
    rows = list(
        Recommendation.objects.filter(student=student, course=course)
        .select_related("resource", "item", "skill", "model_version")
        .order_by("-pk")[: limit + 1]
    )
    truncated = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()  # oldest first: each set's rows come out in rank order
    sets: list[RecommendationSet] = []
    previous_rank = None
    for row in rows:
        if not sets or previous_rank is None or row.rank <= previous_rank:
            sets.append(RecommendationSet(is_current=row.is_current, created_at=row.created_at))
        sets[-1].recommendations.append(row)
        sets[-1].is_current = sets[-1].is_current or row.is_current
        previous_rank = row.rank
    if truncated and len(sets) > 1:
        sets.pop(0)  # the oldest set may have been cut in the middle
    sets.reverse()
    return sets
