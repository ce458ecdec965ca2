"""The class at a glance, for a course's staff: every student's mastery of every skill (the
heatmap, sorted as asked), the students whose mastery needs attention and why, and each published
assessment's score distribution with the items most students miss.

Made for a class of a thousand students and a hundred skills on one page: a fixed number of
queries whatever the class size, rows read with ``values_list`` (never model instances, which
would cost a millisecond per hundred), and each student's overall mastery and skills needing
attention read from the summary that workers compute when mastery changes
(:mod:`edu_dl.services.class_summary`) instead of ranking every older estimate on each view.
The rules are those of :mod:`edu_dl.selectors.progress` (:class:`AttentionRule`), so a student
flagged here is flagged the same way on their own progress page.

Course staff (and superusers) only: anyone else is told the course is not found.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import Avg, Count, F, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber

from edu_dl.models import (
    Assessment,
    Course,
    Enrollment,
    Item,
    MasteryEstimate,
    Response,
    Skill,
    Submission,
)
from edu_dl.selectors.access import UserLike, course_is_staff
from edu_dl.selectors.progress import DEFAULT_WINDOW_DAYS, AttentionRule, MatrixLabel
from edu_dl.services.class_summary import course_mastery_summary_for_page, flagged_skills
from edu_dl.services.errors import NotFound

SORT_NAME = "name"
SORT_OVERALL = "overall"
SKILL_SORT_PREFIX = "skill-"  # "skill-12": by the mastery of the skill with id 12
# The score distribution's bands: ten, each ten percentage points wide (the last holds 100%).
DISTRIBUTION_BANDS = 10
# How many of an assessment's items the statistics name as the most missed.
MOST_MISSED_SHOWN = 3
# How many students a page of the heatmap shows, and how many of the students needing
# attention are described skill by skill (the others are counted).
HEATMAP_STUDENTS_PER_PAGE = 100
ATTENTION_DESCRIBED = 25


def skill_sort_key(skill_id: int) -> str:
    """The ``sort`` value that orders the heatmap by one skill's mastery."""
    return f"{SKILL_SORT_PREFIX}{skill_id}"


def _require_staff(viewer: UserLike, course: Course) -> None:
    if not course_is_staff(user=viewer, course=course):
        raise NotFound("No such course.")


# --- Mastery: the heatmap and who needs attention ------------------------------------------------


@dataclass(frozen=True)
class HeatmapStudent:
    """One row of the heatmap."""

    id: int
    username: str
    name: str  # the full name, or the username when there is none
    # The mean of the skills with an estimate; None when no skill has one yet.
    overall: float | None
    # One per skill column, in the order of ``ClassMastery.skills``; None: no estimate yet.
    probabilities: list[float | None]


@dataclass(frozen=True)
class AttentionSkill:
    """A skill of one student that needs attention, with the facts behind each reason."""

    skill_id: int
    skill_name: str
    probability: float
    evidence_count: int
    is_low: bool  # below the rule's threshold after enough answers
    # The change over the window (negative) when it is a drop of at least the rule's, else None.
    drop: float | None


@dataclass(frozen=True)
class StudentAttention:
    student_id: int
    username: str
    name: str
    flagged_count: int  # how many of the student's skills need attention
    lowest: float  # the lowest mastery among them
    # Those skills, lowest mastery first; filled for the first ``attention_described`` students
    # of the list only (the others are counted and ranked, not described).
    skills: list[AttentionSkill]


@dataclass(frozen=True)
class ClassMastery:
    course_id: int
    skills: list[MatrixLabel]  # the heatmap's columns, by name
    # The asked page of the heatmap's rows, in the asked order over the whole class; its
    # ``object_list`` holds :class:`HeatmapStudent` rows.
    page: Page
    student_count: int
    sort: str  # the order applied: "name", "overall" or "skill-<id>"
    descending: bool
    estimated_cells: int  # how many (student, skill) pairs of the class have an estimate
    rule: AttentionRule
    window_start: datetime
    # Every student with at least one skill needing attention: the most such skills first,
    # then the lowest mastery among them, then by name.
    needing_attention: list[StudentAttention] = field(default_factory=list)
    # When the overall mastery and the attention list were computed, when they come from the
    # summary a worker stored (None: computed for this read).
    summary_as_of: datetime | None = None


def _display_name(first_name: str, last_name: str, username: str) -> str:
    full = f"{first_name} {last_name}".strip()
    return full or username


