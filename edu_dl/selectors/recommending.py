"""Reads for the recommender: a course's resource feedback as labelled examples (no torch).

What counts as "this resource helped this student":

* a ``helpful`` vote is 1 and a ``not_helpful`` vote 0, at full weight; a student who voted on
  the same resource more than once counts once, with their last vote;
* a ``completed`` resource is judged by what followed: the student's mastery of the resource's
  skills (weighted by how much the resource teaches each) from the last estimate before the
  completion to the first estimate after it. A rise above :data:`MASTERY_GAIN_THRESHOLD` is 1,
  anything else 0, at weight :data:`COMPLETION_WEIGHT` (mastery also moves for other reasons).
  A skill counts only where the student has an estimate on both sides; a completion with no
  such skill (no estimate yet, or none since) is not an example;
* ``viewed`` alone says nothing and is not an example.

Each example carries the student's mastery of the resource's skills just before the event (the
newest estimate at or before it; skills without one are left out): what the model learns from.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime

from edu_dl.models import MasteryEstimate, ResourceInteraction, ResourceSkill

MASTERY_GAIN_THRESHOLD = 0.02
COMPLETION_WEIGHT = 0.5
VOTE_LABELS = {
    ResourceInteraction.Event.HELPFUL: 1.0,
    ResourceInteraction.Event.NOT_HELPFUL: 0.0,
}
LABELLED_EVENTS = (*VOTE_LABELS, ResourceInteraction.Event.COMPLETED)


@dataclass(frozen=True)
class ResourceFeedbackExample:
    """One labelled piece of feedback, in database ids."""

    event_id: int
    event: str
    timestamp: datetime
    student_id: int
    resource_id: int
    skills: dict[int, float]  # skill id -> how much the resource teaches it
    mastery: dict[int, float]  # skill id -> the student's mastery just before the event
    label: float  # 1 helped, 0 did not
    weight: float


class _MasteryTimeline:
    """Every estimate of the course's students on resource skills, by (student, skill), in time
    order: one query, then lookups by bisection."""

    def __init__(self, course_id: int) -> None:
        self._times: dict[tuple[int, int], list[datetime]] = {}
        self._values: dict[tuple[int, int], list[float]] = {}
        students = (
            ResourceInteraction.objects.filter(
                resource__course_id=course_id, event__in=LABELLED_EVENTS
            )
            .order_by()
            .values("student_id")
            .distinct()
        )
        skills = (
            ResourceSkill.objects.filter(resource__course_id=course_id)
            .order_by()
            .values("skill_id")
        )
        rows = (
            MasteryEstimate.objects.filter(student_id__in=students, skill_id__in=skills)
            .order_by("student_id", "skill_id", "as_of", "id")
            .values_list("student_id", "skill_id", "as_of", "probability")
        )
        for student_id, skill_id, as_of, probability in rows.iterator(chunk_size=20_000):
            key = (student_id, skill_id)
            self._times.setdefault(key, []).append(as_of)
            self._values.setdefault(key, []).append(probability)

    def around(
        self, student_id: int, skill_id: int, at: datetime
    ) -> tuple[float | None, float | None]:
        """(the newest estimate at or before ``at``, the first one after it); None for none."""
        times = self._times.get((student_id, skill_id))
        if not times:
            return None, None
        values = self._values[(student_id, skill_id)]
        after = bisect_right(times, at)
        return (
            values[after - 1] if after > 0 else None,
            values[after] if after < len(times) else None,
        )


def _resource_skills(course_id: int) -> dict[int, dict[int, float]]:
    skills: dict[int, dict[int, float]] = {}
    rows = ResourceSkill.objects.filter(resource__course_id=course_id).values_list(
        "resource_id", "skill_id", "weight"
    )
    for resource_id, skill_id, weight in rows.order_by("resource_id", "skill_id"):
        skills.setdefault(resource_id, {})[skill_id] = weight
    return skills


def _labelled_events(course_id: int, events: tuple[str, ...]) -> list[tuple]:
    """(id, student, resource, event, timestamp) in time order, a student's repeated votes on
    one resource reduced to the last."""
    rows = list(
        ResourceInteraction.objects.filter(resource__course_id=course_id, event__in=events)
        .order_by("timestamp", "id")
        .values_list("id", "student_id", "resource_id", "event", "timestamp")
    )
    last_vote: dict[tuple[int, int], int] = {}
    for position, (_, student_id, resource_id, event, _) in enumerate(rows):
        if event in VOTE_LABELS:
            last_vote[(student_id, resource_id)] = position
    return [
        row
        for position, row in enumerate(rows)
        if row[3] not in VOTE_LABELS or last_vote[(row[1], row[2])] == position
    ]


def resource_feedback_examples(*, course_id: int) -> list[ResourceFeedbackExample]:
    """The course's resource feedback as labelled examples, in time order (see the module's
    docstring for the labels). Three queries whatever the number of events."""
    skills_of = _resource_skills(course_id)
    events = _labelled_events(course_id, LABELLED_EVENTS)
    timeline = _MasteryTimeline(course_id)
    examples: list[ResourceFeedbackExample] = []
    for event_id, student_id, resource_id, event, timestamp in events:
        skills = skills_of.get(resource_id, {})
        mastery: dict[int, float] = {}
        gain = gain_weight = 0.0
        for skill_id, weight in skills.items():
            before, after = timeline.around(student_id, skill_id, timestamp)
            if before is not None:
                mastery[skill_id] = before
                if after is not None:
                    gain += weight * (after - before)
                    gain_weight += weight
        if event in VOTE_LABELS:
            label, weight = VOTE_LABELS[event], 1.0
        elif gain_weight > 0:
            label = 1.0 if gain / gain_weight > MASTERY_GAIN_THRESHOLD else 0.0
            weight = COMPLETION_WEIGHT
        else:
            continue
        examples.append(
            ResourceFeedbackExample(
                event_id=event_id,
                event=event,
                timestamp=timestamp,
                student_id=student_id,
                resource_id=resource_id,
                skills=dict(skills),
                mastery=mastery,
                label=label,
                weight=weight,
            )
        )
    return examples


def labelled_feedback_count(*, course_id: int, enough: int | None = None) -> int:
    """How many labelled examples :func:`resource_feedback_examples` would give. With
    ``enough``, a count of votes that already reaches it is returned without judging the
    completions (one cheap query for a course with plenty of feedback)."""
    if enough is not None:
        votes = (
            ResourceInteraction.objects.filter(
                resource__course_id=course_id, event__in=tuple(VOTE_LABELS)
            )
            .order_by()
            .values("student_id", "resource_id")
            .distinct()
            .count()
        )
        if votes >= enough:
            return votes
    return len(resource_feedback_examples(course_id=course_id))


def resource_feedback_fingerprint(examples: list[ResourceFeedbackExample]) -> str:
    """sha256 over every example (event, skills, mastery, label, weight): two trainings with
    the same fingerprint learnt from the same data."""
    digest = hashlib.sha256()
    for e in examples:
        skills = sorted(e.skills.items())
        mastery = sorted((skill, round(value, 6)) for skill, value in e.mastery.items())
        digest.update(
            f"{e.event_id}|{e.student_id}|{e.resource_id}|{skills}|{mastery}|"
            f"{e.label:g}|{e.weight:g};".encode()
        )
    return digest.hexdigest()
