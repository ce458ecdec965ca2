"""A teacher's grade: accepting the model's suggestion, overriding any score, and what follows."""

from __future__ import annotations

import math
import sys

import pytest
from django.utils import timezone

from edu_dl.models import AuditEvent, Interaction, Response, ResponseGrade, Submission
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from edu_dl.services.review import response_accept, response_override, responses_accept_many
from tests.review_data import (
    GRADER_TRAINING_MODULE,
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


def state_of(response: Response) -> dict:
    """Everything a teacher's grade writes about one response."""
    response = Response.objects.get(pk=response.pk)
    return {
        "response": (
            response.status,
            response.score,
            response.grade_source,
            response.confidence,
            response.released,
            response.reviewed_by_id,
            response.graded_at,
            response.feedback,
        ),
        "history": list(
            ResponseGrade.objects.filter(response=response)
            .order_by("pk")
            .values_list("action", "score", "grade_source", "actor", "released", "note")
        ),
        "submission": Submission.objects.get(pk=response.submission_id).status,
        "audit": AuditEvent.objects.count(),
        "interactions": list(
            Interaction.objects.filter(response=response).values_list("pk", "correct")
        ),
    }


# --- Accepting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reviewer", ["teacher", "assistant"])
def test_accepting_the_suggestion_makes_it_the_teachers_released_grade(data, reviewer):
    # given alice's short answer waiting for review with the model's 3 of 4
    response = model_suggests(response_of(data, "alice"), score=3, confidence=0.6)
    actor = data[reviewer]
    before = timezone.now()

    # when
    accepted = response_accept(response=response, actor=actor, feedback="  Well explained.  ")

    # then the response holds the teacher's grade, released, and the submission is graded
    response.refresh_from_db()
    assert accepted.pk == response.pk
    assert (
        response.status,
        response.score,
        response.grade_source,
        response.confidence,
        response.released,
        response.reviewed_by,
        response.feedback,
    ) == ("graded", 3.0, "teacher", None, True, actor, "Well explained.")
    assert before <= response.graded_at <= timezone.now()
    assert response.submission.status == "graded"
    # and one "accept" row follows the model's row in the history
    assert list(
        response.grades.order_by("pk").values_list(
            "action", "score", "grade_source", "actor", "released", "note"
        )
    ) == [
        ("model", 3.0, "model", None, False, ""),
        ("accept", 3.0, "teacher", actor.pk, True, "Well explained."),
    ]


def test_accepting_is_audited_with_who_and_the_old_and_new_grade(data):
    response = model_suggests(response_of(data, "alice"), score=3)
    before = timezone.now()

    response_accept(response=response, actor=data["teacher"])

    event = AuditEvent.objects.get(action="response.accept")
    assert (event.actor, event.course, event.target_type, event.target_id) == (
        data["teacher"],
        data["course"],
        "response",
        str(response.pk),
    )
    assert event.before == {
        "status": "needs_review",
        "score": 3.0,
        "grade_source": "model",
        "released": False,
    }
    assert event.after == {
        "status": "graded",
        "score": 3.0,
        "grade_source": "teacher",
        "released": True,
    }
    assert before <= event.created_at <= timezone.now()


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        ("pending", "no suggested score to accept: it is still being graded"),
        ("no_suggestion", r"no suggested score to accept \(empty answer\)"),
        ("graded", r"is already graded \(by teacher\); override it"),
    ],
)
def test_accepting_without_a_suggestion_is_refused_and_nothing_changes(data, prepare, message):
    # given a response still pending, one in review without a score, or one already graded
    response = response_of(data, "alice")
    if prepare == "no_suggestion":
        model_suggests(response, score=None, reason="empty answer")
    elif prepare == "graded":
        response_override(response=response, actor=data["teacher"], score=2)
    unchanged = state_of(response)

    # when / then
    with pytest.raises(Conflict, match=message):
        response_accept(response=response, actor=data["teacher"])
    assert state_of(response) == unchanged


# --- Overriding ----------------------------------------------------------------------------------


