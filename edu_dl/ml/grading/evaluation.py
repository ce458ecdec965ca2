"""Held-out evaluation of the graders, and a simulation of the teacher working the review queue.

Both run the production code path: :func:`pipeline.train_grader` and ``TrainedGrader.grade``
for items with scored responses, the cold-start reference grader for items without, and the
release policy and review order of :mod:`edu_dl.ml.grading.policy`.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from edu_dl.ml.grading.formats import GradedText, items_of
from edu_dl.ml.grading.pipeline import (
    MIN_SCORED_RESPONSES,
    TrainedGrader,
    qwk_on_scale,
    score_levels,
    train_grader,
)
from edu_dl.ml.grading.policy import (
    cold_start_preferred,
    in_audit_sample,
    release_curve_of,
    release_gate,
    released_by_graders,
    review_priority,
)
from edu_dl.ml.grading.reference import Exemplar
from edu_dl.ml.grading.scorer import levels_of
from edu_dl.ml.metrics import (
    expected_calibration_error,
    quadratic_weighted_kappa,
    subset_agreement,
)

Log = Callable[[str], None]


class CachedEncoder:
    """Wraps a sentence encoder so that each distinct text is encoded once per evaluation, and,
    with ``keep_lower_states`` (the review simulation sets it), goes through the frozen lower
    layers of a tuned grader once per layer split and length limit (see
    :func:`edu_dl.ml.grading.tuned.encoder_lower_states`; a held-out evaluation runs each
    answer through them once anyway, and keeping them would only cost memory)."""

    def __init__(self, encoder, *, keep_lower_states: bool = False):
        self.encoder = encoder
        self.name = encoder.name
        self.dim = encoder.dim
        self.keep_lower_states = keep_lower_states
        self._vectors: dict[str, torch.Tensor] = {}
        # (frozen layers, token limit) -> text -> its states, without padding.
        self._states: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.seconds = 0.0

    def transformer(self):
        return self.encoder.transformer()

    def lower_states(
        self, texts: list[str], *, frozen: int, max_tokens: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :func:`edu_dl.ml.grading.tuned.lower_states`: (n, tokens, hidden) padded to the
        longest of ``texts``, and the (n, tokens) mask."""
        from edu_dl.ml.grading.tuned import lower_states, transformer_of

        store = self._states.setdefault((frozen, max_tokens), {})
        missing = list(dict.fromkeys(t for t in texts if t not in store))
        if missing:
            started = time.perf_counter()
            tokenizer, model = transformer_of(self.encoder)
            states, mask = lower_states(
                tokenizer, model, missing, frozen=frozen, max_tokens=max_tokens
            )
            for text, row, row_mask in zip(missing, states, mask, strict=True):
                store[text] = row[: int(row_mask.sum())].clone()
            self.seconds += time.perf_counter() - started
        kept = [store[t] for t in texts]
        width = max((len(k) for k in kept), default=1)
        hidden = kept[0].shape[1] if kept else self.dim
        states = torch.zeros(len(texts), width, hidden)
        mask = torch.zeros(len(texts), width, dtype=torch.int64)
        for i, k in enumerate(kept):
            states[i, : len(k)] = k
            mask[i, : len(k)] = 1
        return states, mask

    def encode(self, texts: list[str]) -> torch.Tensor:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            started = time.perf_counter()
            for text, vector in zip(missing, self.encoder.encode(missing), strict=True):
                self._vectors[text] = vector
            self.seconds += time.perf_counter() - started
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self._vectors[t] for t in texts])


@dataclass
class Prediction:
    row: int
    item_id: str
    gold: float
    predicted: float
    confidence: float


@dataclass
class EvaluationResult:
    items: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    train_seconds: float = 0.0
    inference_seconds: float = 0.0
    # Items with test rows that no grader could score, as production would leave their answers
    # to the teacher: {"item_id", "n_test", "reason"}.
    not_scored: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, item_id: str, n_test: int, reason: str, log: Log) -> None:
        self.not_scored.append({"item_id": item_id, "n_test": n_test, "reason": reason})
        log(f"item {item_id}: not scored: {reason}")


