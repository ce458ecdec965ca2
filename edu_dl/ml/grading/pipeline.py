"""From teacher-scored responses to a grader, and from a grader to explained, calibrated scores.

This is the one code path for production (the model-grading service and the grader trainer)
and for ``evaluate_grader``. It knows nothing about Django: callers pass texts, scores and
keys (response ids in production, row numbers in evaluation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edu_dl.ml.checkpoint import LoadedCheckpoint, checkpoint_bytes, load_checkpoint
from edu_dl.ml.grading.encoder import Encoder
from edu_dl.ml.grading.policy import ReleasedSample
from edu_dl.ml.grading.scorer import (
    ItemScorer,
    ScorerConfig,
    Validation,
    fit_item_scorer,
    levels_of,
    release_curve,
)
from edu_dl.ml.grading.tuned import (
    TuneConfig,
    TunedBlend,
    TuningUnsupported,
    check_split,
    fit_tuned_blend,
    transformer_of,
)
from edu_dl.ml.metrics import quadratic_weighted_kappa

MAX_LEVELS = 61
MIN_SCORED_RESPONSES = 10

logger = logging.getLogger(__name__)


class GraderUnavailable(RuntimeError):
    """This grader cannot score here (its encoder is missing, its file does not fit)."""


@dataclass(frozen=True)
class GradePrediction:
    score: float  # on the item's own scale, one of its levels
    confidence: float  # probability that the score is exactly what the teacher would give
    similar: list[dict[str, Any]]  # most similar scored responses: key, score, similarity
    phrases: list[dict[str, Any]]  # the words that moved the score, in score points

    def explanation(self) -> dict[str, Any]:
        return {"similar": self.similar, "phrases": self.phrases}


@dataclass
class TrainedGrader:
    scorer: ItemScorer
    keys: list[Any]
    scores: list[float]
    encoder_name: str
    metrics: dict[str, Any] = field(default_factory=dict)
    # The encoder's top layers tuned on this item, blended with ``scorer`` (None: scorer alone).
    tuned: TunedBlend | None = None

    @property
    def validated_qwk(self) -> float:
        value = self.metrics.get("validated_qwk")
        return float("nan") if value is None else float(value)

    def grade(
        self,
        texts: list[str],
        *,
        encoder: Encoder | None = None,
        explain: bool = True,
        phrases: bool = True,
    ) -> list[GradePrediction]:
        """Scores with confidence; ``explain`` adds the similar scored answers and, unless
        ``phrases`` is off, the words behind each score (the costly part)."""
        if not texts:
            return []
        embeddings = None
        if self.encoder_name:
            if encoder is None or encoder.name != self.encoder_name:
                raise GraderUnavailable(
                    f"this grader was trained with the sentence encoder {self.encoder_name!r}, "
                    "which is not loaded here"
                )
            if self.scorer.config.embed_dim:
                embeddings = encoder.encode(texts)
        output = self.scorer(texts, embeddings)
        level_score, confidence = output.score, output.confidence
        phrase_share = 1.0
        if self.tuned is not None:
            _, level, confidence = self.tuned.combine(
                self.scorer, output, self.tuned.raw(texts, encoder)
            )
            level_score = self.scorer.level_score(level)
            phrase_share = 1.0 - self.tuned.weight
        predictions = []
        for i, text in enumerate(texts):
            similar = [
                {
                    "key": self.keys[int(j)],
                    "score": self.scores[int(j)],
                    "similarity": round(float(s), 3),
                }
                for j, s in zip(
                    output.neighbour_index[i, :3], output.neighbour_similarity[i, :3], strict=True
                )
            ]
            predictions.append(
                GradePrediction(
                    score=float(level_score[i]),
                    confidence=float(confidence[i].clamp(0.0, 1.0)),
                    similar=similar if explain else [],
                    phrases=_scaled(self.scorer.phrases(text), phrase_share)
                    if explain and phrases
                    else [],
                )
            )
        return predictions

    def to_bytes(self) -> bytes:
        return checkpoint_bytes(
            self.scorer,
            metrics=self.metrics,
            extra={
                "keys": list(self.keys),
                "scores": list(self.scores),
                "encoder": self.encoder_name,
                **({"tuned": self.tuned.to_state()} if self.tuned is not None else {}),
            },
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainedGrader:
        return cls.from_checkpoint(load_checkpoint(data))

    @classmethod
    def from_checkpoint(cls, loaded: LoadedCheckpoint) -> TrainedGrader:
        if not isinstance(loaded.model, ItemScorer):
            raise GraderUnavailable(f"the file holds a {loaded.name!r} model, not a grader")
        return cls(
            scorer=loaded.model.eval(),
            keys=list(loaded.extra.get("keys", [])),
            scores=[float(s) for s in loaded.extra.get("scores", [])],
            encoder_name=str(loaded.extra.get("encoder", "")),
            metrics=dict(loaded.metrics),
            tuned=TunedBlend.from_state(loaded.extra["tuned"]) if "tuned" in loaded.extra else None,
        )


def _scaled(phrases: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """The kernel grader's phrase weights as a share of a blended grade."""
    if share == 1.0:
        return phrases
    return [{**p, "weight": round(p["weight"] * share, 4)} for p in phrases]


