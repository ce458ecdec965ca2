"""Handing in an assessment: the submission, one response per item, and the grades rules give.

The flow of :func:`submission_create`, in one transaction::

    check: a student of the course, the assessment published and open, every answer valid
    Submission (submitted) + one Response per item of the assessment (a missing answer is empty)
    choice / numeric / exact-text answers, and empty answers of items whose empty_answer_policy
    is "min_score" ─► graded now by rule (Response + one ResponseGrade row "rule")
        ─► Interaction (knowledge tracing) ─► on commit: the student's mastery update
        ─► grade.released webhooks of the course
    empty answers of items whose policy is "review" ─► needs_review ("empty answer")
    answers a rule cannot decide (a regular-expression key that takes longer than
    EDU_DL GRADING_REGEX_TIMEOUT_S on them) ─► needs_review, with the rule's reason
    short answers and essays ─► pending ─► on commit: the model grader's task

The model grader runs in a worker; it is sent by task name only, so that the web process never
imports its module (or torch).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Enrollment,
    Item,
    Response,
    ResponseGrade,
    Submission,
)
from edu_dl.selectors.access import course_role
from edu_dl.services.audit import audit_record
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from edu_dl.services.mastery import interaction_record_from_response, mastery_update_enqueue
from edu_dl.services.releases import grades_released
from edu_dl.services.rule_grading import (
    RuleCannotGrade,
    answer_is_empty,
    answer_validate,
    rule_grade,
)

logger = logging.getLogger(__name__)

GRADE_RESPONSES_TASK_NAME = "edu_dl.grading.grade_responses"
EMPTY_ANSWER_REASON = "empty answer"
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# How many unknown item ids an error message lists.
NAMED_IN_ERRORS = 5


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def submission_status_of(statuses: Iterable[str]) -> str:
    """The status of a submission whose responses have ``statuses``: graded when every one is
    graded, needs_review when one waits for a teacher and none is pending, else submitted."""
    present = set(statuses)
    if Response.Status.PENDING in present:
        return Submission.Status.SUBMITTED
    if Response.Status.NEEDS_REVIEW in present:
        return Submission.Status.NEEDS_REVIEW
    return Submission.Status.GRADED


@transaction.atomic
def submission_status_refresh(*, submission: Submission) -> Submission:
    """Recompute the submission's status from its responses (the model grader and the review
    services call this after they change a response); returns it, saved when it changed.

    The submission row is locked first, so two workers that grade two of its responses at the
    same time refresh one after the other and the second sees both grades. A draft stays a
    draft: it has not been handed in.
    """
    locked = Submission.objects.select_for_update().get(pk=submission.pk)
    if locked.status != Submission.Status.DRAFT:
        status = submission_status_of(locked.responses.values_list("status", flat=True))
        if status != locked.status:
            locked.status = status
            locked.save(update_fields=["status", "updated_at"])
    submission.status = locked.status
    return locked


def responses_grading_enqueue(*, response_ids: list[int]) -> None:
    """Send the responses to the model grader once the transaction commits."""
    if not response_ids:
        return
    ids = list(response_ids)

    def send() -> None:
        current_app.send_task(GRADE_RESPONSES_TASK_NAME, args=[ids])

    # robust: a broker that is down must not turn a saved submission into an error page; the
    # responses stay pending, where a sweep can find them.
    transaction.on_commit(send, robust=True)


# --- Checks --------------------------------------------------------------------------------------


def _check_idempotency_key(key: Any) -> str:
    if not isinstance(key, str):
        raise ValidationFailed("idempotency_key must be text", field="idempotency_key")
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationFailed(
            f"idempotency_key is {len(key)} characters long; "
            f"at most {IDEMPOTENCY_KEY_MAX_LENGTH} are allowed",
            field="idempotency_key",
        )
    return key


def _replayed(*, student: AbstractBaseUser, assessment: Assessment, key: str) -> Submission | None:
    """The student's submission made with ``key`` before, if any (a client's retry)."""
    if not key:
        return None
    earlier = Submission.objects.filter(student=student, idempotency_key=key).first()
    if earlier is not None and earlier.assessment_id != assessment.pk:
        raise Conflict(
            "this idempotency_key was used for another assessment; send a new key",
            field="idempotency_key",
        )
    return earlier


def assessment_check_open(*, assessment: Assessment, now: datetime) -> None:
    """Refuse an unpublished assessment (not found), one not open yet or one past its due date
    (conflict): the rule for handing in, and for saving a draft of it."""
    if not assessment.is_published:
        # Students do not see unpublished assessments: say no more than for a missing one.
        raise NotFound("No such assessment.")
    if assessment.opens_at is not None and now < assessment.opens_at:
        raise Conflict(
            f"assessment {assessment.title!r} opens at {_when(assessment.opens_at)}; "
            "it takes no submissions before then",
            field="assessment",
        )
    if assessment.due_at is not None and now > assessment.due_at:
        raise Conflict(
            f"assessment {assessment.title!r} was due at {_when(assessment.due_at)}; "
            "it takes no submissions after its due date",
            field="assessment",
        )


def _checked_answers(*, assessment: Assessment, items: list[Item], answers: Any) -> dict[int, Any]:
    """Every item's answer, validated and normalised (None where none was given)."""
    if not isinstance(answers, Mapping):
        raise ValidationFailed("answers must map item ids to answers", field="answers")
    known = {item.pk for item in items}
    bad_keys = [key for key in answers if isinstance(key, bool) or not isinstance(key, int)]
    if bad_keys:
        raise ValidationFailed(
            f"answers must be keyed by item id (a whole number), not {bad_keys[0]!r}",
            field="answers",
        )
    unknown = sorted(key for key in answers if key not in known)
    if unknown:
        named = ", ".join(str(key) for key in unknown[:NAMED_IN_ERRORS])
        more = len(unknown) - NAMED_IN_ERRORS
        raise ValidationFailed(
            f"answers name items that are not in assessment {assessment.title!r}: {named}"
            + (f" and {more} more" if more > 0 else ""),
            field="answers",
        )
    return {item.pk: answer_validate(item=item, answer=answers.get(item.pk)) for item in items}


