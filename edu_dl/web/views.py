"""The site's entry pages: my courses, a course's front page (the class overview for its staff,
the assessments for a student) and the health check.

The pages of each area live beside this module: :mod:`.overview` (the class at a glance),
:mod:`.review` (the grading queue), :mod:`.people` (a teacher's view of each student),
:mod:`.models_pages` (training and model versions), :mod:`.content` (items, assessments,
resources, the skill graph and imports) and :mod:`.portal` (a student's own pages). Views are
thin: who may see what is decided in :mod:`edu_dl.selectors.access`, writes happen in services.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from edu_dl import selectors
from edu_dl.web import overview, portal
from edu_dl.web.common import course_or_404, role_label


@require_safe
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """My courses, each with my role in it."""
    courses = [
        {"course": course, "role": role_label(course.user_role)}
        for course in selectors.courses_for_user(user=request.user)
    ]
    return render(request, "edu_dl/home.html", {"courses": courses})


@require_safe
@login_required
def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A course's front page: the class overview for its staff, my assessments for a student."""
    course = course_or_404(request, slug)
    if selectors.course_is_staff(user=request.user, course=course):
        return overview.course_overview(request, course)
    return portal.course_home(request, course)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose healthchecks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
