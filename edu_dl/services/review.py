"""A teacher's grade: accepting the model's suggestion for a response, or overriding any score.

The flow of both, in one transaction::

    check: the actor is staff of the response's course; the response row locked
    accept: the response waits for review with a suggested score   override: a score on the scale
    Response: graded by the teacher, released, reviewed_by, graded_at, feedback
        + one ResponseGrade row ("accept" / "override"; earlier rows stay: the history)
        + one audit record (old and new score, status, source, release)
    ─► the submission's status refreshed
    ─► Interaction (knowledge tracing) made or corrected ─► on commit: the student's mastery update
    ─► on commit: the grader of the item asked whether it is due for retraining (teacher grades
       are its training data)
    ─► grade.released webhooks of the course (again on every later override)

Many at once, each written as one accept: :func:`responses_accept_many` (the ids a page showed)
and :func:`responses_accept_above` (every waiting suggestion of a course at or above a confidence).

A refused call writes nothing: the actor is not staff of the course (:class:`PermissionDenied`),
there is no suggestion to accept (:class:`Conflict`), the score is not a finite number on the
item's scale (:class:`ValidationFailed`).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from edu_dl.models import Course, Enrollment, Item, ModelVersion, Response, ResponseGrade
from edu_dl.selectors.access import course_is_staff
from edu_dl.services.audit import audit_record
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from edu_dl.services.mastery import interaction_record_from_response, mastery_update_enqueue
from edu_dl.services.releases import grades_released
from edu_dl.services.submissions import submission_status_refresh

logger = logging.getLogger(__name__)

GRADER_TRAINING_MODULE = "edu_dl.services.grader_training"
FEEDBACK_MAX_LENGTH = 5000
# How many responses one "accept all shown" may accept.
ACCEPT_MANY_MAX = 200


@dataclass(frozen=True)
class AcceptManyResult:
    """What :func:`responses_accept_many` did: the responses accepted, and why each other one
    was left alone (by response id)."""

    accepted: list[Response]
    skipped: dict[int, str] = field(default_factory=dict)


# --- Checks --------------------------------------------------------------------------------------


def _check_staff(*, actor: AbstractBaseUser, response: Response) -> None:
    course = response.item.course
    if not course_is_staff(user=actor, course=course):
        raise PermissionDenied(
            f"{actor.get_username()!r} is not a teacher or assistant of {course.slug!r} "
            "and cannot grade its responses",
            field="actor",
        )


def _checked_feedback(feedback: Any) -> str:
    if not isinstance(feedback, str):
        raise ValidationFailed("feedback must be text", field="feedback")
    feedback = feedback.strip()
    if len(feedback) > FEEDBACK_MAX_LENGTH:
        raise ValidationFailed(
            f"feedback is {len(feedback)} characters long; "
            f"at most {FEEDBACK_MAX_LENGTH} are allowed",
            field="feedback",
        )
    return feedback


def _checked_score(score: Any, *, item: Item) -> float:
    """``score`` as a float on the item's scale, or :class:`ValidationFailed` naming both."""
    scale = f"{item.min_score:g} to {item.max_score:g}"
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise ValidationFailed(
            f"score must be a number on the scale of item {str(item)!r} ({scale}), not {score!r}",
            field="score",
        )
    value = float(score)
    if not math.isfinite(value) or not item.min_score <= value <= item.max_score:
        raise ValidationFailed(
            f"score {value:g} is outside the scale of item {str(item)!r}: {scale}",
            field="score",
        )
    return value


def _suggestion_missing(response: Response) -> str | None:
    """Why the response has no suggestion a teacher could accept (None when it has one)."""
    if response.status == Response.Status.GRADED:
        return (
            f"response {response.pk} is already graded "
            f"(by {response.get_grade_source_display().lower()}); override it to change its score"
        )
    if response.status == Response.Status.PENDING:
        return (
            f"response {response.pk} has no suggested score to accept: it is still being "
            "graded; give it a score with override"
        )
    if response.score is None:
        reason = f" ({response.review_reason})" if response.review_reason else ""
        return (
            f"response {response.pk} has no suggested score to accept{reason}; "
            "give it a score with override"
        )
    return None


