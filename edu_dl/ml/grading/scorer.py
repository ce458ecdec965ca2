"""The per-item scorer: kernel ridge regression over several views of a response.

Why this model: an item has tens to a few thousand teacher-scored responses, not millions.
Kernel ridge regression fits that size exactly (no epochs, no learning rate, the same result
on every run), its leave-one-out predictions come in closed form from one eigendecomposition,
so the mix of views and the regularisation are chosen on honest held-out predictions in
seconds, and a linear fit collapses to one weight per hashed n-gram, which makes every score
explainable phrase by phrase. Published work on ASAP essays reached the top of its
range with string kernels over character n-grams (Cozma et al., 2018); the same family is
used here, plus word n-grams, surface measures and, where installed, a sentence encoder.

Short answers are often scored on ideas that count *together* ("names the cause and its
effect"), which no weight per n-gram can express. So the char and word kernels may also bend:
k + gamma k^2, a degree-2 polynomial kernel (the products of n-gram pairs as features), with
gamma chosen per item among a few values by held-out agreement. A bent scorer keeps its scored
responses' vectors (it is tried only where they are few enough: short answers, not essays) and
compares a new answer with them; the phrases behind its score still add up exactly, each
n-gram weighed by what it earns alongside the others of that answer. On ASAP-SAS, without an
encoder, this took the mean QWK from 0.677 to 0.714.

The views (each a kernel over unit-length rows):
  char   tf-idf of hashed character 2- to 5-grams
  word   tf-idf of hashed word 1- and 2-grams
  shape  standardised surface measures (length, variety, sentences ...) and similarity to the
         item's reference answer, with their squares
  embed  a sentence encoder's unit vectors (optional)

Confidence: the probability that the released level is exactly the teacher's, from a small
logistic model fitted on the leave-one-out predictions (how far the raw score is from a level
boundary, how much the most similar scored responses agree). Held-out calibration is reported
by the evaluation command.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edu_dl.ml.grading import text as textlib
from edu_dl.ml.metrics import quadratic_weighted_kappa, subset_agreement
from edu_dl.ml.registry import register_model

VIEWS = ("char", "word", "shape", "embed")


@dataclass
class ScorerConfig:
    n_levels: int = 4
    min_score: float = 0.0
    max_score: float = 3.0
    char_orders: tuple[int, ...] = (2, 3, 4, 5)
    word_orders: tuple[int, ...] = (1, 2)
    n_buckets: int = 2**18
    sketch_dim: int = 256
    embed_dim: int = 0
    neighbours: int = 10
    ridge_grid: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    view_multipliers: tuple[float, ...] = (0.0, 0.33, 3.0)
    search_passes: int = 2
    # Fewer scored responses than this: the views keep equal weights and only the ridge is
    # chosen. Leave-one-out QWK over a few dozen answers is too noisy to pick among ~20 mixes
    # (on ASAP-SAS from 60 answers: 0.365 QWK with the search, 0.403 without; from all of
    # train.tsv the two are within 0.003).
    min_for_view_search: int = 150
    # Fewer scored responses than this: level boundaries stay at the midpoints.
    min_for_thresholds: int = 150
    # How the view and ridge search cuts leave-one-out predictions into levels on the way
    # (cross-fitted, see cross_fitted_qwk): "shares" costs a sort, where a QWK search of the
    # boundaries costs seconds per candidate on an essay scale of 61 levels. Before it the
    # search rounded at the midpoints, which favoured weak ridges (ASAP-SAS question 3: test
    # QWK 0.469; searched on cross-fitted shares, 0.526; mean over the 10 questions 0.717 to
    # 0.723).
    search_threshold_rule: str = "shares"
    # The fewest answers of the random check that the validated QWK is measured on (fewer: on
    # every teacher-scored answer). A QWK from 50 answers is still within about 0.1 of the truth.
    min_audited: int = 50
    # The character and word kernels may bend: k(x, y) + gamma * k(x, y)^2, a degree-2
    # polynomial kernel, which weighs n-grams that occur *together* ("both the cause and the
    # effect") besides each on its own. The search tries these gammas (0: linear) from
    # min_for_view_search scored responses on, as long as the responses' n-grams number at
    # most poly_max_nnz (the scorer then keeps them, to compare new answers with).
    poly_gammas: tuple[float, ...] = (1.0, 3.0, 10.0)
    poly_max_nnz: int = 2_000_000
    # The gamma fitted (0: linear, every weight collapsed into weight_char / weight_word).
    poly_gamma: float = 0.0
    has_reference: bool = False
    # Sizes of the fitted buffers, so that a checkpoint rebuilds the scorer from its config.
    # The confidence model's weights: 6 in graders fitted before the predicted level was one
    # of its inputs (they read the first 6 of :func:`_confidence_features`).
    confidence_features: int = 6
    known_words: int = 0
    n_train: int = 0
    reference_char_terms: int = 0
    reference_word_terms: int = 0
    train_char_nnz: int = 0
    train_word_nnz: int = 0


@dataclass
class ScorerOutput:
    raw: torch.Tensor  # (batch,) predicted score on a 0-1 scale of the item's range
    level: torch.Tensor  # (batch,) int64 level index 0 .. n_levels-1
    score: torch.Tensor  # (batch,) the level on the item's own scale
    confidence: torch.Tensor  # (batch,) probability that the level is the teacher's
    neighbour_index: torch.Tensor  # (batch, k) positions of the most similar scored responses
    neighbour_similarity: torch.Tensor  # (batch, k)


@dataclass(frozen=True)
class Validation:
    """A grader's out-of-sample grades of the answers it was validated on (leave-one-out or held
    out of tuning): the release curve is measured on them, and a later grader of the item reads
    them to know which of these answers this one's gate released (see
    :func:`edu_dl.ml.grading.policy.released_sample`)."""

    positions: np.ndarray  # the answers' positions among the training answers
    gold: np.ndarray  # the teacher's level of each
    levels: np.ndarray  # the grader's level of each
    confidence: np.ndarray  # and its confidence


@dataclass
class FitReport:
    # QWK of leave-one-out predictions cut at cross-fitted boundaries, as the search chose it.
    selection_qwk: float
    # QWK of leave-one-out predictions with the fitted level boundaries (a little optimistic).
    loo_qwk: float
    # The honest figure the release policy reads: leave-one-out predictions, each half of them
    # cut at boundaries fitted on the other half.
    validated_qwk: float
    loo_accuracy: float
    ridge: float
    view_weights: dict[str, float]
    n_train: int
    poly_gamma: float = 0.0
    threshold_rule: str = "midpoints"
    # How many answers validated_qwk was measured on, and whether they were the random check's.
    validated_on: int = 0
    validated_on_audit: bool = False
    # The agreement of the grader's most confident grades on the same answers (release_curve).
    release_curve: list[dict[str, Any]] = field(default_factory=list)
    search: list[dict[str, Any]] = field(default_factory=list)
    # Each response's leave-one-out prediction (0-1 scale), for a blend to be fitted on.
    loo: np.ndarray | None = None
    # The same, with those of the random check's answers by settings chosen without them (see
    # _checked_grades), for a blend to be measured on them.
    held_out_loo: np.ndarray | None = None
    # The grades the release curve was measured on; None with one score level only.
    validation: Validation | None = None


@register_model("item-scorer", task="grader", config_class=ScorerConfig)
class ItemScorer(nn.Module):
    """A fitted scorer. Built empty from its config, filled by :func:`fit_item_scorer`."""

    def __init__(self, config: ScorerConfig):
        super().__init__()
        self.config = config
        buckets, sketch = config.n_buckets, config.sketch_dim
        n_shape = 2 * (len(textlib.SURFACE_FEATURES) + (2 if config.has_reference else 0))
        self.register_buffer("idf_char", torch.ones(buckets))
        self.register_buffer("idf_word", torch.ones(buckets))
        self.register_buffer("weight_char", torch.zeros(buckets))
        self.register_buffer("weight_word", torch.zeros(buckets))
        self.register_buffer("shape_mean", torch.zeros(n_shape // 2))
        self.register_buffer("shape_std", torch.ones(n_shape // 2))
        self.register_buffer("weight_shape", torch.zeros(n_shape))
        self.register_buffer("weight_embed", torch.zeros(config.embed_dim))
        self.register_buffer("bias", torch.zeros(()))
        # Level boundaries on the 0-1 scale: raw below thresholds[0] is level 0, and so on.
        self.register_buffer("thresholds", torch.zeros(config.n_levels - 1))
        self.register_buffer("known_words", torch.zeros(config.known_words, dtype=torch.int64))
        self.register_buffer("reference_char", torch.zeros(config.reference_char_terms, 2))
        self.register_buffer("reference_word", torch.zeros(config.reference_word_terms, 2))
        # Count-sketch of the scored responses, for "most similar" look-ups.
        # Sketch rows: char and word views (sketch_dim each) and the embedding, if any.
        sketch_width = 2 * sketch + config.embed_dim
        self.register_buffer("train_sketch", torch.zeros(config.n_train, sketch_width))
        self.register_buffer("train_level", torch.zeros(config.n_train, dtype=torch.int64))
        self.register_buffer("calibrator", torch.zeros(config.confidence_features))
        # With a polynomial kernel (config.poly_gamma > 0): the scored responses' char and word
        # vectors (CSR parts), the dual weights and the two views' weights.
        poly = config.poly_gamma > 0
        n_dual = config.n_train if poly else 0
        self.register_buffer(
            "train_char_rows", torch.zeros(n_dual + 1 if poly else 0, dtype=torch.int64)
        )
        self.register_buffer(
            "train_char_cols", torch.zeros(config.train_char_nnz, dtype=torch.int32)
        )
        self.register_buffer("train_char_values", torch.zeros(config.train_char_nnz))
        self.register_buffer(
            "train_word_rows", torch.zeros(n_dual + 1 if poly else 0, dtype=torch.int64)
        )
        self.register_buffer(
            "train_word_cols", torch.zeros(config.train_word_nnz, dtype=torch.int32)
        )
        self.register_buffer("train_word_values", torch.zeros(config.train_word_nnz))
        self.register_buffer("dual", torch.zeros(n_dual))
        self.register_buffer("kernel_weights", torch.zeros(2))
        self._train_matrices: dict[str, tuple] = {}

    # ----- features -------------------------------------------------------------------
    def _tfidf(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        chars = textlib.char_ngram_counts(texts, orders=c.char_orders, n_buckets=c.n_buckets)
        words = textlib.word_ngram_counts(texts, orders=c.word_orders, n_buckets=c.n_buckets)
        return (
            textlib.tfidf_matrix(chars, self.idf_char.cpu()),
            textlib.tfidf_matrix(words, self.idf_word.cpu()),
        )

    def _raw_shape(
        self, texts: list[str], x_char: torch.Tensor, x_word: torch.Tensor
    ) -> torch.Tensor:
        """Surface measures (and similarity to the reference answer), not yet standardised."""
        known = set(self.known_words.tolist())
        raw = textlib.surface_features(texts, known_word=known)
        if self.config.has_reference:
            raw = torch.cat(
                [
                    raw,
                    _sparse_dot(x_char, self.reference_char),
                    _sparse_dot(x_word, self.reference_word),
                ],
                dim=1,
            )
        return raw

    def _shape(self, texts: list[str], x_char: torch.Tensor, x_word: torch.Tensor) -> torch.Tensor:
        raw = self._raw_shape(texts, x_char, x_word)
        z = (raw - self.shape_mean.cpu()) / self.shape_std.cpu()
        return _shape_expand(z)

    def _views(self, texts: list[str], embeddings: torch.Tensor | None) -> dict[str, Any]:
        x_char, x_word = self._tfidf(texts)
        views: dict[str, Any] = {
            "char": x_char,
            "word": x_word,
            "shape": self._shape(texts, x_char, x_word),
        }
        if self.config.embed_dim:
            if embeddings is None:
                raise ValueError("this scorer was trained with a sentence encoder; pass embeddings")
            views["embed"] = nn.functional.normalize(embeddings.float().cpu(), dim=1)
        return views

    def _sketch(self, views: dict[str, Any]) -> torch.Tensor:
        return _sketch_of(views, self.config.sketch_dim)

    # ----- prediction -----------------------------------------------------------------
    def _train_matrix(self, view: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The scored responses' vectors of ``view``, transposed: (n_buckets, n_train) sparse,
        COO (to multiply sparse rows by) and CSR (to multiply a dense vector by). Built once
        per loaded scorer and kept: a grader scores many answers."""
        values = getattr(self, f"train_{view}_values")
        key = (view, values.data_ptr(), values.numel())
        cached = self._train_matrices.get(view)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        rows = getattr(self, f"train_{view}_rows").cpu()
        matrix = torch.sparse_csr_tensor(
            rows,
            getattr(self, f"train_{view}_cols").cpu().to(torch.int64),
            values.cpu(),
            size=(len(rows) - 1, self.config.n_buckets),
        )
        transposed = matrix.to_sparse_coo().t().coalesce()
        self._train_matrices[view] = (key, transposed, transposed.to_sparse_csr())
        return transposed, self._train_matrices[view][2]

    def _similarities(self, x: torch.Tensor, view: str) -> torch.Tensor:
        """(batch, n_train) dot products of ``x`` (sparse rows) with the scored responses."""
        transposed, _ = self._train_matrix(view)
        return torch.sparse.mm(x.coalesce(), transposed).to_dense()

    def view_weights(self, x_char: torch.Tensor, x_word: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The weight of each char and word n-gram in the score of the one response whose
        vectors are ``x_char`` / ``x_word`` (1, n_buckets): fixed for a linear kernel; with a
        polynomial one, what each n-gram earns alongside the others of this response, so that
        the n-grams' weights times their values still add up to the score (less the bias and
        the other views)."""
        if self.config.poly_gamma <= 0:
            return self.weight_char.cpu(), self.weight_word.cpu()
        gamma, dual = self.config.poly_gamma, self.dual.cpu()
        weights = []
        for x, view, scale in zip(
            (x_char, x_word), ("char", "word"), self.kernel_weights.cpu().tolist(), strict=True
        ):
            similarity = self._similarities(x, view)[0]  # (n_train,)
            coefficient = scale * dual * (1.0 + gamma * similarity)
            _, transposed = self._train_matrix(view)
            weights.append((transposed @ coefficient[:, None]).squeeze(1))
        return tuple(weights)

    @torch.no_grad()
    def raw_scores(self, views: dict[str, Any]) -> torch.Tensor:
        if self.config.poly_gamma > 0:
            gamma, dual = self.config.poly_gamma, self.dual.cpu()
            out = torch.zeros(views["char"].shape[0])
            for view, scale in zip(
                ("char", "word"), self.kernel_weights.cpu().tolist(), strict=True
            ):
                if scale:
                    similarity = self._similarities(views[view], view)
                    out = out + scale * ((similarity + gamma * similarity * similarity) @ dual)
        else:
            out = torch.sparse.mm(views["char"], self.weight_char.cpu()[:, None]).squeeze(1)
            out = out + torch.sparse.mm(views["word"], self.weight_word.cpu()[:, None]).squeeze(1)
        out = out + views["shape"] @ self.weight_shape.cpu()
        if "embed" in views:
            out = out + views["embed"] @ self.weight_embed.cpu()
        return out + self.bias.cpu()

    @torch.no_grad()
    def forward(self, texts: list[str], embeddings: torch.Tensor | None = None) -> ScorerOutput:
        views = self._views(texts, embeddings)
        raw = self.raw_scores(views)  # (batch,)
        level = torch.bucketize(raw, self.thresholds.cpu())
        sketch = self._sketch(views)  # (batch, sketch_dim)
        similarity = sketch @ self.train_sketch.cpu().T  # (batch, n_train)
        k = min(self.config.neighbours, similarity.shape[1])
        top_similarity, top_index = (
            similarity.topk(k, dim=1)
            if k
            else (
                torch.zeros(len(texts), 0),
                torch.zeros(len(texts), 0, dtype=torch.int64),
            )
        )
        features = _confidence_features(
            raw,
            level,
            self.thresholds.cpu(),
            top_similarity,
            self.train_level.cpu()[top_index],
            self.config.n_levels,
        )
        confidence = confidence_of(features, self.calibrator.cpu())
        return ScorerOutput(
            raw=raw,
            level=level,
            score=self.level_score(level),
            confidence=confidence,
            neighbour_index=top_index,
            neighbour_similarity=top_similarity,
        )

    def level_score(self, level: torch.Tensor) -> torch.Tensor:
        c = self.config
        step = (c.max_score - c.min_score) / (c.n_levels - 1)
        return c.min_score + level.to(torch.float32) * step

    @torch.no_grad()
    def phrases(self, text: str, top: int = 6) -> list[dict[str, Any]]:
        """The words and word pairs of ``text`` that moved its score most, in score points."""
        return phrase_contributions(self, text, top=top)


def _sparse_dot(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Cosine of each row of ``x`` with a reference row stored as (bucket, value) pairs."""
    if reference.numel() == 0:
        return torch.zeros(x.shape[0], 1)
    dense = torch.zeros(x.shape[1])
    dense[reference[:, 0].long()] = reference[:, 1]
    return torch.sparse.mm(x, dense[:, None])


