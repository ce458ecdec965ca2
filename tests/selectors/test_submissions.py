"""Who sees which score of a submission, and when: released grades, held grades, staff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser

from edu_dl.models import Response
from edu_dl.selectors.submissions import (
    ResponseView,
    assessment_grades_held,
    response_visible_score,
    responses_for_student_view,
)
from edu_dl.services.submissions import submission_create
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
BEFORE_DUE = DUE - timedelta(days=1)
AFTER_DUE = DUE + timedelta(seconds=1)
SCRIPT = "<script>alert('owned')</script> <b>Blue</b> "


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *args, **kwargs: None)


def handed_in(*, hold: bool):
    """Alice's submission of a quiz (a choice answered right, a short answer pending), with the
    course's teacher, another student and an outsider."""
    course = CourseFactory()
    alice = EnrollmentFactory(course=course, user=UserFactory(username="alice")).user
    bob = EnrollmentFactory(course=course, user=UserFactory(username="bob")).user
    teacher = EnrollmentFactory(course=course, role="teacher").user
    assistant = EnrollmentFactory(course=course, role="assistant").user
    outsider = EnrollmentFactory(course=CourseFactory(), role="teacher").user
    choice = ItemFactory(course=course, single_choice=True, title="Sky", max_score=2)
    why = ItemFactory(course=course, title="Why")
    assessment = AssessmentFactory(
        course=course,
        items=[why, choice],
        opens_at=OPENS,
        due_at=DUE,
        hold_grades_until_due=hold,
    )
    submission = submission_create(
        student=alice,
        assessment=assessment,
        answers={choice.pk: "a", why.pk: SCRIPT},
        now=OPENS + timedelta(hours=1),
    )
    return {
        "submission": submission,
        "choice": submission.responses.get(item=choice),
        "why": submission.responses.get(item=why),
        "alice": alice,
        "bob": bob,
        "teacher": teacher,
        "assistant": assistant,
        "outsider": outsider,
    }


def test_a_student_sees_their_released_rule_grade_at_once():
    quiz = handed_in(hold=False)

    score = response_visible_score(response=quiz["choice"], viewer=quiz["alice"], now=BEFORE_DUE)

    assert score == 2.0


def test_a_held_grade_is_hidden_from_the_student_until_the_due_date():
    # given a quiz that holds grades until it is due, graded by rule when handed in
    quiz = handed_in(hold=True)
    response = quiz["choice"]
    assert (response.released, response.score) == (True, 2.0)

    # when alice looks before and after the due date
    before = response_visible_score(response=response, viewer=quiz["alice"], now=BEFORE_DUE)
    at_due = response_visible_score(response=response, viewer=quiz["alice"], now=DUE)
    after = response_visible_score(response=response, viewer=quiz["alice"], now=AFTER_DUE)

    # then she sees it only once it is due
    assert (before, at_due, after) == (None, 2.0, 2.0)


@pytest.mark.parametrize("person", ["teacher", "assistant"])
def test_course_staff_see_held_scores(person):
    quiz = handed_in(hold=True)

    score = response_visible_score(response=quiz["choice"], viewer=quiz[person], now=BEFORE_DUE)

    assert score == 2.0


@pytest.mark.parametrize("person", ["bob", "outsider"])
def test_other_people_see_no_score(person):
    quiz = handed_in(hold=False)

    score = response_visible_score(response=quiz["choice"], viewer=quiz[person], now=AFTER_DUE)

    assert score is None
    assert (
        responses_for_student_view(
            student=quiz[person], submission=quiz["submission"], now=AFTER_DUE
        )
        == []
    )


def test_anonymous_sees_nothing():
    quiz = handed_in(hold=False)

    assert response_visible_score(response=quiz["choice"], viewer=AnonymousUser()) is None
    assert responses_for_student_view(student=AnonymousUser(), submission=quiz["submission"]) == []


def test_an_unreleased_score_is_hidden_from_the_student_but_not_from_the_teacher():
    # given the model graded the short answer without releasing it
    quiz = handed_in(hold=False)
    Response.objects.filter(pk=quiz["why"].pk).update(
        status="graded", score=0.5, grade_source="model", feedback="Say why.", released=False
    )
    response = Response.objects.get(pk=quiz["why"].pk)

    # then
    assert response_visible_score(response=response, viewer=quiz["alice"]) is None
    assert response_visible_score(response=response, viewer=quiz["teacher"]) == 0.5


def test_a_former_student_no_longer_sees_their_scores():
    quiz = handed_in(hold=False)
    quiz["alice"].edu_enrollments.all().delete()
    alice = type(quiz["alice"]).objects.get(pk=quiz["alice"].pk)  # no cached role

    assert response_visible_score(response=quiz["choice"], viewer=alice) is None
    assert responses_for_student_view(student=alice, submission=quiz["submission"]) == []


def test_the_student_view_lists_answers_verbatim_in_order_and_hides_held_scores():
    quiz = handed_in(hold=True)

    views = responses_for_student_view(
        student=quiz["alice"], submission=quiz["submission"], now=BEFORE_DUE
    )

    why, choice = quiz["why"], quiz["choice"]
    assert views == [
        ResponseView(
            response_id=why.pk,
            item_id=why.item_id,
            position=1,
            item_title="Why",
            item_kind="short_answer",
            answer=SCRIPT,
            status="pending",
            score_visible=False,
            score=None,
            min_score=0.0,
            max_score=1.0,
            feedback="",
            options=[],
        ),
        ResponseView(
            response_id=choice.pk,
            item_id=choice.item_id,
            position=2,
            item_title="Sky",
            item_kind="single_choice",
            answer="a",
            status="graded",
            score_visible=False,
            score=None,
            min_score=0.0,
            max_score=2.0,
            feedback="",
            options=[{"id": "a", "text": "Blue"}, {"id": "b", "text": "Green"}],
        ),
    ]


def test_the_student_view_shows_released_scores_after_the_due_date():
    quiz = handed_in(hold=True)

    views = responses_for_student_view(
        student=quiz["alice"], submission=quiz["submission"], now=AFTER_DUE
    )

    assert [(view.item_title, view.score_visible, view.score) for view in views] == [
        ("Why", False, None),
        ("Sky", True, 2.0),
    ]


def test_the_teacher_view_of_a_submission_shows_held_scores():
    quiz = handed_in(hold=True)

    views = responses_for_student_view(
        student=quiz["teacher"], submission=quiz["submission"], now=BEFORE_DUE
    )

    assert [(view.item_title, view.score) for view in views] == [("Why", None), ("Sky", 2.0)]


def test_assessment_grades_held_only_with_a_hold_and_a_due_date_ahead():
    course = CourseFactory()
    held = AssessmentFactory(course=course, due_at=DUE, hold_grades_until_due=True)
    open_book = AssessmentFactory(course=course, due_at=DUE)

    assert assessment_grades_held(assessment=held, now=BEFORE_DUE) is True
    assert assessment_grades_held(assessment=held, now=AFTER_DUE) is False
    assert assessment_grades_held(assessment=open_book, now=BEFORE_DUE) is False
