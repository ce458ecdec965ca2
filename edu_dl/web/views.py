"""Server-rendered pages: the list of my courses and one course's page.

Views are thin: who may see what is decided in :mod:`edu_dl.selectors.access`, writes happen in
services. A course that the user has no role in answers 404, whatever the user asks of it, so that
strangers cannot learn which courses exist.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from edu_dl import selectors
from edu_dl.models import Course, Enrollment, ModelKind, Submission
from edu_dl.services.errors import ApplicationError, NotFound
from edu_dl.services.training import training_request

STUDENTS_PER_PAGE = 50
ITEMS_PER_PAGE = 50


def _course_or_404(request: HttpRequest, slug: str) -> Course:
    try:
        return selectors.course_get_for_user(user=request.user, slug=slug)
    except NotFound as error:
        raise Http404(error.message) from error


def _role_label(role: str | None) -> str:
    if role is None:
        return _("Administrator")
    return Enrollment.Role(role).label


@require_safe
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """My courses, each with my role in it."""
    courses = [
        {"course": course, "role": _role_label(course.user_role)}
        for course in selectors.courses_for_user(user=request.user)
    ]
    return render(request, "edu_dl/home.html", {"courses": courses})


@require_safe
@login_required
def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The course page: everything for the course's staff, only my own records for a student."""
    course = _course_or_404(request, slug)
    user = request.user
    assessments = list(selectors.assessments_visible(user=user, course=course))
    submission_status_labels = dict(Submission.Status.choices)
    for assessment in assessments:
        assessment.my_submission_status_label = submission_status_labels.get(
            assessment.my_submission_status
        )
    context = {
        "course": course,
        "role": _role_label(course.user_role),
        "is_course_staff": selectors.course_is_staff(user=user, course=course),
        "assessments": assessments,
    }
    if context["is_course_staff"]:
        students = Paginator(
            selectors.students_visible(user=user, course=course), STUDENTS_PER_PAGE
        )
        context.update(
            students_page=students.get_page(request.GET.get("page")),
            skills=selectors.skills_visible(user=user, course=course),
            items_page=Paginator(
                selectors.items_visible(user=user, course=course), ITEMS_PER_PAGE
            ).get_page(request.GET.get("items_page")),
            resources=selectors.resources_visible(user=user, course=course),
            training_runs=selectors.training_runs_visible(user=user, course=course),
            active_kt_version=selectors.active_model_version(
                user=user, course=course, kind=ModelKind.KT
            ),
        )
    else:
        context["responses"] = selectors.responses_visible(user=user, course=course)
    return render(request, "edu_dl/course_detail.html", context)


@require_POST
@login_required
def course_training_request(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask for the course's knowledge-tracing model to be trained again (course staff only)."""
    course = _course_or_404(request, slug)
    if not selectors.course_is_staff(user=request.user, course=course):
        raise DjangoPermissionDenied
    try:
        run = training_request(kind=ModelKind.KT, course=course, requested_by=request.user)
    except ApplicationError as error:
        messages.error(
            request, _("Training was not started: %(reason)s") % {"reason": error.message}
        )
    else:
        messages.success(
            request,
            _("Training run #%(number)s requested (status: %(status)s).")
            % {"number": run.pk, "status": run.get_status_display()},
        )
    return redirect("edu_dl:course_detail", slug=course.slug)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose healthchecks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