def _shape_expand(z: torch.Tensor) -> torch.Tensor:
    """Standardised measures and their squares (length effects bend), scaled to unit size."""
    expanded = torch.cat([z, (z * z - 1.0) / math.sqrt(2.0)], dim=1)
    return expanded / math.sqrt(max(1, expanded.shape[1]))


def _sketch_of(views: dict[str, Any], dim: int) -> torch.Tensor:
    """Count-sketch of the char and word views (and the embedding), unit rows."""
    parts = []
    for name in ("char", "word"):
        x = views[name].coalesce()
        index, values = x.indices(), x.values()
        bucket = index[1]
        coordinate = (bucket * 2_654_435_761 + (17 if name == "word" else 0)) % dim
        sign = ((bucket * 40_503) % 2).to(torch.float32) * 2 - 1
        sketch = torch.zeros(x.shape[0], dim)
        sketch.index_put_((index[0], coordinate), values * sign, accumulate=True)
        parts.append(sketch)
    if "embed" in views:
        parts.append(views["embed"])
    return nn.functional.normalize(torch.cat(parts, dim=1), dim=1)


def _confidence_features(
    raw: torch.Tensor,
    level: torch.Tensor,
    thresholds: torch.Tensor,
    neighbour_similarity: torch.Tensor,
    neighbour_level: torch.Tensor,
    n_levels: int,
) -> torch.Tensor:
    """(batch, 5 + n_levels): the inputs of the confidence model: a constant, the distance to
    the nearest level boundary, how far the nearest scored answers agree with the level and
    how spread their levels are, the nearest one's similarity, distance times agreement, and
    which level was given (one column per level above the lowest: the sure blanks of level 0
    and the middle levels that one word moves differ in how often they miss)."""
    if thresholds.numel():
        boundary = (raw[:, None] - thresholds[None, :]).abs().min(dim=1).values * (n_levels - 1)
    else:
        boundary = torch.ones_like(raw)
    if neighbour_similarity.shape[1]:
        weight = neighbour_similarity.clamp_min(0) + 1e-6
        agree = ((neighbour_level == level[:, None]).float() * weight).sum(1) / weight.sum(1)
        spread = neighbour_level.float().std(dim=1, unbiased=False).nan_to_num(0.0) / max(
            1, n_levels - 1
        )
        nearest = neighbour_similarity[:, 0]
    else:
        agree = torch.zeros_like(raw)
        spread = torch.zeros_like(raw)
        nearest = torch.zeros_like(raw)
    given = (level[:, None] == torch.arange(1, n_levels)[None, :]).to(raw.dtype)
    return torch.cat(
        [
            torch.stack(
                [
                    torch.ones_like(raw),
                    boundary.clamp(max=1.0),
                    agree,
                    spread,
                    nearest,
                    boundary.clamp(max=1.0) * agree,
                ],
                dim=1,
            ),
            given,
        ],
        dim=1,
    )


