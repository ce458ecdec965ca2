"""Course content for its staff: items, assessments, resources, the skill graph and imports."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from edu_dl import selectors
from edu_dl.web.common import course_context, staff_course_or_404


@require_safe
@login_required
def content_home(request: HttpRequest, slug: str) -> HttpResponse:
    course = staff_course_or_404(request, slug)
    context = course_context(request, course, tab="content_home")
    context["skills"] = selectors.skills_visible(user=request.user, course=course)
    return render(request, "edu_dl/course_detail.html", context)


urlpatterns = [
    path("courses/<slug:slug>/content/", content_home, name="content_home"),
]