def _ordered(
    students: list[tuple[int, str, str]], values: dict[int, float], *, descending: bool
) -> list[tuple[int, str, str]]:
    """``students`` (id, name, username), by their value in ``values`` (those without one last,
    by name, whichever the direction), ties by name."""

    def by_name(student: tuple[int, str, str]) -> tuple[str, str, int]:
        return (student[1].casefold(), student[2], student[0])

    valued = sorted((s for s in students if s[0] in values), key=by_name)
    valued.sort(key=lambda student: values[student[0]], reverse=descending)  # stable
    missing = sorted((s for s in students if s[0] not in values), key=by_name)
    return valued + missing


def class_mastery(
    *,
    viewer: UserLike,
    course: Course,
    sort: str = SORT_NAME,
    descending: bool = False,
    page: int | str | None = 1,
    per_page: int = HEATMAP_STUDENTS_PER_PAGE,
    attention_described: int = ATTENTION_DESCRIBED,
    window_days: int = DEFAULT_WINDOW_DAYS,
    now: datetime | None = None,
) -> ClassMastery:
    """One page of the class mastery heatmap - the students of the page, each with their
    current mastery of every skill - sorted over the whole class by ``sort`` (the student's
    name, ``overall`` mastery: the mean of the skills with an estimate, or ``skill-<id>``: one
    skill's mastery; anything else, such as a skill of another course, sorts by name), and the
    students needing attention under :class:`AttentionRule` with the course's settings over the
    last ``window_days`` days, the first ``attention_described`` of them with their skills.
    ``page`` is read as :meth:`Paginator.get_page` reads it (out of range: the last page).

    Each student's overall mastery and the attention list come from the course's
    :class:`CourseMasterySummary`, which workers refresh when mastery changes: finding the drops
    over the window costs a fifth of a second for 1,000 students x 100 skills, too much for
    every view. When the summary will not do (none yet, another rule, or it misses estimates
    and is older than ``EDU_DL["MASTERY_SUMMARY_MAX_LAG_S"]``) it is computed here and stored,
    with ``now`` (default: now) ending the window; see
    :func:`edu_dl.services.class_summary.course_mastery_summary_for_page`.
    ``summary_as_of`` says when a stored one was computed. The cells are read live.

    A fixed number of queries whatever the class size (plus the role check, cached on the
    viewer). From a stored summary, at most five: students, skills, the summary (with the
    course's newest estimate id), one skill's current estimates when sorting by it, and the
    page's cells; one more, for the described students' flagged skills, only when the summary
    lacks some (more than ``DESCRIBED - attention_described`` of those it describes left).
    The heatmap is paged so that a page stays small for the browser and fast for the server:
    1,000 students x 100 skills would be 100,000 cells and 7 MB of HTML.
    """
    _require_staff(viewer, course)
    rule = AttentionRule.from_settings(window_days=window_days)
    user_model = get_user_model()
    students = {
        pk: (username, _display_name(first_name, last_name, username))
        for pk, username, first_name, last_name in user_model.objects.filter(
            edu_enrollments__course=course, edu_enrollments__role=Enrollment.Role.STUDENT
        ).values_list("pk", user_model.USERNAME_FIELD, "first_name", "last_name")
    }
    skills = [
        MatrixLabel(pk, name)
        for pk, name in Skill.objects.filter(course=course)
        .order_by("name", "pk")
        .values_list("pk", "name")
    ]
    skill_names = {skill.id: skill.name for skill in skills}

    sort_skill_id = None
    if sort.startswith(SKILL_SORT_PREFIX):
        try:
            sort_skill_id = int(sort.removeprefix(SKILL_SORT_PREFIX))
        except ValueError:
            sort_skill_id = None
        if sort_skill_id not in skill_names:
            sort_skill_id = None
            sort = SORT_NAME
    elif sort != SORT_OVERALL:
        sort = SORT_NAME

    # Per student, from the stored summary (computed here only when it will not do): the
    # overall mastery, the number of estimates and of skills needing attention, the lowest
    # of those, and the flagged skills of the first students in the attention order.
    summary, computed_now = course_mastery_summary_for_page(
        course=course, window_days=window_days, now=now
    )
    totals = {
        int(student_id): row
        for student_id, row in summary.students.items()
        if int(student_id) in students  # not someone who has left the course
    }
    ranked = sorted(
        (-row["flagged"], row["lowest"], students[student_id][1].casefold(), student_id)
        for student_id, row in totals.items()
        if row["flagged"]
    )
    described = [student_id for _, _, _, student_id in ranked[:attention_described]]
    skills_of: dict[int, list[AttentionSkill]] = {student_id: [] for student_id in described}
    if described:
        stored = {pk: totals[pk]["skills"] for pk in described if "skills" in totals[pk]}
        missing = [pk for pk in described if pk not in stored]
        if missing:  # beyond those the summary describes (many of them left the course)
            for student_id, *skill in flagged_skills(
                course=course,
                rule=rule,
                window_start=summary.window_start,
                students=missing,
            ):
                stored.setdefault(student_id, []).append(skill)
        for student_id in described:
            for skill_id, probability, evidence_count, is_low, baseline in stored.get(
                student_id, []
            ):
                if skill_id not in skill_names:  # deleted since
                    continue
                skills_of[student_id].append(
                    AttentionSkill(
                        skill_id=skill_id,
                        skill_name=skill_names[skill_id],
                        probability=probability,
                        evidence_count=evidence_count,
                        is_low=bool(is_low),
                        drop=None if baseline is None else probability - baseline,
                    )
                )
    needing_attention = []
    for negative_count, lowest, _, student_id in ranked:
        flagged = skills_of.get(student_id, [])
        flagged.sort(key=lambda skill: (skill.probability, skill.skill_name, skill.skill_id))
        username, name = students[student_id]
        needing_attention.append(
            StudentAttention(
                student_id=student_id,
                username=username,
                name=name,
                flagged_count=-negative_count,
                lowest=lowest,
                skills=flagged,
            )
        )

    # The heatmap's order over the whole class, then the asked page's cells.
    everyone = [(pk, name, username) for pk, (username, name) in students.items()]
    if sort == SORT_NAME:
        everyone.sort(key=lambda s: (s[1].casefold(), s[2], s[0]), reverse=descending)
    elif sort == SORT_OVERALL:
        values = {pk: row["overall"] for pk, row in totals.items()}
        everyone = _ordered(everyone, values, descending=descending)
    else:  # one skill's current estimates, live: a thousand rows of one index range
        values = dict(
            MasteryEstimate.objects.filter(skill_id=sort_skill_id, is_current=True)
            .values_list("student_id", "probability")
            .order_by()
        )
        everyone = _ordered(everyone, values, descending=descending)
    heatmap_page = Paginator(everyone, per_page).get_page(page)
    on_page = list(heatmap_page.object_list)
    column_of = {skill.id: column for column, skill in enumerate(skills)}
    cells: dict[int, list[float | None]] = {pk: [None] * len(skills) for pk, _, _ in on_page}
    if on_page and skills:
        for student_id, skill_id, probability in (
            MasteryEstimate.objects.filter(
                skill__course=course, is_current=True, student_id__in=list(cells)
            )
            .values_list("student_id", "skill_id", "probability")
            .order_by()
        ):
            cells[student_id][column_of[skill_id]] = probability
    heatmap_page.object_list = [
        HeatmapStudent(
            id=pk,
            username=username,
            name=name,
            overall=totals[pk]["overall"] if pk in totals else None,
            probabilities=cells[pk],
        )
        for pk, name, username in on_page
    ]
    return ClassMastery(
        course_id=course.pk,
        skills=skills,
        page=heatmap_page,
        student_count=len(students),
        sort=sort,
        descending=descending,
        estimated_cells=sum(row["estimates"] for row in totals.values()),
        rule=rule,
        window_start=summary.window_start,
        needing_attention=needing_attention,
        summary_as_of=None if computed_now else summary.computed_at,
    )