def score_levels(min_score: float, max_score: float, observed: list[float] | None = None) -> int:
    """How many score levels an item has: whole points, or finer steps the teacher used."""
    span = max_score - min_score
    if span <= 0:
        raise ValueError("max_score must be above min_score")
    step = 1.0
    if observed:
        offsets = sorted({round(s - min_score, 6) for s in observed if s > min_score})
        fractional = [o for o in offsets if abs(o - round(o)) > 1e-6]
        if fractional:
            step = min(_step_of(o) for o in fractional)
    if span < step:
        step = span
    levels = round(span / step) + 1
    return max(2, min(MAX_LEVELS, levels))


def qwk_on_scale(
    gold: list[float], predicted: list[float], *, min_score: float, max_score: float, n_levels: int
) -> float:
    """QWK of two lists of scores on an item's own scale (coded into its levels first)."""
    scale = {"min_score": min_score, "max_score": max_score, "n_levels": n_levels}
    return quadratic_weighted_kappa(
        levels_of(gold, **scale), levels_of(predicted, **scale), n_levels
    )


def _step_of(offset: float) -> float:
    for step in (0.5, 0.25, 0.2, 0.1):
        if abs(offset / step - round(offset / step)) < 1e-6:
            return step
    return 0.1


def train_grader(
    texts: list[str],
    scores: list[float],
    keys: list[Any],
    *,
    min_score: float,
    max_score: float,
    reference_answer: str = "",
    encoder: Encoder | None = None,
    config: ScorerConfig | None = None,
    audit: list[bool] | None = None,
    tune: TuneConfig | None = None,
    previous: TrainedGrader | None = None,
    released_before: ReleasedSample | None = None,
    random_check: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedGrader:
    """Fit an item's grader on its teacher-scored responses; ``audit`` marks those of the
    item's random check, which the validated QWK is measured on (see fit_item_scorer).

    With an ``encoder`` and ``tune`` (``tune.layers`` > 0) and at least ``tune.min_responses``
    answers, the encoder's top layers are tuned on the item and blended with the kernel grader
    (:mod:`edu_dl.ml.grading.tuned`), which then reads no sentence embeddings of its own; an
    encoder whose layers cannot be tuned is used as an embedding view, as without ``tune``.
    ``previous`` (the item's grader so far) lends its tuned layers where they may be kept (see
    :func:`edu_dl.ml.grading.tuned.retune_reason`). ``released_before``: what the item's
    graders so far released, as a sample (:func:`edu_dl.ml.grading.policy.released_by_graders`
    of every grader that served it): the release curve is then measured on the validation
    answers they did not release, each point with those releases added. ``random_check``: the
    item's answers have a random check (``audit`` marks it), so only a grader measured on it may
    release its grades; one measured on other answers (the random check holds too few yet) gets
    an empty release curve and says why in ``release_waits``. ``progress`` hears of each tuning
    epoch: (epoch, epochs)."""
    if not (len(texts) == len(scores) == len(keys)):
        raise ValueError("texts, scores and keys differ in length")
    if len(texts) < MIN_SCORED_RESPONSES:
        raise ValueError(
            f"a grader needs at least {MIN_SCORED_RESPONSES} scored responses, got {len(texts)}"
        )
    bad = [s for s in scores if not (min_score - 1e-9 <= s <= max_score + 1e-9)]
    if bad:
        raise ValueError(f"score {bad[0]} is outside the item's scale {min_score}..{max_score}")
    n_levels = score_levels(min_score, max_score, list(scores))
    tuning = (
        encoder is not None
        and tune is not None
        and tune.layers > 0
        and len(texts) >= tune.min_responses
        and _tunable(encoder)
    )
    embeddings = encoder.encode(texts) if encoder is not None and not tuning else None
    scorer, report = fit_item_scorer(
        texts,
        np.asarray(scores, dtype=np.float64),
        min_score=min_score,
        max_score=max_score,
        n_levels=n_levels,
        reference_answer=reference_answer,
        embeddings=embeddings,
        config=config,
        audit=audit,
    )
    metrics = {
        # None when undefined (one score level only): JSON has no NaN, and None is never trusted.
        "validated_qwk": _qwk_or_none(report.validated_qwk),
        "selection_qwk": round(report.selection_qwk, 4),
        "loo_qwk": round(report.loo_qwk, 4),
        "loo_accuracy": round(report.loo_accuracy, 4),
        "n_train": report.n_train,
        "n_levels": n_levels,
        "ridge": report.ridge,
        "view_weights": {k: round(v, 4) for k, v in report.view_weights.items()},
        "poly_gamma": report.poly_gamma,
        "threshold_rule": report.threshold_rule,
        # What validated_qwk was measured on: how many answers, from which sample.
        "validated_answers": report.validated_on,
        "validated_on": "random check" if report.validated_on_audit else "all teacher scores",
        # The agreement of its most confident grades on the same answers, for the release policy.
        "release_curve": report.release_curve,
    }
    blend = None
    if tuning:
        blend, figures = fit_tuned_blend(
            scorer,
            texts,
            levels_of(scores, min_score=min_score, max_score=max_score, n_levels=n_levels),
            report.held_out_loo,
            encoder,
            config=tune,
            keys=list(keys),
            audit=None if audit is None else np.asarray(audit, dtype=bool),
            previous=None if previous is None else previous.tuned,
            progress=progress,
        )
        metrics.update(
            {
                "kernel_validated_qwk": metrics["validated_qwk"],
                "validated_qwk": _qwk_or_none(figures["validated_qwk"]),
                "validated_answers": figures["validated_answers"],
                "validated_on": "random check"
                if figures["validated_on_audit"]
                else "answers held out of tuning",
                "release_curve": figures["release_curve"],
                "threshold_rule": "shares",
                "tuned": figures["tuned"],
            }
        )
    # With a random check in use, only a grader measured on it releases: the other answers are
    # the ones the queue chose for being hard, or the first to come with the grader's settings
    # searched on them, no proof for what it would release.
    releases = not random_check or metrics["validated_on"] == "random check"
    if not releases:
        needed = tune.min_validation if tuning else (config or ScorerConfig()).min_audited
        metrics["release_curve"] = []
        metrics["release_waits"] = (
            f"measured on {metrics['validated_answers']} answers that are not a random check: "
            f"its grades are released once {needed} answers of the random check, not all of "
            "one score, are scored"
        )
    validation = figures["validation"] if tuning else report.validation
    metrics.update(
        _release_record(validation, keys, n_levels, released_before, measure_curve=releases)
    )
    return TrainedGrader(
        scorer=scorer.eval(),
        keys=list(keys),
        scores=[float(s) for s in scores],
        encoder_name=encoder.name if encoder is not None else "",
        metrics=metrics,
        tuned=blend,
    )


def _release_record(
    validation: Validation | None,
    keys: list[Any],
    n_levels: int,
    released_before: ReleasedSample | None,
    *,
    measure_curve: bool,
) -> dict[str, Any]:
    """The grader's validation grades, for the next grader of the item to know what this one
    released; what the earlier graders released (passed on even by a grader that releases
    nothing); and, where ``measure_curve`` (the grader may release), its release curve on the
    answers they did not release, each point counting their releases too (see
    :func:`edu_dl.ml.grading.policy.released_sample`). Earlier releases on another scale are
    not comparable and are left out."""
    record: dict[str, Any] = {}
    earlier = (
        released_before.grades
        if released_before is not None and released_before.n_levels == n_levels
        else {}
    )
    if earlier:
        record["released_before"] = [[key, gold, level] for key, (gold, level) in earlier.items()]
        # How many answers of the earlier graders' samples say what they released.
        record["released_before_answers"] = len(earlier)
    if validation is None:
        return record
    answer_keys = [keys[int(i)] for i in validation.positions]
    record["validation_grades"] = [
        [key, int(gold), int(level), round(float(confidence), 4)]
        for key, gold, level, confidence in zip(
            answer_keys, validation.gold, validation.levels, validation.confidence, strict=True
        )
    ]
    if earlier and measure_curve:
        new = np.array([key not in earlier for key in answer_keys], dtype=bool)
        record["release_curve"] = release_curve(
            validation.confidence[new],
            validation.gold[new],
            validation.levels[new],
            n_levels,
            before_gold=np.array([gold for gold, _ in earlier.values()], dtype=np.int64),
            before_levels=np.array([level for _, level in earlier.values()], dtype=np.int64),
        )
    return record


def _qwk_or_none(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _tunable(encoder: Encoder) -> bool:
    try:
        check_split(*transformer_of(encoder))
    except TuningUnsupported as error:
        logger.warning("grading without tuning the encoder: %s", error)
        return False
    return True
