"""The review queue: its order, who sees it, the counts per item, and one response's review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser

from edu_dl.models import Response, ResponseGrade
from edu_dl.selectors.review import (
    ExplanationPhrase,
    ItemReviewCount,
    ReviewNeighbours,
    ReviewProgress,
    SimilarResponse,
    response_for_review,
    review_neighbours,
    review_next,
    review_progress,
    review_queue,
    review_queue_counts,
    review_queue_total,
)
from edu_dl.selectors.submissions import submission_get_for_viewer
from edu_dl.services.errors import NotFound
from edu_dl.services.review import response_accept, response_override
from edu_dl.services.submissions import submission_create
from tests.factories import EnrollmentFactory, UserFactory
from tests.review_data import SUBMITTED, model_suggests, response_of, review_course

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture
def data():
    return review_course()


def more_answers(data, count: int) -> list[Response]:
    """``count`` more students' short answers, pending, in the order they were handed in."""
    responses = []
    for number in range(count):
        student = EnrollmentFactory(
            course=data["course"], user=UserFactory(username=f"student{number}")
        ).user
        submission = submission_create(
            student=student,
            assessment=data["quiz"],
            answers={data["why"].pk: f"Answer {number}"},
            now=SUBMITTED,
        )
        responses.append(submission.responses.get(item=data["why"]))
    return responses


def created(response: Response, minutes: int) -> Response:
    """Make ``response`` look created ``minutes`` after the first answers."""
    response.created_at = SUBMITTED + timedelta(minutes=minutes)
    Response.objects.filter(pk=response.pk).update(created_at=response.created_at)
    return response


# --- The queue -----------------------------------------------------------------------------------


def test_the_queue_puts_the_highest_priority_first_then_the_oldest(data):
    # given five answers in review: priorities 0.9, 0.5 (twice, created apart), none (twice)
    first, second, third, fourth, fifth = more_answers(data, 5)
    model_suggests(created(first, 1), score=1, priority=None)
    model_suggests(created(second, 2), score=1, priority=0.5)
    model_suggests(created(third, 3), score=1, priority=0.9)
    model_suggests(created(fourth, 0), score=1, priority=0.5)
    model_suggests(created(fifth, 0), score=None, priority=None, reason="empty answer")
    # and the pending answers of alice and bob, not in the queue

    # when
    queue = review_queue(user=data["teacher"], course=data["course"])

    # then
    assert [response.pk for response in queue] == [
        third.pk,
        fourth.pk,
        second.pk,
        fifth.pk,
        first.pk,
    ]
    assert [r.pk for r in review_queue(user=data["teacher"], course=data["course"], limit=2)] == [
        third.pk,
        fourth.pk,
    ]


def test_the_queue_can_show_one_item(data):
    why = model_suggests(response_of(data, "alice"), score=2)
    choice = model_suggests(response_of(data, "bob", item="choice"), score=0)

    by_item = {
        name: [
            r.pk for r in review_queue(user=data["teacher"], course=data["course"], item=data[name])
        ]
        for name in ("why", "choice")
    }

    assert by_item == {"why": [why.pk], "choice": [choice.pk]}


def test_graded_and_pending_responses_and_other_courses_are_not_in_the_queue(data):
    waiting = model_suggests(response_of(data, "alice"), score=2)
    reviewed = model_suggests(response_of(data, "bob"), score=1)
    response_override(response=reviewed, actor=data["teacher"], score=1)
    other = review_course(slug="history", prefix="h-")
    model_suggests(response_of(other, "alice"), score=2)

    queue = review_queue(user=data["teacher"], course=data["course"])

    assert [response.pk for response in queue] == [waiting.pk]


@pytest.mark.parametrize(
    ("person", "sees"),
    [
        ("teacher", True),
        ("assistant", True),
        ("admin", True),
        ("alice", False),
        ("other_teacher", False),
        ("stranger", False),
        ("anonymous", False),
    ],
)
def test_only_course_staff_see_the_queue_and_its_counts(data, person, sees):
    # given two answers to "Why blue" and one to the choice item in review
    model_suggests(response_of(data, "alice"), score=2)
    model_suggests(response_of(data, "bob"), score=3)
    model_suggests(response_of(data, "bob", item="choice"), score=0)
    users = {
        "admin": UserFactory(username="admin", is_superuser=True),
        "anonymous": AnonymousUser(),
    }
    user = users.get(person) or data[person]

    # when
    queue = list(review_queue(user=user, course=data["course"]))
    counts = review_queue_counts(user=user, course=data["course"])
    total = review_queue_total(user=user, course=data["course"])

    # then staff see all three, counted per item in the course's item order; others nothing
    if sees:
        assert len(queue) == 3
        assert counts == [
            ItemReviewCount(item_id=data["choice"].pk, item_label="Sky colour", waiting=1),
            ItemReviewCount(item_id=data["why"].pk, item_label="Why blue", waiting=2),
        ]
        assert total == 3
    else:
        assert (queue, counts, total) == ([], [], 0)


