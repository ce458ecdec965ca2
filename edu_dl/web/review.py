"""The grading queue of a course's staff: the answers waiting for a teacher, the model's
suggestion with its confidence and explanation, accept or override in one step, from the
queue itself or from one answer's page, and every suggestion above a confidence at once.

Writes go through :mod:`edu_dl.services.review` (audited, never losing an earlier grade).
Every form works without JavaScript (post, then redirect); with htmx, accepting or scoring an
answer in the queue answers with its updated row and, out of band, the counts of what remains,
instead of a redirect. ``edu_dl/static/edu_dl/review.js`` adds the keyboard shortcuts.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from edu_dl import selectors
from edu_dl.models import Course, Item, Response
from edu_dl.selectors.review import review_neighbours, review_progress
from edu_dl.services.errors import ApplicationError, NotFound
from edu_dl.services.review import (
    AcceptManyResult,
    response_accept,
    response_override,
    responses_accept_above,
    responses_accept_many,
)
from edu_dl.web.common import course_context, staff_course_or_404
from edu_dl.web.forms import (
    ReviewAcceptAboveForm,
    ReviewAcceptManyForm,
    ReviewOverrideForm,
    ReviewQueueFilterForm,
)

REVIEWS_PER_PAGE = 25


def _filter_item(request: HttpRequest, course: Course, value: str | None) -> Item | None:
    """The item that the reviewer filtered the queue by (the ``item`` parameter), when it is
    one of the course's; anything else means no filter."""
    if not value or not value.isdigit():
        return None
    return selectors.items_visible(user=request.user, course=course).filter(pk=int(value)).first()


def _with_item(url: str, item: Item | None) -> str:
    return f"{url}?{urlencode({'item': item.pk})}" if item is not None else url


def _queue_url(course: Course, item: Item | None = None, page: str | None = None) -> str:
    query = {}
    if item is not None:
        query["item"] = item.pk
    if page and page.isdigit() and page != "1":
        query["page"] = page
    url = reverse("edu_dl:review_queue", kwargs={"slug": course.slug})
    return f"{url}?{urlencode(query)}" if query else url


def _back_to_queue(request: HttpRequest) -> bool:
    """Whether the form was posted from the queue page (a hidden ``back=queue``), whose
    reviewer goes on down the list rather than to the next answer's page."""
    return request.POST.get("back") == "queue"


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