def confidence_of(features: torch.Tensor, calibrator: torch.Tensor) -> torch.Tensor:
    """The confidence the model ``calibrator`` gives answers of :func:`_confidence_features`
    ``features`` (a grader fitted before the level columns reads the first six only)."""
    return torch.sigmoid(features[:, : calibrator.numel()] @ calibrator)


def fit_confidence_model(
    features: torch.Tensor, levels: np.ndarray, gold: np.ndarray, ridge: float = 1.0
) -> torch.Tensor:
    """The confidence model's weights, fitted on answers with these ``features`` whose grades
    were ``levels`` and the teacher's ``gold``: its confidence is the probability that a grade
    is the teacher's, and it orders the grades by how far they are expected to miss.

    Two steps. A ridge regression of the squared level miss on the features gives each answer
    an expected miss, the quantity a QWK counts (a grade two levels off costs four times one
    level off), so that the surest grades, which the release curve takes first, are the ones
    that keep the agreement highest; then a logistic regression of whether the grade was the
    teacher's on that expected miss turns it into a probability. The result is still one
    logistic model of the features (the second step is monotone), so a grader keeps one weight
    vector. Before, one logistic regression of whether the grade was the teacher's on the six
    inputs without the level given ranked a miss of two levels as one. On ASAP-SAS, graders
    trained on ``train.tsv`` and read on the public test set: without the encoder the
    calibration error fell from 0.068 to 0.056 (the grades are the same); the tuned blend's
    surest 40 % of grades agreed at 0.872 against 0.843, its surest 60 % at 0.834 against 0.819
    (its confidence fitted on 15 % of each question's answers; calibration error 0.080 against
    0.078)."""
    miss = torch.as_tensor((np.asarray(levels) - np.asarray(gold)) ** 2, dtype=torch.float64)
    correct = (miss == 0).to(torch.float32)
    x = features.to(torch.float64)
    penalty = ridge * torch.eye(x.shape[1], dtype=torch.float64)
    penalty[0, 0] = 0.0  # the constant is not shrunk
    beta = torch.linalg.solve(x.T @ x + penalty, x.T @ miss)
    risk = x @ beta
    spread = float(risk.std()) if len(risk) > 1 else 0.0
    if not spread > 1e-9:  # no miss, or nothing tells the answers apart: one step
        return fit_logistic(features, correct)
    centre = float(risk.mean())
    z = ((risk - centre) / spread).to(torch.float32)
    constant, slope = fit_logistic(torch.stack([torch.ones_like(z), z], dim=1), correct).tolist()
    weights = (slope / spread) * beta
    weights[0] += constant - slope * centre / spread
    return weights.to(torch.float32)


