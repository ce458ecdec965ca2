"""The class mastery summary: each student's overall mastery and the skills needing attention,
computed by a worker and read by the teacher's course overview.

Finding the skills that dropped over the window means ranking every older estimate of the
course per (student, skill) to find its baseline: a fifth of a second for 1,000 students x 100
skills on PostgreSQL, too much for every view of a page that must render in 300 ms. So, as for
recommendations (:mod:`edu_dl.services.recommending`), a worker computes it when mastery
changes and a page reads the stored :class:`CourseMasterySummary`::

    mastery_update_for_student / mastery_refresh_course wrote estimates
        ─► on commit, after COUNTDOWN_S: default queue ─► course_mastery_summary_refresh
    beat, hourly (the window moves with time) ─► course_mastery_summaries_refresh_due

A burst of answers costs one refresh: each message carries when it was sent, and a refresh
that started after that already covers it (:func:`course_mastery_summary_refresh_requested`).
The page computes the summary itself (and stores it) only when there is none, when it was
computed for another rule, or when it misses estimates written more than
``EDU_DL["MASTERY_SUMMARY_MAX_LAG_S"]`` after it (the workers are behind):
:func:`course_mastery_summary_for_page`.

The rule is that of :mod:`edu_dl.selectors.progress` (:class:`AttentionRule`), so a student
flagged here is flagged the same way on their own progress page.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.db import connections, router, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from edu_dl.conf import edu_settings
from edu_dl.models import Course, CourseMasterySummary, MasteryEstimate, Skill
from edu_dl.selectors.progress import DEFAULT_WINDOW_DAYS, AttentionRule

logger = logging.getLogger(__name__)

REFRESH_TASK_NAME = "edu_dl.mastery.refresh_class_summary"
REFRESH_DUE_TASK_NAME = "edu_dl.mastery.refresh_class_summaries_due"
# A refresh waits this long after the estimates that asked for it, so that the answers of a
# class working through a quiz together cost one refresh, not one each.
COUNTDOWN_S = 5
# The students whose flagged skills a summary holds: the first in the attention order, twice as
# many as the overview describes (students who left since are skipped there).
DESCRIBED = 50
# Beat refreshes the summaries older than this (the window, hence the drops, moves with time).
MAX_AGE = timedelta(hours=1)


# --- The attention rule in SQL -------------------------------------------------------------------


def _flag_sql(*, connection: Any, students: int | None = None) -> str:
    """The current estimates of a course, each with whether it is low (after enough answers)
    and, when it fell by at least the rule's drop over the window, its baseline: the newest
    estimate at or before the window's start, as in
    :func:`edu_dl.selectors.progress.student_progress`.

    One join of the current rows to the older ones ranked per pair, in SQL that SQLite and
    PostgreSQL both run. The ORM's form of it, a correlated subquery per current row, costs a
    second and more for 100,000 rows on PostgreSQL (index probes, then JIT compilation), this a
    fifth of a second. Only a pair re-estimated since the window's start can have changed over
    it (otherwise its current row is its own baseline). With ``students``, only that many
    students' rows (their ids are parameters; an index range each). Parameters: see
    :func:`_flag_parameters`.
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
        MIN(CASE WHEN is_low = 1 OR baseline IS NOT NULL THEN probability END)
    FROM flags
    GROUP BY student_id
"""
FLAGGED_SQL = """
    SELECT student_id, skill_id, probability, evidence_count, is_low, baseline
    FROM flags
    WHERE is_low = 1 OR baseline IS NOT NULL
