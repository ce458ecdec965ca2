"""Server-rendered pages: the list of my courses, one course's page, the review queue of its
staff and a student's own submission.

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
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from edu_dl import selectors
from edu_dl.models import Course, Enrollment, Item, ModelKind, Response, Submission
from edu_dl.services.errors import ApplicationError, NotFound
from edu_dl.services.review import response_accept, response_override, responses_accept_many
from edu_dl.services.training import training_request
from edu_dl.web.forms import ReviewAcceptManyForm, ReviewOverrideForm, ReviewQueueFilterForm

STUDENTS_PER_PAGE = 50
ITEMS_PER_PAGE = 50
REVIEWS_PER_PAGE = 25


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
            review_waiting=selectors.review_queue_total(user=user, course=course),
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


# --- The review queue (course staff) -------------------------------------------------------------


def _staff_course_or_404(request: HttpRequest, slug: str) -> Course:
    """The course, for its staff; 404 to those without a role in it, 403 to its students."""
    course = _course_or_404(request, slug)
    if not selectors.course_is_staff(user=request.user, course=course):
        raise DjangoPermissionDenied
    return course


def _filter_item(request: HttpRequest, course: Course, value: str | None) -> Item | None:
    """The item that the reviewer filtered the queue by (the ``item`` parameter), when it is
    one of the course's; anything else means no filter."""
    if not value or not value.isdigit():
        return None
    return selectors.items_visible(user=request.user, course=course).filter(pk=int(value)).first()


def _with_item(url: str, item: Item | None) -> str:
    return f"{url}?{urlencode({'item': item.pk})}" if item is not None else url


def _queue_url(course: Course, item: Item | None = None) -> str:
    return _with_item(reverse("edu_dl:review_queue", kwargs={"slug": course.slug}), item)


def _review_url(course: Course, response_id: int, item: Item | None = None) -> str:
    url = reverse("edu_dl:review_detail", kwargs={"slug": course.slug, "response_id": response_id})
    return _with_item(url, item)


def _to_next_review(request: HttpRequest, course: Course, item: Item | None) -> HttpResponse:
    """Redirect to the next response waiting for review (of the filtered item first), or to
    the queue when none waits."""
    following = selectors.review_next(user=request.user, course=course, item=item)
    if following is None:
        return redirect(_queue_url(course, item))
    if item is not None and following.item_id != item.pk:
        item = None  # that item's queue is empty: go on with the whole course's
    return redirect(_review_url(course, following.pk, item))


def _reviewed_response(request: HttpRequest, course: Course, response_id: int) -> Response:
    try:
        return selectors.response_get_for_review(
            user=request.user, response_id=response_id, course=course
        )
    except NotFound as error:
        raise Http404(error.message) from error


def _graded_message(response: Response) -> str:
    return _("Saved %(score)s of %(maximum)s for %(student)s's answer to %(item)s.") % {
        "score": f"{response.score:g}",
        "maximum": f"{response.item.max_score:g}",
        "student": response.submission.student.get_username(),
        "item": response.item,
    }


@require_safe
@login_required
def review_queue(request: HttpRequest, slug: str) -> HttpResponse:
    """The responses waiting for review, highest priority first, of one item or all."""
    course = _staff_course_or_404(request, slug)
    user = request.user
    form = ReviewQueueFilterForm(
        request.GET, items=selectors.items_visible(user=user, course=course)
    )
    item = form.cleaned_data["item"] if form.is_valid() else None
    page = Paginator(
        selectors.review_queue(user=user, course=course, item=item), REVIEWS_PER_PAGE
    ).get_page(request.GET.get("page"))
    context = {
        "course": course,
        "form": form,
        "item": item,
        "page": page,
        "counts": selectors.review_queue_counts(user=user, course=course),
        "page_query": urlencode({"item": item.pk}) if item is not None else "",
        "acceptable_ids": [response.pk for response in page if response.score is not None],
    }
    return render(request, "edu_dl/review_queue.html", context)


def _render_review(
    request: HttpRequest,
    course: Course,
    response_id: int,
    *,
    item: Item | None,
    override_form: ReviewOverrideForm | None = None,
    status: int = 200,
) -> HttpResponse:
    try:
        review = selectors.response_for_review(
            user=request.user, response_id=response_id, course=course
        )
    except NotFound as error:
        raise Http404(error.message) from error
    response = review.response
    if override_form is None:
        override_form = ReviewOverrideForm(
            initial={"score": response.score, "feedback": response.feedback},
            scale_item=response.item,
        )
    context = {
        "course": course,
        "review": review,
        "response": response,
        "item": item,
        "override_form": override_form,
        "queue_url": _queue_url(course, item),
    }
    return render(request, "edu_dl/review_detail.html", context, status=status)