# --- Assessments: score distributions and the items most students miss --------------------------


@dataclass(frozen=True)
class MissedItem:
    item_id: int
    name: str
    # The mean score as a share of the item's range (0: everyone got the minimum, 1: full marks).
    mean_share: float
    answered: int  # graded responses counted
    below_full_marks: int  # of those, how many scored less than the item's maximum


@dataclass(frozen=True)
class AssessmentStatistics:
    assessment_id: int
    title: str
    due_at: datetime | None
    handed_in: int  # submissions handed in (any status but draft), retries included
    students_handed_in: int  # distinct students among them
    # Each student's latest fully graded submission, as a share of the marks it could earn.
    graded: int
    mean: float | None
    median: float | None
    distribution: list[int]  # how many shares fall in each tenth: [0-10%), ..., [90-100%]
    most_missed: list[MissedItem]  # lowest mean share first; items everyone aced left out


def _share(value: float, lowest: float, highest: float) -> float:
    if highest <= lowest:
        return 0.0
    return min(1.0, max(0.0, (value - lowest) / (highest - lowest)))


def _latest_graded(course: Course) -> QuerySet[Submission]:
    """Each student's latest fully graded submission of each published assessment: a retry
    replaces the earlier attempt, so that a student counts once. Ranked by a window function
    (one sort), not a correlated "no later attempt" subquery, which SQLite's planner runs as a
    scan of the assessment's submissions per submission."""
    ranked = (
        Submission.objects.filter(
            assessment__course=course,
            assessment__is_published=True,
            status=Submission.Status.GRADED,
        )
        .annotate(
            attempt=Window(
                RowNumber(),
                partition_by=[F("student_id"), F("assessment_id")],
                order_by=[F("submitted_at").desc(), F("pk").desc()],
            )
        )
        .filter(attempt=1)
    )
    return Submission.objects.filter(pk__in=ranked.values("pk"))