# --- Writing -------------------------------------------------------------------------------------


def _locked(response_ids: Iterable[int], *, course: Course | None = None) -> list[Response]:
    """The responses (of ``course`` only, when given), locked, in id order (two calls that lock
    the same rows take them in the same order)."""
    responses = Response.objects.filter(pk__in=list(response_ids))
    if course is not None:
        responses = responses.filter(item__course=course)
    # of=("self",): lock the responses only, not the items and courses read with them.
    return list(
        responses.select_for_update(of=("self",))
        .select_related("item__course", "submission")
        .order_by("pk")
    )


def _snapshot(response: Response) -> dict[str, Any]:
    return {
        "status": response.status,
        "score": response.score,
        "grade_source": response.grade_source,
        "released": response.released,
    }


def _teacher_grade(
    *,
    response: Response,
    actor: AbstractBaseUser,
    score: float,
    feedback: str,
    action: str,
    now: datetime,
) -> None:
    """Give the locked ``response`` the teacher's grade: its fields, one history row, one audit
    record. The callers refresh the submission and feed knowledge tracing."""
    before = _snapshot(response)
    # The version whose suggestion the teacher confirmed: kept in the history, where it tells
    # how often teachers agree with a model; the response itself now holds a teacher's grade.
    accepted_version: ModelVersion | None = (
        response.model_version if action == ResponseGrade.Action.ACCEPT else None
    )
    response.score = score
    response.status = Response.Status.GRADED
    response.grade_source = Response.GradeSource.TEACHER
    response.confidence = None
    response.model_version = None
    response.released = True
    response.reviewed_by = actor
    response.graded_at = now
    response.feedback = feedback
    response.save(
        update_fields=[
            "score",
            "status",
            "grade_source",
            "confidence",
            "model_version",
            "released",
            "reviewed_by",
            "graded_at",
            "feedback",
        ]
    )
    ResponseGrade.objects.create(
        response=response,
        score=score,
        grade_source=Response.GradeSource.TEACHER,
        model_version=accepted_version,
        actor=actor,
        action=action,
        released=True,
        note=feedback,
    )
    audit_record(
        actor=actor,
        action=f"response.{action}",
        target=response,
        course=response.item.course,
        before=before,
        after=_snapshot(response),
    )


def _author_is_student(response: Response) -> bool:
    return Enrollment.objects.filter(
        user_id=response.submission.student_id,
        course_id=response.item.course_id,
        role=Enrollment.Role.STUDENT,
    ).exists()


def _knowledge_tracing_feed(*, response: Response, update_mastery: bool) -> bool:
    """Record (or correct) the response's interaction; False when its author is no longer a
    student of the course (unenrolled since, or staff trying the quiz), whose answers knowledge
    tracing does not read: the teacher's grade stands all the same."""
    if not _author_is_student(response):
        logger.info("response %s graded by a teacher; its author is not a student", response.pk)
        return False
    interaction_record_from_response(response=response, update_mastery=update_mastery)
    return True


def _grader_retrain_after_commit(*, item: Item, actor: AbstractBaseUser) -> None:
    """Once the grade is committed, ask whether the item's grader is due for retraining: every
    teacher grade is new training data for it."""

    def check() -> None:
        # Imported here, not at the top: this module runs in the web process, which must stay
        # free of grading and training code (and torch), and the grader's retraining policy
        # lives in its own module, written beside this one. Where that module is not installed
        # yet, reviews still work and only the retraining check is skipped.
        try:
            from edu_dl.services.grader_training import grader_retrain_if_due
        except ModuleNotFoundError as error:
            if error.name != GRADER_TRAINING_MODULE:
                raise
            logger.warning(
                "grader retraining check skipped for item %s: %s is not available",
                item.pk,
                GRADER_TRAINING_MODULE,
            )
            return
        grader_retrain_if_due(item=item, requested_by=actor)

    # robust: a retraining check that fails must not turn a saved grade into an error page.
    transaction.on_commit(check, robust=True)


