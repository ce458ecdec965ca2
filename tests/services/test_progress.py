"""Forecasts of an assessment and explanations of a skill's estimate (worker-side, with torch)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from edu_dl.models import Course, Interaction, Item, ModelVersion, Skill
from edu_dl.selectors.mastery import student_answer_history
from edu_dl.services.courses import assessment_create, item_create, skill_create
from edu_dl.services.errors import NotFound, ValidationFailed
from edu_dl.services.mastery import MasteryEstimator
from edu_dl.services.progress import assessment_forecast, skill_explanation
from edu_dl.services.training import training_request, training_run_execute
from tests.kt_data import make_kt_course

# KT_MODEL "auto" trains the attention model when answers name their items, as here.
DEFAULT_KT_MODEL = "akt"

pytestmark = pytest.mark.django_db

User = get_user_model()
FAST = {"train_config": {"epochs": 2, "batch_size": 16, "learning_rate": 0.01}}


@pytest.fixture
def course(monkeypatch) -> Course:
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *a, **k: type("R", (), {"id": ""})())
    return make_kt_course(students=24, answers=20)


@pytest.fixture
def people(course):
    stranger = User.objects.create_user(username="stranger")
    return {
        "alice": User.objects.get(username="kt-course-student-0"),
        "bob": User.objects.get(username="kt-course-student-1"),
        "teacher": User.objects.get(username="kt-course-teacher"),
        "stranger": stranger,
    }


def train(course: Course) -> ModelVersion:
    run = training_request(kind="kt", course=course, params=FAST)
    training_run_execute(run_id=run.pk)
    return ModelVersion.objects.get(training_run=run)


def skills(course: Course) -> list[Skill]:
    return list(Skill.objects.filter(course=course).order_by("pk"))


def prior(course: Course) -> float:
    answers = Interaction.objects.filter(course=course)
    return (answers.filter(correct=True).count() + 1) / (answers.count() + 2)


def smoothed(correct: int, answers: int, prior_mean: float) -> float:
    return (correct + 4 * prior_mean) / (answers + 4)


def counts(user, course: Course, skill: Skill | None = None) -> tuple[int, int]:
    answers = Interaction.objects.filter(student=user, course=course)
    if skill is not None:
        answers = [a for a in answers if skill.pk in a.skill_ids]
    return sum(a.correct for a in answers), len(answers)


@pytest.fixture
def quiz(course):
    """Two items of existing skills, one of two skills, one with no skill (in that order)."""
    first, second = skills(course)[:2]
    items = [
        Item.objects.filter(course=course, skills=first).order_by("pk").first(),
        Item.objects.filter(course=course, skills=second).order_by("pk").first(),
        item_create(
            course=course, kind="numeric", title="Both", answer_key=2, skills=[first, second]
        ),
        item_create(course=course, kind="numeric", title="None", answer_key=3),
    ]
    return assessment_create(course=course, title="Next week", items=items)


# --- Forecast ------------------------------------------------------------------------------------


def test_without_a_model_the_forecast_is_the_smoothed_rate_of_each_items_skills(
    course, people, quiz
):
    alice = people["alice"]
    first, second = skills(course)[:2]
    m = prior(course)

    forecast = assessment_forecast(viewer=alice, student=alice, assessment=quiz)

    rate_first = smoothed(*counts(alice, course, first), m)
    rate_second = smoothed(*counts(alice, course, second), m)
    assert [item.position for item in forecast.items] == [1, 2, 3, 4]
    assert [item.probability for item in forecast.items] == pytest.approx(
        [
            rate_first,
            rate_second,
            (rate_first + rate_second) / 2,
            smoothed(*counts(alice, course), m),
        ]
    )
    assert [item.method for item in forecast.items] == [
        "smoothed success rate",
        "smoothed success rate",
        "smoothed success rate",
        "smoothed success rate (all answers: the item has no skill)",
    ]
    assert forecast.expected_correct == pytest.approx(sum(i.probability for i in forecast.items))
    assert forecast.model_version is None
    assert forecast.items[2].skill_ids == (first.pk, second.pk)


def test_with_a_model_each_item_with_known_skills_is_asked_of_the_model(course, people, quiz):
    from edu_dl.ml.kt.inference import predict_next

    train(course)
    alice = people["alice"]

    forecast = assessment_forecast(viewer=people["teacher"], student=alice, assessment=quiz)

    estimator = MasteryEstimator.for_course(course)
    sequence = estimator.sequence(student_answer_history(course_id=course.pk, student_id=alice.pk))
    queries = [
        (
            tuple(estimator.skill_index(s) for s in item.skill_ids),
            estimator.item_index(item.item_id),
        )
        for item in forecast.items[:3]
    ]
    expected = predict_next(estimator.model, sequence, queries, device="cpu")
    assert [item.probability for item in forecast.items[:3]] == pytest.approx(list(expected))
    assert [item.method for item in forecast.items] == [
        f"model v1 ({DEFAULT_KT_MODEL})",
        f"model v1 ({DEFAULT_KT_MODEL})",
        f"model v1 ({DEFAULT_KT_MODEL})",
        "smoothed success rate (all answers: the item has no skill)",
    ]
    assert forecast.model_version == 1


def test_another_student_or_a_stranger_gets_no_forecast(course, people, quiz):
    for viewer in (people["bob"], people["stranger"]):
        with pytest.raises(NotFound):
            assessment_forecast(viewer=viewer, student=people["alice"], assessment=quiz)


def test_an_unpublished_assessment_is_forecast_for_staff_only(course, people, quiz):
    quiz.is_published = False
    quiz.save()

    with pytest.raises(NotFound, match="No such assessment"):
        assessment_forecast(viewer=people["alice"], student=people["alice"], assessment=quiz)
    forecast = assessment_forecast(
        viewer=people["teacher"], student=people["alice"], assessment=quiz
    )

    assert len(forecast.items) == 4


# --- Explanation ---------------------------------------------------------------------------------


def test_without_a_model_the_explanation_is_leave_one_out_of_the_smoothed_rate(course, people):
    alice = people["alice"]
    skill = skills(course)[0]
    right, answered = counts(alice, course, skill)
    m = prior(course)
    full = smoothed(right, answered, m)

    explanation = skill_explanation(viewer=alice, student=alice, skill=skill, top=50)

    mine = [
        a
        for a in Interaction.objects.filter(student=alice, course=course).order_by(
            "timestamp", "id"
        )
        if skill.pk in a.skill_ids
    ]
    expected = {
        a.pk: full - smoothed(right - a.correct, answered - 1, m) for a in mine
    }  # every answer of the skill is among her last 50
    assert explanation.method == "leave-one-out over the last 50 answers, smoothed success rate"
    assert (explanation.probability, explanation.evidence_count) == (pytest.approx(full), answered)
    assert {i.interaction_id: i.change for i in explanation.influences} == pytest.approx(expected)
    changes = [abs(i.change) for i in explanation.influences]
    assert changes == sorted(changes, reverse=True)
    first = explanation.influences[0]
    row = Interaction.objects.get(pk=first.interaction_id)
    assert (first.item_id, first.correct, first.timestamp) == (
        row.item_id,
        row.correct,
        row.timestamp,
    )
    assert first.item_title == str(row.item)


def test_with_a_model_the_explanation_names_the_answers_that_moved_it_most(course, people):
    from edu_dl.ml.kt.inference import explain_skill

    train(course)
    alice = people["alice"]
    skill = skills(course)[2]

    explanation = skill_explanation(viewer=people["teacher"], student=alice, skill=skill, window=10)

    estimator = MasteryEstimator.for_course(course)
    history = student_answer_history(course_id=course.pk, student_id=alice.pk)
    expected = explain_skill(
        estimator.model,
        estimator.sequence(history),
        estimator.skill_index(skill.pk),
        device="cpu",
        window=10,
    )
    assert (
        explanation.method
        == f"leave-one-out over the last 10 answers, model v1 ({DEFAULT_KT_MODEL})"
    )
    assert [i.interaction_id for i in explanation.influences] == [
        history.interaction_ids[e.position] for e in expected
    ]
    assert [i.change for i in explanation.influences] == pytest.approx([e.change for e in expected])
    assert len(explanation.influences) == 5
    positions = [history.interaction_ids.index(i.interaction_id) for i in explanation.influences]
    assert min(positions) >= len(history) - 10


def test_a_skill_added_after_training_is_explained_by_the_smoothed_rate(course, people):
    train(course)
    new_skill = skill_create(course=course, name="Later")

    explanation = skill_explanation(
        viewer=people["alice"], student=people["alice"], skill=new_skill
    )

    assert explanation.method == "leave-one-out over the last 50 answers, smoothed success rate"
    assert (explanation.evidence_count, explanation.influences) == (0, [])


def test_explanations_are_refused_to_others_and_for_bad_sizes(course, people):
    skill = skills(course)[0]

    with pytest.raises(NotFound):
        skill_explanation(viewer=people["bob"], student=people["alice"], skill=skill)
    with pytest.raises(ValidationFailed, match="window must be a whole number"):
        skill_explanation(viewer=people["alice"], student=people["alice"], skill=skill, window=0)
