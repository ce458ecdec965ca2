"""Accepting every waiting suggestion of a course (or of one item) at or above a confidence:
exactly those, each audited like a single accept, and nothing at all when the call is refused."""

from __future__ import annotations

import math

import pytest

from edu_dl.models import AuditEvent, Response, ResponseGrade
from edu_dl.services.errors import PermissionDenied, ValidationFailed
from edu_dl.services.review import response_override, responses_accept_above
from edu_dl.services.submissions import submission_create
from tests.factories import EnrollmentFactory, UserFactory
from tests.review_data import (
    SUBMITTED,
    model_suggests,
    patch_grader_retraining,
    response_of,
    review_course,
)

pytestmark = pytest.mark.django_db

MASTERY_TASK = "edu_dl.mastery.update_student"


@pytest.fixture
def retrain_checks(monkeypatch):
    return patch_grader_retraining(monkeypatch)


@pytest.fixture
def data(sent, retrain_checks):
    built = review_course()
    sent.clear()
    return built


def answer_of(data, name: str) -> Response:
    """Another student's pending short answer to "Why blue"."""
    student = EnrollmentFactory(course=data["course"], user=UserFactory(username=name)).user
    submission = submission_create(
        student=student, assessment=data["quiz"], answers={data["why"].pk: name}, now=SUBMITTED
    )
    return submission.responses.get(item=data["why"])


@pytest.fixture
def waiting(data):
    """Answers in review: to "Why blue" at 0.95, 0.9 and 0.8999 confidence, to the choice item
    at 0.97, one without a suggestion, and one of another course at 0.99."""
    other = review_course(slug="history", prefix="h-")
    return {
        "high": model_suggests(answer_of(data, "carol"), score=4, confidence=0.95),
        "edge": model_suggests(answer_of(data, "dave"), score=2, confidence=0.9),
        "below": model_suggests(answer_of(data, "erin"), score=1, confidence=0.8999),
        "choice": model_suggests(response_of(data, "bob", item="choice"), score=0, confidence=0.97),
        "none": model_suggests(response_of(data, "alice"), score=None, reason="empty answer"),
        "elsewhere": model_suggests(response_of(other, "alice"), score=3, confidence=0.99),
    }


def state(waiting: dict[str, Response]) -> dict[str, tuple]:
    rows = {
        row["pk"]: (row["status"], row["score"], row["grade_source"], row["released"])
        for row in Response.objects.filter(pk__in=[r.pk for r in waiting.values()]).values(
            "pk", "status", "score", "grade_source", "released"
        )
    }
    return {name: rows[response.pk] for name, response in waiting.items()}


def test_it_accepts_exactly_the_suggestions_at_or_above_the_confidence(
    data, sent, waiting, django_capture_on_commit_callbacks
):
    audited = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        result = responses_accept_above(
            course=data["course"], actor=data["teacher"], min_confidence=0.9
        )

    assert sorted(r.pk for r in result.accepted) == sorted(
        waiting[name].pk for name in ("high", "edge", "choice")
    )
    assert result.skipped == {}
    assert state(waiting) == {
        "high": ("graded", 4.0, "teacher", True),
        "edge": ("graded", 2.0, "teacher", True),
        "below": ("needs_review", 1.0, "model", False),
        "choice": ("graded", 0.0, "teacher", True),
        "none": ("needs_review", None, "", False),
        "elsewhere": ("needs_review", 3.0, "model", False),
    }
    # one history row and one audit record per accepted response, by the teacher
    accepted = {waiting[name].pk for name in ("high", "edge", "choice")}
    assert {
        (row.response_id, row.actor_id, row.score)
        for row in ResponseGrade.objects.filter(action="accept")
    } == {(pk, data["teacher"].pk, Response.objects.get(pk=pk).score) for pk in accepted}
    events = AuditEvent.objects.order_by("pk")[audited:]
    assert [(e.action, int(e.target_id), e.actor_id, e.course_id) for e in events] == [
        ("response.accept", pk, data["teacher"].pk, data["course"].pk) for pk in sorted(accepted)
    ]
    assert [e.before["status"] for e in events] == ["needs_review"] * 3
    # one mastery update per student (carol, dave and bob), sent once the grades are committed
    assert sorted(args for name, args in sent if name == MASTERY_TASK) == sorted(
        [waiting[name].submission.student_id, data["course"].pk]
        for name in ("high", "edge", "choice")
    )


def test_for_one_item_it_leaves_the_other_items_alone(data, waiting):
    result = responses_accept_above(
        course=data["course"], actor=data["assistant"], min_confidence=0, item=data["why"]
    )

    assert sorted(r.pk for r in result.accepted) == sorted(
        waiting[name].pk for name in ("high", "edge", "below")
    )
    assert state(waiting)["choice"] == ("needs_review", 0.0, "model", False)


def test_a_response_reviewed_meanwhile_is_not_accepted_again(data, waiting):
    response_override(response=waiting["high"], actor=data["assistant"], score=1)
    history = ResponseGrade.objects.filter(response=waiting["high"]).count()

    result = responses_accept_above(
        course=data["course"], actor=data["teacher"], min_confidence=0.95
    )

    assert [r.pk for r in result.accepted] == [waiting["choice"].pk]
    assert state(waiting)["high"] == ("graded", 1.0, "teacher", True)
    assert ResponseGrade.objects.filter(response=waiting["high"]).count() == history


@pytest.mark.parametrize("threshold", [1.01, -0.01, 90, math.nan, math.inf, True, "0.9", None])
def test_a_threshold_that_is_not_a_share_from_0_to_1_is_refused_and_nothing_changes(
    data, sent, waiting, threshold
):
    before = (state(waiting), ResponseGrade.objects.count(), AuditEvent.objects.count())

    with pytest.raises(ValidationFailed) as refused:
        responses_accept_above(
            course=data["course"], actor=data["teacher"], min_confidence=threshold
        )

    assert refused.value.field == "min_confidence"
    assert refused.value.message == (
        f"the confidence must be a share from 0 to 1 (0% to 100%), not {threshold!r}"
    )
    assert (state(waiting), ResponseGrade.objects.count(), AuditEvent.objects.count()) == before
    assert sent == []


def test_the_ends_of_the_scale_are_allowed(data, waiting):
    none = responses_accept_above(course=data["course"], actor=data["teacher"], min_confidence=1)
    every = responses_accept_above(course=data["course"], actor=data["teacher"], min_confidence=0)

    assert none.accepted == []
    assert len(every.accepted) == 4  # all of the course's with a suggestion


@pytest.mark.parametrize("person", ["alice", "other_teacher", "stranger"])
def test_only_the_courses_staff_may_accept_and_a_refusal_writes_nothing(data, waiting, person):
    before = (state(waiting), ResponseGrade.objects.count(), AuditEvent.objects.count())

    with pytest.raises(PermissionDenied):
        responses_accept_above(course=data["course"], actor=data[person], min_confidence=0)

    assert (state(waiting), ResponseGrade.objects.count(), AuditEvent.objects.count()) == before


def test_an_item_of_another_course_is_refused_and_nothing_changes(data, waiting):
    other_item = waiting["elsewhere"].item
    before = (state(waiting), ResponseGrade.objects.count())

    with pytest.raises(ValidationFailed, match="is not an item of 'science'") as refused:
        responses_accept_above(
            course=data["course"], actor=data["teacher"], min_confidence=0, item=other_item
        )

    assert refused.value.field == "item"
    assert (state(waiting), ResponseGrade.objects.count()) == before