# --- Services ------------------------------------------------------------------------------------


def _grade_one(
    *, response: Response, actor: AbstractBaseUser, score: Any, feedback: Any, accept: bool
) -> Response:
    found = _locked([response.pk])
    if not found:
        raise NotFound(f"response {response.pk} no longer exists", field="response")
    locked = found[0]
    _check_staff(actor=actor, response=locked)
    feedback = _checked_feedback(feedback)
    if accept:
        missing = _suggestion_missing(locked)
        if missing is not None:
            raise Conflict(missing, field="response")
        score = locked.score
        action = ResponseGrade.Action.ACCEPT
    else:
        score = _checked_score(score, item=locked.item)
        action = ResponseGrade.Action.OVERRIDE
    _teacher_grade(
        response=locked,
        actor=actor,
        score=score,
        feedback=feedback,
        action=action,
        now=timezone.now(),
    )
    grades_released(response_ids=[locked.pk])
    submission_status_refresh(submission=locked.submission)
    _knowledge_tracing_feed(response=locked, update_mastery=True)
    _grader_retrain_after_commit(item=locked.item, actor=actor)
    return locked


@transaction.atomic
def response_accept(*, response: Response, actor: AbstractBaseUser, feedback: str = "") -> Response:
    """The teacher ``actor`` confirms the model's suggested score of ``response``, which waits
    for review; returns the response, graded by the teacher and released.

    Refused, with nothing written: an actor who is not staff of the course
    (:class:`PermissionDenied`), a response without a suggestion to accept - still being
    graded, already graded, or sent to review without a score (:class:`Conflict`, saying to
    override instead). See the module's doc for what is written.
    """
    return _grade_one(response=response, actor=actor, score=None, feedback=feedback, accept=True)


@transaction.atomic
def response_override(
    *, response: Response, actor: AbstractBaseUser, score: float, feedback: str = ""
) -> Response:
    """The teacher ``actor`` gives ``response`` the score ``score``, whatever its status and
    whoever graded it before; returns the response, graded by the teacher and released.

    Earlier grades stay in its history. Refused, with nothing written: an actor who is not
    staff of the course (:class:`PermissionDenied`), a score that is not a finite number from the
    item's min to its max score (:class:`ValidationFailed`, naming the scale and the value).
    """
    return _grade_one(response=response, actor=actor, score=score, feedback=feedback, accept=False)


@transaction.atomic
def responses_accept_many(
    *,
    response_ids: Iterable[int],
    actor: AbstractBaseUser,
    feedback: str = "",
    course: Course | None = None,
) -> AcceptManyResult:
    """Accept the model's suggestion for each of ``response_ids`` ("accept all shown"), as
    :func:`response_accept` does for one.

    A response that has no suggestion to accept any more - another teacher reviewed it since
    the page was shown - is skipped, with the reason, rather than failing the others. Refused
    as a whole, with nothing written: an unknown id, or one of another course than ``course``
    when it is given (:class:`NotFound`), a response of a course the actor does not teach
    (:class:`PermissionDenied`), more than :data:`ACCEPT_MANY_MAX` ids.
    One mastery update is sent per student and one retraining check per item.
    """
    ids = list(response_ids)
    if any(isinstance(pk, bool) or not isinstance(pk, int) for pk in ids):
        raise ValidationFailed("response_ids must be whole numbers", field="response_ids")
    ids = sorted(set(ids))
    if len(ids) > ACCEPT_MANY_MAX:
        raise ValidationFailed(
            f"{len(ids)} responses at once is too many; at most {ACCEPT_MANY_MAX} are allowed",
            field="response_ids",
        )
    feedback = _checked_feedback(feedback)
    locked = _locked(ids, course=course)
    unknown = sorted(set(ids) - {response.pk for response in locked})
    if unknown:
        raise NotFound(
            f"no such responses: {', '.join(str(pk) for pk in unknown)}", field="response_ids"
        )
    for response in locked:
        _check_staff(actor=actor, response=response)

    return _accept_locked(locked, actor=actor, feedback=feedback)


