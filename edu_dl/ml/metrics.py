"""Metrics on plain arrays (numpy), shared by training loops and evaluation commands."""

from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties).

    Returns NaN when only one class is present, where AUC is undefined.
    """
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = labels.sum()
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(labels.size, dtype=np.float64)
    # Average ranks over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [labels.size]))
    average_rank = (starts + ends + 1) / 2.0  # 1-based ranks
    ranks[order] = np.repeat(average_rank, ends - starts)
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def accuracy(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> float:
    labels = np.asarray(labels).ravel()
    if labels.size == 0:
        return float("nan")
    predictions = np.asarray(probabilities).ravel() >= threshold
    return float((predictions == (labels >= 0.5)).mean())


def binary_log_loss(labels: np.ndarray, probabilities: np.ndarray, eps: float = 1e-7) -> float:
    labels = np.asarray(labels, dtype=np.float64).ravel()
    if labels.size == 0:
        return float("nan")
    p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), eps, 1 - eps)
    return float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())


def quadratic_weighted_kappa(gold: np.ndarray, predicted: np.ndarray, n_levels: int) -> float:
    """Cohen's kappa with quadratic weights between two ratings coded 0 .. n_levels-1.

    1 is perfect agreement, 0 what chance gives. When both raters gave one and the same level
    to every answer the expected disagreement is 0 and kappa is defined as 1 (they agree).
    """
    gold, predicted = _ratings(gold, predicted, n_levels)
    if gold.size == 0:
        return float("nan")
    observed = np.zeros((n_levels, n_levels), dtype=np.float64)
    np.add.at(observed, (gold, predicted), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / gold.size
    weights = _quadratic_weights(n_levels)
    expected_disagreement = (weights * expected).sum()
    if expected_disagreement == 0:
        return 1.0 if (weights * observed).sum() == 0 else 0.0
    return float(1.0 - (weights * observed).sum() / expected_disagreement)


def _ratings(gold, predicted, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Two raters' ratings as flat int arrays, checked: as long as each other, coded 0 ..
    n_levels-1."""
    gold = np.asarray(gold, dtype=np.int64).ravel()
    predicted = np.asarray(predicted, dtype=np.int64).ravel()
    if gold.size != predicted.size:
        raise ValueError("gold and predicted ratings differ in length")
    if gold.size and (
        min(gold.min(), predicted.min()) < 0 or max(gold.max(), predicted.max()) >= n_levels
    ):
        raise ValueError(f"ratings must be coded 0 .. {n_levels - 1}")
    return gold, predicted


def _quadratic_weights(n_levels: int) -> np.ndarray:
    levels = np.arange(n_levels, dtype=np.float64)
    return (levels[:, None] - levels[None, :]) ** 2


def subset_agreement(
    gold: np.ndarray,
    predicted: np.ndarray,
    n_levels: int,
    inside: np.ndarray,
    *,
    quantile: float = 0.05,
    draws: int = 400,
    seed: int = 0,
    prior: float = 0.0,
) -> tuple[float, float]:
    """How well the ratings ``inside`` a subset agree, on the QWK scale of all the ratings, and
    a lower confidence bound on it.

    1 minus the subset's mean quadratic disagreement over the disagreement chance gives on the
    whole (from the two raters' level shares over all the ratings): for the whole set this is
    :func:`quadratic_weighted_kappa`; for a subset, the kappa the whole would have if every
    rating were as good as these. Unlike the kappa of the subset alone it does not fall when the
    subset holds mostly one level (the sure zeros of a short-answer question, say), which a
    kappa reads as chance agreement. The bound is the ``quantile`` over ``draws`` bootstrap
    resamples of the subset (deterministic for a given ``seed``). NaN for an empty subset or
    when chance disagreement is 0 (one level on both sides).

    ``prior``: how many answers of the whole's mean disagreement each resample holds besides
    the subset's. The bootstrap alone reads a small subset that happens to hold no miss as
    flawless (every resample agrees perfectly), and the surest few of a grader's answers are
    the ones most likely to look so by chance; with a prior the bound of a small subset stays
    near the whole's agreement until its size outweighs that, while a large subset's bound
    barely moves. The estimate itself (the first figure) is the subset's alone.
    """
    gold, predicted = _ratings(gold, predicted, n_levels)
    inside = np.asarray(inside, dtype=bool).ravel()
    if inside.size != gold.size:
        raise ValueError("the subset mask and the ratings differ in length")
    if not inside.any():
        return float("nan"), float("nan")
    weights = _quadratic_weights(n_levels)
    gold_shares = np.bincount(gold, minlength=n_levels) / gold.size
    predicted_shares = np.bincount(predicted, minlength=n_levels) / gold.size
    chance = float((weights * np.outer(gold_shares, predicted_shares)).sum())
    misses = weights[gold[inside], predicted[inside]]
    if not chance > 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    prior = max(prior, 0.0)
    resampled = misses[rng.integers(0, misses.size, size=(draws, misses.size))].sum(axis=1)
    whole_miss = float(weights[gold, predicted].mean())
    resampled = (resampled + prior * whole_miss) / (misses.size + prior)
    return (
        float(1.0 - misses.mean() / chance),
        float(1.0 - np.quantile(resampled, 1.0 - quantile) / chance),
    )


def expected_calibration_error(
    correct: np.ndarray, confidence: np.ndarray, n_bins: int = 10
) -> float:
    """Mean gap between stated confidence and observed accuracy, over equal-width bins,
    weighted by how many predictions fall in each bin (0 is perfectly calibrated)."""
    correct = np.asarray(correct, dtype=np.float64).ravel()
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    if correct.size == 0:
        return float("nan")
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total / correct.size)
