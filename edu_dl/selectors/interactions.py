"""A course's answer history as plain data for knowledge tracing (no torch here)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from edu_dl.models import Interaction


@dataclass
class StudentHistory:
    student_id: int
    item_ids: list[int | None] = field(default_factory=list)
    skill_ids: list[tuple[int, ...]] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)


@dataclass
class CourseHistory:
    students: list[StudentHistory]
    interaction_count: int
    # sha256 over every (student, item, skills, correct) in order: two trainings on the same
    # fingerprint saw the same data.
    fingerprint: str


def _ordered_rows(course_id: int) -> Iterator[tuple]:
    return (
        Interaction.objects.filter(course_id=course_id)
        .order_by("student_id", "timestamp", "id")
        .values_list("student_id", "item_id", "skill_ids", "correct")
        .iterator(chunk_size=20_000)
    )


def course_history(*, course_id: int) -> CourseHistory:
    """Every student's answers in the course, in time order, with a fingerprint of the data."""
    digest = hashlib.sha256()
    students: list[StudentHistory] = []
    current: StudentHistory | None = None
    count = 0
    for student_id, item_id, skill_ids, correct in _ordered_rows(course_id):
        if current is None or current.student_id != student_id:
            current = StudentHistory(student_id)
            students.append(current)
        skills = tuple(sorted(skill_ids or ()))
        current.item_ids.append(item_id)
        current.skill_ids.append(skills)
        current.correct.append(1 if correct else 0)
        digest.update(f"{student_id}|{item_id}|{skills}|{int(correct)};".encode())
        count += 1
    return CourseHistory(students=students, interaction_count=count, fingerprint=digest.hexdigest())
