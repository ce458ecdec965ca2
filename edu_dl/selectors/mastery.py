"""One student's (or a group of students') answers in a course, as plain data for mastery
estimates, and the few aggregates the estimates need. No torch and no access rules here: the
callers are services that workers run (see :mod:`edu_dl.services.mastery`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Max, Q

from edu_dl.models import Enrollment, Interaction


@dataclass
class AnswerHistory:
    """A student's answers in one course, in time order: the sequence knowledge tracing reads,
    with what a person needs to recognise each answer (its interaction id and timestamp)."""

    student_id: int
    interaction_ids: list[int] = field(default_factory=list)
    item_ids: list[int | None] = field(default_factory=list)
    skill_ids: list[tuple[int, ...]] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)
    timestamps: list[datetime] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.correct)

    @property
    def signature(self) -> tuple[int, int | None]:
        """(answers, newest interaction id): changes whenever an answer is added."""
        return len(self.interaction_ids), max(self.interaction_ids, default=None)

    def append(
        self,
        interaction_id: int,
        item_id: int | None,
        skill_ids: Iterable[int] | None,
        correct: bool,
        timestamp: datetime,
    ) -> None:
        self.interaction_ids.append(interaction_id)
        self.item_ids.append(item_id)
        self.skill_ids.append(tuple(sorted(skill_ids or ())))
        self.correct.append(1 if correct else 0)
        self.timestamps.append(timestamp)


HISTORY_FIELDS = ("student_id", "id", "item_id", "skill_ids", "correct", "timestamp")


def student_answer_history(*, course_id: int, student_id: int) -> AnswerHistory:
    """The student's answers in the course, oldest first (one query)."""
    history = AnswerHistory(student_id)
    rows = (
        Interaction.objects.filter(course_id=course_id, student_id=student_id)
        .order_by("timestamp", "id")
        .values_list(*HISTORY_FIELDS)
    )
    for _, *answer in rows:
        history.append(*answer)
    return history


def student_answer_sequence(*, course_id: int, student_id: int) -> AnswerHistory:
    """The student's answers in the course, oldest first, with only what a model reads (items,
    skills, outcomes; no ids or timestamps): the light read of a service that scores the
    student's next step rather than showing the history (one query)."""
    history = AnswerHistory(student_id)
    for item_id, skill_ids, correct in (
        Interaction.objects.filter(course_id=course_id, student_id=student_id)
        .order_by("timestamp", "id")
        .values_list("item_id", "skill_ids", "correct")
    ):
        history.item_ids.append(item_id)
        history.skill_ids.append(tuple(sorted(skill_ids or ())))
        history.correct.append(1 if correct else 0)
    return history


def students_answer_histories(
    *, course_id: int, student_ids: Iterable[int]
) -> dict[int, AnswerHistory]:
    """Each listed student's answers in the course (one query); an empty history for a student
    who has not answered yet."""
    student_ids = list(student_ids)
    histories = {student_id: AnswerHistory(student_id) for student_id in student_ids}
    rows = (
        Interaction.objects.filter(course_id=course_id, student_id__in=student_ids)
        .order_by("student_id", "timestamp", "id")
        .values_list(*HISTORY_FIELDS)
        .iterator(chunk_size=20_000)
    )
    for student_id, *answer in rows:
        histories[student_id].append(*answer)
    return histories


def history_signatures(
    *, course_id: int, student_ids: Iterable[int]
) -> dict[int, tuple[int, int | None]]:
    """:attr:`AnswerHistory.signature` of each listed student, without reading the answers."""
    student_ids = list(student_ids)
    signatures: dict[int, tuple[int, int | None]] = dict.fromkeys(student_ids, (0, None))
    rows = (
        Interaction.objects.filter(course_id=course_id, student_id__in=student_ids)
        .values("student_id")
        .annotate(answers=Count("id"), newest=Max("id"))
        .values_list("student_id", "answers", "newest")
    )
    for student_id, answers, newest in rows:
        signatures[student_id] = (answers, newest)
    return signatures


def course_student_ids(*, course_id: int) -> list[int]:
    """The ids of the course's students, in id order."""
    return list(
        Enrollment.objects.filter(course_id=course_id, role=Enrollment.Role.STUDENT)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def course_success_counts(*, course_id: int) -> tuple[int, int]:
    """(correct answers, answers) over the whole course: the prior of cold-start estimates."""
    totals = Interaction.objects.filter(course_id=course_id).aggregate(
        answers=Count("id"), correct=Count("id", filter=Q(correct=True))
    )
    return totals["correct"], totals["answers"]
