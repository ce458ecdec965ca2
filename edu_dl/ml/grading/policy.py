"""The release policy and the review order: pure functions shared by the grading service and
the review simulation of ``evaluate_grader``, so the simulation measures what production does.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The review priority of an answer in the random check: the highest, so the teacher grades the
# whole sample (a sample graded only in part, the easy ones first, would no longer be random).
AUDIT_PRIORITY = 1.0


def in_audit_sample(key: int | str, share: float) -> bool:
    """Whether an answer belongs to its item's random check: a fixed ``share`` of answers,
    drawn by a hash of the answer's key (its response id) and so independent of what it says,
    that always go to the teacher. The graders' agreement with the teacher is measured on these,
    a fair sample of the item's answers, rather than on the answers the review queue chose for
    being hard (which understates a good grader and may overstate a poor one)."""
    if share <= 0:
        return False
    digest = hashlib.blake2b(f"edu-dl-audit:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def release_curve_of(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The release curve a grader's metrics hold (see
    :func:`edu_dl.ml.grading.scorer.release_curve`). A grader trained before there were curves
    (or the cold-start grader) has one point: its validated QWK over all its grades."""
    curve = metrics.get("release_curve")
    if isinstance(curve, list):
        return [p for p in curve if isinstance(p, dict)]
    qwk = metrics.get("validated_qwk")
    if not _number(qwk):
        return []
    return [{"confidence": 0.0, "qwk": float(qwk), "share": 1.0}]


def point_agreement(point: Mapping[str, Any]) -> float | None:
    """The agreement a point of a release curve vouches for: its lower bound where it has one
    (so that it holds beyond the answers it was measured on), else its measured QWK; None
    when it has neither."""
    value = point.get("qwk_low") if "qwk_low" in point else point.get("qwk")
    return float(value) if _number(value) else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


@dataclass(frozen=True)
class ReleaseGate:
    """The release policy of one grader under one item's thresholds."""

    # The point of the curve the gate opens at: walking down from the surest, the last at
    # which the grader's grades (that one and all surer) agreed with the teacher at the item's
    # QWK or more (see release_gate); None when the surest share did not.
    point: dict[str, Any] | None
    # The least confidence at which a grade is released: the point's, never below the item's
    # minimum; None when nothing is released.
    confidence: float | None

    def allows(self, confidence: float | None, *, audited: bool = False) -> bool:
        """Whether a grade of this confidence reaches the student without a teacher: never for
        an answer of the random check (the teacher always grades those), and anything unknown
        means no."""
        if audited or confidence is None or math.isnan(confidence) or self.confidence is None:
            return False
        return confidence >= self.confidence


def release_gate(
    curve: list[dict[str, Any]], *, min_qwk: float, min_confidence: float
) -> ReleaseGate:
    """A grader's :class:`ReleaseGate` from its release curve (:func:`release_curve_of`), the
    item's QWK bar ``min_qwk`` and its least confidence ``min_confidence``.

    The points are tested in a fixed order, surest first, and the walk stops at the first whose
    agreement (:func:`point_agreement`) is under the bar or unknown: the gate opens at the last
    point that passed. Taking the least sure point that passes anywhere on the curve instead
    would test each point at the level of one and then pick among them, so a share whose low
    end passed by luck (one of some twenty on the same random check) would open the gate; tested
    in sequence, the chance that a gate opens on a share whose agreement is under the bar stays
    that of one test (the fixed-sequence procedure). On ASAP-SAS (``benchmarks/
    bench_release_gate.py``: graders trained on all the training answers, 30 random checks of
    three tenths of each question's test answers), of the draws that released, the least sure
    passing point released grades agreeing under 0.80 in 31 % on question 1, 42 % on question 2
    and 67 % on question 4; the walk in 12 %, 33 % and 40 %, releasing 38.9 % of all the answers
    instead of 42.6 %."""
    point = None
    for candidate in sorted(
        (p for p in curve if _number(p.get("confidence"))), key=lambda p: -float(p["confidence"])
    ):
        agreement = point_agreement(candidate)
        if agreement is None or agreement < min_qwk:
            break
        point = candidate
    if point is None:
        return ReleaseGate(point=None, confidence=None)
    return ReleaseGate(point=point, confidence=max(float(point["confidence"]), min_confidence))


@dataclass(frozen=True)
class ReleasedSample:
    """What :func:`released_sample` returns: on a scale of ``n_levels``, ``grades`` maps an
    answer's key to (the teacher's level, the released level)."""

    n_levels: int
    grades: dict[Any, tuple[int, int]]


