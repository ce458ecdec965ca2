"""Mastery: each student's probability of answering a typical item of each skill correctly now,
kept in :class:`MasteryEstimate` rows so that pages and the API read it without a model.

The flow::

    graded response ─► interaction_record_from_response ─► Interaction
        ─► on commit: grading queue ─► mastery_update_for_student ─► MasteryEstimate rows
    KT model activated or rolled back ─► on commit: default queue ─► mastery_refresh_course
    estimates written (either way) ─► on commit, a few seconds later: default queue
        ─► course_mastery_summary_refresh (the class overview's summary)

Two methods produce an estimate, and every row says which through its ``model_version``:

* the course's active knowledge-tracing model, for every skill it was trained on
  (``model_version`` set);
* otherwise - no model yet (cold start), its artifact refused, or a skill added after it was
  trained - a smoothed success rate ``(correct + PRIOR_ANSWERS * m) / (answers + PRIOR_ANSWERS)``,
  a Beta prior worth :data:`PRIOR_ANSWERS` answers centred on the course's success rate ``m``
  (``model_version`` None).

Rows are appended (trends can be drawn) and the newest row per (student, skill) is the current
one. A skill whose estimate moved by less than :data:`MIN_PROBABILITY_CHANGE`, with the same
evidence and the same model version, keeps its current row: a page shows whole percents, and
the trend table would otherwise grow by one row per skill for every answer.

This module imports no torch at import time (rule grading runs in the web process and calls
:func:`interaction_record_from_response`); the functions that run a model import it inside.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from edu_dl.conf import edu_settings
from edu_dl.models import (
    Course,
    Enrollment,
    Interaction,
    MasteryEstimate,
    ModelKind,
    Response,
    Skill,
)
from edu_dl.selectors.access import course_scope_key
from edu_dl.selectors.mastery import (
    AnswerHistory,
    course_student_ids,
    course_success_counts,
    history_signatures,
    student_answer_history,
    students_answer_histories,
)
from edu_dl.services.class_summary import course_mastery_summary_refresh_enqueue
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.model_versions import (
    CachedModel,
    ModelUnavailable,
    active_model_load,
)
from edu_dl.services.recommending import (
    recommendations_refresh_course_enqueue,
    recommendations_refresh_enqueue,
)

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

MASTERY_UPDATE_TASK_NAME = "edu_dl.mastery.update_student"

# The weight of the course's success rate in a cold-start estimate, in answers.
PRIOR_ANSWERS = 4.0
# A new row is written only when the estimate moved at least this much (or its evidence or
# model version changed).
MIN_PROBABILITY_CHANGE = 0.005
# Students per transaction, and sequences per model call, in a course-wide refresh.
REFRESH_STUDENTS_PER_CHUNK = 256
MODEL_BATCH_SIZE = 64
# Rows per UPDATE ... WHERE id IN (...), under every database's limit on query parameters.
UPDATE_CHUNK = 2000


# --- Estimating ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillEstimate:
    skill_id: int
    probability: float
    evidence_count: int
    model_version_id: int | None  # None: the smoothed success rate


def smoothed_success_rate(*, correct: int, answers: int, prior_mean: float) -> float:
    """The posterior mean of a Beta prior worth :data:`PRIOR_ANSWERS` answers at ``prior_mean``."""
    return (correct + PRIOR_ANSWERS * prior_mean) / (answers + PRIOR_ANSWERS)


def skill_counts(history: AnswerHistory) -> tuple[dict[int, int], dict[int, int]]:
    """(answers, correct answers) per skill id; an answer counts for each of its item's skills."""
    answers: dict[int, int] = {}
    correct: dict[int, int] = {}
    for skills, right in zip(history.skill_ids, history.correct, strict=True):
        for skill_id in skills:
            answers[skill_id] = answers.get(skill_id, 0) + 1
            correct[skill_id] = correct.get(skill_id, 0) + right
    return answers, correct