def phrase_contributions(scorer: ItemScorer, text: str, *, top: int) -> list[dict[str, Any]]:
    """Each word's share of the score (its word weight plus the char n-grams inside it) and
    each word pair's, in score points; the ``top`` largest either way."""
    c = scorer.config
    scale = c.max_score - c.min_score
    x_char, x_word = scorer._tfidf([text])
    weight_char, weight_word = scorer.view_weights(x_char, x_word)
    # The response's feature values times the model's weights, one dense row per view.
    char_effect = torch.zeros(c.n_buckets)
    char_effect[x_char.indices()[1]] = x_char.values() * weight_char[x_char.indices()[1]]
    word_effect = torch.zeros(c.n_buckets)
    word_effect[x_word.indices()[1]] = x_word.values() * weight_word[x_word.indices()[1]]
    words = list(dict.fromkeys(w for w, _, _ in textlib.word_spans(text)))
    if not words:
        return []
    contributions: dict[str, float] = {}
    totals = torch.zeros(len(words))
    grams = textlib.char_ngram_counts(words, orders=c.char_orders, n_buckets=c.n_buckets)
    totals.index_add_(0, grams.doc, char_effect[grams.bucket])
    unigrams = textlib.word_ngram_counts(words, orders=(1,), n_buckets=c.n_buckets)
    totals.index_add_(0, unigrams.doc, word_effect[unigrams.bucket])
    for word, total in zip(words, (totals * scale).tolist(), strict=True):
        contributions[word] = total
    if 2 in c.word_orders:
        all_words = [w for w, _, _ in textlib.word_spans(text)]
        pairs = list(dict.fromkeys(f"{a} {b}" for a, b in itertools.pairwise(all_words)))
        if pairs:
            bigrams = textlib.word_ngram_counts(pairs, orders=(2,), n_buckets=c.n_buckets)
            pair_totals = torch.zeros(len(pairs)).index_add_(
                0, bigrams.doc, word_effect[bigrams.bucket]
            )
            for pair, total in zip(pairs, (pair_totals * scale).tolist(), strict=True):
                if abs(total) > 1e-9:
                    contributions[pair] = total
    ranked = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:top]
    return [{"text": phrase, "weight": round(weight, 4)} for phrase, weight in ranked if weight]


# ----- fitting ------------------------------------------------------------------------


def levels_of(
    scores: np.ndarray, *, min_score: float, max_score: float, n_levels: int
) -> np.ndarray:
    step = (max_score - min_score) / (n_levels - 1)
    return np.clip(
        np.rint((np.asarray(scores, dtype=np.float64) - min_score) / step), 0, n_levels - 1
    ).astype(np.int64)


def _loo(eigenvalues, eigenvectors, projected_y, y_centered, ridge):
    """Leave-one-out predictions (centred) of kernel ridge regression for one ridge value."""
    inverse = 1.0 / (eigenvalues + ridge)
    alpha = eigenvectors @ (inverse * projected_y)
    diagonal = (eigenvectors * eigenvectors) @ inverse
    return y_centered - alpha / diagonal, alpha


