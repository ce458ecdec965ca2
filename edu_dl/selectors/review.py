"""The review queue: the responses that wait for a teacher, and what a teacher needs to judge one.

Only the staff of a course (and superusers) review its responses. Like the rest of
:mod:`edu_dl.selectors.access`, the functions that return rows return none to anyone else, and
the one that returns a single response reports it as not found, so that a student learns nothing
of the queue, not even that a response waits in it.

The queue is ordered by ``review_priority`` (highest first; the model grader writes it, and
responses without one come last), then oldest first, so that nothing waits forever behind newer
answers of the same priority.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from edu_dl.models import Course, Item, Response, ResponseGrade
from edu_dl.selectors.access import UserLike, course_is_staff
from edu_dl.services.errors import NotFound

QUEUE_ORDER = (F("review_priority").desc(nulls_last=True), "created_at", "pk")


@dataclass(frozen=True)
class ItemReviewCount:
    """How many responses to one item wait for review."""

    item_id: int
    item_label: str
    waiting: int


@dataclass(frozen=True)
class ReviewProgress:
    """What waits for the course's teachers, and how much grading the models took off their hands.

    ``waiting``: the course's responses that wait for review; ``item_waiting``: those of the item
    the queue is filtered by (None without a filter). ``model_released``: the course's released
    responses that a model graded and released on its own, no teacher involved;
    ``model_graded_released``: the course's released responses that a model graded at some
    point (released by it, or sent to review and then accepted or overridden by a teacher).
    """

    waiting: int
    item_waiting: int | None
    model_released: int
    model_graded_released: int

    @property
    def model_share(self) -> float | None:
        """``model_released`` out of ``model_graded_released`` (None when there are none)."""
        if not self.model_graded_released:
            return None
        return self.model_released / self.model_graded_released


@dataclass(frozen=True)
class ReviewNeighbours:
    """The responses before and after one in the queue's order (None at either end)."""

    previous_id: int | None
    next_id: int | None


@dataclass(frozen=True)
class ExplanationPhrase:
    """A phrase of the answer that weighed in the model's score (a negative weight pulled it
    down)."""

    text: str
    weight: float


@dataclass(frozen=True)
class SimilarResponse:
    """A graded response that the model found close to the one under review.

    ``teacher_score`` is its score now when a teacher gave it (None otherwise);
    ``explained_score`` is the score the explanation names, the one the model compared with.
    """

    response_id: int
    answer: Any
    item_id: int
    teacher_score: float | None
    explained_score: float | None
    similarity: float | None


@dataclass(frozen=True)
class ResponseReview:
    """One response as the review page shows it."""

    response: Response
    history: list[ResponseGrade]
    phrases: list[ExplanationPhrase]
    similar: list[SimilarResponse]

    @property
    def suggested_score(self) -> float | None:
        """The model's suggestion for a response that waits for review (None otherwise)."""
        if self.response.status == Response.Status.NEEDS_REVIEW:
            return self.response.score
        return None

    @property
    def can_accept(self) -> bool:
        return self.suggested_score is not None


# --- The queue -----------------------------------------------------------------------------------


def review_queue(
    *, user: UserLike, course: Course, item: Item | None = None, limit: int | None = None
) -> QuerySet[Response]:
    """The course's responses that wait for review (of ``item`` only, when given), in queue
    order (see the module's doc), with their item, submission and student; at most ``limit``.

    Course staff only: anyone else gets an empty queryset.
    """
    if not course_is_staff(user=user, course=course):
        return Response.objects.none()
    responses = Response.objects.filter(
        item__course=course, status=Response.Status.NEEDS_REVIEW
    ).select_related("item", "submission__student", "submission__assessment")
    if item is not None:
        responses = responses.filter(item=item)
    responses = responses.order_by(*QUEUE_ORDER)
    return responses if limit is None else responses[:limit]