def item_figures(item_id: str, rows: list[GradedText], predictions: list[Prediction]) -> dict:
    low, high = rows[0].min_score, rows[0].max_score
    n_levels = score_levels(low, high, [r.score for r in rows])
    scale = {"min_score": low, "max_score": high, "n_levels": n_levels}
    gold = levels_of([p.gold for p in predictions], **scale)
    predicted = levels_of([p.predicted for p in predictions], **scale)
    correct = gold == predicted
    confidence = np.array([p.confidence for p in predictions])
    figures = {
        "item_id": item_id,
        "n_test": len(predictions),
        "qwk": round(quadratic_weighted_kappa(gold, predicted, n_levels), 5),
        "exact_agreement": round(float(correct.mean()), 5),
        "ece": round(expected_calibration_error(correct, confidence), 5),
        "mean_confidence": round(float(confidence.mean()), 5),
    }
    if n_levels == 2:
        figures["accuracy"] = figures["exact_agreement"]
    return figures


def evaluate_seen_items(
    rows: list[GradedText],
    *,
    encoder=None,
    fallback=None,
    cold_start_until: int = 0,
    log: Log = lambda _: None,
    tune=None,
) -> EvaluationResult:
    """Per item: train on its ``train`` (and ``dev``) rows, score its ``test`` rows.

    As production does, an item with a reference answer is scored by ``fallback`` (the
    cold-start grader) when it has too few training rows for a grader of its own, or fewer
    than ``cold_start_until``; the fallback then reads the item's training rows as its
    teacher-scored exemplars. Without a fallback, or without a reference answer for it to
    compare with, such items get their own grader if they can, and are otherwise reported as
    not scored (in production their answers wait for the teacher).
    """
    result = EvaluationResult()
    for item_id, item_rows in items_of(rows).items():
        train = [r for r in item_rows if r.split in ("train", "dev")]
        test = [r for r in item_rows if r.split == "test"]
        if not test:
            continue
        started = time.perf_counter()
        has_reference = bool(test[0].reference_answer.strip())
        own_grader = len(train) >= MIN_SCORED_RESPONSES and not cold_start_preferred(
            item_scored=len(train),
            has_reference=has_reference,
            cold_start_available=fallback is not None,
            until=cold_start_until,
        )
        if own_grader:
            grader = train_grader(
                [r.response for r in train],
                [r.score for r in train],
                [r.row for r in train],
                min_score=train[0].min_score,
                max_score=train[0].max_score,
                reference_answer=train[0].reference_answer,
                encoder=encoder,
                tune=tune,
            )
            result.train_seconds += time.perf_counter() - started
            started = time.perf_counter()
            graded = grader.grade([r.response for r in test], encoder=encoder, explain=False)
            how = {"grader": "item", "validated_qwk": grader.metrics["validated_qwk"]}
            if "tuned" in grader.metrics:
                how["tuned"] = grader.metrics["tuned"]
        elif fallback is not None and has_reference:
            first = test[0]
            graded = fallback.grade(
                question=first.question,
                reference_answer=first.reference_answer,
                texts=[r.response for r in test],
                min_score=first.min_score,
                max_score=first.max_score,
                n_levels=score_levels(
                    first.min_score, first.max_score, [r.score for r in item_rows]
                ),
                encoder=encoder,
                explain=False,
                exemplars=[Exemplar(r.row, r.response, r.score) for r in train],
            )
            how = {"grader": "cold-start"}
        else:
            reason = (
                f"{len(train)} training rows, fewer than the {MIN_SCORED_RESPONSES} a grader needs"
            )
            if fallback is not None:
                reason += ", and no reference answer for the cold-start grader"
            result.skip(item_id, len(test), reason, log)
            continue
        result.inference_seconds += time.perf_counter() - started
        predictions = [
            Prediction(r.row, item_id, r.score, g.score, g.confidence)
            for r, g in zip(test, graded, strict=True)
        ]
        result.predictions.extend(predictions)
        figures = {**item_figures(item_id, item_rows, predictions), "n_train": len(train), **how}
        result.items.append(figures)
        log(f"item {item_id}: {figures}")
    return result


