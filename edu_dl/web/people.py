"""A teacher's view of each student of a course."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from edu_dl import selectors
from edu_dl.web.common import course_context, staff_course_or_404

STUDENTS_PER_PAGE = 50


@require_safe
@login_required
def student_list(request: HttpRequest, slug: str) -> HttpResponse:
    course = staff_course_or_404(request, slug)
    context = course_context(request, course, tab="student_list")
    context["students_page"] = Paginator(
        selectors.students_visible(user=request.user, course=course), STUDENTS_PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(request, "edu_dl/course_detail.html", context)


urlpatterns = [
    path("courses/<slug:slug>/students/", student_list, name="student_list"),
]
