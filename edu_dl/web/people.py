"""A teacher's view of each student of a course: the class list with everyone's mastery in one
line, and one student's page (mastery over time per skill, submissions and scores, the
suggestions made and what the student did with them).

Course staff only: students get 403, people without a role in the course 404. The reads are
in :mod:`edu_dl.selectors.people` and :mod:`edu_dl.selectors.progress`, each a fixed number of
queries, so a class of hundreds costs what a class of three does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from edu_dl import selectors
from edu_dl.models import Recommendation
from edu_dl.selectors.people import (
    RecommendationSet,
    class_summaries,
    course_skill_count,
    course_student_get,
    student_mastery_history,
    student_recommendation_sets,
    student_submissions,
)
from edu_dl.selectors.progress import SkillProgress, student_progress
from edu_dl.services.errors import NotFound
from edu_dl.services.recommending import recommendation_reason
from edu_dl.web.charts import LineChart, line_chart
from edu_dl.web.common import course_context, staff_course_or_404

STUDENTS_PER_PAGE = 50


@require_safe
@login_required
def student_list(request: HttpRequest, slug: str) -> HttpResponse:
    """The class, 50 students a page, each with overall mastery and the skills needing
    attention, linking to the student's page."""
    course = staff_course_or_404(request, slug)
    context = course_context(request, course, tab="student_list")
    page = Paginator(
        selectors.students_visible(user=request.user, course=course), STUDENTS_PER_PAGE
    ).get_page(request.GET.get("page"))
    context["students_page"] = page
    context["summaries"] = class_summaries(
        viewer=request.user, course=course, students=list(page.object_list)
    )
    context["skill_count"] = course_skill_count(viewer=request.user, course=course)
    return render(request, "edu_dl/people/student_list.html", context)


@dataclass(frozen=True)
class SkillRow:
    """A skill's line on the student page, with its chart."""

    progress: SkillProgress
    focused: bool
    chart: LineChart | None
    trend: str  # the change over the window in words ("up 12 points"), "" for none


@dataclass(frozen=True)
class SuggestionRow:
    recommendation: Recommendation
    reason: str


def _focused_skill(request: HttpRequest) -> int | None:
    value = request.GET.get("skill", "")
    return int(value) if value.isdigit() else None


def _trend_text(change: float | None) -> str:
    """The change of mastery in words, so the table never relies on an arrow's colour."""
    if change is None:
        return ""
    points = round(change * 100)
    if points > 0:
        return _("▲ up %(points)s points") % {"points": points}
    if points < 0:
        return _("▼ down %(points)s points") % {"points": -points}
    return _("no change")


def _skill_rows(
    skills: list[SkillProgress], history: dict[int, list[Any]], focused: int | None
) -> list[SkillRow]:
    """The skills in the progress table's order, each with its mastery chart (None for a skill
    without estimates yet)."""
    rows = []
    for skill in skills:
        points = history.get(skill.skill_id, [])
        chart = None
        if points:
            chart = line_chart(
                title=_("Mastery of %(skill)s over time") % {"skill": skill.skill_name},
                series=[(skill.skill_name, points)],
                x_label=_("Date"),
                y_label=_("Mastery"),
            )
        rows.append(
            SkillRow(
                progress=skill,
                focused=skill.skill_id == focused,
                chart=chart,
                trend=_trend_text(skill.change),
            )
        )
    return rows


def _suggestion_sets(
    sets: list[RecommendationSet], skill_names: dict[int, str]
) -> list[tuple[RecommendationSet, list[SuggestionRow]]]:
    return [
        (
            each,
            [
                SuggestionRow(recommendation=row, reason=recommendation_reason(row, skill_names))
                for row in each.recommendations
            ],
        )
        for each in sets
    ]


@require_safe
@login_required
def student_detail(request: HttpRequest, slug: str, student_id: int) -> HttpResponse:
    """One student as the course's staff see them: mastery per skill (now, with its evidence
    and trend, and over time), every submission with its scores, and the suggestions made.

    ``?skill=<id>`` (the overview's heatmap links its cells here) highlights that skill's row
    and draws its chart first.
    """
    course = staff_course_or_404(request, slug)
    try:
        student = course_student_get(viewer=request.user, course=course, student_id=student_id)
        progress = student_progress(viewer=request.user, student=student, course=course)
    except NotFound as error:
        raise Http404(error.message) from error
    focused = _focused_skill(request)
    history = student_mastery_history(viewer=request.user, course=course, student=student)
    skill_rows = _skill_rows(progress.skills, history, focused)
    charted = [row for row in skill_rows if row.chart is not None]
    charted.sort(key=lambda row: not row.focused)  # stable: the focused skill first
    skill_names = {skill.skill_id: skill.skill_name for skill in progress.skills}
    context = course_context(request, course, tab="student_list")
    context.update(
        student=student,
        progress=progress,
        skill_rows=skill_rows,
        charted_rows=charted,
        focused_skill=next((row.progress for row in skill_rows if row.focused), None),
        submissions=student_submissions(viewer=request.user, course=course, student=student),
        suggestion_sets=_suggestion_sets(
            student_recommendation_sets(viewer=request.user, course=course, student=student),
            skill_names,
        ),
    )
    return render(request, "edu_dl/people/student_detail.html", context)


urlpatterns = [
    path("courses/<slug:slug>/students/", student_list, name="student_list"),
    path(
        "courses/<slug:slug>/students/<int:student_id>/",
        student_detail,
        name="student_detail",
    ),
]