def _round_with(raw: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return np.searchsorted(thresholds, raw, side="right")


def _midpoints(n_levels: int) -> np.ndarray:
    return (np.arange(n_levels - 1) + 0.5) / (n_levels - 1)


def fit_thresholds(raw: np.ndarray, gold: np.ndarray, n_levels: int, passes: int = 3) -> np.ndarray:
    """Level boundaries that maximise QWK on held-out predictions (coordinate search)."""
    thresholds = _midpoints(n_levels)
    best = quadratic_weighted_kappa(gold, _round_with(raw, thresholds), n_levels)
    half_step = 0.5 / (n_levels - 1)
    for _ in range(passes):
        for i in range(n_levels - 1):
            centre = (i + 0.5) / (n_levels - 1)
            for candidate in centre + np.linspace(-half_step, half_step, 21):
                trial = thresholds.copy()
                trial[i] = candidate
                if np.any(np.diff(trial) <= 0):
                    continue
                value = quadratic_weighted_kappa(gold, _round_with(raw, trial), n_levels)
                if value > best + 1e-9:
                    best, thresholds = value, trial
    return thresholds


def share_thresholds(raw: np.ndarray, gold: np.ndarray, n_levels: int) -> np.ndarray:
    """Level boundaries that give the held-out predictions the teacher's share of each level
    (the lowest share of raw scores is level 0, and so on). Less prone than a QWK search to
    chase the noise of a few hundred answers; a level the teacher never gave is never given."""
    shares = np.bincount(gold, minlength=n_levels).cumsum()[:-1] / len(gold)
    thresholds = np.quantile(np.asarray(raw, dtype=np.float64), shares)
    # Strictly increasing, as searchsorted needs; equal shares (an unused level) stay together.
    return thresholds + np.arange(n_levels - 1) * 1e-9


def mixed_thresholds(raw: np.ndarray, gold: np.ndarray, n_levels: int) -> np.ndarray:
    """Halfway between the QWK-searched boundaries and the teacher's-shares ones."""
    return (fit_thresholds(raw, gold, n_levels) + share_thresholds(raw, gold, n_levels)) / 2


# How level boundaries may be fitted on held-out predictions; each item takes the rule whose
# cross-fitted QWK is best.
THRESHOLD_RULES = {
    "qwk": fit_thresholds,
    "shares": share_thresholds,
    "mixed": mixed_thresholds,
}


def two_halves(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``positions`` dealt into two halves by a fixed shuffle (seeded by their number), so
    that a cross-fit gives the same halves on every run."""
    order = positions[np.random.default_rng(len(positions)).permutation(len(positions))]
    return order[0::2], order[1::2]


def cross_fitted_levels(
    loo: np.ndarray,
    gold: np.ndarray,
    n_levels: int,
    min_for_thresholds: int,
    rule: str = "qwk",
) -> np.ndarray:
    """Levels of leave-one-out predictions cut at boundaries fitted without them.

    The responses are split in two halves (:func:`two_halves`, the same on every run); each
    half is cut at boundaries fitted by ``rule`` on the other. Too few responses to fit
    boundaries: the midpoints, as the scorer itself then uses (whatever ``rule`` says,
    "midpoints" included).
    """
    if len(gold) < min_for_thresholds:
        return _round_with(loo, _midpoints(n_levels)).astype(np.int64)
    levels = np.zeros(len(gold), dtype=np.int64)
    for apply_to in two_halves(np.arange(len(gold))):
        fit_on = np.ones(len(gold), dtype=bool)
        fit_on[apply_to] = False
        thresholds = THRESHOLD_RULES[rule](loo[fit_on], gold[fit_on], n_levels)
        levels[apply_to] = _round_with(loo[apply_to], thresholds)
    return levels


def cross_fitted_qwk(
    loo: np.ndarray, gold: np.ndarray, n_levels: int, min_for_thresholds: int, rule: str = "qwk"
) -> float:
    """QWK of the :func:`cross_fitted_levels` of every response."""
    levels = cross_fitted_levels(loo, gold, n_levels, min_for_thresholds, rule)
    return quadratic_weighted_kappa(gold, levels, n_levels)


# The release curve's points: the most confident twentieth of the measured answers, two
# twentieths, ... all of them; a point short of all of them needs this many answers (fewer say
# too little).
RELEASE_CURVE_STEPS = 20
RELEASE_CURVE_MIN_ANSWERS = 30
# The low end of a point's agreement counts this many answers of the whole curve's mean miss
# besides the point's own (see subset_agreement's prior).
RELEASE_BOUND_PRIOR = 10.0


def release_curve(
    confidence: np.ndarray,
    gold: np.ndarray,
    levels: np.ndarray,
    n_levels: int,
    *,
    before_gold: np.ndarray | None = None,
    before_levels: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """How well the grader's most confident grades agree with the teacher.

    One point per share of the answers (a twentieth, two twentieths, ... all), taken most
    confident first: the confidence of the least confident answer in it (every answer at or
    above it is in), its agreement with the teacher on the item's QWK scale with a lower 95 %
    bound (``qwk``, ``qwk_low``: :func:`edu_dl.ml.metrics.subset_agreement`, the kappa the item
    would have if all its grades were as good as these; the bound with a prior of
    ``RELEASE_BOUND_PRIOR`` answers), its exact agreement and its size. The
    release policy releases a grade whose confidence reaches a point whose bound is high enough
    (:func:`edu_dl.ml.grading.policy.release_gate`): a grader that is only fair over all
    answers can still be trusted on those it is sure of.

    ``before_gold`` and ``before_levels``: the teacher's and the grader's levels of answers the
    item's earlier graders released (measured on their own validation answers, a sample of
    all they released; not among these answers). A release adds to those, so each point's
    agreement is then that of the earlier releases and this share together: what the
    students would have seen, and not the share alone.
    """
    n = len(gold)
    if n == 0:
        return []
    before_gold = np.zeros(0, dtype=np.int64) if before_gold is None else before_gold
    before_levels = np.zeros(0, dtype=np.int64) if before_levels is None else before_levels
    all_gold = np.concatenate([gold, before_gold]).astype(np.int64)
    all_levels = np.concatenate([levels, before_levels]).astype(np.int64)
    earlier = np.ones(len(before_gold), dtype=bool)
    ranked = np.sort(confidence)[::-1]
    points: list[dict[str, Any]] = []
    for step in range(1, RELEASE_CURVE_STEPS + 1):
        k = math.ceil(step * n / RELEASE_CURVE_STEPS)
        cut = float(ranked[k - 1])
        inside = confidence >= cut
        size = int(inside.sum())
        too_few = size < RELEASE_CURVE_MIN_ANSWERS and step < RELEASE_CURVE_STEPS
        if too_few or (points and points[-1]["answers"] == size):
            continue
        qwk, low = subset_agreement(
            all_gold,
            all_levels,
            n_levels,
            np.concatenate([inside, earlier]),
            seed=step,
            prior=RELEASE_BOUND_PRIOR,
        )
        points.append(
            {
                "confidence": round(cut, 4),
                "qwk": None if math.isnan(qwk) else round(qwk, 4),
                "qwk_low": None if math.isnan(low) else round(low, 4),
                "exact": round(float((gold[inside] == levels[inside]).mean()), 4),
                "answers": size,
                "share": round(size / n, 4),
            }
        )
    return points


def fit_item_scorer(
    texts: list[str],
    scores: list[float] | np.ndarray,
    *,
    min_score: float,
    max_score: float,
    n_levels: int,
    reference_answer: str = "",
    embeddings: torch.Tensor | None = None,
    config: ScorerConfig | None = None,
    audit: np.ndarray | list[bool] | None = None,
) -> tuple[ItemScorer, FitReport]:
    """Fit a scorer on an item's scored responses; deterministic for the same input.

    ``audit`` marks the responses of the item's random check (a fair sample, see
    :func:`edu_dl.ml.grading.policy.in_audit_sample`): the validated QWK is measured on them
    when they are at least ``min_audited`` and hold two levels, otherwise on every response.
    """
    if len(texts) != len(scores):
        raise ValueError("texts and scores differ in length")
    if audit is not None and len(audit) != len(texts):
        raise ValueError("texts and audit marks differ in length")
    if len(texts) < 2:
        raise ValueError("a scorer needs at least two scored responses")
    base = config or ScorerConfig()
    gold = levels_of(
        np.asarray(scores), min_score=min_score, max_score=max_score, n_levels=n_levels
    )
    y = gold / (n_levels - 1)  # (n,) on the 0-1 scale

    # Vocabulary statistics from the scored responses.
    chars = textlib.char_ngram_counts(texts, orders=base.char_orders, n_buckets=base.n_buckets)
    words = textlib.word_ngram_counts(texts, orders=base.word_orders, n_buckets=base.n_buckets)
    idf_char = textlib.idf_from_frequency(textlib.document_frequency(chars), len(texts))
    idf_word = textlib.idf_from_frequency(textlib.document_frequency(words), len(texts))
    word_docs: dict[int, int] = {}
    for t in texts:
        for h in set(textlib.word_hashes(t)):
            word_docs[h] = word_docs.get(h, 0) + 1
    known = sorted(h for h, n in word_docs.items() if n >= 2)

    cfg = ScorerConfig(
        **{
            **base.__dict__,
            "n_levels": n_levels,
            "min_score": float(min_score),
            "max_score": float(max_score),
            "embed_dim": 0 if embeddings is None else int(embeddings.shape[1]),
            "has_reference": bool(reference_answer.strip()),
            "known_words": len(known),
        }
    )
    scorer = ItemScorer(cfg)
    scorer.registered_name = "item-scorer"  # what build_model sets; the checkpoint needs it
    scorer.idf_char.copy_(idf_char)
    scorer.idf_word.copy_(idf_word)
    scorer.known_words.copy_(torch.tensor(known, dtype=torch.int64))
    if cfg.has_reference:
        ref_char, ref_word = scorer._tfidf([reference_answer])
        scorer.reference_char = _pairs(ref_char)
        scorer.reference_word = _pairs(ref_word)
        cfg.reference_char_terms = scorer.reference_char.shape[0]
        cfg.reference_word_terms = scorer.reference_word.shape[0]
    x_char, x_word = scorer._tfidf(texts)
    raw_shape = scorer._raw_shape(texts, x_char, x_word)
    scorer.shape_mean.copy_(raw_shape.mean(0))
    scorer.shape_std.copy_(raw_shape.std(0, unbiased=False).clamp_min(1e-6))
    shape = _shape_expand((raw_shape - scorer.shape_mean) / scorer.shape_std)
    views: dict[str, Any] = {"char": x_char, "word": x_word, "shape": shape}
    if embeddings is not None:
        views["embed"] = nn.functional.normalize(embeddings.float(), dim=1)

    grams = {name: _gram(view) for name, view in views.items()}
    # The polynomial kernel keeps the scored responses' vectors: tried only where they are few
    # enough (short answers, not essays) and where the view search runs at all.
    bendable = (
        len(texts) >= cfg.min_for_view_search and x_char._nnz() + x_word._nnz() <= cfg.poly_max_nnz
    )
    gammas = (0.0, *cfg.poly_gammas) if bendable else (0.0,)
    squares = (
        {name: grams[name] * grams[name] for name in ("char", "word")} if len(gammas) > 1 else {}
    )
    store: dict[tuple, list[np.ndarray]] = {}  # each mix's leave-one-out predictions
    weights, gamma, ridge, selection_qwk, search, decomposition = _search_kernels(
        grams, squares, gammas, y, gold, n_levels, cfg, store=store
    )
    assert decomposition is not None  # the store was empty: every mix was fitted here

    y_mean = float(y.mean())
    y_centered = torch.tensor(y - y_mean, dtype=torch.float64)
    eigenvalues, eigenvectors = decomposition
    loo_centered, alpha = _loo(
        eigenvalues, eigenvectors, eigenvectors.T @ y_centered, y_centered, ridge
    )
    loo = loo_centered.numpy() + y_mean
    alpha32 = alpha.to(torch.float32)

    cfg.poly_gamma = gamma
    if gamma > 0:
        # f(x) = sum over char, word of w_v / (1 + gamma) * sum_i alpha_i (s_i + gamma s_i^2),
        # s_i = x_v . x_v,i: the scored responses' vectors are kept to compute s when scoring.
        for name, x in (("char", x_char), ("word", x_word)):
            csr = x.coalesce().to_sparse_csr()
            setattr(scorer, f"train_{name}_rows", csr.crow_indices().to(torch.int64))
            setattr(scorer, f"train_{name}_cols", csr.col_indices().to(torch.int32))
            setattr(scorer, f"train_{name}_values", csr.values().to(torch.float32))
        cfg.train_char_nnz = int(scorer.train_char_values.numel())
        cfg.train_word_nnz = int(scorer.train_word_values.numel())
        scorer.dual = alpha32.clone()
        scorer.kernel_weights = torch.tensor([weights["char"], weights["word"]]) / (1.0 + gamma)
    else:
        # Collapse to one weight per feature: f(x) = sum_views w_v x_v . (X_v^T alpha) + mean.
        scorer.weight_char.copy_(
            weights["char"] * torch.sparse.mm(x_char.t(), alpha32[:, None]).squeeze(1)
        )
        scorer.weight_word.copy_(
            weights["word"] * torch.sparse.mm(x_word.t(), alpha32[:, None]).squeeze(1)
        )
    scorer.weight_shape.copy_(weights["shape"] * (shape.T @ alpha32))
    if embeddings is not None:
        scorer.weight_embed.copy_(weights["embed"] * (views["embed"].T @ alpha32))
    scorer.bias.fill_(y_mean)

    several_levels = len(np.unique(gold)) > 1
    # held_out: rule -> cross-fitted levels of every response
    rule, thresholds, held_out = _fit_cut(loo, gold, n_levels, cfg)
    scorer.thresholds.copy_(torch.tensor(thresholds, dtype=torch.float32))
    loo_level = _round_with(loo, thresholds)

    # Confidence: neighbours among the other scored responses (leave-one-out).
    sketch = _sketch_of(views, cfg.sketch_dim)
    scorer.train_sketch = sketch
    scorer.train_level = torch.tensor(gold, dtype=torch.int64)
    cfg.n_train = len(texts)
    similarity = sketch @ sketch.T
    similarity.fill_diagonal_(-2.0)
    k = min(cfg.neighbours, len(texts) - 1)
    top_similarity, top_index = similarity.topk(k, dim=1)
    neighbours = (top_similarity, scorer.train_level[top_index])
    calibrator, loo_confidence = _fit_confidence(loo, loo_level, thresholds, gold, neighbours, cfg)
    cfg.confidence_features = calibrator.numel()
    scorer.calibrator = calibrator

    # With one score level only (say, the teacher's first answers all got 0) agreement says
    # nothing about the grader: undefined, so the release policy never trusts it.
    # Measured on the random check where it holds enough answers of more than one level: the
    # other teacher scores were mostly chosen by the review queue, for being hard.
    checked = None if audit is None else np.asarray(audit, dtype=bool)
    if checked is not None and (
        checked.sum() < cfg.min_audited or len(np.unique(gold[checked])) < 2
    ):
        checked = None
    validated_qwk, curve, validation = float("nan"), [], None
    held_out_loo = loo
    if several_levels:
        measured = np.ones(len(gold), dtype=bool) if checked is None else checked
        confidence = loo_confidence[measured]
        if checked is not None:
            # Graded by graders that chose nothing on these answers (see _checked_grades).
            held_out_loo = loo.copy()
            held_out_loo[checked], levels, confidence = _checked_grades(
                grams, squares, gammas, y, gold, cfg, store, checked, neighbours
            )
        elif rule in held_out:
            levels = held_out[rule]  # cut while choosing the rule, on every response
        else:
            levels = cross_fitted_levels(loo, gold, n_levels, cfg.min_for_thresholds, rule=rule)
        validated_qwk = quadratic_weighted_kappa(gold[measured], levels, n_levels)
        curve = release_curve(confidence, gold[measured], levels, n_levels)
        validation = Validation(
            positions=np.flatnonzero(measured),
            gold=gold[measured],
            levels=np.asarray(levels),
            confidence=confidence,
        )
    report = FitReport(
        selection_qwk=selection_qwk,
        loo_qwk=quadratic_weighted_kappa(gold, loo_level, n_levels),
        validated_qwk=validated_qwk,
        loo_accuracy=float((loo_level == gold).mean()),
        ridge=ridge,
        view_weights=weights,
        n_train=len(texts),
        search=search,
        poly_gamma=gamma,
        threshold_rule=rule,
        validated_on=int(len(texts) if checked is None else checked.sum()),
        validated_on_audit=checked is not None,
        release_curve=curve,
        loo=loo,
        held_out_loo=held_out_loo,
        validation=validation,
    )
    return scorer, report


def _fit_cut(
    loo: np.ndarray,
    gold: np.ndarray,
    n_levels: int,
    cfg: ScorerConfig,
    on: np.ndarray | None = None,
) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    """The level boundaries of a grader fitted on all of ``gold`` with leave-one-out predictions
    ``loo``, chosen on the responses ``on`` marks (all by default): the rule (of
    ``THRESHOLD_RULES``) whose cross-fitted levels agree best with the teacher there, its
    boundaries fitted there, and each rule's cross-fitted levels there. The midpoints (and no
    levels) when the grader has too few responses to fit boundaries or those ``on`` hold one
    level only."""
    on = np.ones(len(gold), dtype=bool) if on is None else on
    if len(gold) < cfg.min_for_thresholds or len(np.unique(gold[on])) < 2:
        return "midpoints", _midpoints(n_levels), {}
    held_out = {
        name: cross_fitted_levels(loo[on], gold[on], n_levels, 0, rule=name)
        for name in THRESHOLD_RULES
    }
    agreement = {
        name: quadratic_weighted_kappa(gold[on], levels, n_levels)
        for name, levels in held_out.items()
    }
    rule = max(agreement, key=lambda name: (agreement[name], name == "qwk"))
    return rule, THRESHOLD_RULES[rule](loo[on], gold[on], n_levels), held_out


def _fit_confidence(
    loo: np.ndarray,
    levels: np.ndarray,
    thresholds: np.ndarray,
    gold: np.ndarray,
    neighbours: tuple[torch.Tensor, torch.Tensor],
    cfg: ScorerConfig,
    on: np.ndarray | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """The confidence model (its weights, :func:`fit_confidence_model`) fitted on the
    leave-one-out ``levels`` of the responses ``on`` marks (all by default) against the
    teacher's, and every response's confidence by it. ``neighbours``: each response's most
    similar other responses (similarity, level)."""
    features = _confidence_features(
        torch.tensor(loo, dtype=torch.float32),
        torch.tensor(levels),
        torch.tensor(np.asarray(thresholds), dtype=torch.float32),
        *neighbours,
        cfg.n_levels,
    )
    fit_on = np.ones(len(gold), dtype=bool) if on is None else on
    calibrator = fit_confidence_model(
        features[torch.from_numpy(fit_on)], levels[fit_on], gold[fit_on]
    )
    return calibrator, confidence_of(features, calibrator).numpy()


def _checked_grades(
    grams, squares, gammas, y, gold, cfg, store, checked, neighbours
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The leave-one-out predictions, levels and confidences of the random check's answers
    (``checked``) that the release curve and the validated QWK are read on, each from a grader
    whose every choice was made without it: the check is split in two halves, and for each the
    view weights, the ridge, the level boundaries and the confidence model are chosen on the
    other answers alone, as :func:`fit_item_scorer` chooses them on all (leave-one-out
    predictions, so every answer is still predicted by a grader that did not learn its score).

    Chosen on all the answers, the check included, the choices fit the check's answers among
    others: a search over some hundred settings then reads a grader better than it is on answers
    it has not seen (on ASAP-SAS, graders of 200 answers read 0.03 of QWK above what they
    achieved on the rest of the question's answers, and the surest grades of each 0.06 above, so
    that 3 of 7 first releases fell under the 0.80 their gates read). ``store`` holds the main
    search's predictions, so mixes it tried are not fitted again."""
    raw = np.zeros(len(gold))
    levels = np.zeros(len(gold), dtype=np.int64)
    confidence = np.zeros(len(gold))
    for half in two_halves(np.flatnonzero(checked)):
        on = np.ones(len(gold), dtype=bool)
        on[half] = False
        weights, gamma, ridge, *_ = _search_kernels(
            grams, squares, gammas, y, gold, cfg.n_levels, cfg, on=on, store=store
        )
        loo = store[_mix_key(gamma, weights)][cfg.ridge_grid.index(ridge)]
        _, thresholds, _ = _fit_cut(loo, gold, cfg.n_levels, cfg, on=on)
        half_levels = _round_with(loo, thresholds)
        _, half_confidence = _fit_confidence(
            loo, half_levels, thresholds, gold, neighbours, cfg, on=on
        )
        raw[half] = loo[half]
        levels[half] = half_levels[half]
        confidence[half] = half_confidence[half]
    return raw[checked], levels[checked], confidence[checked]