def review_queue_total(*, user: UserLike, course: Course) -> int:
    """How many of the course's responses wait for review (0 for anyone but course staff)."""
    if not course_is_staff(user=user, course=course):
        return 0
    return Response.objects.filter(item__course=course, status=Response.Status.NEEDS_REVIEW).count()


def review_queue_counts(*, user: UserLike, course: Course) -> list[ItemReviewCount]:
    """Per item of the course with responses waiting for review, how many wait, in the
    course's item order. Course staff only: anyone else gets an empty list."""
    if not course_is_staff(user=user, course=course):
        return []
    items = (
        Item.objects.filter(course=course)
        .annotate(
            waiting=Count("responses", filter=Q(responses__status=Response.Status.NEEDS_REVIEW))
        )
        .filter(waiting__gt=0)
        .order_by("pk")
    )
    return [
        ItemReviewCount(item_id=item.pk, item_label=str(item), waiting=item.waiting)
        for item in items
    ]


def review_progress(*, user: UserLike, course: Course, item: Item | None = None) -> ReviewProgress:
    """How many of the course's responses wait for review (and of ``item``, when given), and
    how many of its released responses a model graded, alone or with a teacher's review, in
    one query whatever the size of the course (see :class:`ReviewProgress`).

    Course staff only: anyone else gets zeros, as if nothing had been graded.
    """
    if not course_is_staff(user=user, course=course):
        return ReviewProgress(
            waiting=0,
            item_waiting=0 if item is not None else None,
            model_released=0,
            model_graded_released=0,
        )
    # A response "went through a model" when a model grade is in its history: the grade
    # fields hold the latest grade only, a teacher's once one reviewed it.
    model_graded = Exists(
        ResponseGrade.objects.filter(
            response=OuterRef("pk"), grade_source=Response.GradeSource.MODEL
        )
    )
    waiting = Q(status=Response.Status.NEEDS_REVIEW)
    released = Q(released=True)
    aggregates = {
        "waiting": Count("pk", filter=waiting),
        "model_released": Count("pk", filter=released & Q(grade_source=Response.GradeSource.MODEL)),
        "model_graded_released": Count(
            "pk",
            filter=released & (Q(model_graded=True) | Q(grade_source=Response.GradeSource.MODEL)),
        ),
    }
    if item is not None:
        aggregates["item_waiting"] = Count("pk", filter=waiting & Q(item_id=item.pk))
    counts = (
        Response.objects.filter(item__course=course)
        .annotate(model_graded=model_graded)
        .aggregate(**aggregates)
    )
    return ReviewProgress(
        waiting=counts["waiting"],
        item_waiting=counts.get("item_waiting"),
        model_released=counts["model_released"],
        model_graded_released=counts["model_graded_released"],
    )


