"""Course content for its staff: items, assessments, resources, the skill graph and imports.

Reads come from :mod:`edu_dl.selectors.content` (staff only, a fixed number of queries per
page); writes go through the services: :mod:`edu_dl.services.catalogue` (resources, their
import) and :mod:`edu_dl.services.skill_graph` (prerequisites, their import), which check every
rule (no cycle, every row valid) and write nothing when one is broken.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from edu_dl.models import Course
from edu_dl.selectors import content as content_selectors
from edu_dl.selectors.content import SkillNode
from edu_dl.services.catalogue import (
    RowsRejected,
    resource_deactivate,
    resource_reactivate,
    resources_import,
)
from edu_dl.services.errors import ApplicationError, NotFound
from edu_dl.services.importing import ImportFailed
from edu_dl.services.skill_graph import (
    PrerequisiteCycle,
    prerequisite_add,
    prerequisite_remove,
    prerequisites_import,
)
from edu_dl.web import content_forms
from edu_dl.web.common import course_context, staff_course_or_404
from edu_dl.web.content_forms import (
    IMPORT_PREREQUISITES,
    ContentImportForm,
    PrerequisiteAddForm,
    PrerequisiteRemoveForm,
    line_texts,
)
from edu_dl.web.graph_layout import layout_graph

ITEMS_PER_PAGE = 50
RESOURCES_PER_PAGE = 50
# An import refused for more problems than this shows the first ones and says how many more.
REPORT_MAX_PROBLEMS = 500
RESOURCE_FILTERS = ("all", "active", "inactive")


def _context(request: HttpRequest, course: Course, section: str) -> dict[str, Any]:
    """The course's tabs (the content tab open) and which content page is open."""
    context = course_context(request, course, tab="content_home")
    context["section"] = section
    return context


def _not_found(error: NotFound) -> Http404:
    return Http404(error.message)


# --- The content home ------------------------------------------------------------------------


@require_safe
@login_required
def content_home(request: HttpRequest, slug: str) -> HttpResponse:
    """How much content the course has, with links to the pages that list it."""
    course = staff_course_or_404(request, slug)
    context = _context(request, course, "home")
    context["counts"] = content_selectors.content_counts(user=request.user, course=course)
    return render(request, "edu_dl/content/home.html", context)


# --- Items -----------------------------------------------------------------------------------


@require_safe
@login_required
def content_items(request: HttpRequest, slug: str) -> HttpResponse:
    """The course's items, a page at a time, each with how it is graded and by which model."""
    course = staff_course_or_404(request, slug)
    page = Paginator(
        content_selectors.items_for_staff(user=request.user, course=course), ITEMS_PER_PAGE
    ).get_page(request.GET.get("page"))
    context = _context(request, course, "items")
    context["page"] = page
    context["gradings"] = content_selectors.item_gradings(
        user=request.user, course=course, items=list(page.object_list)
    )
    return render(request, "edu_dl/content/items.html", context)


