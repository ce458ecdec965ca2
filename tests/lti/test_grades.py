"""Assignment and Grade Services: a released grade goes to the simulator's line item with an
access token the tool obtained with a client-credentials assertion signed by its key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from edu_dl.lti.hooks import lti_grade_released
from edu_dl.lti.models import GradeSync, LtiUser, ResourceLink
from edu_dl.lti.services.grades import (
    GRADE_PASSBACK_TASK_NAME,
    PlatformUnavailable,
    lti_grade_passback,
    lti_grade_syncs_due,
)
from edu_dl.lti.tasks import grade_passback_task
from edu_dl.models import Response
from edu_dl.services.submissions import submission_create
from tests.factories import AssessmentFactory, CourseFactory, EnrollmentFactory, ItemFactory
from tests.lti.simulator import LEARNER, LaunchSpec, Person

pytestmark = pytest.mark.django_db

ALICE = Person(sub="a7c3-learner", roles=[LEARNER], given_name="Alice", family_name="Lee")
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


@pytest.fixture
def course(platform):
    """The course the platform's launches land in."""
    platform.course = CourseFactory(slug="bio101")
    platform.save()
    return platform.course


def linked_quiz(browser, course, *, items=None, **assessment_fields):
    """An assessment placed in the LMS (as deep linking does) and launched by Alice."""
    items = items or [
        ItemFactory(course=course, single_choice=True),
        ItemFactory(course=course, numeric=True),
    ]
    quiz = AssessmentFactory(course=course, items=items, **assessment_fields)
    response = browser.launch(LaunchSpec(person=ALICE, custom={"assessment_id": str(quiz.pk)}))
    assert response.status_code == 302
    return quiz


def alice():
    return LtiUser.objects.get(sub=ALICE.sub).user


def answer(quiz, student):
    single, numeric = [entry.item for entry in quiz.entries.order_by("position")]
    return submission_create(
        student=student, assessment=quiz, answers={single.pk: "a", numeric.pk: 41}
    )


def test_a_released_grade_is_posted_to_the_line_item_with_a_client_credentials_token(
    browser, simulator, course, tool_key
):
    quiz = linked_quiz(browser, course)
    submission = answer(quiz, alice())
    now = timezone.now()

    syncs = lti_grade_passback(submission=submission, now=now)

    link = ResourceLink.objects.get()
    assert [s["score"] for s in simulator.scores] == [
        {
            "scoreGiven": 1.0,
            "scoreMaximum": 2.0,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "userId": "a7c3-learner",
            "timestamp": now.isoformat(timespec="milliseconds"),
        }
    ]
    assert simulator.scores[0]["line_item"] == link.lineitem_url
    assert SCORE_SCOPE in simulator.scores[0]["token"]["scopes"].split()
    [token_request] = simulator.token_requests
    assert token_request["kid"] == tool_key.kid
    assert token_request["claims"]["iss"] == token_request["claims"]["sub"] == simulator.client_id
    assert token_request["claims"]["aud"] == simulator.token_url
    assert [(s.status, s.attempts, s.score_given, s.score_maximum) for s in syncs] == [
        (GradeSync.Status.SENT, 1, 1.0, 2.0)
    ]
    assert syncs[0].sent_at == now


def test_passback_is_safe_to_run_twice_and_reuses_its_token(browser, simulator, course):
    quiz = linked_quiz(browser, course)
    submission = answer(quiz, alice())
    lti_grade_passback(submission=submission)

    lti_grade_passback(submission=submission)

    assert len(simulator.scores) == 1
    assert len(simulator.token_requests) == 1
    assert GradeSync.objects.get().attempts == 1


def test_a_changed_grade_is_sent_again_with_the_cached_token(browser, simulator, course):
    quiz = linked_quiz(browser, course)
    submission = answer(quiz, alice())
    lti_grade_passback(submission=submission)
    Response.objects.filter(submission=submission, score=0).update(score=1)

    lti_grade_passback(submission=submission)

    assert [s["score"]["scoreGiven"] for s in simulator.scores] == [1.0, 2.0]
    assert len(simulator.token_requests) == 1


def test_the_task_takes_the_submission_id(browser, simulator, course):
    quiz = linked_quiz(browser, course)
    submission = answer(quiz, alice())

    result = grade_passback_task.apply(args=[submission.pk])

    assert result.get() == 1
    assert len(simulator.scores) == 1