def test_the_next_response_comes_from_the_same_item_while_one_waits(data):
    why = model_suggests(response_of(data, "alice"), score=2, priority=0.1)
    choice = model_suggests(response_of(data, "bob", item="choice"), score=0, priority=0.9)
    teacher, course = data["teacher"], data["course"]

    assert review_next(user=teacher, course=course, item=data["why"]) == why
    assert review_next(user=teacher, course=course) == choice
    response_override(response=why, actor=teacher, score=2)
    assert review_next(user=teacher, course=course, item=data["why"]) == choice
    response_override(response=choice, actor=teacher, score=0)
    assert review_next(user=teacher, course=course, item=data["why"]) is None


def model_releases(response: Response, *, score: float) -> Response:
    """Grade ``response`` by the model and release it on its own (a confident grade)."""
    Response.objects.filter(pk=response.pk).update(
        status="graded", score=score, grade_source="model", confidence=0.95, released=True
    )
    ResponseGrade.objects.create(
        response=response, score=score, grade_source="model", confidence=0.95, action="model"
    )
    return Response.objects.get(pk=response.pk)


def test_the_progress_counts_what_waits_and_what_the_models_graded_on_their_own(data):
    # given four answers released by the model alone, one accepted and one overridden by a
    # teacher after the model, one overridden with no model grade before (rule-graded choice),
    # two waiting (one to the choice item), and the other rule-graded choice answer
    extra = more_answers(data, 6)
    for response in extra[:4]:
        model_releases(response, score=3)
    teacher = data["teacher"]
    response_accept(response=model_suggests(response_of(data, "alice"), score=3), actor=teacher)
    response_override(
        response=model_suggests(response_of(data, "bob"), score=1), actor=teacher, score=2
    )
    response_override(response=response_of(data, "alice", item="choice"), actor=teacher, score=0)
    model_suggests(extra[4], score=2)
    model_suggests(response_of(data, "bob", item="choice"), score=0)

    # when
    whole = review_progress(user=teacher, course=data["course"])
    of_item = review_progress(user=teacher, course=data["course"], item=data["why"])

    # then 4 of the 6 model-graded answers released were the models' alone
    assert whole == ReviewProgress(
        waiting=2, item_waiting=None, model_released=4, model_graded_released=6
    )
    assert of_item.item_waiting == 1
    assert whole.model_share == 4 / 6


def test_the_progress_takes_one_query_and_shows_nothing_to_others(data, django_assert_num_queries):
    model_suggests(response_of(data, "alice"), score=3)
    course = data["course"]
    course_staff_known = review_progress(user=data["teacher"], course=course)  # caches the role

    with django_assert_num_queries(1):
        assert review_progress(user=data["teacher"], course=course, item=data["why"]).waiting == 1
    assert course_staff_known.model_share is None
    assert review_progress(user=data["alice"], course=course, item=data["why"]) == ReviewProgress(
        waiting=0, item_waiting=0, model_released=0, model_graded_released=0
    )


def test_the_neighbours_follow_the_queue_order_and_the_item_filter(data):
    # given in queue order: a (0.9), b (0.5, older), c (0.5, newer), d (no priority),
    # e (no priority, newer), and the choice answer (0.7) between a and b
    a, b, c, d, e = more_answers(data, 5)
    model_suggests(created(a, 5), score=1, priority=0.9)
    model_suggests(created(b, 1), score=1, priority=0.5)
    model_suggests(created(c, 2), score=1, priority=0.5)
    model_suggests(created(d, 0), score=1, priority=None)
    model_suggests(created(e, 3), score=1, priority=None)
    choice = model_suggests(response_of(data, "bob", item="choice"), score=0, priority=0.7)
    teacher, course = data["teacher"], data["course"]

    def around(response, item=None):
        found = review_neighbours(user=teacher, course=course, response=response, item=item)
        return (found.previous_id, found.next_id)

    assert [r.pk for r in review_queue(user=teacher, course=course)] == [
        a.pk,
        choice.pk,
        b.pk,
        c.pk,
        d.pk,
        e.pk,
    ]
    assert around(a) == (None, choice.pk)
    assert around(choice) == (a.pk, b.pk)
    assert around(b) == (choice.pk, c.pk)
    assert around(c) == (b.pk, d.pk)
    assert around(d) == (c.pk, e.pk)
    assert around(e) == (d.pk, None)
    assert around(b, item=data["why"]) == (a.pk, c.pk)
    # a response just graded keeps its place: its neighbours are still the ones around it
    response_override(response=c, actor=teacher, score=1)
    assert around(Response.objects.get(pk=c.pk)) == (b.pk, d.pk)
    assert review_neighbours(user=data["alice"], course=course, response=b) == ReviewNeighbours(
        previous_id=None, next_id=None
    )


