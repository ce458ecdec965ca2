"""A student's answers kept between visits: save a draft, discard it, hand it in.

A draft is checked exactly as a submission is (a student of the course, the assessment published
and open, every answer well formed: :func:`edu_dl.services.rule_grading.answer_validate`), except
that it may leave every item unanswered. Handing in goes through
:func:`edu_dl.services.submissions.submission_create` and deletes the draft in the same
transaction, so a student never finds both a new submission and the draft it came from.

Errors about one answer carry the item's id in ``extra["item_id"]``, so that a page can show the
message beside that item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from edu_dl.models import Assessment, AssessmentDraft, AssessmentItem, Enrollment, Item, Submission
from edu_dl.selectors.access import course_role
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from edu_dl.services.rule_grading import answer_is_empty, answer_validate
from edu_dl.services.submissions import assessment_check_open, submission_create


def _require_student(*, student: AbstractBaseUser, assessment: Assessment) -> None:
    course = assessment.course
    if course_role(user=student, course=course) != Enrollment.Role.STUDENT:
        raise PermissionDenied(
            f"{student.get_username()!r} is not a student of {course.slug!r} "
            "and has no drafts of its assessments",
            field="student",
        )


def _items(assessment: Assessment) -> list[Item]:
    return [
        entry.item
        for entry in AssessmentItem.objects.filter(assessment=assessment)
        .select_related("item")
        .order_by("position")
    ]


def answers_check(*, assessment: Assessment, items: list[Item], answers: Any) -> dict[int, Any]:
    """Every answered item's answer by item id, checked as a submission checks it and kept as
    given (a numeric text stays the text the student typed); empty answers are left out.

    Refused (:class:`ValidationFailed`): answers that are not a mapping of item ids, an item
    the assessment does not hold, or a malformed answer (``extra["item_id"]`` names the item).
    """
    if not isinstance(answers, Mapping):
        raise ValidationFailed("answers must map item ids to answers", field="answers")
    by_id = {item.pk: item for item in items}
    for key in answers:
        if isinstance(key, bool) or not isinstance(key, int):
            raise ValidationFailed(
                f"answers must be keyed by item id (a whole number), not {key!r}",
                field="answers",
            )
        if key not in by_id:
            raise ValidationFailed(
                f"answers name item {key}, which is not in assessment {assessment.title!r}",
                field="answers",
            )
    checked: dict[int, Any] = {}
    for item_id, answer in answers.items():
        item = by_id[item_id]
        try:
            answer_validate(item=item, answer=answer)
        except ValidationFailed as error:
            raise ValidationFailed(
                error.message, field="answers", extra={"item_id": item.pk}
            ) from error
        if not answer_is_empty(item, answer):
            checked[item_id] = answer
    return checked


def _check_assessment(*, student: AbstractBaseUser, assessment: Assessment, now: datetime) -> None:
    _require_student(student=student, assessment=assessment)
    # When an assessment takes answers is the submission service's rule; a draft follows it.
    assessment_check_open(assessment=assessment, now=now)


@transaction.atomic
def draft_save(
    *,
    student: AbstractBaseUser,
    assessment: Assessment,
    answers: Mapping[int, Any],
    now: datetime | None = None,
) -> AssessmentDraft:
    """Keep ``answers`` (item id -> answer) as the student's draft of ``assessment``, replacing
    an earlier draft; empty answers are allowed (and not stored).

    Refused, with nothing written: someone who is not a student of the course
    (:class:`PermissionDenied`), an unpublished assessment (:class:`NotFound`), one not open
    yet or past its due date, or without items (:class:`Conflict`), a malformed answer
    (:class:`ValidationFailed`, naming the item).
    """
    now = timezone.now() if now is None else now
    _check_assessment(student=student, assessment=assessment, now=now)
    items = _items(assessment)
    if not items:
        raise Conflict(
            f"assessment {assessment.title!r} has no items to answer", field="assessment"
        )
    checked = answers_check(assessment=assessment, items=items, answers=answers)
    stored = {str(item_id): answer for item_id, answer in checked.items()}
    draft, _ = AssessmentDraft.objects.update_or_create(
        student=student, assessment=assessment, defaults={"answers": stored}
    )
    return draft


@transaction.atomic
def draft_discard(*, student: AbstractBaseUser, assessment: Assessment) -> bool:
    """Delete the student's draft of ``assessment``; whether there was one. Only the student's
    own draft can be named, so there is nothing to refuse."""
    deleted, _ = AssessmentDraft.objects.filter(student=student, assessment=assessment).delete()
    return deleted > 0


def draft_answers(draft: AssessmentDraft | None) -> dict[int, Any]:
    """A draft's answers keyed by item id again (JSON keeps them as text)."""
    if draft is None:
        return {}
    return {int(key): value for key, value in draft.answers.items() if key.isdigit()}


@transaction.atomic
def draft_submit(
    *,
    student: AbstractBaseUser,
    assessment: Assessment,
    answers: Mapping[int, Any],
    idempotency_key: str = "",
    now: datetime | None = None,
) -> Submission:
    """Hand in ``answers`` with :func:`submission_create` and delete the student's draft, in
    one transaction: refused (for the reasons of :func:`submission_create`, a malformed answer
    naming its item) means nothing written and the draft kept.

    A retry with the same ``idempotency_key`` returns the first submission and leaves any draft
    saved since alone.
    """
    if not assessment.is_published:
        raise NotFound("No such assessment.")
    _require_student(student=student, assessment=assessment)
    answers_check(assessment=assessment, items=_items(assessment), answers=answers)
    replay = bool(idempotency_key) and (
        Submission.objects.filter(student=student, idempotency_key=idempotency_key).exists()
    )
    submission = submission_create(
        student=student,
        assessment=assessment,
        answers=answers,
        idempotency_key=idempotency_key,
        now=now,
    )
    if not replay:
        draft_discard(student=student, assessment=assessment)
    return submission
