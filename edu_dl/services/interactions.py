"""Recording learning events (answers) in the Interaction log that knowledge tracing reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from edu_dl.models import Course, Enrollment, Interaction, Item, Skill
from edu_dl.services.errors import ValidationFailed


@dataclass(frozen=True)
class InteractionRecord:
    student_id: int
    correct: bool
    timestamp: datetime
    item_id: int | None = None
    skill_ids: tuple[int, ...] = ()
    external_id: str = ""
    attempt: int | None = None
    duration_s: float | None = None


@transaction.atomic
def interactions_record(
    *,
    course: Course,
    records: Iterable[InteractionRecord],
    source: str = Interaction.Source.API,
    batch_size: int = 5000,
) -> int:
    """Validate and store answers in bulk; returns how many were new.

    Every record must name a student of the course, and items and skills of the course; a bad
    record stops the whole call with its position and reason, and nothing is stored. Records
    with an ``external_id`` already stored for this course and source are skipped (idempotent).
    """
    if source not in Interaction.Source.values:
        raise ValidationFailed(f"unknown interaction source {source!r}", field="source")
    records = list(records)
    students = set(
        Enrollment.objects.filter(course=course, role=Enrollment.Role.STUDENT).values_list(
            "user_id", flat=True
        )
    )
    items = set(Item.objects.filter(course=course).values_list("id", flat=True))
    skills = set(Skill.objects.filter(course=course).values_list("id", flat=True))
    rows = []
    for position, record in enumerate(records):
        where = f"record {position}"
        if record.student_id not in students:
            raise ValidationFailed(
                f"{where}: user {record.student_id} is not a student of {course.slug}"
            )
        if record.item_id is not None and record.item_id not in items:
            raise ValidationFailed(f"{where}: item {record.item_id} is not in {course.slug}")
        unknown = [s for s in record.skill_ids if s not in skills]
        if unknown:
            raise ValidationFailed(f"{where}: skill(s) {unknown} are not in {course.slug}")
        if timezone.is_naive(record.timestamp):
            raise ValidationFailed(f"{where}: timestamp {record.timestamp} has no time zone")
        rows.append(
            Interaction(
                course=course,
                student_id=record.student_id,
                item_id=record.item_id,
                skill_ids=sorted(set(record.skill_ids)),
                correct=bool(record.correct),
                timestamp=record.timestamp,
                source=source,
                external_id=record.external_id,
                attempt=record.attempt,
                duration_s=record.duration_s,
            )
        )
    before = Interaction.objects.filter(course=course).count()
    Interaction.objects.bulk_create(rows, batch_size=batch_size, ignore_conflicts=True)
    return Interaction.objects.filter(course=course).count() - before