def test_overriding_keeps_the_models_score_in_the_history(data):
    # given the model's suggestion of 3
    response = model_suggests(response_of(data, "alice"), score=3, confidence=0.7)

    # when the teacher gives 1.5, then changes their mind to 2
    response_override(response=response, actor=data["teacher"], score=1.5, feedback="Partly.")
    response_override(response=response, actor=data["assistant"], score=2)

    # then the response holds the last grade and the history every one, oldest first
    response.refresh_from_db()
    assert (response.status, response.score, response.grade_source, response.released) == (
        "graded",
        2.0,
        "teacher",
        True,
    )
    assert response.reviewed_by == data["assistant"]
    assert list(
        response.grades.order_by("pk").values_list("action", "score", "confidence", "actor", "note")
    ) == [
        ("model", 3.0, 0.7, None, ""),
        ("override", 1.5, None, data["teacher"].pk, "Partly."),
        ("override", 2.0, None, data["assistant"].pk, ""),
    ]
    assert list(
        AuditEvent.objects.filter(action="response.override")
        .order_by("pk")
        .values_list("before__score", "after__score", "actor")
    ) == [(3.0, 1.5, data["teacher"].pk), (1.5, 2.0, data["assistant"].pk)]


@pytest.mark.parametrize("earlier", ["pending", "needs_review", "rule", "released_rule"])
def test_any_response_of_the_course_can_be_overridden(data, earlier):
    # given a pending short answer, one in review, or a choice answer graded (and released)
    # by rule
    if earlier in {"rule", "released_rule"}:
        response = response_of(data, "bob", item="choice")
        if earlier == "rule":
            Response.objects.filter(pk=response.pk).update(released=False)
    else:
        response = response_of(data, "bob")
        if earlier == "needs_review":
            model_suggests(response, score=0)
    history = list(response.grades.values_list("action", flat=True))

    # when
    response_override(response=response, actor=data["teacher"], score=1)

    # then
    response.refresh_from_db()
    assert (response.status, response.score, response.grade_source, response.released) == (
        "graded",
        1.0,
        "teacher",
        True,
    )
    assert list(response.grades.order_by("pk").values_list("action", flat=True)) == [
        *history,
        "override",
    ]


@pytest.mark.parametrize(
    ("score", "message"),
    [
        (4.5, r"score 4\.5 is outside the scale of item 'Why blue': 0 to 4"),
        (-1, r"score -1 is outside the scale of item 'Why blue': 0 to 4"),
        (math.nan, r"score nan is outside the scale of item 'Why blue': 0 to 4"),
        (math.inf, r"score inf is outside the scale of item 'Why blue': 0 to 4"),
        ("3", r"score must be a number on the scale of item 'Why blue' \(0 to 4\), not '3'"),
        (True, r"score must be a number on the scale of item 'Why blue' \(0 to 4\), not True"),
        (None, r"score must be a number on the scale of item 'Why blue' \(0 to 4\), not None"),
    ],
)
def test_a_score_off_the_scale_is_refused_and_nothing_changes(data, sent, score, message):
    # given a response in review
    response = model_suggests(response_of(data, "alice"), score=3)
    unchanged = state_of(response)

    # when / then
    with pytest.raises(ValidationFailed, match=message) as refused:
        response_override(response=response, actor=data["teacher"], score=score)
    assert refused.value.field == "score"
    assert state_of(response) == unchanged
    assert sent == []


def test_the_scale_ends_are_allowed(data):
    alice, bob = response_of(data, "alice"), response_of(data, "bob")

    response_override(response=alice, actor=data["teacher"], score=0)
    response_override(response=bob, actor=data["teacher"], score=4)

    assert [Response.objects.get(pk=r.pk).score for r in (alice, bob)] == [0.0, 4.0]


# --- Who may -------------------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["alice", "other_teacher", "other_student", "stranger"])
@pytest.mark.parametrize("action", ["accept", "override"])
def test_only_the_courses_staff_may_grade_and_a_refusal_writes_nothing(
    data, sent, retrain_checks, django_capture_on_commit_callbacks, person, action
):
    # given a response in review, and a student of the course or someone of another course
    response = model_suggests(response_of(data, "alice"), score=3)
    unchanged = state_of(response)

    # when / then
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PermissionDenied):
        if action == "accept":
            response_accept(response=response, actor=data[person])
        else:
            response_override(response=response, actor=data[person], score=0)
    assert state_of(response) == unchanged
    assert (sent, retrain_checks) == ([], [])


# --- Knowledge tracing and retraining ------------------------------------------------------------


def test_a_corrected_score_corrects_the_interaction_instead_of_adding_one(
    data, sent, django_capture_on_commit_callbacks
):
    # given alice's answer accepted at 3 of 4 (correct: at least half the scale)
    response = model_suggests(response_of(data, "alice"), score=3)
    with django_capture_on_commit_callbacks(execute=True):
        response_accept(response=response, actor=data["teacher"])
    [(interaction_id, correct)] = Interaction.objects.filter(response=response).values_list(
        "pk", "correct"
    )

    # when the teacher corrects it to 1 (wrong)
    with django_capture_on_commit_callbacks(execute=True):
        response_override(response=response, actor=data["teacher"], score=1)

    # then the same interaction says wrong, and alice's mastery was updated after each change
    assert correct is True
    assert list(Interaction.objects.filter(response=response).values_list("pk", "correct")) == [
        (interaction_id, False)
    ]
    student_course = [data["alice"].pk, data["course"].pk]
    assert sent == [(MASTERY_TASK, student_course), (MASTERY_TASK, student_course)]


