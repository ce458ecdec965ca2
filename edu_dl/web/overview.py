"""The class at a glance for a course's staff (the course's front page for them)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from edu_dl import selectors
from edu_dl.models import Course, ModelKind
from edu_dl.web.common import course_context

STUDENTS_PER_PAGE = 50
ITEMS_PER_PAGE = 50


def course_overview(request: HttpRequest, course: Course) -> HttpResponse:
    user = request.user
    context = course_context(request, course, tab="course_detail")
    context.update(
        assessments=selectors.assessments_visible(user=user, course=course),
        students_page=Paginator(
            selectors.students_visible(user=user, course=course), STUDENTS_PER_PAGE
        ).get_page(request.GET.get("page")),
        skills=selectors.skills_visible(user=user, course=course),
        items_page=Paginator(
            selectors.items_visible(user=user, course=course), ITEMS_PER_PAGE
        ).get_page(request.GET.get("items_page")),
        resources=selectors.resources_visible(user=user, course=course),
        training_runs=selectors.training_runs_visible(user=user, course=course),
        active_kt_version=selectors.active_model_version(
            user=user, course=course, kind=ModelKind.KT
        ),
        review_waiting=selectors.review_queue_total(user=user, course=course),
    )
    return render(request, "edu_dl/course_detail.html", context)


urlpatterns: list = []