@require_safe
@login_required
def content_item_detail(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    """One item: prompt, answers, scale, release policy, grader and its responses."""
    course = staff_course_or_404(request, slug)
    try:
        detail = content_selectors.item_detail(user=request.user, course=course, item_id=item_id)
    except NotFound as error:
        raise _not_found(error) from error
    context = _context(request, course, "items")
    context["detail"] = detail
    context["item"] = detail.item
    return render(request, "edu_dl/content/item_detail.html", context)


# --- Assessments -----------------------------------------------------------------------------


@require_safe
@login_required
def content_assessments(request: HttpRequest, slug: str) -> HttpResponse:
    """Every assessment of the course, published or not, with its dates and counts."""
    course = staff_course_or_404(request, slug)
    context = _context(request, course, "assessments")
    context["assessments"] = content_selectors.assessments_for_staff(
        user=request.user, course=course
    )
    return render(request, "edu_dl/content/assessments.html", context)


@require_safe
@login_required
def content_assessment_detail(request: HttpRequest, slug: str, assessment_id: int) -> HttpResponse:
    """One assessment and its items in order."""
    course = staff_course_or_404(request, slug)
    try:
        detail = content_selectors.assessment_detail(
            user=request.user, course=course, assessment_id=assessment_id
        )
    except NotFound as error:
        raise _not_found(error) from error
    context = _context(request, course, "assessments")
    context["assessment"] = detail.assessment
    context["entries"] = detail.entries
    return render(request, "edu_dl/content/assessment_detail.html", context)


# --- Resources -------------------------------------------------------------------------------


def _resource_filter(value: str | None) -> str:
    return value if value in RESOURCE_FILTERS else "all"


def _page_number(value: str | None) -> int | None:
    """A page number sent back by a form, when it is one."""
    return int(value) if value and value.isdigit() and int(value) >= 1 else None


def _resources_url(course: Course, *, show: str = "all", page: str | None = None) -> str:
    url = reverse("edu_dl:content_resources", kwargs={"slug": course.slug})
    query = {}
    if show != "all":
        query["show"] = show
    number = _page_number(page)
    if number is not None and number > 1:
        query["page"] = number
    return f"{url}?{urlencode(query)}" if query else url


@require_safe
@login_required
def content_resources(request: HttpRequest, slug: str) -> HttpResponse:
    """The course's study resources, a page at a time, with buttons that take one out of use
    or put it back."""
    course = staff_course_or_404(request, slug)
    show = _resource_filter(request.GET.get("show"))
    resources = content_selectors.resources_for_staff(user=request.user, course=course)
    if show != "all":
        resources = resources.filter(is_active=show == "active")
    page = Paginator(resources, RESOURCES_PER_PAGE).get_page(request.GET.get("page"))
    context = _context(request, course, "resources")
    context.update(
        {
            "page": page,
            "show": show,
            "filters": [
                ("all", _("All")),
                ("active", _("In use")),
                ("inactive", _("Taken out of use")),
            ],
            "page_query": urlencode({"show": show}) if show != "all" else "",
        }
    )
    return render(request, "edu_dl/content/resources.html", context)


def _resource_toggle(
    request: HttpRequest, slug: str, resource_id: int, *, activate: bool
) -> HttpResponse:
    course = staff_course_or_404(request, slug)
    try:
        resource = content_selectors.resource_for_staff(
            user=request.user, course=course, resource_id=resource_id
        )
    except NotFound as error:
        raise _not_found(error) from error
    if activate:
        resource = resource_reactivate(resource=resource)
        note = _("“%(title)s” is in use again: it may be suggested to students.")
    else:
        resource = resource_deactivate(resource=resource)
        note = _("“%(title)s” was taken out of use: it is no longer suggested to students.")
    note %= {"title": resource.title}
    if request.htmx:
        # The row is swapped in place; the note goes to the page's status region.
        return render(
            request,
            "edu_dl/content/_resource_row.html",
            {
                "course": course,
                "resource": resource,
                "show": _resource_filter(request.POST.get("show")),
                "page_number": _page_number(request.POST.get("page")),
                "note": note,
            },
        )
    messages.success(request, note)
    return redirect(
        _resources_url(
            course,
            show=_resource_filter(request.POST.get("show")),
            page=request.POST.get("page"),
        )
    )


@require_POST
@login_required
def content_resource_deactivate(request: HttpRequest, slug: str, resource_id: int) -> HttpResponse:
    """Take a resource out of use (it is no longer suggested); it can be put back."""
    return _resource_toggle(request, slug, resource_id, activate=False)


@require_POST
@login_required
def content_resource_reactivate(request: HttpRequest, slug: str, resource_id: int) -> HttpResponse:
    """Put a resource taken out of use back in use."""
    return _resource_toggle(request, slug, resource_id, activate=True)


# --- The skill graph -------------------------------------------------------------------------


def _names(skills: Sequence[SkillNode]) -> str:
    return ", ".join(skill.name for skill in skills) or _("none")


def _render_skill_graph(
    request: HttpRequest,
    course: Course,
    *,
    add_form: PrerequisiteAddForm | None = None,
    status: int = 200,
) -> HttpResponse:
    graph = content_selectors.skill_graph(user=request.user, course=course)
    layout = layout_graph([(skill.pk, skill.name) for skill in graph.skills], graph.edges)
    skills = graph.by_pk()
    context = _context(request, course, "skills")
    context.update(
        {
            "graph": graph,
            "layout": layout,
            "nodes": [
                {
                    "box": box,
                    "skill": skills[box.key],
                    # What hovering or focusing a box tells (its <title>).
                    "title": _("%(skill)s. Prerequisites: %(prerequisites)s. Unlocks: %(unlocks)s.")
                    % {
                        "skill": skills[box.key].name,
                        "prerequisites": _names(skills[box.key].prerequisites),
                        "unlocks": _names(skills[box.key].unlocks),
                    },
                }
                for box in layout.nodes
            ],
            "arrows": [
                {
                    "arrow": arrow,
                    "title": _("%(prerequisite)s comes before %(skill)s")
                    % {
                        "prerequisite": skills[arrow.prerequisite].name,
                        "skill": skills[arrow.skill].name,
                    },
                }
                for arrow in layout.arrows
            ],
            "add_form": add_form or PrerequisiteAddForm(skills=graph.skills),
        }
    )
    return render(request, "edu_dl/content/skill_graph.html", context, status=status)


def _skill_graph_url(course: Course) -> str:
    return reverse("edu_dl:content_skill_graph", kwargs={"slug": course.slug})


@require_safe
@login_required
def content_skill_graph(request: HttpRequest, slug: str) -> HttpResponse:
    """The skills and their prerequisites, drawn and as a table, with the forms that change
    them."""
    course = staff_course_or_404(request, slug)
    return _render_skill_graph(request, course)


@require_POST
@login_required
def content_prerequisite_add(request: HttpRequest, slug: str) -> HttpResponse:
    """Make one skill a prerequisite of another; a refused edge (a cycle, one already there)
    shows the page again with the reason, and nothing is written."""
    course = staff_course_or_404(request, slug)
    graph = content_selectors.skill_graph(user=request.user, course=course)
    form = PrerequisiteAddForm(request.POST, skills=graph.skills)
    if form.is_valid():
        skills = content_selectors.skills_by_pk(
            user=request.user,
            course=course,
            pks=[form.cleaned_data["skill"], form.cleaned_data["prerequisite"]],
        )
        skill = skills.get(form.cleaned_data["skill"])
        prerequisite = skills.get(form.cleaned_data["prerequisite"])
        if skill is None or prerequisite is None:  # deleted since the page was shown
            form.add_error(None, _("That skill is no longer in this course."))
        else:
            try:
                prerequisite_add(skill=skill, prerequisite=prerequisite)
            except PrerequisiteCycle as error:
                form.add_error(
                    None,
                    _("Not added: it would make a cycle: %(cycle)s.")
                    % {"cycle": " → ".join(error.cycle)},
                )
            except ApplicationError as error:
                form.add_error(None, _("Not added: %(reason)s.") % {"reason": error.message})
            else:
                messages.success(
                    request,
                    _("%(prerequisite)s now comes before %(skill)s.")
                    % {"prerequisite": prerequisite.name, "skill": skill.name},
                )
                return redirect(_skill_graph_url(course))
    return _render_skill_graph(request, course, add_form=form, status=400)


@require_POST
@login_required
def content_prerequisite_remove(request: HttpRequest, slug: str) -> HttpResponse:
    """Remove one prerequisite edge (the skills stay)."""
    course = staff_course_or_404(request, slug)
    form = PrerequisiteRemoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Nothing was removed: the request did not name two skills."))
        return redirect(_skill_graph_url(course))
    skills = content_selectors.skills_by_pk(
        user=request.user,
        course=course,
        pks=[form.cleaned_data["skill"], form.cleaned_data["prerequisite"]],
    )
    skill = skills.get(form.cleaned_data["skill"])
    prerequisite = skills.get(form.cleaned_data["prerequisite"])
    if skill is None or prerequisite is None:
        raise Http404("no such skill in this course")
    try:
        prerequisite_remove(skill=skill, prerequisite=prerequisite)
    except ApplicationError as error:
        messages.error(request, _("Nothing was removed: %(reason)s.") % {"reason": error.message})
    else:
        messages.success(
            request,
            _("%(prerequisite)s no longer comes before %(skill)s.")
            % {"prerequisite": prerequisite.name, "skill": skill.name},
        )
    return redirect(_skill_graph_url(course))


# --- Imports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One problem of a refused file, as the page shows it."""

    line: int | None
    column: str
    text: str  # the row as the file has it
    reason: str


@dataclass(frozen=True)
class ImportReport:
    file_name: str
    rows: list[ReportRow]
    total: int  # problems found (``rows`` holds the first REPORT_MAX_PROBLEMS)

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def _report_rows(
    data: bytes, problems: Sequence[tuple[int | None, str, str, str]]
) -> list[ReportRow]:
    """Report rows from ``(line, column, raw text or "", reason)``; rows the service gave no
    text for (a whole-file problem, a cycle) show their line of the file."""
    shown = problems[:REPORT_MAX_PROBLEMS]
    texts = line_texts(data, [line for line, _c, raw, _r in shown if line and not raw])
    return [
        ReportRow(line=line, column=column, text=raw or texts.get(line or 0, ""), reason=reason)
        for line, column, raw, reason in shown
    ]


def _refusal(data: bytes, error: ApplicationError) -> tuple[list[ReportRow], int]:
    """The report rows of an import the service refused, and how many problems there were."""
    if isinstance(error, RowsRejected):
        problems = [
            (problem.line, problem.column, problem.raw, problem.reason)
            for problem in error.problems
        ]
    elif isinstance(error, PrerequisiteCycle):
        problems = [(line, "prerequisite", "", error.message) for line in error.lines] or [
            (None, "", "", error.message)
        ]
    elif isinstance(error, ImportFailed):
        problems = [(error.line, "file", "", error.reason)]
    else:
        problems = [(None, error.field or "", "", error.message)]
    return _report_rows(data, problems), len(problems)


def _import(course: Course, form: ContentImportForm, data: bytes) -> str:
    """Run the import the form asks for; the summary of what it did. Raises the service's
    ApplicationError when it refused the file (and wrote nothing)."""
    handle = io.BytesIO(data)
    if form.cleaned_data["kind"] == IMPORT_PREREQUISITES:
        result = prerequisites_import(
            course=course,
            path_or_handle=handle,
            create_missing_skills=form.cleaned_data["create_missing_skills"],
        )
        return _(
            "Imported %(file)s: %(read)s rows read, %(edges)s prerequisites added, "
            "%(skills)s skills created, %(duplicates)s already there or repeated."
        ) % {
            "file": form.cleaned_data["file"].name,
            "read": result.read,
            "edges": result.edges_added,
            "skills": result.skills_created,
            "duplicates": result.duplicates,
        }
    result = resources_import(course=course, path_or_handle=handle)
    return _(
        "Imported %(file)s: %(read)s rows read, %(created)s resources created, %(updated)s "
        "updated, %(unchanged)s unchanged."
    ) % {
        "file": form.cleaned_data["file"].name,
        "read": result.read,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
    }


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def content_import(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload a CSV of resources or of prerequisites. All or nothing: a refused file shows
    every problem, row by row, and nothing is written; an accepted one says what it did."""
    course = staff_course_or_404(request, slug)
    context = _context(request, course, "import")
    context["max_size"] = content_forms.IMPORT_MAX_BYTES
    if request.method != "POST":
        context["form"] = ContentImportForm()
        return render(request, "edu_dl/content/import.html", context)
    form = ContentImportForm(request.POST, request.FILES)
    context["form"] = form
    if form.is_valid():
        try:
            data = form.file_bytes()
        except forms.ValidationError as error:
            form.add_error("file", error)
        else:
            try:
                summary = _import(course, form, data)
            except ApplicationError as error:
                rows, total = _refusal(data, error)
                context["report"] = ImportReport(
                    file_name=form.cleaned_data["file"].name,
                    rows=rows,
                    total=total,
                )
            else:
                messages.success(request, summary)
                return redirect("edu_dl:content_import", slug=course.slug)
    return render(request, "edu_dl/content/import.html", context, status=400)


urlpatterns = [
    path("courses/<slug:slug>/content/", content_home, name="content_home"),
    path("courses/<slug:slug>/content/items/", content_items, name="content_items"),
    path(
        "courses/<slug:slug>/content/items/<int:item_id>/",
        content_item_detail,
        name="content_item_detail",
    ),
    path(
        "courses/<slug:slug>/content/assessments/",
        content_assessments,
        name="content_assessments",
    ),
    path(
        "courses/<slug:slug>/content/assessments/<int:assessment_id>/",
        content_assessment_detail,
        name="content_assessment_detail",
    ),
    path("courses/<slug:slug>/content/resources/", content_resources, name="content_resources"),
    path(
        "courses/<slug:slug>/content/resources/<int:resource_id>/deactivate/",
        content_resource_deactivate,
        name="content_resource_deactivate",
    ),
    path(
        "courses/<slug:slug>/content/resources/<int:resource_id>/reactivate/",
        content_resource_reactivate,
        name="content_resource_reactivate",
    ),
    path("courses/<slug:slug>/content/skills/", content_skill_graph, name="content_skill_graph"),
    path(
        "courses/<slug:slug>/content/skills/prerequisites/add/",
        content_prerequisite_add,
        name="content_prerequisite_add",
    ),
    path(
        "courses/<slug:slug>/content/skills/prerequisites/remove/",
        content_prerequisite_remove,
        name="content_prerequisite_remove",
    ),
    path("courses/<slug:slug>/content/import/", content_import, name="content_import"),
]