def test_a_score_on_the_same_side_updates_no_mastery(
    data, sent, django_capture_on_commit_callbacks
):
    response = model_suggests(response_of(data, "alice"), score=3)
    with django_capture_on_commit_callbacks(execute=True):
        response_accept(response=response, actor=data["teacher"])
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response_override(response=response, actor=data["teacher"], score=4)

    assert Interaction.objects.filter(response=response).count() == 1
    assert sent == []


def test_the_graders_retraining_check_runs_once_the_grade_is_committed(
    data, retrain_checks, django_capture_on_commit_callbacks
):
    response = model_suggests(response_of(data, "alice"), score=3)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response_accept(response=response, actor=data["teacher"])
        # nothing is asked before the commit
        assert retrain_checks == []
    for callback in callbacks:
        callback()

    assert retrain_checks == [(data["why"], data["teacher"])]


def test_a_failing_retraining_check_does_not_undo_the_grade(
    data, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("broker down")

    monkeypatch.setattr(sys.modules[GRADER_TRAINING_MODULE], "grader_retrain_if_due", broken)
    response = model_suggests(response_of(data, "alice"), score=3)

    with django_capture_on_commit_callbacks(execute=True):
        response_override(response=response, actor=data["teacher"], score=2)

    assert Response.objects.get(pk=response.pk).score == 2.0


def test_an_author_who_left_the_course_is_graded_without_an_interaction(data, sent):
    # given bob, whose answer waits, no longer a student of the course
    response = model_suggests(response_of(data, "bob"), score=1)
    data["course"].enrollments.filter(user=data["bob"]).delete()

    # when
    response_accept(response=response, actor=data["teacher"])

    # then the grade stands and knowledge tracing has nothing new
    assert Response.objects.get(pk=response.pk).grade_source == "teacher"
    assert not Interaction.objects.filter(response=response).exists()


# --- Accepting many ------------------------------------------------------------------------------


def test_accepting_all_shown_accepts_those_still_waiting_and_skips_the_rest(
    data, sent, retrain_checks, django_capture_on_commit_callbacks
):
    # given alice's and bob's answers in review, bob's reviewed meanwhile by the assistant
    alice = model_suggests(response_of(data, "alice"), score=3)
    bob = model_suggests(response_of(data, "bob"), score=1)
    response_override(response=bob, actor=data["assistant"], score=0)
    sent.clear()
    retrain_checks.clear()

    # when the teacher accepts both as shown
    with django_capture_on_commit_callbacks(execute=True):
        result = responses_accept_many(response_ids=[bob.pk, alice.pk], actor=data["teacher"])

    # then alice's is accepted, bob's keeps the assistant's score
    assert [response.pk for response in result.accepted] == [alice.pk]
    assert list(result.skipped) == [bob.pk]
    assert "already graded" in result.skipped[bob.pk]
    assert list(
        Response.objects.filter(pk__in=[alice.pk, bob.pk])
        .order_by("pk")
        .values_list("score", "reviewed_by")
    ) == [(3.0, data["teacher"].pk), (0.0, data["assistant"].pk)]
    assert ResponseGrade.objects.filter(response=alice, action="accept").count() == 1
    assert sent == [(MASTERY_TASK, [data["alice"].pk, data["course"].pk])]
    assert retrain_checks == [(data["why"], data["teacher"])]


def test_accepting_many_is_refused_whole_when_one_is_not_the_actors(data):
    # given a response of another course among those sent
    alice = model_suggests(response_of(data, "alice"), score=3)
    other = review_course(slug="history", prefix="h-")
    theirs = model_suggests(response_of(other, "alice"), score=2)
    count = ResponseGrade.objects.count()

    # when / then: refused, and alice's answer was not accepted either
    with pytest.raises(PermissionDenied):
        responses_accept_many(response_ids=[alice.pk, theirs.pk], actor=data["teacher"])
    with pytest.raises(NotFound, match=f"no such responses: {theirs.pk}"):
        responses_accept_many(
            response_ids=[alice.pk, theirs.pk], actor=data["teacher"], course=data["course"]
        )
    assert ResponseGrade.objects.count() == count
    assert Response.objects.get(pk=alice.pk).status == "needs_review"