def _pairs(x: torch.Tensor) -> torch.Tensor:
    x = x.coalesce()
    return torch.stack([x.indices()[1].to(torch.float32), x.values()], dim=1)


def _gram(view: Any) -> torch.Tensor:
    if view.is_sparse:
        return torch.sparse.mm(view, view.t()).to_dense().to(torch.float64)
    dense = view.to(torch.float64)
    return dense @ dense.T


def _kernel(grams, squares, weights: dict[str, float], gamma: float) -> torch.Tensor:
    """The weighted sum of the views' kernels, char and word bent by ``gamma``: (k + gamma
    k^2) / (1 + gamma), still 1 for a response with itself, so that a view's weight means the
    same whatever the gamma."""
    if not gamma:
        return sum(weights[name] * grams[name] for name in grams)
    return sum(
        weights[name]
        * (
            (grams[name] + gamma * squares[name]) / (1.0 + gamma)
            if name in squares
            else grams[name]
        )
        for name in grams
    )


def _mix_key(gamma: float, weights: dict[str, float]) -> tuple:
    return (gamma, *(round(weights[name], 6) for name in sorted(weights)))


def _cut_minimum(n_fitted: int, cfg: ScorerConfig) -> int:
    """The ``min_for_thresholds`` to judge a grader fitted on ``n_fitted`` responses with, on
    all of them or on some: its boundaries are fitted (0: whatever the responses judged) or
    are the midpoints (more than there are), as the fitted grader's are."""
    return 0 if n_fitted >= cfg.min_for_thresholds else n_fitted + 1


