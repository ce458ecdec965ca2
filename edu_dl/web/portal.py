"""A student's own pages in a course: the assessments to take, my results, my progress and what
to study next. Every page shows only the signed-in student's records (see the selectors)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from edu_dl import selectors
from edu_dl.models import Course, Submission
from edu_dl.services.errors import NotFound
from edu_dl.web.common import course_context, course_or_404, student_course_or_404


def course_home(request: HttpRequest, course: Course) -> HttpResponse:
    """The course's front page for a student: its assessments and where I stand with each."""
    assessments = list(selectors.assessments_visible(user=request.user, course=course))
    submission_status_labels = dict(Submission.Status.choices)
    for assessment in assessments:
        assessment.my_submission_status_label = submission_status_labels.get(
            assessment.my_submission_status
        )
    context = course_context(request, course, tab="course_detail")
    context.update(
        assessments=assessments,
        responses=selectors.responses_visible(user=request.user, course=course),
    )
    return render(request, "edu_dl/course_detail.html", context)


@require_safe
@login_required
def my_results(request: HttpRequest, slug: str) -> HttpResponse:
    course = student_course_or_404(request, slug)
    context = course_context(request, course, tab="my_results")
    context["responses"] = selectors.responses_visible(user=request.user, course=course)
    return render(request, "edu_dl/course_detail.html", context)


@require_safe
@login_required
def my_progress(request: HttpRequest, slug: str) -> HttpResponse:
    course = student_course_or_404(request, slug)
    return render(
        request, "edu_dl/course_detail.html", course_context(request, course, tab="my_progress")
    )


@require_safe
@login_required
def my_suggestions(request: HttpRequest, slug: str) -> HttpResponse:
    course = student_course_or_404(request, slug)
    return render(
        request, "edu_dl/course_detail.html", course_context(request, course, tab="my_suggestions")
    )


@require_safe
@login_required
def submission_detail(request: HttpRequest, slug: str, submission_id: int) -> HttpResponse:
    """A submission as its author sees it: every answer, and the scores released to them."""
    course = course_or_404(request, slug)
    try:
        submission = selectors.submission_get_for_viewer(
            viewer=request.user, course=course, submission_id=submission_id
        )
    except NotFound as error:
        raise Http404(error.message) from error
    context = course_context(request, course, tab="my_results")
    context.update(
        submission=submission,
        responses=selectors.responses_for_student_view(student=request.user, submission=submission),
    )
    return render(request, "edu_dl/submission_detail.html", context)


urlpatterns = [
    path("courses/<slug:slug>/results/", my_results, name="my_results"),
    path("courses/<slug:slug>/progress/", my_progress, name="my_progress"),
    path("courses/<slug:slug>/next/", my_suggestions, name="my_suggestions"),
    path(
        "courses/<slug:slug>/submissions/<int:submission_id>/",
        submission_detail,
        name="submission_detail",
    ),
]