def _accept_locked(
    locked: list[Response], *, actor: AbstractBaseUser, feedback: str
) -> AcceptManyResult:
    """Accept the suggestion of each of the ``locked`` responses (checked: the actor is staff of
    their courses, the feedback is valid) that still has one; the others are skipped with the
    reason. One mastery update is sent per student and one retraining check per item."""
    now = timezone.now()
    accepted: list[Response] = []
    skipped: dict[int, str] = {}
    for response in locked:
        missing = _suggestion_missing(response)
        if missing is not None:
            skipped[response.pk] = missing
            continue
        _teacher_grade(
            response=response,
            actor=actor,
            score=response.score,
            feedback=feedback,
            action=ResponseGrade.Action.ACCEPT,
            now=now,
        )
        accepted.append(response)
    grades_released(response_ids=[response.pk for response in accepted])

    submissions = {response.submission_id: response.submission for response in accepted}
    for submission in submissions.values():
        submission_status_refresh(submission=submission)
    students: set[tuple[int, int]] = set()
    items: dict[int, Item] = {}
    for response in accepted:
        if _knowledge_tracing_feed(response=response, update_mastery=False):
            students.add((response.submission.student_id, response.item.course_id))
        items[response.item_id] = response.item
    for student_id, course_id in sorted(students):
        mastery_update_enqueue(student_id=student_id, course_id=course_id)
    for item in items.values():
        _grader_retrain_after_commit(item=item, actor=actor)
    return AcceptManyResult(accepted=accepted, skipped=skipped)


@transaction.atomic
def responses_accept_above(
    *,
    course: Course,
    actor: AbstractBaseUser,
    min_confidence: float,
    item: Item | None = None,
    feedback: str = "",
) -> AcceptManyResult:
    """Accept the model's suggestion for every response of ``course`` (of ``item`` only, when
    given) that waits for review with a suggestion whose confidence is at least
    ``min_confidence`` (a share from 0 to 1), as :func:`response_accept` does for one: one
    history row and one audit record per response.

    The responses are chosen and locked in the same query, so one that another teacher reviews
    meanwhile is either accepted here or left to that teacher, never graded twice. Refused,
    with nothing written: a ``min_confidence`` that is not a number from 0 to 1
    (:class:`ValidationFailed`), an ``item`` of another course (:class:`ValidationFailed`), an
    actor who is not staff of the course (:class:`PermissionDenied`).
    """
    if (
        isinstance(min_confidence, bool)
        or not isinstance(min_confidence, numbers.Real)
        or not math.isfinite(float(min_confidence))
        or not 0 <= float(min_confidence) <= 1
    ):
        raise ValidationFailed(
            f"the confidence must be a share from 0 to 1 (0% to 100%), not {min_confidence!r}",
            field="min_confidence",
        )
    if item is not None and item.course_id != course.pk:
        raise ValidationFailed(
            f"item {str(item)!r} is not an item of {course.slug!r}", field="item"
        )
    if not course_is_staff(user=actor, course=course):
        raise PermissionDenied(
            f"{actor.get_username()!r} is not a teacher or assistant of {course.slug!r} "
            "and cannot grade its responses",
            field="actor",
        )
    feedback = _checked_feedback(feedback)
    responses = Response.objects.filter(
        item__course=course,
        status=Response.Status.NEEDS_REVIEW,
        score__isnull=False,
        confidence__gte=float(min_confidence),
    )
    if item is not None:
        responses = responses.filter(item=item)
    locked = list(
        responses.select_for_update(of=("self",))
        .select_related("item__course", "submission")
        .order_by("pk")
    )
    return _accept_locked(locked, actor=actor, feedback=feedback)