def assessment_statistics(*, viewer: UserLike, course: Course) -> list[AssessmentStatistics]:
    """Per published assessment of the course (by due date): how many handed it in, and over
    each student's latest fully graded submission the mean and median share of the marks, the
    distribution of those shares in tenths, and the items with the lowest mean share (each with
    how many scored below full marks). Course staff only (others: not found).

    Four queries whatever the number of students, submissions and items (plus the role check).
    """
    _require_staff(viewer, course)
    assessments = list(
        Assessment.objects.filter(course=course, is_published=True)
        .order_by(F("due_at").asc(nulls_last=True), "pk")
        .values_list("pk", "title", "due_at")
    )
    handed_in = {
        assessment_id: (submissions, students)
        for assessment_id, submissions, students in Submission.objects.filter(
            assessment__course=course, assessment__is_published=True
        )
        .exclude(status=Submission.Status.DRAFT)
        .values("assessment_id")
        .annotate(submissions=Count("pk"), students=Count("student_id", distinct=True))
        .values_list("assessment_id", "submissions", "students")
        .order_by()
    }
    latest = _latest_graded(course)
    shares: dict[int, list[float]] = {}
    for assessment_id, total, lowest, highest in (
        latest.annotate(
            total=Sum("responses__score"),
            lowest=Sum("responses__item__min_score"),
            highest=Sum("responses__item__max_score"),
        )
        .values_list("assessment_id", "total", "lowest", "highest")
        .order_by()
    ):
        if total is None:  # a graded submission without responses: nothing to count
            continue
        shares.setdefault(assessment_id, []).append(_share(total, lowest, highest))
    items: dict[int, list[MissedItem]] = {}
    kinds = dict(Item.Kind.choices)
    for row in (
        Response.objects.filter(submission__in=latest)
        .values(
            "submission__assessment_id",
            "item_id",
            "item__title",
            "item__kind",
            "item__min_score",
            "item__max_score",
        )
        .annotate(
            mean=Avg("score"),
            answered=Count("pk"),
            below=Count("pk", filter=Q(score__lt=F("item__max_score"))),
        )
        .order_by()
    ):
        mean_share = _share(row["mean"], row["item__min_score"], row["item__max_score"])
        if row["below"] == 0:
            continue
        items.setdefault(row["submission__assessment_id"], []).append(
            MissedItem(
                item_id=row["item_id"],
                name=row["item__title"]
                or f"{kinds.get(row['item__kind'], row['item__kind'])} #{row['item_id']}",
                mean_share=mean_share,
                answered=row["answered"],
                below_full_marks=row["below"],
            )
        )
    result = []
    for assessment_id, title, due_at in assessments:
        values = shares.get(assessment_id, [])
        distribution = [0] * DISTRIBUTION_BANDS
        for value in values:
            distribution[min(DISTRIBUTION_BANDS - 1, int(value * DISTRIBUTION_BANDS))] += 1
        missed = sorted(
            items.get(assessment_id, []),
            key=lambda item: (item.mean_share, -item.below_full_marks, item.name, item.item_id),
        )
        submissions, students = handed_in.get(assessment_id, (0, 0))
        result.append(
            AssessmentStatistics(
                assessment_id=assessment_id,
                title=title,
                due_at=due_at,
                handed_in=submissions,
                students_handed_in=students,
                graded=len(values),
                mean=statistics.fmean(values) if values else None,
                median=statistics.median(values) if values else None,
                distribution=distribution,
                most_missed=missed[:MOST_MISSED_SHOWN],
            )
        )
    return result