# --- One response --------------------------------------------------------------------------------


def test_a_review_shows_the_history_the_phrases_and_the_similar_answers_of_the_course(data):
    # given bob's answer scored 1 by a teacher, a model-graded answer, and another course's
    teacher_graded = response_of(data, "bob")
    response_override(response=teacher_graded, actor=data["teacher"], score=1)
    [model_graded] = more_answers(data, 1)
    model_suggests(model_graded, score=2)
    Response.objects.filter(pk=model_graded.pk).update(status="graded", released=True)
    other = review_course(slug="history", prefix="h-")
    elsewhere = response_of(other, "alice")
    # and alice's answer in review, explained by phrases and those neighbours (plus junk)
    response = model_suggests(
        response_of(data, "alice"),
        score=3,
        confidence=0.55,
        explanation={
            "phrases": [
                {"text": "Rayleigh scattering", "weight": 0.8},
                {"text": "sunlight", "weight": -0.1},
                {"text": "no weight"},
                "not a phrase",
            ],
            "similar": [
                {"key": teacher_graded.pk, "score": 1, "similarity": 0.91},
                {"key": str(model_graded.pk), "score": 2, "similarity": 0.8},
                {"key": elsewhere.pk, "score": 4, "similarity": 0.99},
                {"key": 999_999, "score": 4, "similarity": 0.7},
                {"key": "asap:17", "score": 4, "similarity": 0.6},
            ],
        },
    )

    # when
    review = response_for_review(user=data["assistant"], response_id=response.pk)

    # then
    assert review.response == response
    assert (review.suggested_score, review.can_accept) == (3.0, True)
    assert [(g.action, g.score, g.confidence) for g in review.history] == [("model", 3.0, 0.55)]
    assert review.phrases == [
        ExplanationPhrase(text="Rayleigh scattering", weight=0.8),
        ExplanationPhrase(text="sunlight", weight=-0.1),
    ]
    assert review.similar == [
        SimilarResponse(
            response_id=teacher_graded.pk,
            answer="Because the sea reflects.",
            item_id=data["why"].pk,
            teacher_score=1.0,
            explained_score=1.0,
            similarity=0.91,
        ),
        SimilarResponse(
            response_id=model_graded.pk,
            answer="Answer 0",
            item_id=data["why"].pk,
            teacher_score=None,
            explained_score=2.0,
            similarity=0.8,
        ),
    ]


def test_a_graded_response_has_no_suggestion_to_accept(data):
    response = response_of(data, "alice")
    response_override(response=response, actor=data["teacher"], score=2)

    review = response_for_review(user=data["teacher"], response_id=response.pk)

    assert (review.suggested_score, review.can_accept) == (None, False)
    assert (review.phrases, review.similar) == ([], [])


@pytest.mark.parametrize("person", ["alice", "bob", "other_teacher", "stranger"])
def test_a_response_is_not_found_for_anyone_but_course_staff(data, person):
    response = model_suggests(response_of(data, "alice"), score=3)

    with pytest.raises(NotFound, match=r"No such response\."):
        response_for_review(user=data[person], response_id=response.pk)


def test_a_response_is_not_found_under_another_course_or_when_it_does_not_exist(data):
    response = model_suggests(response_of(data, "alice"), score=3)
    other = data["other_course"]
    EnrollmentFactory(course=other, user=data["teacher"], role="teacher")

    with pytest.raises(NotFound):
        response_for_review(user=data["teacher"], response_id=response.pk, course=other)
    with pytest.raises(NotFound):
        response_for_review(user=data["teacher"], response_id=999_999)


# --- A submission's page -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "opens"),
    [
        ("alice", True),
        ("teacher", True),
        ("assistant", True),
        ("bob", False),
        ("other_teacher", False),
        ("stranger", False),
    ],
)
def test_a_submission_opens_for_its_author_and_the_course_staff_only(data, person, opens):
    submission = data["submissions"]["alice"]

    if opens:
        found = submission_get_for_viewer(
            viewer=data[person], course=data["course"], submission_id=submission.pk
        )
        assert found == submission
    else:
        with pytest.raises(NotFound, match=r"No such submission\."):
            submission_get_for_viewer(
                viewer=data[person], course=data["course"], submission_id=submission.pk
            )


def test_a_submission_is_not_found_under_another_course(data):
    submission = data["submissions"]["alice"]
    EnrollmentFactory(course=data["other_course"], user=data["alice"])

    with pytest.raises(NotFound):
        submission_get_for_viewer(
            viewer=data["alice"], course=data["other_course"], submission_id=submission.pk
        )
