"""The class at a glance for a course's staff (the course's front page for them): the grading
queue and the model in a line each, the students needing attention and why, each published
assessment's score distribution and most-missed items, and the class mastery heatmap.

The heatmap holds a cell per student and skill, a hundred students a page (sorted over the whole
class on the server, with links in the column headers): up to 10,000 cells for a course of 100
skills, so its rows are written here in Python as one string join over pieces made once per
percentage and per column, rather than by a template tag per cell (which would cost seconds).
Every user-written string in it (names, usernames) is escaped with
:func:`django.utils.html.escape` before the join; the result is marked safe only then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from edu_dl import selectors
from edu_dl.models import Course, ModelKind
from edu_dl.selectors.overview import (
    DISTRIBUTION_BANDS,
    SORT_NAME,
    SORT_OVERALL,
    AssessmentStatistics,
    ClassMastery,
    assessment_statistics,
    class_mastery,
    skill_sort_key,
)
from edu_dl.web.charts import BarChart, bar_chart
from edu_dl.web.common import course_context

# How many of the students needing attention the page names (the most flagged skills first),
# and how many of each one's skills.
ATTENTION_STUDENTS_SHOWN = 25
ATTENTION_SKILLS_SHOWN = 4
# The heatmap's colour bands: each covers 20 percentage points; the number is in every cell.
BAND_WIDTH = 20
BANDS = 5
NO_ESTIMATE = 101  # the index of the "no estimate" cell pieces (percentages are 0 to 100)
ASCENDING = "asc"
DESCENDING = "desc"


def band_of(percent: int) -> int:
    """The colour band of a whole percentage: 0 (0-19%) to 4 (80-100%)."""
    return min(BANDS - 1, percent // BAND_WIDTH)


def _whole_percent(probability: float) -> int:
    return int(probability * 100 + 0.5)


def student_page_prefix(course: Course) -> str:
    """The path of the teacher's page of a student without the id: ``.../students/``.

    ``edu_dl:student_detail`` is ``courses/<slug>/students/<int:student_id>/``; where it is not
    routed (yet), the student list's path is the same prefix.
    """
    try:
        return reverse(
            "edu_dl:student_detail", kwargs={"slug": course.slug, "student_id": 0}
        ).removesuffix("0/")
    except NoReverseMatch:
        return reverse("edu_dl:student_list", kwargs={"slug": course.slug})


# --- The heatmap ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeatmapColumn:
    """A sortable column header: its label, the link that sorts by it, and its ``aria-sort``."""

    label: str
    sort_url: str
    aria_sort: str  # "ascending", "descending" or "" (not the sorted column)
    skill_id: int | None = None


@dataclass(frozen=True)
class HeatmapBand:
    css_class: str
    low: int
    high: int


def _sort_url(*, sort: str, current: ClassMastery) -> str:
    """The link that sorts by ``sort`` (from the first page): the other way round when it is
    the order already, ascending otherwise (for mastery, the weakest first)."""
    flipped = ASCENDING if current.descending else DESCENDING
    order = flipped if sort == current.sort else ASCENDING
    return "?" + urlencode({"sort": sort, "order": order}) + "#heatmap-heading"


def _aria_sort(sort: str, current: ClassMastery) -> str:
    if sort != current.sort:
        return ""
    return "descending" if current.descending else "ascending"


def heatmap_columns(mastery: ClassMastery) -> list[HeatmapColumn]:
    """The headers: student, overall, then one per skill."""
    columns = [
        HeatmapColumn(
            label=_("Student"),
            sort_url=_sort_url(sort=SORT_NAME, current=mastery),
            aria_sort=_aria_sort(SORT_NAME, mastery),
        ),
        HeatmapColumn(
            label=_("Overall"),
            sort_url=_sort_url(sort=SORT_OVERALL, current=mastery),
            aria_sort=_aria_sort(SORT_OVERALL, mastery),
        ),
    ]
    for skill in mastery.skills:
        key = skill_sort_key(skill.id)
        columns.append(
            HeatmapColumn(
                label=skill.name,
                sort_url=_sort_url(sort=key, current=mastery),
                aria_sort=_aria_sort(key, mastery),
                skill_id=skill.id,
            )
        )
    return columns


def heatmap_header_html(columns: list[HeatmapColumn]) -> SafeString:
    """The header cells: each a link that sorts by its column, ``aria-sort`` on the sorted one
    and an arrow beside its name (hidden from screen readers, which read ``aria-sort``). Skill
    names, written by teachers, are escaped; a long one is cut on screen and whole in its
    tooltip."""
    arrows = {
        "ascending": '<span aria-hidden="true"> ▲</span>',
        "descending": '<span aria-hidden="true"> ▼</span>',
    }
    cells = []
    for column in columns:
        label = escape(column.label)
        sorted_by = f' aria-sort="{column.aria_sort}"' if column.aria_sort else ""
        skill = f' class="skill-column" title="{label}"' if column.skill_id is not None else ""
        cells.append(
            f'<th scope="col"{sorted_by}{skill}><a href="{escape(column.sort_url)}">'
            f"<span>{label}</span>{arrows.get(column.aria_sort, '')}</a></th>"
        )
    return mark_safe("".join(cells))  # noqa: S308 - every user-written string escaped above


def heatmap_rows_html(mastery: ClassMastery, *, student_prefix: str) -> SafeString:
    """The heatmap's ``<tr>`` rows: the student (a link to their page), the overall mastery,
    then a cell per skill holding its whole percentage as a link to the student's page for
    that skill (``?skill=<id>``); a cell without an estimate says so in words.

    Names and usernames are escaped here, the only user-written text in the rows; the links
    are built from integer ids and a reversed path (escaped too).
    """
    no_estimate = escape(_("no estimate"))
    opening = [f'<td class="h{band_of(p)}"><a href="' for p in range(101)]
    opening.append('<td class="hn"><a href="')
    closing = [f'">{p}</a></td>' for p in range(101)]
    closing.append(f'">&ndash;<span class="visually-hidden"> {no_estimate}</span></a></td>')
    overall_cells = [f'<td class="h{band_of(p)} overall">{p}</td>' for p in range(101)]
    overall_cells.append(
        f'<td class="hn overall">&ndash;<span class="visually-hidden"> {no_estimate}</span></td>'
    )
    column_links = [f"?skill={skill.id}" for skill in mastery.skills]
    prefix = escape(student_prefix)
    rows = []
    for student in mastery.page.object_list:
        page = f"{prefix}{student.id}/"
        percents = [
            NO_ESTIMATE if value is None else int(value * 100 + 0.5)
            for value in student.probabilities
        ]
        overall = NO_ESTIMATE if student.overall is None else _whole_percent(student.overall)
        name = escape(student.name)
        username = escape(student.username)
        rows.append(
            f'<tr class="heatmap-row"><th scope="row"><a href="{page}">{name}</a>'
            f' <span class="detail">{username}</span></th>{overall_cells[overall]}'
            + "".join(
                [
                    opening[percent] + page + link + closing[percent]
                    for percent, link in zip(percents, column_links, strict=True)
                ]
            )
            + "</tr>"
        )
    return mark_safe("\n".join(rows))  # noqa: S308 - every user-written string escaped above


def heatmap_bands() -> list[HeatmapBand]:
    """The legend's bands, low to high."""
    return [
        HeatmapBand(
            css_class=f"h{band}",
            low=band * BAND_WIDTH,
            high=100 if band == BANDS - 1 else (band + 1) * BAND_WIDTH - 1,
        )
        for band in range(BANDS)
    ]