# --- Grading what rules can grade ----------------------------------------------------------------


def _response_for(
    *, submission: Submission, item: Item, answer: Any, now: datetime
) -> tuple[Response, str]:
    """The unsaved response, graded by rule when a rule can grade it now, and the rule's note
    for its grade history ("" when it is not graded yet). An answer the rule cannot decide
    (:class:`RuleCannotGrade`) is kept as written and waits for the teacher, like an empty
    answer of an item whose policy is "review": the submission never fails because of a key."""
    response = Response(submission=submission, item=item, answer=answer)
    empty = answer_is_empty(item, answer)
    if empty and item.empty_answer_policy == Item.EmptyAnswerPolicy.REVIEW:
        response.status = Response.Status.NEEDS_REVIEW
        response.review_reason = EMPTY_ANSWER_REASON
        return response, ""
    if not empty and not item.is_rule_graded:
        response.status = Response.Status.PENDING
        return response, ""
    if empty:  # any kind: the empty_answer_policy "min_score" is a rule
        score, note = item.min_score, EMPTY_ANSWER_REASON
    else:
        try:
            grade = rule_grade(item=item, answer=answer)
        except RuleCannotGrade as cannot:
            response.status = Response.Status.NEEDS_REVIEW
            response.review_reason = cannot.reason
            return response, ""
        score, note = grade.score, grade.detail
    response.status = Response.Status.GRADED
    response.score = score
    response.grade_source = Response.GradeSource.RULE
    response.graded_at = now
    # A rule's grade is final, so it is released at once. An assessment that holds grades until
    # its due date hides released scores from students until then (see
    # edu_dl.selectors.submissions), so the grade needs no second step to appear after it.
    response.released = True
    return response, note