def _search(
    grams, squares, gamma, y, gold, n_levels, cfg, *, on=None, store=None
) -> tuple[dict[str, float], float, float, list[dict[str, Any]], tuple | None]:
    """Choose view weights and the ridge by leave-one-out QWK (coordinate ascent) for the
    kernel bent by ``gamma``; returns them with the QWK they reached, the configurations tried
    and the eigendecomposition of the chosen kernel (so that no caller computes it again).

    The QWK of a candidate is that of its leave-one-out predictions cut at boundaries fitted on
    the other half of the responses (:func:`cross_fitted_qwk`), as the fitted scorer cuts them:
    rounded at the midpoints instead, a strong ridge, whose predictions crowd the mean, reads as
    a grader that gives every answer the middle level, however well it ranks them.

    ``on``: judge the candidates on these responses only (all are fitted on); ``store``: a dict
    kept between searches over the same kernels, of each mix's leave-one-out predictions per
    ridge, so that a later search judging other responses fits no mix twice (a mix found there
    comes without its decomposition, None)."""
    y_mean = float(y.mean())
    y_centered = torch.tensor(y - y_mean, dtype=torch.float64)
    on = np.ones(len(gold), dtype=bool) if on is None else on
    store = {} if store is None else store
    minimum = _cut_minimum(len(gold), cfg)
    history: list[dict[str, Any]] = []
    cache: dict[tuple, tuple[float, float, float]] = {}

    def evaluate(weights: dict[str, float]) -> tuple[tuple[float, float, float], tuple | None]:
        """(QWK, MSE, ridge) of the best ridge for a mix, and the mix's eigendecomposition: None
        for a mix evaluated before (kept in the cache, it cannot beat the best again; keeping
        every mix's decomposition would hold ~20 n-by-n matrices)."""
        key = _mix_key(gamma, weights)
        if key in cache:
            return cache[key], None
        decomposition = None
        if key not in store:
            eigenvalues, eigenvectors = decomposition = _eigen(
                _kernel(grams, squares, weights, gamma)
            )
            projected = eigenvectors.T @ y_centered
            store[key] = [
                _loo(eigenvalues, eigenvectors, projected, y_centered, ridge)[0].numpy() + y_mean
                for ridge in cfg.ridge_grid
            ]
        best = (-2.0, math.inf, cfg.ridge_grid[0])
        for ridge, loo in zip(cfg.ridge_grid, store[key], strict=True):
            qwk = cross_fitted_qwk(
                loo[on], gold[on], n_levels, minimum, rule=cfg.search_threshold_rule
            )
            mse = float(((loo[on] - y[on]) ** 2).mean())
            if (qwk, -mse) > (best[0], -best[1]):
                best = (qwk, mse, ridge)
        history.append(
            {"weights": dict(weights), "gamma": gamma, "ridge": best[2], "qwk": round(best[0], 4)}
        )
        cache[key] = best
        return best, decomposition

    weights = dict.fromkeys(grams, 1.0)
    best, decomposition = evaluate(weights)
    passes = cfg.search_passes if len(gold) >= cfg.min_for_view_search else 0
    for _ in range(passes):
        improved = False
        for name in grams:
            for multiplier in cfg.view_multipliers:
                trial = dict(weights)
                trial[name] = weights[name] * multiplier
                if sum(trial.values()) == 0:
                    continue
                result, trial_decomposition = evaluate(trial)
                if (result[0], -result[1]) > (best[0] + 1e-4, -best[1]):
                    best, weights, improved = result, trial, True
                    decomposition = trial_decomposition
        if not improved:
            break
    return weights, best[2], best[0], history, decomposition


