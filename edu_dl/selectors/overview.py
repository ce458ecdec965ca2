"""The class at a glance, for a course's staff: every student's mastery of every skill (the
heatmap, sorted as asked), the students whose mastery needs attention and why, and each published
assessment's score distribution with the items most students miss.

Made for a class of a thousand students and a hundred skills on one page: a fixed number of
queries whatever the class size, rows read with ``values_list`` (never model instances, which
would cost a millisecond per hundred), the attention rule applied to the rows already read, and
only the drops over the window asked of the database, which returns the flagged pairs alone.
The rules are those of :mod:`edu_dl.selectors.progress` (:class:`AttentionRule`), so a student
flagged here is flagged the same way on their own progress page.

Course staff (and superusers) only: anyone else is told the course is not found.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db import connections, router
from django.db.models import Avg, Count, F, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

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


def _flag_sql(*, connection: Any, students: int | None) -> str:
    """The current estimates of a course, each with whether it is low (after enough answers)
    and, when it fell by at least the rule's drop over the window, its baseline: the newest
    estimate at or before the window's start, as in
    :func:`edu_dl.selectors.progress.student_progress`.

    One join of the current rows to the older ones ranked per pair, in SQL that SQLite and
    PostgreSQL both run. The ORM's form of it, a correlated subquery per current row, costs a
    second and more for 100,000 rows on PostgreSQL (index probes, then JIT compilation), this a
    few tens of milliseconds. Only a pair re-estimated since the window's start can have changed
    over it (otherwise its current row is its own baseline). With ``students``, only that many
    students' rows (their ids are parameters). Parameters: see :func:`_flag_parameters`.
    """
    quote = connection.ops.quote_name
    estimates = quote(MasteryEstimate._meta.db_table)
    skills = quote(Skill._meta.db_table)
    only = ""
    if students is not None:
        only = f"AND {{table}}.student_id IN ({', '.join(['%s'] * students)})"
    # Only table names (from the models, quoted) and placeholders are formatted in.
    return f"""
        WITH base AS (
            SELECT old.student_id, old.skill_id, old.probability,
                ROW_NUMBER() OVER (
                    PARTITION BY old.student_id, old.skill_id
                    ORDER BY old.as_of DESC, old.id DESC
                ) AS position
            FROM {estimates} old
            WHERE old.skill_id IN (SELECT id FROM {skills} WHERE course_id = %s)
                AND old.as_of <= %s {only.format(table="old")}
        ), flags AS (
            SELECT cur.student_id, cur.skill_id, cur.probability, cur.evidence_count,
                CASE WHEN cur.probability < %s AND cur.evidence_count >= %s THEN 1 ELSE 0 END
                    AS is_low,
                CASE WHEN cur.as_of > %s AND base.probability >= cur.probability + %s
                    THEN base.probability END AS baseline
            FROM {estimates} cur
            LEFT JOIN base ON base.student_id = cur.student_id
                AND base.skill_id = cur.skill_id AND base.position = 1
            WHERE cur.is_current = %s
                AND cur.skill_id IN (SELECT id FROM {skills} WHERE course_id = %s)
                {only.format(table="cur")}
        )
    """  # noqa: S608


def _flag_parameters(
    *,
    connection: Any,
    course: Course,
    rule: AttentionRule,
    window_start: datetime,
    students: list[int] | None = None,
) -> list[Any]:
    since = connection.ops.adapt_datetimefield_value(window_start)
    only = [] if students is None else list(students)
    return [
        course.pk,
        since,
        *only,
        rule.below,
        rule.min_evidence,
        since,
        rule.drop - 1e-9,
        True,
        course.pk,
        *only,
    ]


# Read after _flag_sql's common table expressions.
TOTALS_SQL = """
    SELECT student_id, AVG(probability), COUNT(*),
        SUM(CASE WHEN is_low = 1 OR baseline IS NOT NULL THEN 1 ELSE 0 END),
        MIN(CASE WHEN is_low = 1 OR baseline IS NOT NULL THEN probability END),
        MAX(CASE WHEN skill_id = %s THEN probability END)
    FROM flags
    GROUP BY student_id
"""
FLAGGED_SQL = """
    SELECT student_id, skill_id, probability, evidence_count, is_low, baseline
    FROM flags
    WHERE is_low = 1 OR baseline IS NOT NULL
"""


def _student_totals(
    *, course: Course, rule: AttentionRule, window_start: datetime, sort_skill_id: int | None
) -> list[tuple[int, float, int, int, float | None, float | None]]:
    """Per student with an estimate: (id, overall mastery, estimates, skills needing attention,
    the lowest mastery among those, the mastery of the skill ``sort_skill_id``)."""
    connection = connections[router.db_for_read(MasteryEstimate)]
    sql = _flag_sql(connection=connection, students=None) + TOTALS_SQL
    parameters = _flag_parameters(
        connection=connection, course=course, rule=rule, window_start=window_start
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*parameters, sort_skill_id])
        return list(cursor.fetchall())


def _flagged_skills(
    *, course: Course, rule: AttentionRule, window_start: datetime, students: list[int]
) -> list[tuple[int, int, float, int, int, float | None]]:
    """The skills of ``students`` needing attention: (student id, skill id, probability,
    evidence count, 1 when low, the baseline when it dropped)."""
    connection = connections[router.db_for_read(MasteryEstimate)]
    sql = _flag_sql(connection=connection, students=len(students)) + FLAGGED_SQL
    parameters = _flag_parameters(
        connection=connection,
        course=course,
        rule=rule,
        window_start=window_start,
        students=students,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return list(cursor.fetchall())


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

    At most five queries whatever the class size (plus the role check, cached on the viewer):
    students, skills, each student's overall mastery and count of skills needing attention
    (aggregated by the database), the described students' skills needing attention, and the
    page's cells. The heatmap is paged so that a page stays small for the browser and fast for the
    server: 1,000 students x 100 skills would be 100,000 cells and 7 MB of HTML.
    """
    _require_staff(viewer, course)
    now = now or timezone.now()
    window_start = now - timedelta(days=window_days)
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

    # Per student, from the database: the overall mastery, the number of estimates and of
    # skills needing attention, the lowest of those, and the value the rows are sorted by.
    totals = {
        row[0]: row
        for row in _student_totals(
            course=course, rule=rule, window_start=window_start, sort_skill_id=sort_skill_id
        )
        if row[0] in students  # not someone who has left the course
    }
    ranked = sorted(
        (-flagged, lowest, students[student_id][1].casefold(), student_id)
        for student_id, _, _, flagged, lowest, _ in totals.values()
        if flagged
    )
    described = [student_id for _, _, _, student_id in ranked[:attention_described]]
    skills_of: dict[int, list[AttentionSkill]] = {student_id: [] for student_id in described}
    if described:
        for student_id, skill_id, probability, evidence_count, is_low, baseline in _flagged_skills(
            course=course, rule=rule, window_start=window_start, students=described
        ):
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
    else:
        column = 1 if sort == SORT_OVERALL else 5
        values = {pk: row[column] for pk, row in totals.items() if row[column] is not None}
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
            overall=totals[pk][1] if pk in totals else None,
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
        estimated_cells=sum(row[2] for row in totals.values()),
        rule=rule,
        window_start=window_start,
        needing_attention=needing_attention,
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