class MasteryEstimator:
    """Estimates for one course with whatever serves it now: its active KT model, and the
    smoothed success rate for what the model does not know. Built once per update or refresh.
    """

    def __init__(self, *, course: Course, skill_ids: list[int], cached: CachedModel | None):
        self.course = course
        self.skill_ids = skill_ids
        self.cached = cached

    @classmethod
    def for_course(cls, course: Course) -> MasteryEstimator:
        skill_ids = list(
            Skill.objects.filter(course=course).order_by("id").values_list("id", flat=True)
        )
        try:
            cached = active_model_load(kind=ModelKind.KT, scope_key=course_scope_key(course))
        except ModelUnavailable as error:
            logger.info("mastery of %s by smoothed success rate: %s", course.slug, error.message)
            cached = None
        return cls(course=course, skill_ids=skill_ids, cached=cached)

    # The model and what its indices mean.

    @cached_property
    def trained(self):
        from edu_dl.ml.kt.pipeline import TrainedKT

        return TrainedKT.from_checkpoint(self.cached.loaded)

    @property
    def _skill_vocabulary(self):
        return self.trained.skill_vocabulary

    @property
    def _item_vocabulary(self):
        return self.trained.item_vocabulary

    @property
    def skill_index_count(self) -> int:
        """The model's skill indices, padding and unknown included (its ``num_skills``)."""
        return self._skill_vocabulary.size

    @property
    def model(self) -> Any:
        return self.cached.loaded.model

    @property
    def max_length(self) -> int:
        return self.trained.max_length

    @property
    def version_id(self) -> int | None:
        return self.cached.version_id if self.cached else None

    @property
    def method(self) -> str:
        """How this estimator's model-based estimates are made, for people to read."""
        if self.cached is None:
            return "smoothed success rate"
        return f"model v{self.cached.version_number} ({self.cached.loaded.name})"

    def skill_index(self, skill_id: int) -> int | None:
        """The model's index of the skill, or None when no model knows it."""
        if self.cached is None:
            return None
        from edu_dl.ml.kt.data import FIRST_KNOWN

        index = self._skill_vocabulary.index(skill_id)
        return index if index >= FIRST_KNOWN else None

    def item_index(self, item_id: int | None) -> int:
        return self._item_vocabulary.index(item_id)

    def sequence(self, history: AnswerHistory):
        """The history in the model's indices (an ``edu_dl.ml.kt.data.KTSequence``)."""
        from edu_dl.ml.kt.pipeline import RawSequence

        return self.trained.encode(
            RawSequence(
                key=str(history.student_id),
                skills=list(history.skill_ids),
                correct=list(history.correct),
                items=list(history.item_ids),
            )
        )

    def item_success(
        self, history: AnswerHistory, items: Sequence[tuple[int, Sequence[int]]]
    ) -> np.ndarray | None:
        """The model's chance that the student answers each (item id, skill ids) right next;
        None without a model."""
        if self.cached is None:
            return None
        from edu_dl.ml.kt.inference import predict_next
        from edu_dl.services.runtime import torch_device

        queries = [
            (tuple(self._skill_vocabulary.index(s) for s in skill_ids), self.item_index(item_id))
            for item_id, skill_ids in items
        ]
        return predict_next(
            self.model,
            self.sequence(history),
            queries,
            device=torch_device(),
            max_length=self.max_length,
        )

    @cached_property
    def prior_mean(self) -> float:
        """The course's success rate, Laplace-smoothed (0.5 for a course with no answers).

        Counted when first needed, once per update or refresh: only cold-start courses and
        skills newer than the model need it.
        """
        correct, answers = course_success_counts(course_id=self.course.pk)
        return (correct + 1) / (answers + 2)

    def smoothed(self, *, correct: int, answers: int) -> float:
        return smoothed_success_rate(correct=correct, answers=answers, prior_mean=self.prior_mean)

    def _model_probabilities(self, histories: Sequence[AnswerHistory]) -> np.ndarray | None:
        """(students, model skills) probabilities from the model, or None without a model."""
        if self.cached is None or not any(self.skill_index(s) for s in self.skill_ids):
            return None
        from edu_dl.ml.kt.inference import mastery_many
        from edu_dl.services.runtime import torch_device

        device = torch_device()
        num_skills = self.skill_index_count
        sequences = [self.sequence(history) for history in histories]
        return mastery_many(
            self.model,
            sequences,
            num_skills,
            device=device,
            max_length=self.max_length,
            batch_size=MODEL_BATCH_SIZE,
        )

    def estimate(self, histories: Sequence[AnswerHistory]) -> list[dict[int, SkillEstimate]]:
        """Per history, an estimate for every skill of the course (keyed by skill id)."""
        probabilities = self._model_probabilities(histories)
        results = []
        for row, history in enumerate(histories):
            answers, correct = skill_counts(history)
            estimates = {}
            for skill_id in self.skill_ids:
                index = self.skill_index(skill_id)
                evidence = answers.get(skill_id, 0)
                if probabilities is not None and index is not None:
                    probability = float(probabilities[row, index])
                    version_id = self.version_id
                else:
                    probability = self.smoothed(correct=correct.get(skill_id, 0), answers=evidence)
                    version_id = None
                estimates[skill_id] = SkillEstimate(
                    skill_id=skill_id,
                    probability=min(1.0, max(0.0, probability)),
                    evidence_count=evidence,
                    model_version_id=version_id,
                )
            results.append(estimates)
        return results