def sort_description(mastery: ClassMastery) -> str:
    """How the rows are sorted, in words, for the table's caption."""
    if mastery.sort == SORT_NAME:
        column = _("student name")
    elif mastery.sort == SORT_OVERALL:
        column = _("overall mastery")
    else:
        skill_id = int(mastery.sort.removeprefix("skill-"))
        name = next(skill.name for skill in mastery.skills if skill.id == skill_id)
        column = _("mastery of %(skill)s") % {"skill": name}
    if mastery.descending:
        return _("Sorted by %(column)s, descending.") % {"column": column}
    return _("Sorted by %(column)s, ascending.") % {"column": column}


# --- Assessments ---------------------------------------------------------------------------------


def distribution_chart(statistics: AssessmentStatistics) -> BarChart:
    """The bar chart of an assessment's score distribution, one bar per tenth."""
    step = 100 // DISTRIBUTION_BANDS
    labels = [
        f"{low}\u2013{100 if low + step == 100 else low + step - 1}%" for low in range(0, 100, step)
    ]
    return bar_chart(
        title=_("Scores in %(assessment)s") % {"assessment": statistics.title},
        bars=list(zip(labels, statistics.distribution, strict=True)),
        x_label=_("Score"),
        y_label=_("Students"),
        description=_(
            "Each student's latest graded submission, as a share of the marks it could earn."
        ),
    )