"""


def _student_totals(
    *, course: Course, rule: AttentionRule, window_start: datetime
) -> list[tuple[int, float, int, int, float | None]]:
    """Per student with an estimate: (id, overall mastery, estimates, skills needing attention,
    the lowest mastery among those)."""
    connection = connections[router.db_for_read(MasteryEstimate)]
    sql = _flag_sql(connection=connection) + TOTALS_SQL
    parameters = _flag_parameters(
        connection=connection, course=course, rule=rule, window_start=window_start
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return list(cursor.fetchall())


def flagged_skills(
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


def _described(totals: list[tuple[int, float, int, int, float | None]]) -> list[int]:
    """The students whose flagged skills the summary stores: the first :data:`DESCRIBED` in
    the attention order (the most flagged skills, then the lowest mastery), and everyone tied
    with the last of them, whose order the page settles by name."""
    ranked = sorted((-flagged, lowest, pk) for pk, _, _, flagged, lowest in totals if flagged)
    if len(ranked) <= DESCRIBED:
        return [pk for _, _, pk in ranked]
    last = ranked[DESCRIBED - 1][:2]
    return [pk for count, lowest, pk in ranked if (count, lowest) <= last]


def _newest_of_skill() -> Subquery:
    """The highest MasteryEstimate id of the skill (the outer query's row): one probe of the
    (skill, id) index."""
    return Subquery(
        MasteryEstimate.objects.filter(skill=OuterRef("pk")).order_by("-pk").values("pk")[:1]
    )


def newest_estimate_id_subquery(course: Course) -> Subquery:
    """The highest MasteryEstimate id of the course (None without any): one index probe per
    skill of the course."""
    return Subquery(
        Skill.objects.filter(course=course)
        .annotate(newest=_newest_of_skill())
        .order_by(F("newest").desc(nulls_last=True))
        .values("newest")[:1]
    )


def _rule_json(rule: AttentionRule) -> dict[str, Any]:
    return {"below": rule.below, "min_evidence": rule.min_evidence, "drop": rule.drop}


# --- Computing and storing -----------------------------------------------------------------------


def course_mastery_summary_refresh(
    *, course: Course, now: datetime | None = None, window_days: int = DEFAULT_WINDOW_DAYS
) -> CourseMasterySummary:
    """Compute the course's summary under the attention rule of the settings over the
    ``window_days`` days before ``now`` (default: now) and store it, replacing the previous
    one unless a refresh that started later has already stored its own. Safe to run twice.

    Three queries and a write: the newest estimate id (first, so the summary never claims
    estimates it did not read), every student's totals (the costly one: it ranks every older
    estimate of the course), and the flagged skills of the first :data:`DESCRIBED` students
    needing attention (an index range per student).
    """
    computed_at = timezone.now()
    window_start = (now or computed_at) - timedelta(days=window_days)
    rule = AttentionRule.from_settings(window_days=window_days)
    revision = (
        Skill.objects.filter(course=course)
        .annotate(newest=_newest_of_skill())
        .order_by(F("newest").desc(nulls_last=True))
        .values_list("newest", flat=True)
        .first()
    )
    totals = _student_totals(course=course, rule=rule, window_start=window_start)
    described = _described(totals)
    skills_of: dict[int, list[list[Any]]] = {pk: [] for pk in described}
    if described:
        for student_id, skill_id, probability, evidence_count, is_low, baseline in flagged_skills(
            course=course, rule=rule, window_start=window_start, students=described
        ):
            skills_of[student_id].append(
                [skill_id, probability, evidence_count, int(is_low), baseline]
            )
    students: dict[str, dict[str, Any]] = {}
    for student_id, overall, estimates, flagged, lowest in totals:
        students[str(student_id)] = {
            "overall": float(overall),
            "estimates": int(estimates),
            "flagged": int(flagged),
            "lowest": lowest,
        }
        if student_id in skills_of:
            skills_of[student_id].sort(key=lambda skill: (skill[1], skill[0]))
            students[str(student_id)]["skills"] = skills_of[student_id]
    values = {
        "computed_at": computed_at,
        "window_days": window_days,
        "window_start": window_start,
        "rule": _rule_json(rule),
        "estimates_revision": revision or 0,
        "students": students,
    }
    with transaction.atomic():
        summary = (
            CourseMasterySummary.objects.select_for_update()
            .filter(course=course)
            .defer("students")
            .first()
        )
        if summary is None:
            summary, created = CourseMasterySummary.objects.get_or_create(
                course=course, defaults=values
            )
            if created:
                return summary
            summary = CourseMasterySummary.objects.select_for_update().get(pk=summary.pk)
        if summary.computed_at > computed_at:
            # A refresh that started after this one stored a newer summary meanwhile.
            return CourseMasterySummary.objects.get(pk=summary.pk)
        CourseMasterySummary.objects.filter(pk=summary.pk).update(**values)
    stored = CourseMasterySummary(pk=summary.pk, course=course, **values)
    stored._state.adding = False
    stored._state.db = summary._state.db
    return stored


def course_mastery_summary_refresh_requested(
    *, course: Course, requested_at: datetime | None = None
) -> CourseMasterySummary | None:
    """The worker's refresh: skipped (None) when a refresh that started after ``requested_at``
    (when the estimates that asked for it were committed) has already covered them."""
    if (
        requested_at is not None
        and CourseMasterySummary.objects.filter(
            course=course, computed_at__gte=requested_at
        ).exists()
    ):
        return None
    return course_mastery_summary_refresh(course=course)


def course_mastery_summary_refresh_enqueue(*, course_id: int) -> None:
    """Refresh the course's summary in a worker :data:`COUNTDOWN_S` seconds after the
    transaction commits."""

    def send() -> None:
        current_app.send_task(
            REFRESH_TASK_NAME,
            args=[course_id, timezone.now().isoformat()],
            countdown=COUNTDOWN_S,
        )

    # robust: a broker that is down must not undo or fail the estimates that called us.
    transaction.on_commit(send, robust=True)


def parse_requested_at(value: str | None) -> datetime | None:
    """The ``requested_at`` of a refresh message (an ISO 8601 text), or None."""
    return parse_datetime(value) if value else None


def course_mastery_summaries_refresh_due(*, now: datetime | None = None) -> list[int]:
    """Refresh the summaries older than :data:`MAX_AGE` (or missing) of the courses with
    estimates; returns the ids of the courses refreshed."""
    now = now or timezone.now()
    due = list(
        Course.objects.filter(
            Exists(MasteryEstimate.objects.filter(skill__course=OuterRef("pk"))),
        )
        .filter(Q(mastery_summary__isnull=True) | Q(mastery_summary__computed_at__lt=now - MAX_AGE))
        .order_by("pk")
    )
    for course in due:
        course_mastery_summary_refresh(course=course)
    logger.info("class mastery summaries refreshed: %d", len(due))
    return [course.pk for course in due]


# --- For the page --------------------------------------------------------------------------------


def course_mastery_summary_for_page(
    *, course: Course, window_days: int, now: datetime | None = None
) -> tuple[CourseMasterySummary, bool]:
    """The course's summary for the class overview, and whether it was computed just now.

    One query (the summary, and the course's newest estimate id) when a stored summary will
    do; it will unless it is missing, was computed for another rule
    (window or thresholds), or misses estimates and is older than
    ``EDU_DL["MASTERY_SUMMARY_MAX_LAG_S"]`` (a worker should have refreshed it by then). Then
    it is computed here and stored, so that the page is right on its first view.
    """
    summary = (
        CourseMasterySummary.objects.filter(course=course)
        .annotate(newest=newest_estimate_id_subquery(course))
        .first()
    )
    rule = AttentionRule.from_settings(window_days=window_days)
    same_rule = summary is not None and (summary.window_days, summary.rule) == (
        window_days,
        _rule_json(rule),
    )
    if same_rule:
        lag = timedelta(seconds=edu_settings.MASTERY_SUMMARY_MAX_LAG_S)
        missing = (summary.newest or 0) > summary.estimates_revision
        if not missing or timezone.now() - summary.computed_at < lag:
            return summary, False
    return course_mastery_summary_refresh(course=course, now=now, window_days=window_days), True