# --- Writing -------------------------------------------------------------------------------------


def _unchanged(row: MasteryEstimate, estimate: SkillEstimate) -> bool:
    return (
        row.evidence_count == estimate.evidence_count
        and row.model_version_id == estimate.model_version_id
        and abs(row.probability - estimate.probability) < MIN_PROBABILITY_CHANGE
    )


def _write_estimates(
    *, course_id: int, estimates: dict[int, dict[int, SkillEstimate]], as_of: datetime
) -> tuple[dict[int, list[MasteryEstimate]], int]:
    """Make ``estimates`` (per student, per skill) the current rows; call inside a transaction
    that holds the students' enrollment locks. Returns each student's current rows (by skill
    id) and how many rows were written."""
    current = {
        (row.student_id, row.skill_id): row
        for row in MasteryEstimate.objects.filter(
            student_id__in=list(estimates), skill__course_id=course_id, is_current=True
        )
    }
    retired: list[int] = []
    new_rows: list[MasteryEstimate] = []
    kept: dict[int, list[MasteryEstimate]] = {student_id: [] for student_id in estimates}
    for student_id, by_skill in estimates.items():
        for skill_id, estimate in by_skill.items():
            row = current.get((student_id, skill_id))
            if row is not None and _unchanged(row, estimate):
                kept[student_id].append(row)
                continue
            if row is not None:
                retired.append(row.pk)
            new_rows.append(
                MasteryEstimate(
                    student_id=student_id,
                    skill_id=skill_id,
                    probability=estimate.probability,
                    evidence_count=estimate.evidence_count,
                    as_of=as_of,
                    is_current=True,
                    model_version_id=estimate.model_version_id,
                )
            )
    # The old current rows first: one current row per (student, skill) is a database constraint.
    for start in range(0, len(retired), UPDATE_CHUNK):
        MasteryEstimate.objects.filter(pk__in=retired[start : start + UPDATE_CHUNK]).update(
            is_current=False
        )
    created = MasteryEstimate.objects.bulk_create(new_rows, batch_size=1000)
    for row in created:
        kept[row.student_id].append(row)
    for rows in kept.values():
        rows.sort(key=lambda row: row.skill_id)
    return kept, len(created)


def _lock_students(*, course_id: int, student_ids: list[int]) -> set[int]:
    """Lock the students' enrollments (one update of a student's mastery at a time); returns
    the ids that are students of the course."""
    return set(
        Enrollment.objects.select_for_update()
        .filter(course_id=course_id, user_id__in=student_ids, role=Enrollment.Role.STUDENT)
        .values_list("user_id", flat=True)
    )


def mastery_update_for_student(
    *, student: AbstractBaseUser, course: Course
) -> list[MasteryEstimate]:
    """Bring the student's mastery of every skill of the course up to date with their answers;
    returns the current rows, one per skill, by skill id.

    The student's enrollment is locked while their history is read and the rows are written,
    so two updates of one student (two responses graded together) cannot interleave, and the
    last to commit has read every answer. Safe to run twice.
    """
    estimator = MasteryEstimator.for_course(course)
    with transaction.atomic():
        if not _lock_students(course_id=course.pk, student_ids=[student.pk]):
            raise ValidationFailed(
                f"{student.get_username()!r} is not a student of {course.slug!r}",
                field="student",
            )
        history = student_answer_history(course_id=course.pk, student_id=student.pk)
        estimates = estimator.estimate([history])[0]
        rows, written = _write_estimates(
            course_id=course.pk, estimates={student.pk: estimates}, as_of=timezone.now()
        )
        if written:
            # Suggestions and the class overview follow mastery: refreshed when it changed, not
            # on every page view.
            recommendations_refresh_enqueue(student_id=student.pk, course_id=course.pk)
            course_mastery_summary_refresh_enqueue(course_id=course.pk)
    return rows[student.pk]


