"""Handing in an assessment: who may, when, what is graded at once and what goes to the grader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edu_dl.models import (
    AuditEvent,
    Enrollment,
    Interaction,
    Response,
    ResponseGrade,
    Submission,
)
from edu_dl.services.courses import assessment_create
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from edu_dl.services.review import response_override
from edu_dl.services.rule_grading import REASON_REGEX_TIMEOUT
from edu_dl.services.submissions import (
    GRADE_RESPONSES_TASK_NAME,
    submission_create,
    submission_status_refresh,
)
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    SkillFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OPENS = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DUE = OPENS + timedelta(days=7)
DURING = OPENS + timedelta(days=1)
MASTERY_TASK = "edu_dl.mastery.update_student"


@pytest.fixture
def quiz(sent):
    """A course with a teacher and a student, and an open quiz of one item of each kind."""
    course = CourseFactory(slug="science")
    skill = SkillFactory(course=course, name="Optics")
    student = EnrollmentFactory(course=course, user=UserFactory(username="alice")).user
    teacher = EnrollmentFactory(
        course=course, user=UserFactory(username="teacher"), role="teacher"
    ).user
    items = {
        "choice": ItemFactory(course=course, single_choice=True, skills=[skill]),
        "primes": ItemFactory(course=course, multiple_choice=True, max_score=2),
        "number": ItemFactory(course=course, numeric=True, skills=[skill]),
        "capital": ItemFactory(course=course, exact_text=True),
        "why": ItemFactory(course=course, title="Why blue", max_score=4),
        "essay": ItemFactory(course=course, kind="essay", reference_answer=""),
    }
    assessment = AssessmentFactory(
        course=course, title="Quiz 1", items=list(items.values()), opens_at=OPENS, due_at=DUE
    )
    return {
        "course": course,
        "assessment": assessment,
        "student": student,
        "teacher": teacher,
        "skill": skill,
        **items,
    }


def written() -> dict[str, int]:
    """Row counts of everything a submission writes."""
    return {
        model.__name__: model.objects.count()
        for model in (Submission, Response, ResponseGrade, Interaction, AuditEvent)
    }


NOTHING = {
    "Submission": 0,
    "Response": 0,
    "ResponseGrade": 0,
    "Interaction": 0,
    "AuditEvent": 0,
}


def responses_of(submission: Submission) -> dict[str, tuple]:
    return {
        response.item.title: (
            response.status,
            response.score,
            response.grade_source,
            response.released,
        )
        for response in submission.responses.select_related("item")
    }


# --- What is stored and graded -------------------------------------------------------------------


def test_a_submission_stores_a_response_per_item_and_grades_what_rules_can(quiz):
    # given answers to every item but the essay
    answers = {
        quiz["choice"].pk: "a",
        quiz["primes"].pk: ["a", "b"],
        quiz["number"].pk: "42",
        quiz["capital"].pk: " PARIS ",
        quiz["why"].pk: "Rayleigh scattering.",
    }

    # when
    submission = submission_create(
        student=quiz["student"], assessment=quiz["assessment"], answers=answers, now=DURING
    )

    # then the rule kinds are graded and released, the short answer waits for the grader,
    # and the empty essay has the minimum score by rule
    submission.refresh_from_db()
    assert (submission.status, submission.submitted_at) == ("submitted", DURING)
    assert responses_of(submission) == {
        quiz["choice"].title: ("graded", 1.0, "rule", True),
        quiz["primes"].title: ("graded", 0.0, "rule", True),
        quiz["number"].title: ("graded", 1.0, "rule", True),
        quiz["capital"].title: ("graded", 1.0, "rule", True),
        "Why blue": ("pending", None, "", False),
        quiz["essay"].title: ("graded", 0.0, "rule", True),
    }
    assert set(
        submission.responses.filter(status="graded").values_list("graded_at", flat=True)
    ) == {DURING}


def test_answers_are_stored_validated_and_text_exactly_as_written(quiz):
    # given a script in a short answer, and a number written as text
    script = "  <script>alert('owned')</script>\n<b>Blue</b>  "

    # when
    submission = submission_create(
        student=quiz["student"],
        assessment=quiz["assessment"],
        answers={quiz["why"].pk: script, quiz["number"].pk: " 42 "},
        now=DURING,
    )

    # then
    stored = dict(submission.responses.values_list("item_id", "answer"))
    assert stored[quiz["why"].pk] == script
    assert stored[quiz["number"].pk] == 42.0
    assert stored[quiz["essay"].pk] is None


def test_each_rule_grade_writes_one_grade_history_row(quiz):
    # when
    submission = submission_create(
        student=quiz["student"],
        assessment=quiz["assessment"],
        answers={quiz["choice"].pk: "b", quiz["why"].pk: "Because."},
        now=DURING,
    )

    # then every graded response has one "rule" row, the pending one none
    rows = ResponseGrade.objects.order_by("response__item_id").values_list(
        "response__item__title", "action", "score", "grade_source", "released", "actor", "note"
    )
    assert list(rows) == [
        (quiz["choice"].title, "rule", 0.0, "rule", True, None, "option 'b': wrong"),
        (quiz["primes"].title, "rule", 0.0, "rule", True, None, "empty answer"),
        (quiz["number"].title, "rule", 0.0, "rule", True, None, "empty answer"),
        (quiz["capital"].title, "rule", 0.0, "rule", True, None, "empty answer"),
        (quiz["essay"].title, "rule", 0.0, "rule", True, None, "empty answer"),
    ]
    assert submission.responses.get(item=quiz["why"]).grades.count() == 0


def test_partial_credit_is_graded_by_the_items_policy(sent):
    # given a multiple-choice item with proportional credit
    course = CourseFactory()
    student = EnrollmentFactory(course=course).user
    item = ItemFactory(
        course=course, multiple_choice=True, multiple_choice_credit="proportional", max_score=4
    )
    assessment = AssessmentFactory(course=course, items=[item])

    # when one of two correct options is picked
    submission = submission_create(student=student, assessment=assessment, answers={item.pk: ["c"]})

    # then
    response = submission.responses.get()
    assert (response.score, response.grade_source, submission.status) == (2.0, "rule", "graded")


# --- The model grader and knowledge tracing ------------------------------------------------------


def test_pending_answers_are_sent_to_the_model_grader_after_commit(
    quiz, sent, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        submission = submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers={quiz["why"].pk: "Scattering.", quiz["essay"].pk: "Light is a wave..."},
            now=DURING,
        )
        # nothing leaves before the transaction commits
        assert sent == []
    for callback in callbacks:
        callback()

    # then one message carries the pending responses' ids, in the assessment's order
    pending = list(
        submission.responses.filter(status="pending").order_by("pk").values_list("pk", flat=True)
    )
    assert len(pending) == 2
    grading = [args for name, args in sent if name == GRADE_RESPONSES_TASK_NAME]
    assert grading == [[pending]]


def test_a_submission_graded_entirely_by_rule_sends_nothing_to_the_grader(
    sent, django_capture_on_commit_callbacks
):
    # given a quiz of rule-graded items only
    course = CourseFactory()
    student = EnrollmentFactory(course=course).user
    items = [
        ItemFactory(course=course, single_choice=True),
        ItemFactory(course=course, numeric=True),
    ]
    assessment = AssessmentFactory(course=course, items=items)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        submission = submission_create(
            student=student, assessment=assessment, answers={items[0].pk: "a", items[1].pk: 42}
        )

    # then
    submission.refresh_from_db()
    assert submission.status == "graded"
    assert [name for name, _ in sent] == [MASTERY_TASK]


def test_rule_graded_answers_feed_knowledge_tracing_with_one_mastery_update(
    quiz, sent, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        submission = submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers={quiz["choice"].pk: "a", quiz["number"].pk: 41, quiz["why"].pk: "Hmm."},
            now=DURING,
        )

    # then every graded response became one interaction (the pending one not yet)
    interactions = Interaction.objects.order_by("item_id").values_list(
        "item_id", "correct", "skill_ids", "response__submission", "timestamp"
    )
    skill = quiz["skill"].pk
    assert list(interactions) == [
        (quiz["choice"].pk, True, [skill], submission.pk, DURING),
        (quiz["primes"].pk, False, [], submission.pk, DURING),
        (quiz["number"].pk, False, [skill], submission.pk, DURING),
        (quiz["capital"].pk, False, [], submission.pk, DURING),
        (quiz["essay"].pk, False, [], submission.pk, DURING),
    ]
    # and the student's mastery is updated once for the whole submission
    course = quiz["course"]
    assert [message for message in sent if message[0] == MASTERY_TASK] == [
        (MASTERY_TASK, [quiz["student"].pk, course.pk])
    ]


# --- Empty answers -------------------------------------------------------------------------------


def test_an_empty_answer_with_the_review_policy_waits_for_the_teacher(
    sent, django_capture_on_commit_callbacks
):
    # given an essay whose empty answers go to review, and a numeric item
    course = CourseFactory()
    student = EnrollmentFactory(course=course).user
    essay = ItemFactory(course=course, kind="essay", empty_answer_policy="review")
    number = ItemFactory(course=course, numeric=True)
    assessment = AssessmentFactory(course=course, items=[essay, number])

    # when the essay is left blank
    with django_capture_on_commit_callbacks(execute=True):
        submission = submission_create(
            student=student, assessment=assessment, answers={essay.pk: "   ", number.pk: 42}
        )

    # then it waits for review without a score or a grade row, and nothing goes to the grader
    response = submission.responses.get(item=essay)
    assert (response.status, response.score, response.review_reason, response.answer) == (
        "needs_review",
        None,
        "empty answer",
        "   ",
    )
    assert response.grades.count() == 0
    assert Submission.objects.get().status == "needs_review"
    assert [name for name, _ in sent] == [MASTERY_TASK]


def test_an_empty_rule_graded_answer_with_the_review_policy_is_not_graded(sent):
    course = CourseFactory()
    student = EnrollmentFactory(course=course).user
    item = ItemFactory(course=course, single_choice=True, empty_answer_policy="review")
    assessment = AssessmentFactory(course=course, items=[item])

    submission = submission_create(student=student, assessment=assessment, answers={})

    assert list(submission.responses.values_list("status", "score")) == [("needs_review", None)]
    assert Interaction.objects.count() == 0


# --- Answers a rule cannot decide ----------------------------------------------------------------


def test_an_answer_a_regex_key_cannot_decide_in_time_waits_for_the_teacher(
    sent, django_capture_on_commit_callbacks
):
    # given a regex item whose key backtracks exponentially on a long run of "a"s, a numeric
    # item, and a student who answers both
    course = CourseFactory()
    student = EnrollmentFactory(course=course).user
    pattern = ItemFactory(
        course=course, exact_text=True, text_match="regex", answer_key=r"(a|aa)+b", max_score=2
    )
    number = ItemFactory(course=course, numeric=True)
    assessment = AssessmentFactory(course=course, items=[pattern, number])
    long_answer = "a" * 5000

    # when the student submits
    with django_capture_on_commit_callbacks(execute=True):
        submission = submission_create(
            student=student,
            assessment=assessment,
            answers={pattern.pk: long_answer, number.pk: 42},
            now=DURING,
        )

    # then the submission is taken, the answer is kept exactly as written and waits for the
    # teacher with the reason, without a score, a grade row or an interaction
    response = submission.responses.get(item=pattern)
    assert (
        response.status,
        response.score,
        response.grade_source,
        response.released,
        response.review_reason,
        response.answer,
    ) == ("needs_review", None, "", False, REASON_REGEX_TIMEOUT, long_answer)
    assert response.grades.count() == 0
    assert list(Interaction.objects.values_list("item_id", flat=True)) == [number.pk]
    # and the other answer is graded by rule as ever; nothing goes to the model grader
    assert submission.responses.get(item=number).status == "graded"
    assert Submission.objects.get().status == "needs_review"
    assert [name for name, _ in sent] == [MASTERY_TASK]


def test_a_teacher_grades_the_answer_the_regex_key_could_not(sent):
    # given an answer sent to the teacher because the key timed out on it
    course = CourseFactory()
    student = EnrollmentFactory(course=course).user
    teacher = EnrollmentFactory(course=course, role="teacher").user
    pattern = ItemFactory(
        course=course, exact_text=True, text_match="regex", answer_key=r"(a|aa)+b", max_score=2
    )
    assessment = AssessmentFactory(course=course, items=[pattern])
    submission = submission_create(
        student=student, assessment=assessment, answers={pattern.pk: "a" * 5000}, now=DURING
    )
    response = submission.responses.get()

    # when the teacher scores it
    response_override(response=response, actor=teacher, score=0)

    # then it is graded and released, and the submission with it
    response.refresh_from_db()
    assert (response.status, response.score, response.grade_source, response.released) == (
        "graded",
        0.0,
        "teacher",
        True,
    )
    assert Submission.objects.get().status == "graded"


# --- Idempotency ---------------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_first_submission_and_writes_nothing(
    quiz, sent, django_capture_on_commit_callbacks
):
    # given a submission made with a key
    answers = {quiz["choice"].pk: "a", quiz["why"].pk: "Scattering."}
    with django_capture_on_commit_callbacks(execute=True):
        first = submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers=answers,
            idempotency_key="retry-1",
            now=DURING,
        )
    before, messages = written(), len(sent)

    # when the client retries, even after the due date
    with django_capture_on_commit_callbacks(execute=True):
        again = submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers=answers,
            idempotency_key="retry-1",
            now=DUE + timedelta(hours=1),
        )

    # then
    assert again.pk == first.pk
    assert written() == before
    assert len(sent) == messages


def test_an_idempotency_key_reused_for_another_assessment_is_refused(quiz):
    # given
    other = assessment_create(course=quiz["course"], title="Quiz 2", items=[quiz["choice"]])
    submission_create(
        student=quiz["student"],
        assessment=quiz["assessment"],
        answers={},
        idempotency_key="k",
        now=DURING,
    )
    before = written()

    # when
    with pytest.raises(Conflict) as error:
        submission_create(
            student=quiz["student"], assessment=other, answers={}, idempotency_key="k"
        )

    # then
    assert error.value.field == "idempotency_key"
    assert written() == before


def test_without_a_key_each_call_is_a_new_submission(quiz):
    for _ in range(2):
        submission_create(
            student=quiz["student"], assessment=quiz["assessment"], answers={}, now=DURING
        )

    assert Submission.objects.count() == 2


# --- Refused -------------------------------------------------------------------------------------


def test_a_user_not_enrolled_in_the_course_is_refused(quiz):
    stranger = UserFactory(username="mallory")

    with pytest.raises(PermissionDenied) as error:
        submission_create(student=stranger, assessment=quiz["assessment"], answers={})

    assert error.value.message == (
        "'mallory' is not a student of 'science' and cannot hand in its assessments"
    )
    assert written() == NOTHING


@pytest.mark.parametrize("role", [Enrollment.Role.TEACHER, Enrollment.Role.ASSISTANT])
def test_course_staff_cannot_submit_as_a_student(quiz, role):
    member = EnrollmentFactory(course=quiz["course"], role=role).user

    with pytest.raises(PermissionDenied):
        submission_create(
            student=member, assessment=quiz["assessment"], answers={quiz["choice"].pk: "a"}
        )

    assert written() == NOTHING


def test_a_student_of_another_course_is_refused(quiz):
    outsider = EnrollmentFactory(course=CourseFactory()).user

    with pytest.raises(PermissionDenied):
        submission_create(student=outsider, assessment=quiz["assessment"], answers={})

    assert written() == NOTHING


def test_an_unpublished_assessment_is_not_found(quiz):
    course = quiz["course"]
    draft = AssessmentFactory(course=course, items=[quiz["choice"]], is_published=False)

    with pytest.raises(NotFound):
        submission_create(student=quiz["student"], assessment=draft, answers={})

    assert written() == NOTHING


def test_an_assessment_is_refused_before_it_opens(quiz):
    with pytest.raises(Conflict) as error:
        submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers={},
            now=OPENS - timedelta(minutes=1),
        )

    assert error.value.message == (
        "assessment 'Quiz 1' opens at 2026-03-02 08:00 UTC; it takes no submissions before then"
    )
    assert written() == NOTHING


def test_an_assessment_is_refused_after_its_due_date_and_taken_at_it(quiz):
    # when one second late
    with pytest.raises(Conflict) as error:
        submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers={},
            now=DUE + timedelta(seconds=1),
        )

    # then refused, saying when it was due
    assert error.value.message == (
        "assessment 'Quiz 1' was due at 2026-03-09 08:00 UTC; "
        "it takes no submissions after its due date"
    )
    assert written() == NOTHING
    # and exactly on time it is taken
    submission_create(student=quiz["student"], assessment=quiz["assessment"], answers={}, now=DUE)
    assert Submission.objects.count() == 1


def test_answers_to_items_outside_the_assessment_are_named_and_nothing_is_written(quiz):
    other_item = ItemFactory(course=quiz["course"])

    with pytest.raises(ValidationFailed) as error:
        submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers={quiz["choice"].pk: "a", other_item.pk: "x", 999_999: "y"},
            now=DURING,
        )

    assert error.value.message == (
        f"answers name items that are not in assessment 'Quiz 1': {other_item.pk}, 999999"
    )
    assert written() == NOTHING


def test_answers_must_be_keyed_by_item_id(quiz):
    with pytest.raises(ValidationFailed) as error:
        submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers={str(quiz["choice"].pk): "a"},
            now=DURING,
        )

    assert error.value.message == (
        f"answers must be keyed by item id (a whole number), not '{quiz['choice'].pk}'"
    )
    assert written() == NOTHING


def test_one_bad_answer_refuses_the_whole_submission(quiz):
    # given good answers and one unknown option
    answers = {quiz["number"].pk: 42, quiz["why"].pk: "Fine.", quiz["choice"].pk: "z"}

    # when
    with pytest.raises(ValidationFailed) as error:
        submission_create(
            student=quiz["student"], assessment=quiz["assessment"], answers=answers, now=DURING
        )

    # then
    assert error.value.message == (
        f"the answer to item {quiz['choice'].pk} ({quiz['choice'].title}) "
        "names an unknown option 'z'"
    )
    assert written() == NOTHING


def test_an_answer_of_exactly_the_size_limit_is_taken_and_one_longer_refused(quiz):
    # when one character over the limit
    with pytest.raises(ValidationFailed) as error:
        submission_create(
            student=quiz["student"],
            assessment=quiz["assessment"],
            answers={quiz["essay"].pk: "e" * 20001},
            now=DURING,
        )

    # then refused, naming the limit and the length, and nothing is written
    assert "is 20001 characters long; at most 20000 characters are allowed" in error.value.message
    assert written() == NOTHING

    # and exactly at the limit it is taken
    submission = submission_create(
        student=quiz["student"],
        assessment=quiz["assessment"],
        answers={quiz["essay"].pk: "e" * 20000},
        now=DURING,
    )
    assert len(submission.responses.get(item=quiz["essay"]).answer) == 20000


def test_an_assessment_without_items_takes_no_submission(sent):
    course = CourseFactory()
    student = EnrollmentFactory(course=course).user
    empty = AssessmentFactory(course=course, title="Empty")

    with pytest.raises(Conflict, match="assessment 'Empty' has no items to answer"):
        submission_create(student=student, assessment=empty, answers={})

    assert written() == NOTHING


# --- Audit and status ----------------------------------------------------------------------------


def test_a_submission_is_recorded_in_the_audit_trail(quiz):
    submission = submission_create(
        student=quiz["student"],
        assessment=quiz["assessment"],
        answers={quiz["why"].pk: "Scattering."},
        now=DURING,
    )

    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.course, event.target_type, event.target_id) == (
        quiz["student"],
        "submission.create",
        quiz["course"],
        "submission",
        str(submission.pk),
    )
    assert event.after == {
        "assessment": quiz["assessment"].pk,
        "status": "submitted",
        "responses": {"graded": 5, "pending": 1},
    }


def test_submission_status_refresh_follows_the_responses(quiz):
    # given a submission with one pending short answer
    submission = submission_create(
        student=quiz["student"],
        assessment=quiz["assessment"],
        answers={quiz["why"].pk: "Scattering."},
        now=DURING,
    )
    pending = submission.responses.get(status="pending")

    # when the grader sends it to review, then a teacher grades it
    Response.objects.filter(pk=pending.pk).update(status="needs_review")
    after_review = submission_status_refresh(submission=submission).status
    Response.objects.filter(pk=pending.pk).update(status="graded", score=3)
    after_grade = submission_status_refresh(submission=submission).status

    # then
    assert (after_review, after_grade) == ("needs_review", "graded")
    submission.refresh_from_db()
    assert submission.status == "graded"


def test_submission_status_refresh_leaves_a_draft_alone(quiz):
    draft = Submission.objects.create(student=quiz["student"], assessment=quiz["assessment"])

    assert submission_status_refresh(submission=draft).status == "draft"