@require_safe
@login_required
def review_detail(request: HttpRequest, slug: str, response_id: int) -> HttpResponse:
    """One response: the answer, the model's suggestion and explanation, its grade history, and
    the forms to accept the suggestion or give another score."""
    course = _staff_course_or_404(request, slug)
    item = _filter_item(request, course, request.GET.get("item"))
    return _render_review(request, course, response_id, item=item)


@require_POST
@login_required
def review_accept(request: HttpRequest, slug: str, response_id: int) -> HttpResponse:
    """Accept the model's suggested score (one click), then go on to the next response."""
    course = _staff_course_or_404(request, slug)
    response = _reviewed_response(request, course, response_id)
    item = _filter_item(request, course, request.POST.get("item"))
    try:
        graded = response_accept(response=response, actor=request.user)
    except ApplicationError as error:
        messages.error(request, _("Not accepted: %(reason)s") % {"reason": error.message})
        return redirect(_review_url(course, response.pk, item))
    messages.success(request, _graded_message(graded))
    return _to_next_review(request, course, item)


@require_POST
@login_required
def review_override(request: HttpRequest, slug: str, response_id: int) -> HttpResponse:
    """Give the response the teacher's own score, then go on to the next response; a refused
    score shows the page again with the reason beside the field."""
    course = _staff_course_or_404(request, slug)
    response = _reviewed_response(request, course, response_id)
    item = _filter_item(request, course, request.POST.get("item"))
    form = ReviewOverrideForm(request.POST, scale_item=response.item)
    if form.is_valid():
        try:
            graded = response_override(
                response=response,
                actor=request.user,
                score=form.cleaned_data["score"],
                feedback=form.cleaned_data["feedback"],
            )
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, _graded_message(graded))
            return _to_next_review(request, course, item)
    return _render_review(request, course, response.pk, item=item, override_form=form, status=400)


@require_POST
@login_required
def review_accept_many(request: HttpRequest, slug: str) -> HttpResponse:
    """Accept the suggested scores of the responses that the queue page showed."""
    course = _staff_course_or_404(request, slug)
    item = _filter_item(request, course, request.POST.get("item"))
    form = ReviewAcceptManyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Nothing was accepted: the list of answers was not valid."))
        return redirect(_queue_url(course, item))
    try:
        result = responses_accept_many(
            response_ids=form.cleaned_data["response_ids"], actor=request.user, course=course
        )
    except NotFound as error:
        raise Http404(error.message) from error
    except ApplicationError as error:
        messages.error(request, _("Nothing was accepted: %(reason)s") % {"reason": error.message})
        return redirect(_queue_url(course, item))
    accepted = len(result.accepted)
    messages.success(
        request,
        ngettext(
            "Accepted the suggested score of %(count)d answer.",
            "Accepted the suggested scores of %(count)d answers.",
            accepted,
        )
        % {"count": accepted},
    )
    if result.skipped:
        skipped = len(result.skipped)
        messages.warning(
            request,
            ngettext(
                "%(count)d answer was left as it was: it was reviewed meanwhile or has no "
                "suggestion.",
                "%(count)d answers were left as they were: they were reviewed meanwhile or have "
                "no suggestion.",
                skipped,
            )
            % {"count": skipped},
        )
    return redirect(_queue_url(course, item))


# --- A student's submission ----------------------------------------------------------------------


@require_safe
@login_required
def submission_detail(request: HttpRequest, slug: str, submission_id: int) -> HttpResponse:
    """A submission as its author sees it: every answer, and the scores released to them."""
    course = _course_or_404(request, slug)
    try:
        submission = selectors.submission_get_for_viewer(
            viewer=request.user, course=course, submission_id=submission_id
        )
    except NotFound as error:
        raise Http404(error.message) from error
    context = {
        "course": course,
        "submission": submission,
        "responses": selectors.responses_for_student_view(
            student=request.user, submission=submission
        ),
    }
    return render(request, "edu_dl/submission_detail.html", context)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose healthchecks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