def mastery_refresh_course(
    *, course: Course, students_per_chunk: int = REFRESH_STUDENTS_PER_CHUNK
) -> dict[str, Any]:
    """Recompute every student's mastery in the course (after a new model version serves it).

    Students are read, run through the model and written in chunks, each chunk in one
    transaction. A student who answered while their chunk was computed is computed again under
    the lock, so the refresh never writes an estimate older than one already written.
    """
    estimator = MasteryEstimator.for_course(course)
    student_ids = course_student_ids(course_id=course.pk)
    written = recomputed = 0
    for start in range(0, len(student_ids), students_per_chunk):
        chunk = student_ids[start : start + students_per_chunk]
        histories = students_answer_histories(course_id=course.pk, student_ids=chunk)
        ordered = [histories[student_id] for student_id in chunk]
        estimates = dict(zip(chunk, estimator.estimate(ordered), strict=True))
        with transaction.atomic():
            still_students = _lock_students(course_id=course.pk, student_ids=chunk)
            signatures = history_signatures(course_id=course.pk, student_ids=chunk)
            for student_id in chunk:
                if student_id not in still_students:
                    del estimates[student_id]
                elif signatures[student_id] != histories[student_id].signature:
                    fresh = student_answer_history(course_id=course.pk, student_id=student_id)
                    estimates[student_id] = estimator.estimate([fresh])[0]
                    recomputed += 1
            _, count = _write_estimates(
                course_id=course.pk, estimates=estimates, as_of=timezone.now()
            )
            written += count
    if written:
        recommendations_refresh_course_enqueue(course_id=course.pk)
        course_mastery_summary_refresh_enqueue(course_id=course.pk)
    logger.info(
        "mastery of %s refreshed by %s: %d students, %d estimates written",
        course.slug,
        estimator.method,
        len(student_ids),
        written,
    )
    return {
        "students": len(student_ids),
        "estimates_written": written,
        "recomputed": recomputed,
        "method": estimator.method,
    }


# --- From graded responses -----------------------------------------------------------------------


def response_is_correct(*, score: float, item: Any) -> bool:
    """Whether a score counts as a correct answer for knowledge tracing: at least
    ``EDU_DL['MASTERY_CORRECT_FRACTION']`` of the way from the item's min to its max score."""
    share = (score - item.min_score) / (item.max_score - item.min_score)
    return share >= edu_settings.MASTERY_CORRECT_FRACTION - 1e-9


def mastery_update_enqueue(*, student_id: int, course_id: int) -> None:
    """Send the student's mastery update to the grading queue once the transaction commits."""

    def send() -> None:
        current_app.send_task(MASTERY_UPDATE_TASK_NAME, args=[student_id, course_id])

    # robust: a broker that is down must not undo or fail the grading that called us.
    transaction.on_commit(send, robust=True)


@transaction.atomic
def interaction_record_from_response(
    *, response: Response, update_mastery: bool = True
) -> Interaction:
    """The Interaction of a graded response (any grade source): the hook grading calls.

    One Interaction per response (idempotent): asking again returns it, and when the grade
    changed its answer from wrong to right or back (a teacher's override), it is corrected.
    The timestamp is when the student submitted. Unless ``update_mastery`` is False, the
    student's mastery update is sent to the grading queue after commit when the interaction is
    new or changed. Refused: a response that is not graded yet, or whose author is not a
    student of the item's course (a teacher trying their own quiz).
    """
    response = Response.objects.select_related("item", "submission").get(pk=response.pk)
    if response.status != Response.Status.GRADED or response.score is None:
        raise ValidationFailed(
            f"response {response.pk} is not graded yet ({response.status})", field="response"
        )
    item = response.item
    student_id = response.submission.student_id
    course_id = item.course_id
    if not Enrollment.objects.filter(
        user_id=student_id, course_id=course_id, role=Enrollment.Role.STUDENT
    ).exists():
        raise ValidationFailed(
            f"the author of response {response.pk} is not a student of its course",
            field="response",
        )
    correct = response_is_correct(score=response.score, item=item)
    external_id = f"response:{response.pk}"
    recorded = {
        "course_id": course_id,
        "source": Interaction.Source.RESPONSE,
        "external_id": external_id,
    }
    interaction = Interaction.objects.select_for_update().filter(**recorded).first()
    if interaction is None:
        submission = response.submission
        try:
            with transaction.atomic():
                interaction = Interaction.objects.create(
                    course_id=course_id,
                    student_id=student_id,
                    item=item,
                    skill_ids=sorted(item.skills.values_list("id", flat=True)),
                    correct=correct,
                    timestamp=submission.submitted_at or response.graded_at or timezone.now(),
                    source=Interaction.Source.RESPONSE,
                    external_id=external_id,
                    response=response,
                )
        except IntegrityError:
            # Recorded by a concurrent call since our read, perhaps from the grade that this
            # one replaces (a model's grade racing a teacher's override): lock it and correct
            # it below, rather than return the other call's answer as it is.
            interaction = Interaction.objects.select_for_update().get(**recorded)
        else:
            if update_mastery:
                mastery_update_enqueue(student_id=student_id, course_id=course_id)
            return interaction
    if interaction.correct == correct:
        return interaction
    interaction.correct = correct
    interaction.save(update_fields=["correct"])
    if update_mastery:
        mastery_update_enqueue(student_id=student_id, course_id=course_id)
    return interaction