def review_neighbours(
    *, user: UserLike, course: Course, response: Response, item: Item | None = None
) -> ReviewNeighbours:
    """The waiting responses just before and just after ``response`` in the queue's order (of
    ``item`` only, when given), in two queries: what the review page's "previous" and "next"
    links (and keys) lead to. ``response`` need not wait any more (it was just graded): its
    place in the order is kept by its priority, creation time and id.

    Course staff only: anyone else gets no neighbours.
    """
    if not course_is_staff(user=user, course=course):
        return ReviewNeighbours(previous_id=None, next_id=None)
    queue = review_queue(user=user, course=course, item=item).exclude(pk=response.pk)
    priority, created_at = response.review_priority, response.created_at
    # Same priority: the older (then the lower id) comes first.
    later_same = Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=response.pk)
    earlier_same = Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=response.pk)
    if priority is None:
        # Without a priority it is among the last: after it only others without one.
        after = Q(review_priority__isnull=True) & later_same
        before = Q(review_priority__isnull=False) | (Q(review_priority__isnull=True) & earlier_same)
    else:
        after = (
            Q(review_priority__lt=priority)
            | Q(review_priority__isnull=True)
            | (Q(review_priority=priority) & later_same)
        )
        before = Q(review_priority__gt=priority) | (Q(review_priority=priority) & earlier_same)
    following = queue.filter(after).values_list("pk", flat=True).first()
    preceding = (
        queue.filter(before)
        .order_by(F("review_priority").asc(nulls_first=True), "-created_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return ReviewNeighbours(previous_id=preceding, next_id=following)


def review_next(*, user: UserLike, course: Course, item: Item | None = None) -> Response | None:
    """The response a teacher should review next: the first in the queue of ``item`` when
    given and any of its responses still wait, else the first of the whole course's queue."""
    if item is not None:
        first = review_queue(user=user, course=course, item=item).first()
        if first is not None:
            return first
    return review_queue(user=user, course=course).first()


# --- One response --------------------------------------------------------------------------------


def response_get_for_review(
    *, user: UserLike, response_id: int, course: Course | None = None
) -> Response:
    """The response (any status) with its item, course, submission and student, if ``user`` is
    staff of its course (and it belongs to ``course``, when given); otherwise :class:`NotFound`.
    """
    response = (
        Response.objects.select_related(
            "item__course", "submission__student", "submission__assessment", "reviewed_by"
        )
        .filter(pk=response_id)
        .first()
    )
    if (
        response is None
        or (course is not None and response.item.course_id != course.pk)
        or not course_is_staff(user=user, course=response.item.course)
    ):
        raise NotFound("No such response.")
    return response


def response_for_review(
    *, user: UserLike, response_id: int, course: Course | None = None
) -> ResponseReview:
    """What the review page shows of one response: the response (as
    :func:`response_get_for_review` returns it, with the same access rule), its grade history
    oldest first, and the model's explanation made readable.

    The similar responses that the explanation names are resolved to their answers and teacher
    scores; those that are not responses of the same course (or no longer exist) are left out,
    so an explanation can never show a reviewer an answer from a course they do not teach.
    """
    response = response_get_for_review(user=user, response_id=response_id, course=course)
    history = list(
        ResponseGrade.objects.filter(response=response)
        .select_related("actor", "model_version")
        .order_by("created_at", "pk")
    )
    explanation = response.explanation if isinstance(response.explanation, dict) else {}
    return ResponseReview(
        response=response,
        history=history,
        phrases=_phrases(explanation.get("phrases")),
        similar=_similar(explanation.get("similar"), course_id=response.item.course_id),
    )


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not one (explanations are JSON written by
    another process: read them defensively)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _response_id(key: Any) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key if key > 0 else None
    if isinstance(key, str) and key.strip().isdigit():
        return int(key.strip()) or None
    return None


def _phrases(entries: Any) -> list[ExplanationPhrase]:
    if not isinstance(entries, list):
        return []
    phrases = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            continue
        weight = _number(entry.get("weight"))
        if weight is not None:
            phrases.append(ExplanationPhrase(text=entry["text"], weight=weight))
    return phrases


def _similar(entries: Any, *, course_id: int) -> list[SimilarResponse]:
    if not isinstance(entries, list):
        return []
    named = [
        (response_id, entry)
        for entry in entries
        if isinstance(entry, dict) and (response_id := _response_id(entry.get("key"))) is not None
    ]
    found = Response.objects.filter(
        pk__in={response_id for response_id, _ in named}, item__course_id=course_id
    ).in_bulk()
    similar = []
    for response_id, entry in named:
        other = found.get(response_id)
        if other is None:
            continue
        teacher_graded = other.grade_source == Response.GradeSource.TEACHER
        similar.append(
            SimilarResponse(
                response_id=other.pk,
                answer=other.answer,
                item_id=other.item_id,
                teacher_score=other.score if teacher_graded else None,
                explained_score=_number(entry.get("score")),
                similarity=_number(entry.get("similarity")),
            )
        )
    return similar
