"""The grading queue of a course's staff: the answers waiting for a teacher, the model's
suggestion with its confidence and explanation, accept or override in one step.

Writes go through :mod:`edu_dl.services.review` (audited, never losing an earlier grade).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from edu_dl import selectors
from edu_dl.models import Course, Item, Response
from edu_dl.services.errors import ApplicationError, NotFound
from edu_dl.services.review import response_accept, response_override, responses_accept_many
from edu_dl.web.common import staff_course_or_404
from edu_dl.web.forms import ReviewAcceptManyForm, ReviewOverrideForm, ReviewQueueFilterForm

REVIEWS_PER_PAGE = 25


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
    course = staff_course_or_404(request, slug)
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
    course = staff_course_or_404(request, slug)
    item = _filter_item(request, course, request.GET.get("item"))
    return _render_review(request, course, response_id, item=item)


@require_POST
@login_required
def review_accept(request: HttpRequest, slug: str, response_id: int) -> HttpResponse:
    """Accept the model's suggested score (one click), then go on to the next response."""
    course = staff_course_or_404(request, slug)
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
    course = staff_course_or_404(request, slug)
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
    course = staff_course_or_404(request, slug)
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


urlpatterns = [
    path("courses/<slug:slug>/review/", review_queue, name="review_queue"),
    path("courses/<slug:slug>/review/accept-shown/", review_accept_many, name="review_accept_many"),
    path("courses/<slug:slug>/review/<int:response_id>/", review_detail, name="review_detail"),
    path(
        "courses/<slug:slug>/review/<int:response_id>/accept/",
        review_accept,
        name="review_accept",
    ),
    path(
        "courses/<slug:slug>/review/<int:response_id>/override/",
        review_override,
        name="review_override",
    ),
]