def evaluate_unseen_items(
    rows: list[GradedText],
    *,
    train_reference,
    encoder=None,
    groups: int = 5,
    log: Log = lambda _: None,
) -> EvaluationResult:
    """Whole items held out: the cold-start grader scores an item from its reference answer
    only, having learnt from other items.

    Where some items have only ``test`` rows, those are the held-out items and the grader
    learns from the ``train`` rows of the others. Where every item mixes both splits, the items
    are dealt into ``groups`` groups (in file order) and each group in turn is held out: its
    ``test`` rows are scored by a grader trained on the ``train`` rows of the other groups.
    A held-out item without a reference answer is reported as not scored (the cold-start
    grader has nothing to compare its answers with), as are the items of a group whose
    others are too few to learn from.
    """
    result = EvaluationResult()
    by_item = items_of(rows)
    held_out = [k for k, v in by_item.items() if all(r.split == "test" for r in v)]
    if held_out:
        folds = [held_out]
    else:
        keys = [k for k, v in by_item.items() if any(r.split == "test" for r in v)]
        count = max(2, min(groups, len(keys)))
        folds = [keys[g::count] for g in range(count) if keys[g::count]]
    for fold_items in folds:
        outside = set(fold_items)
        examples = [
            r for k, v in by_item.items() if k not in outside for r in v if r.split != "test"
        ]
        started = time.perf_counter()
        try:
            grader = train_reference(examples, encoder)
        except ValueError as error:
            # Too little to learn from outside this group (the other items too few, or
            # without reference answers): its items are left out, the other groups go on.
            for item_id in fold_items:
                n_test = sum(r.split == "test" for r in by_item[item_id])
                reason = f"the cold-start grader could not learn from the other items: {error}"
                result.skip(item_id, n_test, reason, log)
            continue
        result.train_seconds += time.perf_counter() - started
        started = time.perf_counter()
        for item_id in fold_items:
            item_rows = [r for r in by_item[item_id] if r.split == "test"]
            first = item_rows[0]
            if not first.reference_answer.strip():
                reason = "no reference answer for the cold-start grader to compare with"
                result.skip(item_id, len(item_rows), reason, log)
                continue
            graded = grader.grade(
                question=first.question,
                reference_answer=first.reference_answer,
                texts=[r.response for r in item_rows],
                min_score=first.min_score,
                max_score=first.max_score,
                n_levels=score_levels(
                    first.min_score, first.max_score, [r.score for r in by_item[item_id]]
                ),
                encoder=encoder,
                explain=False,
            )
            predictions = [
                Prediction(r.row, item_id, r.score, g.score, g.confidence)
                for r, g in zip(item_rows, graded, strict=True)
            ]
            result.predictions.extend(predictions)
            figures = {**item_figures(item_id, item_rows, predictions), "grader": "cold-start"}
            result.items.append(figures)
            log(f"item {item_id}: {figures}")
        result.inference_seconds += time.perf_counter() - started
    return result


def summary(result: EvaluationResult) -> dict[str, Any]:
    qwks = [i["qwk"] for i in result.items]
    out: dict[str, Any] = {
        "qwk_mean": round(statistics.fmean(qwks), 5) if qwks else None,
        "exact_agreement_mean": round(
            statistics.fmean(i["exact_agreement"] for i in result.items), 5
        )
        if result.items
        else None,
        "ece_mean": round(statistics.fmean(i["ece"] for i in result.items), 5)
        if result.items
        else None,
    }
    binary = [i["accuracy"] for i in result.items if "accuracy" in i]
    if binary:
        out["accuracy_mean"] = round(statistics.fmean(binary), 5)
    return out


# ----- review simulation --------------------------------------------------------------------


@dataclass
class _ItemState:
    item_id: str
    rows: list[GradedText]
    n_levels: int
    queue_order: list[int]  # positions into rows, teacher's next picks first
    audited: set[int] = field(default_factory=set)  # positions in the random check
    hand: set[int] = field(default_factory=set)
    released: dict[int, float] = field(default_factory=dict)
    # Which retrain released each released answer, and the point of its curve its gate read.
    released_in: dict[int, int] = field(default_factory=dict)
    gate_points: dict[int, dict[str, Any]] = field(default_factory=dict)
    validated_qwk: float | None = None
    release_confidence: float | None = None  # the least confidence released (None: none)
    retrains: int = 0
    grader: TrainedGrader | None = None  # the latest (its tuned layers may serve again)
    retunes: int = 0
    # Every grader so far, with what it scored of the random check while those answers waited:
    # position -> (its level, its confidence), for the later graders to know what it released.
    served: list[tuple[dict[str, Any], dict[int, tuple[int, float | None]]]] = field(
        default_factory=list
    )

    @property
    def scale(self) -> dict[str, Any]:
        """The item's score scale, as :func:`levels_of` and :func:`qwk_on_scale` take it."""
        first = self.rows[0]
        return {
            "min_score": first.min_score,
            "max_score": first.max_score,
            "n_levels": self.n_levels,
        }

    @cached_property
    def gold_levels(self) -> np.ndarray:
        """The level of each response's gold score."""
        return levels_of([row.score for row in self.rows], **self.scale)