def _render_queue(
    request: HttpRequest,
    course: Course,
    *,
    items: QuerySet[Item],
    filter_form: ReviewQueueFilterForm,
    item: Item | None,
    accept_above_form: ReviewAcceptAboveForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    if accept_above_form is None:
        accept_above_form = ReviewAcceptAboveForm(
            initial={"item": item, "min_confidence": 90}, items=items
        )
    page = Paginator(
        selectors.review_queue(user=user, course=course, item=item), REVIEWS_PER_PAGE
    ).get_page(request.GET.get("page"))
    context = {
        **course_context(request, course, tab="review_queue"),
        "form": filter_form,
        "accept_above_form": accept_above_form,
        "item": item,
        "page": page,
        "counts": selectors.review_queue_counts(user=user, course=course),
        "progress": review_progress(user=user, course=course, item=item),
        "page_query": urlencode({"item": item.pk}) if item is not None else "",
        "acceptable_ids": [response.pk for response in page if response.score is not None],
    }
    return render(request, "edu_dl/review_queue.html", context, status=status)


@require_safe
@login_required
def review_queue(request: HttpRequest, slug: str) -> HttpResponse:
    """The responses waiting for review, highest priority first, of one item or all, each with
    the model's suggestion and the controls to accept it or give another score; how many wait
    and how much the models graded on their own; accepting every suggestion above a confidence.
    """
    course = staff_course_or_404(request, slug)
    items = selectors.items_visible(user=request.user, course=course)
    form = ReviewQueueFilterForm(request.GET, items=items)
    item = form.cleaned_data["item"] if form.is_valid() else None
    return _render_queue(request, course, items=items, filter_form=form, item=item)


def _render_row(
    request: HttpRequest,
    course: Course,
    response: Response,
    *,
    item: Item | None,
    state: str,
    score: float | None = None,
    errors: list[str] | None = None,
    typed_score: str = "",
) -> HttpResponse:
    """The answer to an htmx post from the queue: the response's row (``state``: "waiting",
    with ``errors`` when refused; "accepted" or "overridden" with the saved ``score``), and, out
    of band, what remains to review.

    A refused grade answers 200 too: htmx swaps only successful answers, and the row must show
    the teacher why (the non-htmx forms answer 400 or redirect with a message).
    """
    user = request.user
    context = {
        "course": course,
        "response": response,
        "item": item,
        "state": state,
        "saved_score": score,
        "errors": errors or [],
        "typed_score": typed_score,
        "page_number": request.POST.get("page", ""),
        "counts": selectors.review_queue_counts(user=user, course=course),
        "progress": review_progress(user=user, course=course, item=item),
        "oob": True,
    }
    return render(request, "edu_dl/review/row_answer.html", context)


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
    neighbours = review_neighbours(user=request.user, course=course, response=response, item=item)
    context = {
        **course_context(request, course, tab="review_queue"),
        "review": review,
        "response": response,
        "item": item,
        "override_form": override_form,
        "queue_url": _queue_url(course, item),
        "previous_url": (
            _review_url(course, neighbours.previous_id, item) if neighbours.previous_id else None
        ),
        "next_url": _review_url(course, neighbours.next_id, item) if neighbours.next_id else None,
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


def _after_grading(
    request: HttpRequest,
    course: Course,
    response: Response,
    graded: Response,
    *,
    item: Item | None,
    state: str,
) -> HttpResponse:
    """Where a teacher goes once an answer is graded: (htmx) the updated row; from the queue,
    back to the same page of it; from an answer's page, on to the next answer waiting."""
    if request.htmx:
        return _render_row(request, course, response, item=item, state=state, score=graded.score)
    messages.success(request, _graded_message(graded))
    if _back_to_queue(request):
        return redirect(_queue_url(course, item, request.POST.get("page")))
    return _to_next_review(request, course, item)


@require_POST
@login_required
def review_accept(request: HttpRequest, slug: str, response_id: int) -> HttpResponse:
    """Accept the model's suggested score (one click), then go on: to the next response from
    its page, back down the queue from the queue, or (htmx) answer with the updated row."""
    course = staff_course_or_404(request, slug)
    response = _reviewed_response(request, course, response_id)
    item = _filter_item(request, course, request.POST.get("item"))
    try:
        graded = response_accept(response=response, actor=request.user)
    except ApplicationError as error:
        reason = _("Not accepted: %(reason)s") % {"reason": error.message}
        if request.htmx:
            return _render_row(
                request, course, response, item=item, state="waiting", errors=[reason]
            )
        messages.error(request, reason)
        if _back_to_queue(request):
            return redirect(_queue_url(course, item, request.POST.get("page")))
        return redirect(_review_url(course, response.pk, item))
    return _after_grading(request, course, response, graded, item=item, state="accepted")


@require_POST
@login_required
def review_override(request: HttpRequest, slug: str, response_id: int) -> HttpResponse:
    """Give the response the teacher's own score, then go on as :func:`review_accept` does; a
    refused score shows the page (or, htmx, the row) again with the reason beside the field."""
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
            return _after_grading(request, course, response, graded, item=item, state="overridden")
    if request.htmx:
        return _render_row(
            request,
            course,
            response,
            item=item,
            state="waiting",
            errors=[str(error) for errors in form.errors.values() for error in errors],
            typed_score=request.POST.get("score", ""),
        )
    # Without JavaScript, from the queue too: the answer's own page, with the reason beside
    # the field and the whole form to correct it.
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
    _accepted_messages(request, result)
    return redirect(_queue_url(course, item))


def _accepted_messages(request: HttpRequest, result: AcceptManyResult) -> None:
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


@require_POST
@login_required
def review_accept_above(request: HttpRequest, slug: str) -> HttpResponse:
    """Accept every waiting suggestion of the course (or of one item) whose confidence is at
    least the percentage given, in one step; a refused threshold shows the queue again with
    the reason beside the field, and nothing is accepted."""
    course = staff_course_or_404(request, slug)
    items = selectors.items_visible(user=request.user, course=course)
    form = ReviewAcceptAboveForm(request.POST, items=items)
    if form.is_valid():
        item = form.cleaned_data["item"]
        try:
            result = responses_accept_above(
                course=course,
                actor=request.user,
                min_confidence=form.min_confidence_share(),
                item=item,
            )
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            threshold = f"{form.cleaned_data['min_confidence'].normalize():f}%"
            accepted = len(result.accepted)
            if accepted:
                messages.success(
                    request,
                    ngettext(
                        "Accepted the suggested score of %(count)d answer with a confidence "
                        "of at least %(threshold)s.",
                        "Accepted the suggested scores of %(count)d answers with a confidence "
                        "of at least %(threshold)s.",
                        accepted,
                    )
                    % {"count": accepted, "threshold": threshold},
                )
            else:
                messages.info(
                    request,
                    _("No waiting suggestion has a confidence of at least %(threshold)s.")
                    % {"threshold": threshold},
                )
            return redirect(_queue_url(course, item))
    item = _filter_item(request, course, request.POST.get("item"))
    filter_form = ReviewQueueFilterForm({"item": item.pk} if item else {}, items=items)
    filter_form.is_valid()
    return _render_queue(
        request,
        course,
        items=items,
        filter_form=filter_form,
        item=item,
        accept_above_form=form,
        status=400,
    )


urlpatterns = [
    path("courses/<slug:slug>/review/", review_queue, name="review_queue"),
    path("courses/<slug:slug>/review/accept-shown/", review_accept_many, name="review_accept_many"),
    path(
        "courses/<slug:slug>/review/accept-above/",
        review_accept_above,
        name="review_accept_above",
    ),
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