# --- Submitting ----------------------------------------------------------------------------------


@transaction.atomic
def submission_create(
    *,
    student: AbstractBaseUser,
    assessment: Assessment,
    answers: Mapping[int, Any],
    idempotency_key: str = "",
    now: datetime | None = None,
) -> Submission:
    """Hand in ``answers`` (item id -> answer) to ``assessment`` as ``student``.

    Refused, with nothing written: someone who is not a student of the course
    (:class:`PermissionDenied`; teachers try their quizzes elsewhere), an unpublished assessment
    (:class:`NotFound`), one not open yet or past its due date (:class:`Conflict`), an answer to
    an item the assessment does not hold or an answer that is malformed or too long
    (:class:`ValidationFailed`, naming the item). Items without an answer get an empty one.

    A retry with the same ``idempotency_key`` by the same student returns the first
    submission and writes nothing. Rule-graded and empty answers are graded at once (see the
    module's doc); the others are sent to the model grader after commit.
    """
    now = timezone.now() if now is None else now
    if timezone.is_naive(now):
        raise ValidationFailed("now must carry a time zone", field="now")
    key = _check_idempotency_key(idempotency_key)
    course = assessment.course
    if course_role(user=student, course=course) != Enrollment.Role.STUDENT:
        raise PermissionDenied(
            f"{student.get_username()!r} is not a student of {course.slug!r} "
            "and cannot hand in its assessments",
            field="student",
        )
    earlier = _replayed(student=student, assessment=assessment, key=key)
    if earlier is not None:
        return earlier
    assessment_check_open(assessment=assessment, now=now)
    items = [
        entry.item
        for entry in AssessmentItem.objects.filter(assessment=assessment)
        .select_related("item")
        .order_by("position")
    ]
    if not items:
        raise Conflict(
            f"assessment {assessment.title!r} has no items to answer", field="assessment"
        )
    checked = _checked_answers(assessment=assessment, items=items, answers=answers)

    try:
        with transaction.atomic():
            submission = Submission.objects.create(
                student=student,
                assessment=assessment,
                status=Submission.Status.SUBMITTED,
                submitted_at=now,
                idempotency_key=key,
            )
    except IntegrityError:  # the same key, sent twice at once: the other request won
        earlier = _replayed(student=student, assessment=assessment, key=key)
        if earlier is None:
            raise
        return earlier

    built = [
        _response_for(submission=submission, item=item, answer=checked[item.pk], now=now)
        for item in items
    ]
    responses = [response for response, _ in built]
    Response.objects.bulk_create(responses)
    graded = [
        (response, note) for response, note in built if response.status == Response.Status.GRADED
    ]
    ResponseGrade.objects.bulk_create(
        ResponseGrade(
            response=response,
            score=response.score,
            grade_source=response.grade_source,
            action=ResponseGrade.Action.RULE,
            released=response.released,
            note=note,
        )
        for response, note in graded
    )
    for response, _ in graded:
        interaction_record_from_response(response=response, update_mastery=False)
    if graded:
        # One update for the whole submission rather than one per answer.
        mastery_update_enqueue(student_id=student.pk, course_id=course.pk)
    grades_released(response_ids=[r.pk for r, _ in graded if r.released])
    responses_grading_enqueue(
        response_ids=[r.pk for r in responses if r.status == Response.Status.PENDING]
    )

    counts = Counter(response.status for response in responses)
    submission.status = submission_status_of(counts)
    if submission.status != Submission.Status.SUBMITTED:
        submission.save(update_fields=["status", "updated_at"])
    audit_record(
        actor=student,
        action="submission.create",
        target=submission,
        course=course,
        after={
            "assessment": assessment.pk,
            "status": submission.status,
            "responses": {status: counts[status] for status in sorted(counts)},
        },
    )
    return submission