def simulate_review(
    rows: list[GradedText],
    *,
    batch: int,
    min_qwk: float,
    min_confidence: float,
    audit_share: float = 0.0,
    encoder=None,
    seed: int = 0,
    max_rounds: int = 1000,
    log: Log = lambda _: None,
    tune=None,
) -> dict[str, Any]:
    """Play the teacher with the gold scores through the release policy and the review order.

    Every response of every item arrives ungraded. Each round the teacher grades the next
    ``batch`` responses of each item's queue (highest review priority first; before any model
    exists, in arrival order), the item's grader retrains on all teacher scores so far (as the
    production retrain after K new teacher scores does, keeping its tuned encoder layers where
    production would), and it scores the responses nobody has graded: a score is released
    when the policy allows, otherwise the response waits in the queue with its priority. A
    released score is final (the student has seen it). The answers of the random check
    (``audit_share`` of each item's, drawn as production draws them) are never released and come
    first in the queue; the grader's validated QWK and release curve are measured on them.

    After each round one curve point: if the teacher graded everything still waiting, what
    share of responses would have been graded by hand, and what QWK would the final grades
    (teacher scores plus released model scores) have against the gold scores (mean over items).
    """
    if isinstance(encoder, CachedEncoder):
        # Every retrain grades the answers still waiting: their frozen layers' output is kept.
        encoder.keep_lower_states = True
    rng = random.Random(seed)
    states = []
    for item_id, item_rows in items_of(rows).items():
        order = list(range(len(item_rows)))
        rng.shuffle(order)  # arrival order
        n_levels = score_levels(
            item_rows[0].min_score, item_rows[0].max_score, [r.score for r in item_rows]
        )
        audited = {
            position
            for position, row in enumerate(item_rows)
            if in_audit_sample(f"{item_id}/{row.split}/{row.row}", audit_share)
        }
        states.append(_ItemState(item_id, item_rows, n_levels, order, audited))
    total = sum(len(s.rows) for s in states)
    curve: list[dict[str, Any]] = []
    train_seconds = 0.0
    for round_number in range(1, max_rounds + 1):
        active = [s for s in states if s.queue_order]
        if not active:
            break
        for state in active:
            picks, state.queue_order = state.queue_order[:batch], state.queue_order[batch:]
            state.hand.update(picks)
            if len(state.hand) < MIN_SCORED_RESPONSES or not state.queue_order:
                continue
            started = time.perf_counter()
            hand = sorted(state.hand)
            first = state.rows[0]
            grader = train_grader(
                [state.rows[i].response for i in hand],
                [state.rows[i].score for i in hand],
                hand,
                min_score=first.min_score,
                max_score=first.max_score,
                reference_answer=first.reference_answer,
                encoder=encoder,
                audit=[i in state.audited for i in hand],
                tune=tune,
                previous=state.grader,
                random_check=audit_share > 0,
                released_before=released_by_graders(
                    [
                        (
                            metrics,
                            [
                                (p, state.gold_levels[p], *scored[p])
                                for p in scored
                                if p in state.hand
                            ],
                        )
                        for metrics, scored in state.served
                    ],
                    min_qwk=min_qwk,
                    min_confidence=min_confidence,
                ),
            )
            state.grader = grader
            state.retrains += 1
            if "tuned" in grader.metrics and not grader.metrics["tuned"]["layers_kept"]:
                state.retunes += 1
            state.validated_qwk = grader.metrics["validated_qwk"]
            gate = release_gate(
                release_curve_of(grader.metrics), min_qwk=min_qwk, min_confidence=min_confidence
            )
            state.release_confidence = gate.confidence
            if gate.point is not None:
                # With how many answers were waiting when it was read.
                state.gate_points[state.retrains] = {
                    **gate.point,
                    "waiting": len(state.queue_order),
                }
            waiting = state.queue_order
            # The review order needs the nearest scored answer, not the words behind a score.
            graded = grader.grade(
                [state.rows[i].response for i in waiting],
                encoder=encoder,
                explain=True,
                phrases=False,
            )
            train_seconds += time.perf_counter() - started
            priorities = {}
            scored_in_check = {}
            levels = levels_of([prediction.score for prediction in graded], **state.scale)
            for position, prediction, level in zip(waiting, graded, levels, strict=True):
                audited = position in state.audited
                if audited:
                    scored_in_check[position] = (int(level), prediction.confidence)
                if gate.allows(prediction.confidence, audited=audited):
                    state.released[position] = prediction.score
                    state.released_in[position] = state.retrains
                else:
                    nearest = prediction.similar[0]["similarity"] if prediction.similar else None
                    priorities[position] = review_priority(
                        confidence=prediction.confidence,
                        nearest_similarity=nearest,
                        audited=audited,
                    )
            state.served.append((grader.metrics, scored_in_check))
            state.queue_order = sorted(priorities, key=lambda p: (-priorities[p], p))
        point = _curve_point(states, total)
        point["round"] = round_number
        curve.append(point)
        log(f"round {round_number}: {point}")
    return {
        "review_curve": curve,
        "review_batch": batch,
        "release_min_qwk": min_qwk,
        "release_min_confidence": min_confidence,
        "audit_share": audit_share,
        "review_items": [
            {
                "item_id": s.item_id,
                "responses": len(s.rows),
                "hand_share": round(len(s.hand) / len(s.rows), 4),
                "released_share": round(len(s.released) / len(s.rows), 4),
                "qwk": round(_final_qwk(s), 4),
                "released_agreement": _released_agreement(s),
                "releases": _releases(s),
                "validated_qwk": s.validated_qwk,
                "release_confidence": s.release_confidence,
                "audited": len(s.audited),
                "retrains": s.retrains,
                **({"encoder_tunings": s.retunes} if tune is not None else {}),
            }
            for s in states
        ],
        "review_train_seconds": round(train_seconds, 1),
    }