# --- The page ------------------------------------------------------------------------------------


def course_overview(request: HttpRequest, course: Course) -> HttpResponse:
    """The staff's front page of the course (``edu_dl:course_detail`` dispatches here for
    them). Query parameters: ``sort`` (``name``, ``overall`` or ``skill-<id>``) and ``order``
    (``asc`` or ``desc``) order the heatmap over the whole class, anything else falls back to
    the name, ascending; ``page`` picks its page of students.
    """
    user = request.user
    mastery = class_mastery(
        viewer=user,
        course=course,
        sort=request.GET.get("sort", SORT_NAME),
        descending=request.GET.get("order") == DESCENDING,
        page=request.GET.get("page"),
        attention_described=ATTENTION_STUDENTS_SHOWN,
    )
    prefix = student_page_prefix(course)
    attention = mastery.needing_attention
    context: dict[str, Any] = course_context(request, course, tab="course_detail")
    context.update(
        mastery=mastery,
        student_prefix=prefix,
        heatmap_header=heatmap_header_html(heatmap_columns(mastery)),
        heatmap_rows=heatmap_rows_html(mastery, student_prefix=prefix),
        heatmap_bands=heatmap_bands(),
        heatmap_sort=sort_description(mastery),
        heatmap_query=urlencode(
            {"sort": mastery.sort, "order": DESCENDING if mastery.descending else ASCENDING}
        ),
        attention_shown=[
            {
                "student": student,
                "skills": [
                    {
                        "skill": skill,
                        "percent": _whole_percent(skill.probability),
                        "drop_points": None if skill.drop is None else round(-skill.drop * 100),
                    }
                    for skill in student.skills[:ATTENTION_SKILLS_SHOWN]
                ],
                "more_skills": max(0, student.flagged_count - ATTENTION_SKILLS_SHOWN),
            }
            for student in attention[:ATTENTION_STUDENTS_SHOWN]
        ],
        attention_total=len(attention),
        attention_more=max(0, len(attention) - ATTENTION_STUDENTS_SHOWN),
        attention_rule=mastery.rule,
        attention_below=round(mastery.rule.below * 100),
        attention_drop=round(mastery.rule.drop * 100),
        overall_ascending_url="?"
        + urlencode({"sort": SORT_OVERALL, "order": ASCENDING})
        + "#heatmap-heading",
        assessments=[
            {"statistics": statistics, "chart": distribution_chart(statistics)}
            for statistics in assessment_statistics(viewer=user, course=course)
        ],
        review_waiting=selectors.review_queue_total(user=user, course=course),
        active_kt_version=selectors.active_model_version(
            user=user, course=course, kind=ModelKind.KT
        ),
    )
    return render(request, "edu_dl/overview/course_overview.html", context)


urlpatterns: list = []