def released_sample(
    metrics: Mapping[str, Any],
    *,
    min_qwk: float,
    min_confidence: float,
    scored_while_waiting: Iterable[tuple[Any, int, int, float | None]] = (),
) -> ReleasedSample:
    """Of the answers a grader and the item's graders before it were validated on, those whose
    grades their release gates let through (under the item's thresholds), each as ``key ->
    (teacher's level, grader's level)``.

    A grader scores the answers the earlier ones left in the queue, which are the harder ones,
    and what it releases adds to what they released. Its gate must then vouch for the two
    together, on answers the earlier gates did not release; its own curve over all answers says
    neither. The validation answers (the random check, graded out of sample) are a fair sample
    of every answer, so which of them each gate would have released (the answer was never
    released, since the teacher grades the random check) is a fair sample of what it did
    release. The first grader to release one counts; a later one never sees it again.
    ``metrics``: the grader's (its ``n_levels``, ``validation_grades`` and ``released_before``;
    older graders without them give nothing).

    ``scored_while_waiting``: answers of the random check that this grader scored while they
    waited for the teacher (its level and confidence then; the teacher's level since), as
    ``(key, teacher's level, its level, confidence)``. Its gate would have released those it
    allowed, as it did release the answers like them outside the check; left out, they would
    count as answers no grader released, and a later grader measured on them would read its
    curve on the clear cases the earlier ones had already taken from the queue.
    """
    sample: dict[Any, tuple[int, int]] = {}
    for record in metrics.get("released_before") or []:
        key, gold, level = record
        sample[_key(key)] = (int(gold), int(level))
    gate = release_gate(release_curve_of(metrics), min_qwk=min_qwk, min_confidence=min_confidence)
    for record in [*(metrics.get("validation_grades") or []), *scored_while_waiting]:
        key, gold, level, confidence = record
        if _key(key) not in sample and gate.allows(confidence):
            sample[_key(key)] = (int(gold), int(level))
    return ReleasedSample(n_levels=int(metrics.get("n_levels") or 0), grades=sample)


def released_by_graders(
    graders: Iterable[tuple[Mapping[str, Any], Iterable[tuple[Any, int, int, float | None]]]],
    *,
    min_qwk: float,
    min_confidence: float,
) -> ReleasedSample | None:
    """:func:`released_sample` of every grader that has served the item, oldest first, together:
    after a rollback the grader served again never knew what the one rolled back had released,
    and neither would the next one trained. The first grader to release an answer counts;
    samples on another scale than the newest grader's are left out (they are not comparable).
    ``graders``: each one's metrics and the answers of the random check it scored while they
    waited (see :func:`released_sample`). None when no grader has served."""
    samples = [
        released_sample(
            metrics,
            min_qwk=min_qwk,
            min_confidence=min_confidence,
            scored_while_waiting=scored,
        )
        for metrics, scored in graders
    ]
    if not samples:
        return None
    n_levels = samples[-1].n_levels
    grades: dict[Any, tuple[int, int]] = {}
    for sample in samples:
        if sample.n_levels == n_levels:
            for key, grade in sample.grades.items():
                grades.setdefault(key, grade)
    return ReleasedSample(n_levels=n_levels, grades=grades)


def _key(key: Any) -> Any:
    # JSON keeps a list's ints and strings as they were; a tuple key comes back as a list.
    return tuple(key) if isinstance(key, list) else key


def review_priority(
    *, confidence: float | None, nearest_similarity: float | None, audited: bool = False
) -> float:
    """How much the model would learn from the teacher grading this response (0 to 1).

    Uncertain answers come first (the teacher's score settles a case the model cannot), and
    among them answers unlike anything scored so far (a new kind of answer teaches more than a
    tenth copy of a known one). Without a model every answer is equally uncertain. An answer
    of the random check comes first whatever the model thinks of it.
    """
    if audited:
        return AUDIT_PRIORITY
    uncertainty = 1.0 if confidence is None else 1.0 - max(0.0, min(1.0, confidence))
    novelty = 1.0 if nearest_similarity is None else 1.0 - max(0.0, min(1.0, nearest_similarity))
    return round(0.75 * uncertainty + 0.25 * novelty, 6)


def cold_start_preferred(
    *, item_scored: int | None, has_reference: bool, cold_start_available: bool, until: int
) -> bool:
    """Whether an item's answers are scored by the cold-start grader rather than its own.

    Its own grader has learnt from ``item_scored`` teacher scores (None: it has none). With
    few of them it knows little of the item's answers, while the cold-start grader, learnt on
    many other items, compares each answer with the item's model answer; so an item that has
    a model answer keeps the cold-start grader until its own learnt from ``until`` scores.
    """
    if not (has_reference and cold_start_available):
        return False
    return item_scored is None or item_scored < until