def _releases(state: _ItemState) -> list[dict[str, Any]]:
    """Per retrain that released grades: how many, their agreement with the gold scores (as
    :func:`_released_agreement`) alone and with the releases before, and what the gate read for
    it (its curve's point: the agreement measured, its lower bound and its share)."""
    retrains = sorted(set(state.released_in.values()))
    return [
        {
            "retrain": retrain,
            "answers": len(positions),
            "agreement": _released_agreement(state, positions),
            # With the releases before it: what its gate vouched for.
            "agreement_so_far": _released_agreement(
                state, [p for p, r in state.released_in.items() if r <= retrain]
            ),
            "gate_qwk": state.gate_points[retrain].get("qwk"),
            "gate_qwk_low": state.gate_points[retrain].get("qwk_low"),
            # The share of its curve's answers the gate's point held, against the share of the
            # answers waiting that it released: far apart, the answers differ.
            "gate_share": state.gate_points[retrain].get("share"),
            "released_of_waiting": round(len(positions) / state.gate_points[retrain]["waiting"], 4),
        }
        for retrain in retrains
        if (positions := [p for p, r in state.released_in.items() if r == retrain])
    ]


def _released_agreement(state: _ItemState, positions: list[int] | None = None) -> float | None:
    """How well the item's released grades (or those at ``positions``) agree with the gold
    scores, on the QWK scale of the item (the kappa it would have if every grade were as good
    as these: what the release policy promises to keep at ``min_qwk`` or more); None when
    nothing was released."""
    if not state.released:
        return None
    positions = sorted(state.released if positions is None else positions)
    gold, final = _final_scores(state, positions)
    scale = state.scale
    inside = np.zeros(len(gold), dtype=bool)
    inside[positions] = True
    agreement, _ = subset_agreement(
        levels_of(gold, **scale), levels_of(final, **scale), state.n_levels, inside
    )
    return None if math.isnan(agreement) else round(agreement, 4)


def _final_scores(state: _ItemState, positions) -> tuple[list[float], list[float]]:
    """An item's gold scores, and its final grades: the released ones at ``positions``, the
    teacher's (the gold) everywhere else."""
    gold = [r.score for r in state.rows]
    final = list(gold)
    for position in positions:
        final[position] = state.released[position]
    return gold, final


def _final_qwk(state: _ItemState) -> float:
    """QWK against the gold scores of an item's final grades: teacher's, or released ones."""
    gold, final = _final_scores(state, state.released)
    return qwk_on_scale(gold, final, **state.scale)


def _curve_point(states: list[_ItemState], total: int) -> dict[str, Any]:
    by_hand = sum(len(state.rows) - len(state.released) for state in states)
    qwks = [_final_qwk(state) for state in states]
    graded_so_far = sum(len(s.hand) for s in states)
    return {
        "hand_share": round(by_hand / total, 4),
        "qwk": round(statistics.fmean(qwks), 4),
        "teacher_graded_share": round(graded_so_far / total, 4),
        "released_share": round(sum(len(s.released) for s in states) / total, 4),
    }
