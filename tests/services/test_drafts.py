"""A student's drafts: saved without handing in, checked like a submission, replaced, discarded,
and deleted when handed in (in the same transaction)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edu_dl.models import AssessmentDraft, Submission
from edu_dl.services.drafts import draft_answers, draft_discard, draft_save, draft_submit
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OPENS = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DUE = OPENS + timedelta(days=7)
DURING = OPENS + timedelta(days=1)


@pytest.fixture
def quiz(sent):
    """An open quiz of a choice, a multiple choice, a numeric and an essay item; a student, a
    second student and a teacher of its course; a stranger."""
    course = CourseFactory(slug="science")
    items = {
        "choice": ItemFactory(course=course, single_choice=True),
        "primes": ItemFactory(course=course, multiple_choice=True),
        "number": ItemFactory(course=course, numeric=True, title="Six sevens"),
        "essay": ItemFactory(course=course, kind="essay", reference_answer=""),
    }
    assessment = AssessmentFactory(
        course=course, title="Quiz 1", items=list(items.values()), opens_at=OPENS, due_at=DUE
    )
    return {
        "course": course,
        "assessment": assessment,
        "items": items,
        "alice": EnrollmentFactory(course=course, user=UserFactory(username="alice")).user,
        "bob": EnrollmentFactory(course=course, user=UserFactory(username="bob")).user,
        "teacher": EnrollmentFactory(
            course=course, user=UserFactory(username="teacher"), role="teacher"
        ).user,
        "stranger": UserFactory(username="stranger"),
    }


def drafts() -> list[tuple[str, int, dict]]:
    return [
        (draft.student.username, draft.assessment_id, draft.answers)
        for draft in AssessmentDraft.objects.select_related("student").order_by("pk")
    ]


# --- Saving --------------------------------------------------------------------------------------


def test_a_draft_keeps_the_answers_as_given_and_leaves_empty_ones_out(quiz):
    items = quiz["items"]
    draft = draft_save(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={
            items["choice"].pk: "a",
            items["primes"].pk: [],
            items["number"].pk: "4.50",
            items["essay"].pk: "<script>alert(1)</script>",
        },
        now=DURING,
    )

    assert draft.answers == {
        str(items["choice"].pk): "a",
        str(items["number"].pk): "4.50",
        str(items["essay"].pk): "<script>alert(1)</script>",
    }
    assert draft_answers(draft) == {
        items["choice"].pk: "a",
        items["number"].pk: "4.50",
        items["essay"].pk: "<script>alert(1)</script>",
    }
    assert Submission.objects.count() == 0


def test_saving_again_replaces_the_draft(quiz):
    items = quiz["items"]
    first = draft_save(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["choice"].pk: "a"},
        now=DURING,
    )

    second = draft_save(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["number"].pk: "42"},
        now=DURING,
    )

    assert second.pk == first.pk
    assert drafts() == [("alice", quiz["assessment"].pk, {str(items["number"].pk): "42"})]


def test_a_draft_may_leave_every_question_unanswered(quiz):
    draft = draft_save(student=quiz["alice"], assessment=quiz["assessment"], answers={}, now=DURING)

    assert draft.answers == {}


def test_a_malformed_answer_is_refused_naming_its_item_and_the_draft_is_kept(quiz):
    items = quiz["items"]
    draft_save(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["number"].pk: "42"},
        now=DURING,
    )

    with pytest.raises(ValidationFailed) as refused:
        draft_save(
            student=quiz["alice"],
            assessment=quiz["assessment"],
            answers={items["choice"].pk: "a", items["number"].pk: "4,5"},
            now=DURING,
        )

    assert refused.value.extra == {"item_id": items["number"].pk}
    assert refused.value.message == (
        f"the answer to item {items['number'].pk} (Six sevens) '4,5' is not a number"
    )
    assert drafts() == [("alice", quiz["assessment"].pk, {str(items["number"].pk): "42"})]


def test_an_item_outside_the_assessment_is_refused(quiz):
    elsewhere = ItemFactory(course=quiz["course"], single_choice=True)

    with pytest.raises(ValidationFailed) as refused:
        draft_save(
            student=quiz["alice"],
            assessment=quiz["assessment"],
            answers={elsewhere.pk: "a"},
            now=DURING,
        )

    assert refused.value.message == (
        f"answers name item {elsewhere.pk}, which is not in assessment 'Quiz 1'"
    )
    assert drafts() == []


def test_a_too_long_answer_is_refused(quiz, settings):
    settings.EDU_DL = {**getattr(settings, "EDU_DL", {}), "GRADING_MAX_ANSWER_CHARS": 10}
    essay = quiz["items"]["essay"]

    with pytest.raises(ValidationFailed) as refused:
        draft_save(
            student=quiz["alice"],
            assessment=quiz["assessment"],
            answers={essay.pk: "x" * 11},
            now=DURING,
        )

    assert refused.value.extra == {"item_id": essay.pk}
    assert drafts() == []


@pytest.mark.parametrize("person", ["teacher", "stranger"])
def test_only_students_of_the_course_keep_drafts(quiz, person):
    with pytest.raises(PermissionDenied):
        draft_save(student=quiz[person], assessment=quiz["assessment"], answers={}, now=DURING)

    assert drafts() == []


@pytest.mark.parametrize(
    ("now", "message"),
    [
        (OPENS - timedelta(minutes=1), "opens at"),
        (DUE + timedelta(minutes=1), "was due at"),
    ],
)
def test_a_closed_assessment_takes_no_draft(quiz, now, message):
    with pytest.raises(Conflict) as refused:
        draft_save(student=quiz["alice"], assessment=quiz["assessment"], answers={}, now=now)

    assert message in refused.value.message
    assert drafts() == []


def test_an_unpublished_assessment_takes_no_draft(quiz):
    hidden = AssessmentFactory(
        course=quiz["course"], items=[quiz["items"]["choice"]], is_published=False
    )

    with pytest.raises(NotFound):
        draft_save(student=quiz["alice"], assessment=hidden, answers={}, now=DURING)

    assert drafts() == []


def test_an_assessment_without_items_takes_no_draft(quiz):
    empty = AssessmentFactory(course=quiz["course"], title="Empty")

    with pytest.raises(Conflict):
        draft_save(student=quiz["alice"], assessment=empty, answers={}, now=DURING)

    assert drafts() == []


# --- Discarding ----------------------------------------------------------------------------------


def test_discarding_deletes_only_my_draft(quiz):
    for student in ("alice", "bob"):
        draft_save(student=quiz[student], assessment=quiz["assessment"], answers={}, now=DURING)

    assert draft_discard(student=quiz["alice"], assessment=quiz["assessment"]) is True
    assert draft_discard(student=quiz["alice"], assessment=quiz["assessment"]) is False

    assert drafts() == [("bob", quiz["assessment"].pk, {})]


# --- Handing in ----------------------------------------------------------------------------------


def test_handing_in_creates_the_submission_and_deletes_the_draft(quiz):
    items = quiz["items"]
    draft_save(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["choice"].pk: "a"},
        now=DURING,
    )
    draft_save(student=quiz["bob"], assessment=quiz["assessment"], answers={}, now=DURING)

    submission = draft_submit(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["choice"].pk: "a", items["number"].pk: "42"},
        idempotency_key="key-1",
        now=DURING,
    )

    assert submission.student == quiz["alice"]
    assert dict(submission.responses.values_list("item_id", "answer")) == {
        items["choice"].pk: "a",
        items["primes"].pk: None,
        items["number"].pk: 42.0,
        items["essay"].pk: None,
    }
    assert drafts() == [("bob", quiz["assessment"].pk, {})]


def test_a_retry_with_the_same_key_hands_in_once_and_keeps_a_newer_draft(quiz):
    items = quiz["items"]
    first = draft_submit(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["choice"].pk: "a"},
        idempotency_key="key-1",
        now=DURING,
    )
    draft_save(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["choice"].pk: "b"},
        now=DURING,
    )

    again = draft_submit(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["choice"].pk: "a"},
        idempotency_key="key-1",
        now=DURING,
    )

    assert again.pk == first.pk
    assert Submission.objects.count() == 1
    assert drafts() == [("alice", quiz["assessment"].pk, {str(items["choice"].pk): "b"})]


def test_a_refused_hand_in_keeps_the_draft_and_writes_nothing(quiz):
    items = quiz["items"]
    draft_save(
        student=quiz["alice"],
        assessment=quiz["assessment"],
        answers={items["choice"].pk: "a"},
        now=DURING,
    )

    with pytest.raises(Conflict):
        draft_submit(
            student=quiz["alice"],
            assessment=quiz["assessment"],
            answers={items["choice"].pk: "a"},
            now=DUE + timedelta(minutes=1),
        )
    with pytest.raises(ValidationFailed) as malformed:
        draft_submit(
            student=quiz["alice"],
            assessment=quiz["assessment"],
            answers={items["primes"].pk: ["a", "z"]},
            now=DURING,
        )

    assert malformed.value.extra == {"item_id": items["primes"].pk}
    assert Submission.objects.count() == 0
    assert drafts() == [("alice", quiz["assessment"].pk, {str(items["choice"].pk): "a"})]


@pytest.mark.parametrize("person", ["teacher", "stranger"])
def test_only_students_hand_in(quiz, person):
    with pytest.raises(PermissionDenied):
        draft_submit(student=quiz[person], assessment=quiz["assessment"], answers={}, now=DURING)

    assert Submission.objects.count() == 0
