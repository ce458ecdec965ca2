"""A student's own pages in a course: the assessments to take (with drafts), my results, my
progress and what to study next.

Every page shows only the signed-in student's records: the reads are in
:mod:`edu_dl.selectors.portal` (scores through the release rules of
:mod:`edu_dl.selectors.submissions`), the writes in :mod:`edu_dl.services.drafts` and
:func:`edu_dl.services.recommending.recommendation_feedback`. Course staff get 403 on these
pages (they see the same records on the teacher's pages), strangers 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from edu_dl import selectors
from edu_dl.conf import edu_settings
from edu_dl.models import (
    Assessment,
    AssessmentDraft,
    Course,
    Item,
    Recommendation,
    ResourceInteraction,
)
from edu_dl.selectors.portal import (
    assessment_availability,
    assessment_for_student,
    assessment_items,
    latest_evidence,
    mastery_history,
    recommendation_for_student,
    skill_names,
    student_assessments,
    student_draft,
    student_latest_submission,
    student_recommendations,
    student_results,
)
from edu_dl.selectors.progress import (
    StudentProgress,
    estimate_method_label,
    student_progress,
)
from edu_dl.selectors.submissions import assessment_grades_held
from edu_dl.services.drafts import draft_answers, draft_discard, draft_save, draft_submit
from edu_dl.services.errors import ApplicationError, NotFound
from edu_dl.services.recommending import (
    FEEDBACK_EVENTS,
    recommendation_feedback,
    recommendation_reason,
)
from edu_dl.web.charts import LineChart, line_chart
from edu_dl.web.common import course_context, course_or_404, student_course_or_404
from edu_dl.web.portal_forms import ACTION_DISCARD, ACTION_SUBMIT, AssessmentTakeForm

# --- My assessments ------------------------------------------------------------------------------


def course_home(request: HttpRequest, course: Course) -> HttpResponse:
    """The course's front page for a student: each published assessment with its dates, my
    submission and its status, and a link to take it while it is open; my released grades."""
    context = course_context(request, course, tab="course_detail")
    context.update(
        assessments=student_assessments(student=request.user, course=course),
        responses=selectors.responses_visible(user=request.user, course=course),
    )
    return render(request, "edu_dl/portal/course_home.html", context)


def _assessment_or_404(request: HttpRequest, course: Course, assessment_id: int) -> Assessment:
    try:
        return assessment_for_student(
            student=request.user, course=course, assessment_id=assessment_id
        )
    except NotFound as error:
        raise Http404(error.message) from error


def _take_url(course: Course, assessment: Assessment) -> str:
    return reverse(
        "edu_dl:assessment_take", kwargs={"slug": course.slug, "assessment_id": assessment.pk}
    )


def _take_page(
    request: HttpRequest,
    course: Course,
    assessment: Assessment,
    form: AssessmentTakeForm,
    *,
    draft: AssessmentDraft | None,
    status: int = 200,
) -> HttpResponse:
    context = course_context(request, course, tab="course_detail")
    context.update(
        assessment=assessment,
        form=form,
        availability=assessment_availability(assessment=assessment, now=timezone.now()),
        draft=draft,
        earlier_submission=student_latest_submission(student=request.user, assessment=assessment),
        answer_limit=edu_settings.GRADING_MAX_ANSWER_CHARS,
    )
    return render(request, "edu_dl/portal/assessment_take.html", context, status=status)


def _idempotency_key(assessment: Assessment, form: AssessmentTakeForm) -> str:
    """The same for every POST of one rendering of the form: a double click hands in once."""
    return f"portal-take:{assessment.pk}:{form.cleaned_data['form_token']}"


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def assessment_take(request: HttpRequest, slug: str, assessment_id: int) -> HttpResponse:
    """Take an assessment: an input for every item, my draft restored; "Save draft" keeps the
    answers, "Hand in" submits them (and deletes the draft), "Discard draft" forgets them."""
    course = student_course_or_404(request, slug)
    assessment = _assessment_or_404(request, course, assessment_id)
    items: list[Item] = assessment_items(assessment=assessment)
    if request.method != "POST":
        draft = student_draft(student=request.user, assessment=assessment)
        form = AssessmentTakeForm(items=items, draft_answers=draft_answers(draft))
        return _take_page(request, course, assessment, form, draft=draft)

    if request.POST.get("action") == ACTION_DISCARD:
        if draft_discard(student=request.user, assessment=assessment):
            messages.success(request, _("Your draft was discarded."))
        return redirect(_take_url(course, assessment))
    form = AssessmentTakeForm(request.POST, items=items)
    if not form.is_valid():
        draft = student_draft(student=request.user, assessment=assessment)
        return _take_page(request, course, assessment, form, draft=draft, status=400)
    try:
        if form.chosen_action == ACTION_SUBMIT:
            submission = draft_submit(
                student=request.user,
                assessment=assessment,
                answers=form.answers,
                idempotency_key=_idempotency_key(assessment, form),
            )
        else:
            draft_save(student=request.user, assessment=assessment, answers=form.answers)
    except ApplicationError as error:
        form.add_service_error(message=error.message, item_id=error.extra.get("item_id"))
        draft = student_draft(student=request.user, assessment=assessment)
        return _take_page(request, course, assessment, form, draft=draft, status=error.status_code)
    if form.chosen_action == ACTION_SUBMIT:
        messages.success(
            request,
            _("Handed in. Here is your submission; scores appear as they are released to you."),
        )
        return redirect("edu_dl:submission_detail", slug=course.slug, submission_id=submission.pk)
    messages.success(request, _("Draft saved. You can come back and hand it in later."))
    return redirect(_take_url(course, assessment))


# --- My results ----------------------------------------------------------------------------------


@require_safe
@login_required
def my_results(request: HttpRequest, slug: str) -> HttpResponse:
    """My submissions, newest first, with the scores and feedback released to me; answers
    waiting for the teacher and grades held until the due date say so (never a hidden score)."""
    course = student_course_or_404(request, slug)
    context = course_context(request, course, tab="my_results")
    context["results"] = student_results(student=request.user, course=course)
    return render(request, "edu_dl/portal/my_results.html", context)


@require_safe
@login_required
def submission_detail(request: HttpRequest, slug: str, submission_id: int) -> HttpResponse:
    """A submission as its author sees it: every answer, and the scores released to them
    (course staff see every score)."""
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
        grades_held=assessment_grades_held(assessment=submission.assessment),
    )
    return render(request, "edu_dl/submission_detail.html", context)


# --- My progress ---------------------------------------------------------------------------------


def _mastery_chart(progress: StudentProgress, history: dict[int, list]) -> LineChart:
    series = [
        (skill.skill_name, history.get(skill.skill_id, []))
        for skill in progress.skills
        if history.get(skill.skill_id)
    ]
    return line_chart(
        title=_("My mastery over time"),
        series=series,
        x_label=_("Date"),
        y_label=_("Mastery"),
        description=_(
            "The estimated chance of answering a typical question of each skill correctly."
        ),
    )


def _progress_rows(progress: StudentProgress) -> list[dict[str, Any]]:
    """Each skill with its change in whole percentage points, for the trend column."""
    rows = []
    for skill in progress.skills:
        points = None if skill.change is None else round(skill.change * 100)
        rows.append(
            {
                "skill": skill,
                "change_points": points,
                "change_size": None if points is None else abs(points),
                "method": estimate_method_label(skill.method),
            }
        )
    return rows


@require_safe
@login_required
def my_progress(request: HttpRequest, slug: str) -> HttpResponse:
    """My mastery of each skill with its trend, a chart of it over time, and what the
    estimates rest on: how many answers, how they were made, the latest answers that counted."""
    course = student_course_or_404(request, slug)
    try:
        progress = student_progress(viewer=request.user, student=request.user, course=course)
    except NotFound as error:  # no longer a student of the course
        raise Http404(error.message) from error
    history = mastery_history(student=request.user, course=course)
    context = course_context(request, course, tab="my_progress")
    context.update(
        progress=progress,
        rows=_progress_rows(progress),
        chart=_mastery_chart(progress, history),
        evidence=latest_evidence(student=request.user, course=course),
    )
    return render(request, "edu_dl/portal/my_progress.html", context)


# --- What to study next --------------------------------------------------------------------------


def _feedback_events() -> list[tuple[str, str]]:
    """The buttons of a suggestion: the service's events, named in the reader's language."""
    return [(event, ResourceInteraction.Event(event).label) for event in FEEDBACK_EVENTS]


def _suggestion_rows(
    recommendations: list[Recommendation], names: dict[int, str]
) -> list[dict[str, Any]]:
    return [
        {"recommendation": recommendation, "reason": recommendation_reason(recommendation, names)}
        for recommendation in recommendations
    ]


@require_safe
@login_required
def my_suggestions(request: HttpRequest, slug: str) -> HttpResponse:
    """My current suggestions, best first, each with its reason and the buttons to say I viewed
    or completed it and whether it helped."""
    course = student_course_or_404(request, slug)
    recommendations = student_recommendations(student=request.user, course=course)
    names = skill_names(course=course) if recommendations else {}
    context = course_context(request, course, tab="my_suggestions")
    context.update(
        rows=_suggestion_rows(recommendations, names),
        feedback_events=_feedback_events(),
    )
    return render(request, "edu_dl/portal/my_suggestions.html", context)


def _feedback_confirmation(event: str) -> str:
    return {
        "viewed": _("Marked as viewed."),
        "completed": _("Marked as completed. A new suggestion will take its place."),
        "helpful": _("Thank you: you found it helpful."),
        "not_helpful": _("Thank you: you found it not helpful."),
    }[event]


@require_POST
@login_required
def suggestion_feedback(request: HttpRequest, slug: str, recommendation_id: int) -> HttpResponse:
    """Record my click on a suggestion. With htmx the suggestion's row comes back with a
    confirmation; without, a redirect to the list. Someone else's suggestion is 404, an
    unknown event 400 with the reason; either changes nothing."""
    course = student_course_or_404(request, slug)
    try:
        recommendation_for_student(
            student=request.user, course=course, recommendation_id=recommendation_id
        )
        recommendation = recommendation_feedback(
            recommendation_id=recommendation_id,
            student=request.user,
            event=request.POST.get("event", ""),
        )
    except NotFound as error:
        raise Http404(error.message) from error
    except ApplicationError as error:
        context = course_context(request, course, tab="my_suggestions")
        context["reason"] = error.message
        return render(
            request, "edu_dl/portal/feedback_refused.html", context, status=error.status_code
        )
    event = request.POST["event"]
    confirmation = _feedback_confirmation(event)
    if request.htmx:
        # Read again with what the row shows (the service returns the bare row).
        shown = recommendation_for_student(
            student=request.user, course=course, recommendation_id=recommendation.pk
        )
        context = {
            "course": course,
            "row": _suggestion_rows([shown], skill_names(course=course))[0],
            "event": event,
            "feedback_events": _feedback_events(),
            "confirmation": confirmation,
        }
        return render(request, "edu_dl/portal/_suggestion_row.html", context)
    messages.success(request, confirmation)
    return redirect("edu_dl:my_suggestions", slug=course.slug)


urlpatterns = [
    path(
        "courses/<slug:slug>/assessments/<int:assessment_id>/take/",
        assessment_take,
        name="assessment_take",
    ),
    path("courses/<slug:slug>/results/", my_results, name="my_results"),
    path("courses/<slug:slug>/progress/", my_progress, name="my_progress"),
    path("courses/<slug:slug>/next/", my_suggestions, name="my_suggestions"),
    path(
        "courses/<slug:slug>/next/<int:recommendation_id>/feedback/",
        suggestion_feedback,
        name="recommendation_feedback",
    ),
    path(
        "courses/<slug:slug>/submissions/<int:submission_id>/",
        submission_detail,
        name="submission_detail",
    ),
]