def test_releasing_a_grade_sends_the_passback_after_commit(
    browser, course, sent, django_capture_on_commit_callbacks
):
    quiz = linked_quiz(browser, course)
    submission = answer(quiz, alice())
    response = submission.responses.first()

    with django_capture_on_commit_callbacks(execute=True):
        lti_grade_released(response_id=response.pk)

    assert (GRADE_PASSBACK_TASK_NAME, [submission.pk]) in sent


def test_releasing_a_grade_of_an_assessment_without_lti_link_sends_nothing(
    db, sent, django_capture_on_commit_callbacks
):
    enrollment = EnrollmentFactory()
    course = enrollment.course
    quiz = AssessmentFactory(course=course, items=[ItemFactory(course=course, numeric=True)])
    submission = submission_create(
        student=enrollment.user,
        assessment=quiz,
        answers={quiz.entries.get().item_id: 42},
    )
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        lti_grade_released(response_id=submission.responses.get().pk)

    assert [name for name, _ in sent if name.startswith("edu_dl.lti.")] == []


def test_nothing_is_sent_while_an_answer_waits_for_grading(browser, simulator, course):
    quiz = linked_quiz(
        browser,
        course,
        items=[ItemFactory(course=course, numeric=True), ItemFactory(course=course)],
    )
    numeric, essay = [entry.item for entry in quiz.entries.order_by("position")]
    submission = submission_create(
        student=alice(),
        assessment=quiz,
        answers={numeric.pk: 42, essay.pk: "Light scatters."},
    )

    assert lti_grade_passback(submission=submission) == []
    assert simulator.scores == []
    assert GradeSync.objects.count() == 0


def test_a_held_grade_waits_for_the_due_date_then_the_sweep_sends_it(browser, simulator, course):
    due = timezone.now() + timedelta(days=1)
    quiz = linked_quiz(browser, course, due_at=due, hold_grades_until_due=True)
    submission = answer(quiz, alice())

    [held] = lti_grade_passback(submission=submission)

    assert (held.status, held.not_before) == (GradeSync.Status.HELD, due)
    assert simulator.scores == []
    assert lti_grade_syncs_due(now=due - timedelta(minutes=1)) == []
    assert lti_grade_syncs_due(now=due + timedelta(minutes=1)) == [submission.pk]

    [sync] = lti_grade_passback(submission=submission, now=due + timedelta(minutes=1))

    assert sync.status == GradeSync.Status.SENT
    assert [s["score"]["scoreGiven"] for s in simulator.scores] == [1.0]


def test_a_platform_that_is_down_gets_the_score_on_a_later_try(browser, simulator, course):
    quiz = linked_quiz(browser, course)
    submission = answer(quiz, alice())
    line_item_path = ResourceLink.objects.get().lineitem_url.removeprefix(simulator.base_url)
    simulator.unavailable_paths.add(line_item_path + "/scores")

    with pytest.raises(PlatformUnavailable):
        lti_grade_passback(submission=submission)

    sync = GradeSync.objects.get()
    assert (sync.status, sync.attempts) == (GradeSync.Status.FAILED, 1)
    assert "503" in sync.error
    simulator.unavailable_paths.clear()

    lti_grade_passback(submission=submission)

    sync.refresh_from_db()
    assert (sync.status, sync.attempts, sync.error) == (GradeSync.Status.SENT, 2, "")
    assert len(simulator.scores) == 1


def test_the_task_retries_while_the_platform_is_down_then_keeps_the_error(
    browser, simulator, course
):
    quiz = linked_quiz(browser, course)
    submission = answer(quiz, alice())
    simulator.unavailable_paths.add("/token")

    result = grade_passback_task.apply(args=[submission.pk])  # eager: the retries run inline

    assert result.state == "FAILURE"
    assert isinstance(result.result, PlatformUnavailable)
    sync = GradeSync.objects.get()
    assert (sync.status, sync.attempts) == (
        GradeSync.Status.FAILED,
        1 + grade_passback_task.max_retries,
    )
    assert "/token]: 503" in sync.error
    assert simulator.scores == []


def test_a_student_who_never_came_from_the_platform_gets_nothing_sent(browser, simulator, course):
    quiz = linked_quiz(browser, course)
    local = EnrollmentFactory(course=course).user
    submission = answer(quiz, local)

    assert lti_grade_passback(submission=submission) == []
    assert simulator.scores == []


def test_only_the_latest_submission_is_sent(browser, simulator, course):
    quiz = linked_quiz(browser, course)
    first = answer(quiz, alice())
    answer(quiz, alice())

    assert lti_grade_passback(submission=first) == []
    assert simulator.scores == []