def _eigen(kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (clamped at 0: a kernel is positive semi-definite up to rounding) and
    eigenvectors of a kernel matrix."""
    eigenvalues, eigenvectors = torch.linalg.eigh(kernel)
    return eigenvalues.clamp_min(0), eigenvectors


def _search_kernels(
    grams, squares, gammas, y, gold, n_levels, cfg, *, on=None, store=None
) -> tuple[dict[str, float], float, float, float, list[dict[str, Any]], tuple | None]:
    """The view weights, gamma and ridge to fit with, and the eigendecomposition of that kernel:
    with one gamma, its search; with several, each gamma's search, and the gamma whose
    leave-one-out predictions agree best with the teacher when cut at boundaries searched for
    QWK on the other half of the responses (the search itself cuts at the teacher's shares,
    cheap enough for every candidate; the QWK search is closer to how the fitted scorer cuts,
    and is run once per gamma). ``on`` and ``store``: as :func:`_search` takes them; the chosen
    mix's leave-one-out predictions are then in ``store``. The decomposition is None where the
    chosen mix came from ``store``."""
    best: tuple | None = None
    history: list[dict[str, Any]] = []
    on = np.ones(len(gold), dtype=bool) if on is None else on
    store = {} if store is None else store
    for gamma in gammas:
        weights, ridge, qwk, tried, decomposition = _search(
            grams, squares, gamma, y, gold, n_levels, cfg, on=on, store=store
        )
        history += tried
        if len(gammas) == 1:
            return weights, gamma, ridge, qwk, history, decomposition
        loo = store[_mix_key(gamma, weights)][cfg.ridge_grid.index(ridge)]
        held_out = cross_fitted_qwk(loo[on], gold[on], n_levels, _cut_minimum(len(gold), cfg))
        history.append({"gamma": gamma, "cross_fitted_qwk": round(held_out, 4)})
        if best is None or held_out > best[0] + 1e-4:
            best = (held_out, weights, gamma, ridge, qwk, decomposition)
    assert best is not None
    return best[1], best[2], best[3], best[4], history, best[5]


def fit_logistic(features: torch.Tensor, target: torch.Tensor, l2: float = 1e-2) -> torch.Tensor:
    """Weights of a logistic regression (LBFGS), deterministic."""
    weights = torch.zeros(features.shape[1], requires_grad=True)
    optimizer = torch.optim.LBFGS([weights], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(features @ weights, target)
        loss = loss + l2 * (weights[1:] ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach()
