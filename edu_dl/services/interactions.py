"""Recording learning events (answers) in the Interaction log that knowledge tracing reads.

:func:`interactions_record` stores answers the app knows by primary key (tests, the demo, graded
responses). Files and API batches that name students, items and skills by their own ids go
through :mod:`edu_dl.services.importing`; both check an answer's own values with
:func:`interaction_values_problem`, so the rules are written once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from edu_dl.models import Course, Enrollment, Interaction, Item, Skill
from edu_dl.services.errors import ValidationFailed

# How far past the server's clock an imported answer may lie (clocks of other systems drift).
FUTURE_TOLERANCE = timedelta(minutes=5)
# The largest attempt number the database column holds (a PostgreSQL integer).
MAX_ATTEMPT = 2**31 - 1


def interaction_values_problem(
    *,
    timestamp: datetime,
    attempt: int | None = None,
    duration_s: float | None = None,
    now: datetime | None = None,
) -> str | None:
    """Why an answer with these values cannot be stored, or None when they are fine.

    The timestamp must carry a time zone; the attempt is a whole number from 0; the duration a
    finite number of seconds from 0. With ``now`` the timestamp may not lie more than
    :data:`FUTURE_TOLERANCE` after it: an import that does has a wrong clock or a wrong column,
    and a future answer would sort after every real one. (The app's own writers pass no ``now``.)
    """
    if timezone.is_naive(timestamp):
        return f"timestamp {timestamp} has no time zone"
    if now is not None and timestamp > now + FUTURE_TOLERANCE:
        return f"timestamp {timestamp.isoformat()} is in the future"
    if attempt is not None and (
        isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= MAX_ATTEMPT
    ):
        return f"attempt must be a whole number from 0, not {attempt!r}"
    if duration_s is not None and (
        isinstance(duration_s, bool)
        or not isinstance(duration_s, int | float)
        or not math.isfinite(duration_s)
        or duration_s < 0
    ):
        return f"duration_s must be a finite number of seconds from 0, not {duration_s!r}"
    return None


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
        problem = interaction_values_problem(
            timestamp=record.timestamp, attempt=record.attempt, duration_s=record.duration_s
        )
        if problem is not None:
            raise ValidationFailed(f"{where}: {problem}")
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
