"""The cold-start grader: one model for every item, scoring a response against the item's
reference answer, for items that have no teacher-scored responses yet.

Why this model: a new item has a question and a reference answer but nothing to learn its own
vocabulary from, so the per-item scorer cannot run. What carries across items is how a
response relates to its reference: how much of the reference's content it covers, how much
of it is the reference's and not the question's, how long it is next to the reference. Those
relations are a fixed-length vector whatever the item, so a small MLP learnt on the scored
responses of other items applies to a new one. Every feature is absolute: a response's score
never depends on the other responses graded beside it.

Features of a (question, reference, response) triple (``PAIR_FEATURES``):
  cosines of hashed tf-idf vectors (character 3- to 5-grams, word unigrams, word bigrams),
  the share of the reference's content words that the response holds (plain and idf-weighted),
  the share of the response's content words that the reference holds, character n-gram
  containment both ways, lengths, how much the response repeats the question rather than the
  reference (a copy of the question earns nothing), an empty-response flag and, where a
  sentence encoder is given, the cosine of embeddings with the reference and the question.

Once an item has some teacher-scored answers (its exemplars), the grader reads them too
(``EXEMPLAR_FEATURES``): the similarity-weighted score of the few most like the response
(character n-gram tf-idf), how alike the nearest is, and how many there are. It learns how
far to trust them from the training items themselves: each training answer sees a random
draw of its item's other answers (none for some, up to ``exemplar_draw_max``), as answers to
an item with that many teacher scores would. So the same model scores a brand-new item from
its reference answer and, as the teacher scores answers, leans more on what the teacher did
(on ASAP-SAS with stand-in model answers, from 30 teacher scores: 0.448 QWK against 0.376 for
the item's own grader; see ``benchmarks/bench_cold_start_handoff.py``).

The idf weights come from all training texts and are stored in the checkpoint. While
training, each item's features use the idf of the *other* items only, so that the model sees
the same situation it meets on a new item: the item's own topic words are rare, highly
weighted words.

Confidence: the probability that the snapped level is exactly the teacher's, from a logistic
model fitted on the predictions for whole items held out of training.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from edu_dl.ml.checkpoint import checkpoint_bytes, load_checkpoint
from edu_dl.ml.grading import text as textlib
from edu_dl.ml.grading.encoder import Encoder
from edu_dl.ml.grading.pipeline import GradePrediction, GraderUnavailable
from edu_dl.ml.grading.scorer import fit_logistic
from edu_dl.ml.metrics import expected_calibration_error, quadratic_weighted_kappa
from edu_dl.ml.registry import register_model

MIN_ITEMS = 2
MIN_EXAMPLES = 20

PAIR_FEATURES = (
    "char_cosine",
    "word_cosine",
    "bigram_cosine",
    "content_recall",
    "weighted_recall",
    "content_precision",
    "reference_char_containment",
    "response_char_containment",
    "log_response_words",
    "log_length_ratio",
    "question_copy",
    "question_only_share",
    "empty",
)
ENCODER_FEATURES = ("embed_reference_cosine", "embed_question_cosine")
# What the item's own teacher-scored answers (its exemplars) say of a response: the score of the
# most similar ones (above or below the middle of the scale), how similar the nearest one is,
# and how much there is to go on (0 with none, towards 1 with many). All 0 without exemplars.
EXEMPLAR_FEATURES = ("exemplar_score", "exemplar_similarity", "exemplar_weight")
CONFIDENCE_FEATURES = ("bias", "boundary_distance", "extremeness", "level_step", "boundary_x_step")

# Function words that say nothing about the content of an answer.
_STOP_WORDS_TEXT = """
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each even few for from further
get gets got had has have having he her here hers him his how i if in into is it its itself just
like lot lots made make makes many may me might more most much must my no nor not now of off on
once one only or other our out over own really same she should so some such than that the their
them then there these they thing things this those through to too two under until up upon use
used using very was way we well were what when where which while who whom why will with would
yes you your
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ies", "ied", "ed", "es", "ly", "s")


@dataclass
class ReferenceConfig:
    # Small and strongly regularised on purpose: with a handful of training items a bigger
    # network learns to recognise the items instead of what a good answer shares with its
    # reference (on ASAP-SAS, 3 unseen sets out of 10: (32, 16) scored 0.33 QWK, this 0.39).
    hidden_sizes: tuple[int, ...] = (16,)  # () for a linear model
    linear_path: bool = True
    dropout: float = 0.3
    epochs: int = 200
    lr: float = 3e-3
    weight_decay: float = 1e-2
    batch_size: int = 256  # 0: full batch
    patience: int = 20  # epochs without a better held-out loss before stopping
    validation_share: float = 0.25  # share of the items held out, whole items
    refit_on_all: bool = True  # after validation, train on every item for the best epoch count
    seed: int = 0
    char_orders: tuple[int, ...] = (3, 4, 5)
    n_buckets: int = 2**18
    use_encoder: bool = False
    # Whether the scorer also reads the item's teacher-scored answers (EXEMPLAR_FEATURES).
    # Off in the config's default so that a checkpoint saved before exemplars existed loads as
    # it was trained; train_reference_grader turns it on.
    use_exemplars: bool = False
    exemplar_neighbours: int = 5  # how many of the most similar exemplars vote
    exemplar_half_weight: float = 10.0  # exemplar_weight = n / (n + this)
    # While training, each answer sees a random draw of its own item's other scored answers as
    # exemplars, as an item with that many teacher scores would: none for this share of the
    # answers, otherwise a number drawn evenly from 1 to exemplar_draw_max.
    exemplar_none_share: float = 0.3
    exemplar_draw_max: int = 100


@dataclass(frozen=True)
class Exemplar:
    """A teacher-scored answer of the item being graded."""

    key: Any  # response id in production, row number in evaluation
    text: str
    score: float  # on the item's own scale


# The most recent exemplars an item's answers are compared with (the grader serves items
# with few teacher scores; this bounds the cost for one that has many).
MAX_EXEMPLARS = 300


@dataclass(frozen=True)
class ReferenceExample:
    item_key: str
    question: str
    reference_answer: str
    response: str
    score: float
    min_score: float
    max_score: float
    n_levels: int


@dataclass
class ReferenceOutput:
    logits: torch.Tensor  # (batch,) before decoding
    raw: torch.Tensor  # (batch,) predicted score on the 0-1 scale of the item's range
    loss: torch.Tensor | None  # scalar: weighted binary cross-entropy of the logits


@register_model("reference-scorer", task="grader", config_class=ReferenceConfig)
class ReferenceScorer(nn.Module):
    """Scores (question, reference, response) feature vectors; built empty from its config,
    filled by :func:`train_reference_grader`."""

    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.config = config
        n_features = len(feature_names(config.use_encoder, config.use_exemplars))
        layers: list[nn.Module] = []
        width = n_features
        for hidden in config.hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        # A linear path beside the hidden layers: "more overlap, higher score" carries to new
        # items best, and the hidden layers only add the bends around it.
        self.linear = (
            nn.Linear(n_features, 1) if config.linear_path and config.hidden_sizes else None
        )
        self.register_buffer("idf_char", torch.ones(config.n_buckets))
        self.register_buffer("idf_word", torch.ones(config.n_buckets))
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.register_buffer("calibrator", torch.zeros(len(CONFIDENCE_FEATURES)))
        # (stretch, shift) of the logits when scoring, chosen on held-out items (see
        # fit_decoding); training sees them as (1, 0).
        self.register_buffer("decoding", torch.tensor([1.0, 0.0]))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return feature_names(self.config.use_encoder, self.config.use_exemplars)

    def featurise(self, **inputs: Any) -> torch.Tensor:
        """(batch, n_features) raw features: :meth:`featurise_and_compare`'s, without the
        similarities."""
        features, _ = self.featurise_and_compare(**inputs)
        return features

    def featurise_and_compare(
        self,
        *,
        question: str,
        reference_answer: str,
        responses: list[str],
        embeddings: dict[str, torch.Tensor] | None = None,
        exemplar_texts: Sequence[str] = (),
        exemplar_scores: Sequence[float] = (),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``featurise``'s features and (batch, n_exemplars) the similarity of each response
        to each exemplar (no columns when the scorer does not read exemplars)."""
        features = pair_features(
            question=question,
            reference_answer=reference_answer,
            responses=responses,
            idf_char=self.idf_char.cpu(),
            idf_word=self.idf_word.cpu(),
            config=self.config,
            embeddings=embeddings,
        )
        if not self.config.use_exemplars:
            return features, torch.zeros(len(responses), 0)
        similarity = text_similarity(
            responses, list(exemplar_texts), idf_char=self.idf_char.cpu(), config=self.config
        )
        scores = torch.tensor(list(exemplar_scores), dtype=torch.float32)
        available = torch.ones_like(similarity, dtype=torch.bool)
        block = exemplar_features(similarity, scores, available, self.config)
        return torch.cat([features, block], dim=1), similarity

    def forward(
        self,
        features: torch.Tensor,  # (batch, n_features) raw, as featurise gives them
        target: torch.Tensor | None = None,  # (batch,) score on the 0-1 scale
        weight: torch.Tensor | None = None,  # (batch,) weight of each example in the loss
    ) -> ReferenceOutput:
        z = (features - self.feature_mean) / self.feature_std  # (batch, n_features)
        logits = self.mlp(z).squeeze(-1)  # (batch,)
        if self.linear is not None:
            logits = logits + self.linear(z).squeeze(-1)
        # An empty answer earns the bottom of the scale whatever the network says.
        empty = features[:, PAIR_FEATURES.index("empty")] > 0.5
        decoded = self.decoding[0] * logits + self.decoding[1]
        raw = torch.where(empty, torch.zeros_like(logits), torch.sigmoid(decoded))
        loss = None
        if target is not None:
            losses = nn.functional.binary_cross_entropy_with_logits(
                logits, target, reduction="none"
            )
            weight = torch.ones_like(losses) if weight is None else weight
            loss = (losses * weight).sum() / weight.sum()
        return ReferenceOutput(logits=logits, raw=raw, loss=loss)

    def confidence(self, raw: torch.Tensor, n_levels: int) -> torch.Tensor:
        """(batch,) probability that the snapped level is the teacher's."""
        features = confidence_features(raw.cpu(), n_levels)
        return torch.sigmoid(features @ self.calibrator.cpu()).clamp(0.0, 1.0)


def feature_names(use_encoder: bool, use_exemplars: bool = False) -> tuple[str, ...]:
    return (
        PAIR_FEATURES
        + (ENCODER_FEATURES if use_encoder else ())
        + (EXEMPLAR_FEATURES if use_exemplars else ())
    )


# ----- features -------------------------------------------------------------------------


def stem(word: str) -> str:
    """A crude suffix stripper, enough to match "cells" with "cell" and "heated" with "heat"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def is_content_word(word: str) -> bool:
    return word.isdigit() or (len(word) >= 3 and word not in STOP_WORDS)


def content_words(text: str) -> list[str]:
    """Content words of normalised ``text``, in order, repeats kept."""
    return [w for w in textlib.words_of(textlib.normalize_text(text)) if is_content_word(w)]


def _word_idf(words: Sequence[str], idf_word: torch.Tensor, n_buckets: int) -> dict[str, float]:
    """The unigram idf of each word (one hashing pass over all of them)."""
    distinct = list(dict.fromkeys(words))
    if not distinct:
        return {}
    counts = textlib.word_ngram_counts(distinct, orders=(1,), n_buckets=n_buckets)
    buckets = counts.bucket.tolist()
    idf = {distinct[d]: float(idf_word[buckets[i]]) for i, d in enumerate(counts.doc.tolist())}
    return {w: idf.get(w, 1.0) for w in distinct}


def _cosines(counts: textlib.SparseCounts, idf: torch.Tensor, *, anchor: int) -> torch.Tensor:
    """(docs,) cosine of every document with document ``anchor``, weighted as in
    ``textlib.tfidf_matrix`` (sublinear tf times idf), without building sparse matrices."""
    values = (1.0 + torch.log(counts.count)) * idf[counts.bucket]  # (nnz,)
    norms = torch.zeros(counts.n_docs).index_add_(0, counts.doc, values * values).sqrt()
    anchor_vector = torch.zeros(counts.n_buckets)  # (buckets,)
    own = counts.doc == anchor
    anchor_vector[counts.bucket[own]] = values[own]
    dots = torch.zeros(counts.n_docs).index_add_(
        0, counts.doc, values * anchor_vector[counts.bucket]
    )
    return dots / (norms * norms[anchor]).clamp_min(1e-12)


def _containment(counts: textlib.SparseCounts, *, anchor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(docs,) twice: the share of the anchor's distinct n-grams found in each document, and
    the share of each document's distinct n-grams found in the anchor."""
    present = torch.zeros(counts.n_buckets)
    present[counts.bucket[counts.doc == anchor]] = 1.0
    shared = torch.zeros(counts.n_docs).index_add_(0, counts.doc, present[counts.bucket])
    sizes = torch.bincount(counts.doc, minlength=counts.n_docs).to(torch.float32)
    return shared / sizes[anchor].clamp_min(1.0), shared / sizes.clamp_min(1.0)


def pair_features(
    *,
    question: str,
    reference_answer: str,
    responses: list[str],
    idf_char: torch.Tensor,
    idf_word: torch.Tensor,
    config: ReferenceConfig,
    embeddings: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """(batch, n_features) features of each response against the item's reference answer.

    ``embeddings`` holds "responses" (batch, dim), "reference" (1, dim) and "question"
    (1, dim) unit vectors; it is required when ``config.use_encoder``.
    """
    n = len(responses)
    buckets = config.n_buckets
    docs = [reference_answer, question, *responses]  # doc 0: reference, 1: question
    chars = textlib.char_ngram_counts(docs, orders=config.char_orders, n_buckets=buckets)
    unigrams = textlib.word_ngram_counts(docs, orders=(1,), n_buckets=buckets)
    bigrams = textlib.word_ngram_counts(docs, orders=(2,), n_buckets=buckets)
    char_cosine = _cosines(chars, idf_char, anchor=0)[2:]  # (batch,)
    word_cosine = _cosines(unigrams, idf_word, anchor=0)[2:]
    bigram_cosine = _cosines(bigrams, idf_word, anchor=0)[2:]
    question_cosine = _cosines(unigrams, idf_word, anchor=1)[2:]
    reference_containment, response_containment = _containment(chars, anchor=0)

    reference_words = content_words(reference_answer)
    reference_stems = {stem(w) for w in reference_words}
    question_stems = {stem(w) for w in content_words(question)}
    idf = _word_idf(reference_words, idf_word, buckets)
    stem_idf: dict[str, float] = {}
    for word in reference_words:
        stem_idf[stem(word)] = max(stem_idf.get(stem(word), 0.0), idf[word])
    total_idf = sum(stem_idf.values())
    n_reference_words = len(textlib.words_of(textlib.normalize_text(reference_answer)))

    word_rows = []
    for response in responses:
        all_words = textlib.words_of(textlib.normalize_text(response))
        stems = [stem(w) for w in all_words if is_content_word(w)]
        distinct = set(stems)
        found = distinct & reference_stems
        recall = len(found) / len(reference_stems) if reference_stems else 0.0
        weighted = sum(stem_idf[s] for s in found) / total_idf if total_idf else 0.0
        precision = sum(1 for s in stems if s in reference_stems) / len(stems) if stems else 0.0
        question_only = (
            sum(1 for s in stems if s in question_stems and s not in reference_stems) / len(stems)
            if stems
            else 0.0
        )
        word_rows.append(
            [
                recall,
                weighted,
                precision,
                math.log1p(len(all_words)),
                math.log1p(len(all_words)) - math.log1p(n_reference_words),
                question_only,
                0.0 if all_words else 1.0,
            ]
        )
    word_features = torch.tensor(word_rows, dtype=torch.float32).reshape(n, 7)
    columns = [
        char_cosine,
        word_cosine,
        bigram_cosine,
        word_features[:, 0],
        word_features[:, 1],
        word_features[:, 2],
        reference_containment[2:],
        response_containment[2:],
        word_features[:, 3],
        word_features[:, 4],
        # Words shared with the question more than with the reference: a copy of the question.
        (question_cosine - word_cosine).clamp_min(0.0),
        word_features[:, 5],
        word_features[:, 6],
    ]
    if config.use_encoder:
        if embeddings is None:
            raise ValueError("this scorer uses a sentence encoder; pass embeddings")
        response_vectors = nn.functional.normalize(embeddings["responses"].float().cpu(), dim=1)
        columns.append(response_vectors @ _unit(embeddings["reference"]))
        columns.append(
            response_vectors @ _unit(embeddings["question"]) if question.strip() else torch.zeros(n)
        )
    return torch.stack(columns, dim=1).to(torch.float32)  # (batch, n_features)


def text_similarity(
    texts: list[str],
    others: list[str] | None,
    *,
    idf_char: torch.Tensor,
    config: ReferenceConfig,
) -> torch.Tensor:
    """(len(texts), len(others)) cosine of character n-gram tf-idf vectors; ``others`` None:
    of ``texts`` with themselves."""
    pool = texts if others is None else texts + others
    n_others = len(texts) if others is None else len(others)
    if not texts or not n_others:
        return torch.zeros(len(texts), n_others)
    counts = textlib.char_ngram_counts(pool, orders=config.char_orders, n_buckets=config.n_buckets)
    x = textlib.tfidf_matrix(counts, idf_char)
    product = torch.sparse.mm(x, x.t()).to_dense().to(torch.float32)
    return product if others is None else product[: len(texts), len(texts) :]


def exemplar_features(
    similarity: torch.Tensor,  # (batch, m) of each response with each exemplar
    scores: torch.Tensor,  # (m,) the exemplars' scores on the 0-1 scale
    available: torch.Tensor,  # (batch, m) bool: which exemplars each response may consult
    config: ReferenceConfig,
) -> torch.Tensor:
    """(batch, len(EXEMPLAR_FEATURES)): the similarity-weighted score of the most similar
    available exemplars (less the middle of the scale, times exemplar_weight), the similarity
    of the nearest one, and exemplar_weight, n / (n + half_weight) for n available."""
    batch, m = similarity.shape
    counts = available.sum(1).to(torch.float32)  # (batch,)
    k = min(config.exemplar_neighbours, m)
    if k == 0:
        return torch.zeros(batch, len(EXEMPLAR_FEATURES))
    masked = similarity.masked_fill(~available, -math.inf)
    top_similarity, top_index = masked.topk(k, dim=1)  # (batch, k)
    valid = torch.isfinite(top_similarity)
    # A little weight for every neighbour, so that dissimilar ones still vote (weakly).
    votes = torch.where(
        valid, top_similarity.clamp_min(0.0) + 0.05, torch.zeros_like(masked[:, :k])
    )
    neighbour_score = (votes * scores[top_index]).sum(1) / votes.sum(1).clamp_min(1e-9)
    some = counts > 0
    weight = counts / (counts + config.exemplar_half_weight)
    return torch.stack(
        [
            torch.where(some, weight * (neighbour_score - 0.5), torch.zeros_like(weight)),
            torch.where(some, top_similarity[:, 0], torch.zeros_like(weight)),
            weight,
        ],
        dim=1,
    )


def _unit(vector: torch.Tensor) -> torch.Tensor:
    """(dim,) unit vector from a (1, dim) or (dim,) embedding."""
    return nn.functional.normalize(vector.float().cpu().reshape(-1), dim=0)


def encode_item(
    encoder: Encoder, *, question: str, reference_answer: str, responses: list[str]
) -> dict[str, torch.Tensor]:
    vectors = encoder.encode([reference_answer, question or " ", *responses])
    return {"reference": vectors[0:1], "question": vectors[1:2], "responses": vectors[2:]}


def confidence_features(raw: torch.Tensor, n_levels: int) -> torch.Tensor:
    """(batch, len(CONFIDENCE_FEATURES)): how safely the raw score sits inside its level."""
    steps = n_levels - 1
    position = raw * steps  # (batch,) in level units
    boundary = 2.0 * (0.5 - (position - position.round()).abs())  # 1 at a level's centre
    extremeness = 2.0 * (raw - 0.5).abs()
    level_step = torch.full_like(raw, 1.0 / steps)
    return torch.stack(
        [torch.ones_like(raw), boundary, extremeness, level_step, boundary * level_step], dim=1
    )


def snap(raw: torch.Tensor, n_levels: int) -> torch.Tensor:
    """(batch,) int64 level 0 .. n_levels-1 nearest to the 0-1 raw score."""
    return (raw * (n_levels - 1)).round().clamp(0, n_levels - 1).to(torch.int64)


def _levels(examples: Sequence[ReferenceExample]) -> np.ndarray:
    """(n,) the teacher's level of each example, 0 .. n_levels-1."""
    levels = []
    for e in examples:
        position = (e.score - e.min_score) / (e.max_score - e.min_score) * (e.n_levels - 1)
        levels.append(min(e.n_levels - 1, max(0, round(position))))
    return np.array(levels, dtype=np.int64)


# ----- decoding and confidence, chosen on held-out items -------------------------------

_STRETCHES = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
_SHIFTS = (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class HeldOutItem:
    logits: torch.Tensor  # (n,) undecoded
    empty: torch.Tensor  # (n,) bool
    gold: np.ndarray  # (n,) teacher's level
    n_levels: int

    def raw(self, decoding: tuple[float, float]) -> torch.Tensor:
        decoded = torch.sigmoid(decoding[0] * self.logits + decoding[1])
        return torch.where(self.empty, torch.zeros_like(decoded), decoded)

    def qwk(self, decoding: tuple[float, float]) -> float:
        predicted = snap(self.raw(decoding), self.n_levels).numpy()
        return quadratic_weighted_kappa(self.gold, predicted, self.n_levels)


def fit_decoding(items: Sequence[HeldOutItem]) -> tuple[float, float]:
    """The (stretch, shift) of the logits with the best mean QWK over held-out items.

    A regression on the 0-1 score pulls an unseen item's predictions toward the middle level,
    where they are least wrong on average; QWK, like a teacher, wants the levels used as widely
    as the teacher uses them. Nearest to (1, 0) wins a tie.
    """
    best, chosen = -math.inf, (1.0, 0.0)
    for stretch in _STRETCHES:
        for shift in _SHIFTS:
            value = float(np.mean([item.qwk((stretch, shift)) for item in items]))
            value -= 1e-3 * (stretch - 1.0 + abs(shift))
            if value > best + 1e-9:
                best, chosen = value, (stretch, shift)
    return chosen


def _calibration_data(
    items: Sequence[HeldOutItem], decoding: tuple[float, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    rows, correct = [], []
    for item in items:
        raw = item.raw(decoding)
        rows.append(confidence_features(raw, item.n_levels))
        predicted = snap(raw, item.n_levels).numpy()
        correct.append(torch.tensor(predicted == item.gold, dtype=torch.float32))
    return torch.cat(rows), torch.cat(correct)


@dataclass
class HeldOutReport:
    decoding: tuple[float, float]
    calibrator: torch.Tensor  # (len(CONFIDENCE_FEATURES),)
    metrics: dict[str, Any]


def held_out_report(items: Sequence[HeldOutItem]) -> HeldOutReport:
    """Decoding and confidence model fitted on all held-out items; the reported QWK and ECE
    of each item come from those fitted on the *other* held-out items (with one held-out item,
    decoding stays (1, 0) for the report and the ECE is in-sample)."""
    decoding = fit_decoding(items)
    calibrator = fit_logistic(*_calibration_data(items, decoding))
    qwk, correct, confidence = [], [], []
    for i, item in enumerate(items):
        others = [other for j, other in enumerate(items) if j != i]
        own_decoding = fit_decoding(others) if others else (1.0, 0.0)
        own_calibrator = (
            fit_logistic(*_calibration_data(others, own_decoding)) if others else calibrator
        )
        x, y = _calibration_data([item], own_decoding)
        qwk.append(item.qwk(own_decoding))
        correct.append(y)
        confidence.append(torch.sigmoid(x @ own_calibrator))
    correct_all, confidence_all = torch.cat(correct), torch.cat(confidence)
    metrics = {
        "validated_qwk": round(float(np.mean(qwk)), 4),
        "validated_qwk_undecoded": round(float(np.mean([i.qwk((1.0, 0.0)) for i in items])), 4),
        "validated_accuracy": round(float(correct_all.mean()), 4),
        "ece": round(expected_calibration_error(correct_all.numpy(), confidence_all.numpy()), 4),
        "decoding": [decoding[0], decoding[1]],
    }
    return HeldOutReport(decoding=decoding, calibrator=calibrator, metrics=metrics)


# ----- training -------------------------------------------------------------------------


@dataclass
class _ItemData:
    key: str
    examples: list[ReferenceExample]
    doc_char: torch.Tensor  # (buckets,) how many of this item's texts hold each bucket
    doc_word: torch.Tensor
    n_docs: int


def _validate(examples: Sequence[ReferenceExample]) -> dict[str, list[ReferenceExample]]:
    by_item: dict[str, list[ReferenceExample]] = {}
    for example in examples:
        by_item.setdefault(example.item_key, []).append(example)
    if len(by_item) < MIN_ITEMS:
        raise ValueError(
            f"the reference grader learns across items: it needs at least {MIN_ITEMS} items "
            f"with scored responses, got {len(by_item)}"
        )
    if len(examples) < MIN_EXAMPLES:
        raise ValueError(
            f"the reference grader needs at least {MIN_EXAMPLES} scored responses, "
            f"got {len(examples)}"
        )
    for key, item in by_item.items():
        first = item[0]
        for example in item:
            if not example.reference_answer.strip():
                raise ValueError(f"item {key!r} has an empty reference answer")
            if (example.reference_answer, example.question) != (
                first.reference_answer,
                first.question,
            ):
                raise ValueError(f"item {key!r} has more than one reference answer or question")
            if example.max_score <= example.min_score:
                raise ValueError(f"item {key!r}: max_score must be above min_score")
            if example.n_levels < 2:
                raise ValueError(f"item {key!r}: n_levels must be at least 2")
            if not example.min_score - 1e-9 <= example.score <= example.max_score + 1e-9:
                raise ValueError(
                    f"item {key!r}: score {example.score} is outside "
                    f"{example.min_score}..{example.max_score}"
                )
    return by_item


def _item_data(key: str, items: list[ReferenceExample], config: ReferenceConfig) -> _ItemData:
    texts = [items[0].reference_answer] + [e.response for e in items]
    chars = textlib.char_ngram_counts(texts, orders=config.char_orders, n_buckets=config.n_buckets)
    words = textlib.word_ngram_counts(texts, orders=(1, 2), n_buckets=config.n_buckets)
    return _ItemData(
        key=key,
        examples=items,
        doc_char=textlib.document_frequency(chars),
        doc_word=textlib.document_frequency(words),
        n_docs=len(texts),
    )


def _item_features(
    item: _ItemData,
    idf_char: torch.Tensor,
    idf_word: torch.Tensor,
    config: ReferenceConfig,
    encoder: Encoder | None,
) -> torch.Tensor:
    first = item.examples[0]
    responses = [e.response for e in item.examples]
    embeddings = (
        encode_item(
            encoder,
            question=first.question,
            reference_answer=first.reference_answer,
            responses=responses,
        )
        if encoder is not None
        else None
    )
    return pair_features(
        question=first.question,
        reference_answer=first.reference_answer,
        responses=responses,
        idf_char=idf_char,
        idf_word=idf_word,
        config=config,
        embeddings=embeddings,
    )


def _targets(examples: Sequence[ReferenceExample]) -> torch.Tensor:
    """(n,) each example's score on the 0-1 scale of its item."""
    return torch.tensor(
        [
            min(1.0, max(0.0, (e.score - e.min_score) / (e.max_score - e.min_score)))
            for e in examples
        ],
        dtype=torch.float32,
    )


def _drawn_exemplar_features(
    item: _ItemData, idf_char: torch.Tensor, config: ReferenceConfig, generator: torch.Generator
) -> torch.Tensor:
    """(n, len(EXEMPLAR_FEATURES)) for the item's answers, each seeing a random draw of the
    item's other scored answers as its exemplars (none for some), as answers to an item with
    that many teacher scores would."""
    responses = [e.response for e in item.examples]
    n = len(responses)
    similarity = text_similarity(responses, None, idf_char=idf_char, config=config)  # (n, n)
    keys = torch.rand(n, n, generator=generator)
    keys.fill_diagonal_(math.inf)  # an answer is never its own exemplar
    rank = keys.argsort(dim=1).argsort(dim=1)  # (n, n): each exemplar's place in the draw
    drawn = torch.randint(1, config.exemplar_draw_max + 1, (n,), generator=generator)
    none = torch.rand(n, generator=generator) < config.exemplar_none_share
    drawn = torch.where(none, torch.zeros_like(drawn), drawn).clamp_max(n - 1)
    available = rank < drawn[:, None]
    return exemplar_features(similarity, _targets(item.examples), available, config)


@contextmanager
def _one_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """Run the small network's many tiny steps on one thread. Splitting a (256, 32) matmul
    over threads gains nothing, and when other processes share the cores the threads wait on
    each other: the same training took 30 s instead of 1 s on a busy 2-core machine."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fit(
    model: ReferenceScorer,
    features: torch.Tensor,  # (n, n_features)
    target: torch.Tensor,  # (n,)
    weight: torch.Tensor,  # (n,)
    *,
    epochs: int,
    generator: torch.Generator,
    validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """Adam on mini-batches; with ``validation``, keep the epoch with the lowest held-out
    loss and stop after ``patience`` epochs without one. Returns (state, epochs used)."""
    c = model.config
    optimizer = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    n = features.shape[0]
    batch = n if c.batch_size <= 0 else min(c.batch_size, n)
    best_loss, best_epoch = math.inf, epochs
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(features.device)
        for start in range(0, n, batch):
            index = order[start : start + batch]
            loss = model(features[index], target[index], weight[index]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if validation is None:
            continue
        model.eval()
        with torch.no_grad():
            held_out = float(model(*validation).loss)
        if held_out < best_loss - 1e-5:
            best_loss, best_epoch = held_out, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= c.patience:
            break
    if validation is None:
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.eval()
    return best_state, best_epoch


def _stack(
    items: list[_ItemData], features: dict[str, torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features, 0-1 targets and per-example weights (each item weighs the same)."""
    x = torch.cat([features[item.key] for item in items])
    target = torch.cat([_targets(item.examples) for item in items])
    weight = torch.cat(
        [torch.full((len(item.examples),), 1.0 / len(item.examples)) for item in items]
    )
    return x.to(device), target.to(device), (weight * len(weight) / weight.sum()).to(device)


def _new_model(config: ReferenceConfig, device: torch.device) -> ReferenceScorer:
    torch.manual_seed(config.seed)
    model = ReferenceScorer(config)
    model.registered_name = "reference-scorer"  # type: ignore[assignment]
    return model.to(device)


def train_reference_grader(
    examples: list[ReferenceExample],
    *,
    encoder: Encoder | None = None,
    config: ReferenceConfig | None = None,
    device: str | torch.device = "cpu",
) -> TrainedReferenceGrader:
    """Learn one scorer from the scored responses of several items that have reference answers.

    Whole items are held out to choose the number of epochs, to measure how the scorer does
    on items it has never seen, and to fit the confidence model. Deterministic given the seed.

    Unless ``config`` says otherwise, the scorer also learns to read an item's own
    teacher-scored answers (exemplars), from random draws of each training item's answers;
    ``validated_qwk`` is measured without any (a new item), ``validated_qwk_with_exemplars``
    with the same kind of draws.
    """
    by_item = _validate(examples)
    base = config or ReferenceConfig(use_exemplars=True)
    cfg = dataclasses.replace(base, use_encoder=encoder is not None)
    device = torch.device(device)

    items = [_item_data(key, group, cfg) for key, group in sorted(by_item.items())]
    total_char = torch.stack([item.doc_char for item in items]).sum(0)
    total_word = torch.stack([item.doc_word for item in items]).sum(0)
    total_docs = sum(item.n_docs for item in items)
    # Each item's features with the idf of the other items: a new item's words are unseen too.
    features: dict[str, torch.Tensor] = {}
    # The same without exemplars, for the figures of a new item.
    zero_shot: dict[str, torch.Tensor] = {}
    draws = torch.Generator().manual_seed(cfg.seed + 1)
    for item in items:
        idf_char = textlib.idf_from_frequency(total_char - item.doc_char, total_docs - item.n_docs)
        idf_word = textlib.idf_from_frequency(total_word - item.doc_word, total_docs - item.n_docs)
        pair = _item_features(item, idf_char, idf_word, cfg, encoder)
        if cfg.use_exemplars:
            drawn = _drawn_exemplar_features(item, idf_char, cfg, draws)
            features[item.key] = torch.cat([pair, drawn], dim=1)
            zero_shot[item.key] = torch.cat([pair, torch.zeros_like(drawn)], dim=1)
        else:
            features[item.key] = zero_shot[item.key] = pair

    generator = torch.Generator().manual_seed(cfg.seed)
    shuffled = [items[int(i)] for i in torch.randperm(len(items), generator=generator)]
    n_validation = min(len(items) - 1, max(1, round(cfg.validation_share * len(items))))
    validation_items, train_items = shuffled[:n_validation], shuffled[n_validation:]

    with torch.random.fork_rng(devices=[]), _one_thread_on_cpu(device):
        model = _new_model(cfg, device)
        train_x, train_target, train_weight = _stack(train_items, features, device)
        model.feature_mean.copy_(train_x.mean(0))
        model.feature_std.copy_(train_x.std(0, unbiased=False).clamp_min(1e-6))
        validation = _stack(validation_items, features, device)
        state, best_epoch = _fit(
            model,
            train_x,
            train_target,
            train_weight,
            epochs=cfg.epochs,
            generator=generator,
            validation=validation,
        )
        model.load_state_dict(state)
        model.eval()

        def held_out(source: dict[str, torch.Tensor]) -> list[HeldOutItem]:
            with torch.no_grad():
                return [
                    HeldOutItem(
                        logits=model(source[item.key].to(device)).logits.cpu(),
                        empty=source[item.key][:, PAIR_FEATURES.index("empty")] > 0.5,
                        gold=_levels(item.examples),
                        n_levels=item.examples[0].n_levels,
                    )
                    for item in validation_items
                ]

        # Decoding and confidence are fitted on the answers as the scorer will meet them (with
        # and without exemplars); the QWK that gates a new version is that of new items.
        report = held_out_report(held_out(features))
        if cfg.use_exemplars:
            new_items = held_out_report(held_out(zero_shot))
            report.metrics["validated_qwk_with_exemplars"] = report.metrics["validated_qwk"]
            report.metrics["validated_qwk"] = new_items.metrics["validated_qwk"]

        if cfg.refit_on_all:
            model = _new_model(cfg, device)
            all_x, all_target, all_weight = _stack(items, features, device)
            model.feature_mean.copy_(all_x.mean(0))
            model.feature_std.copy_(all_x.std(0, unbiased=False).clamp_min(1e-6))
            state, _ = _fit(
                model, all_x, all_target, all_weight, epochs=best_epoch, generator=generator
            )
            model.load_state_dict(state)
            model.eval()

    model.idf_char.copy_(textlib.idf_from_frequency(total_char, total_docs))
    model.idf_word.copy_(textlib.idf_from_frequency(total_word, total_docs))
    model.calibrator.copy_(report.calibrator)
    model.decoding.copy_(torch.tensor(report.decoding))
    metrics = {
        **report.metrics,
        "validated_items": len(validation_items),
        "validated_item_keys": [item.key for item in validation_items],
        "best_epoch": best_epoch,
        "n_train": len(examples),
        "n_items": len(items),
    }
    return TrainedReferenceGrader(
        scorer=model.cpu().eval(),
        encoder_name=encoder.name if encoder is not None else "",
        metrics=metrics,
    )


# ----- grading --------------------------------------------------------------------------

_EXPLAINED_WORDS = 5
_SIMILAR_SHOWN = 3


@dataclass(frozen=True)
class _ItemInput:
    """What the scorer reads of the item being graded."""

    question: str
    reference_answer: str
    exemplars: tuple[Exemplar, ...]
    exemplar_scores: tuple[float, ...]  # on the 0-1 scale

    @classmethod
    def of(
        cls,
        question: str,
        reference_answer: str,
        min_score: float,
        max_score: float,
        exemplars: Sequence[Exemplar],
    ) -> _ItemInput:
        kept = tuple(exemplars)[-MAX_EXEMPLARS:]
        for exemplar in kept:
            if not min_score - 1e-9 <= exemplar.score <= max_score + 1e-9:
                raise ValueError(
                    f"exemplar {exemplar.key!r}: score {exemplar.score} is outside "
                    f"{min_score}..{max_score}"
                )
        span = max_score - min_score
        return cls(
            question=question,
            reference_answer=reference_answer,
            exemplars=kept,
            exemplar_scores=tuple((e.score - min_score) / span for e in kept),
        )


@dataclass
class TrainedReferenceGrader:
    scorer: ReferenceScorer
    encoder_name: str
    metrics: dict[str, Any]

    def _embeddings(
        self, encoder: Encoder | None, question: str, reference_answer: str, texts: list[str]
    ) -> dict[str, torch.Tensor] | None:
        if not self.encoder_name:
            return None
        if encoder is None or encoder.name != self.encoder_name:
            raise GraderUnavailable(
                f"this grader was trained with the sentence encoder {self.encoder_name!r}, "
                "which is not loaded here"
            )
        return encode_item(
            encoder, question=question, reference_answer=reference_answer, responses=texts
        )

    def _features(
        self, item: _ItemInput, texts: list[str], encoder: Encoder | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, n_features) and (batch, n_exemplars) similarities, as ``featurise``."""
        embeddings = self._embeddings(encoder, item.question, item.reference_answer, texts)
        return self.scorer.featurise_and_compare(
            question=item.question,
            reference_answer=item.reference_answer,
            responses=texts,
            embeddings=embeddings,
            exemplar_texts=[e.text for e in item.exemplars],
            exemplar_scores=item.exemplar_scores,
        )

    @torch.no_grad()
    def _raw(self, item: _ItemInput, texts: list[str], encoder: Encoder | None) -> torch.Tensor:
        """(batch,) raw 0-1 scores."""
        features, _ = self._features(item, texts, encoder)
        device = self.scorer.feature_mean.device
        return self.scorer(features.to(device)).raw.cpu()

    def grade(
        self,
        *,
        question: str,
        reference_answer: str,
        texts: list[str],
        min_score: float,
        max_score: float,
        n_levels: int,
        encoder: Encoder | None = None,
        explain: bool = True,
        exemplars: Sequence[Exemplar] = (),
    ) -> list[GradePrediction]:
        """Scores on the item's scale (one of its levels), each with its confidence, the
        item's teacher-scored answers most like it (``exemplars``, when the scorer reads them)
        and the reference words the response holds (positive weight) or misses (negative)."""
        _check_scale(reference_answer, min_score, max_score, n_levels)
        if not texts:
            return []
        item = _ItemInput.of(question, reference_answer, min_score, max_score, exemplars)
        features, similarity = self._features(item, texts, encoder)
        with torch.no_grad():
            raw = self.scorer(features.to(self.scorer.feature_mean.device)).raw.cpu()
        level = snap(raw, n_levels)
        step = (max_score - min_score) / (n_levels - 1)
        confidence = self.scorer.confidence(raw, n_levels)
        words = (
            self._word_effects(item, texts, raw, max_score - min_score, encoder)
            if explain
            else [[] for _ in texts]
        )
        k = min(_SIMILAR_SHOWN, similarity.shape[1])
        top_similarity, top_index = similarity.topk(k, dim=1)
        return [
            GradePrediction(
                score=float(min_score + int(level[i]) * step),
                confidence=float(confidence[i]),
                similar=[
                    {
                        "key": item.exemplars[int(j)].key,
                        "score": item.exemplars[int(j)].score,
                        "similarity": round(float(value), 3),
                    }
                    for value, j in zip(top_similarity[i], top_index[i], strict=True)
                ],
                phrases=words[i],
            )
            for i in range(len(texts))
        ]

    def explain(
        self,
        *,
        question: str,
        reference_answer: str,
        texts: list[str],
        min_score: float,
        max_score: float,
        n_levels: int,
        encoder: Encoder | None = None,
        exemplars: Sequence[Exemplar] = (),
    ) -> list[dict[str, Any]]:
        """Per response: ``{"raw", "matched", "missing", "features"}``. ``features`` is how
        far each feature moved the score, in score points: the drop when that feature alone is
        set to its training average."""
        _check_scale(reference_answer, min_score, max_score, n_levels)
        if not texts:
            return []
        scale = max_score - min_score
        item = _ItemInput.of(question, reference_answer, min_score, max_score, exemplars)
        features, _ = self._features(item, texts, encoder)
        names = self.scorer.feature_names
        with torch.no_grad():
            base = self.scorer(features).raw  # (batch,)
            effects = torch.zeros(len(texts), len(names))
            for j in range(len(names)):
                moved = features.clone()
                moved[:, j] = self.scorer.feature_mean[j]
                effects[:, j] = (base - self.scorer(moved).raw) * scale
        words = self._word_effects(item, texts, base, scale, encoder)
        return [
            {
                "raw": round(float(base[i]), 4),
                "matched": [p["text"] for p in words[i] if p["found"]],
                "missing": [p["text"] for p in words[i] if not p["found"]],
                "features": {name: round(float(effects[i, j]), 4) for j, name in enumerate(names)},
            }
            for i in range(len(texts))
        ]

    def _word_effects(
        self,
        item: _ItemInput,
        texts: list[str],
        raw: torch.Tensor,
        scale: float,
        encoder: Encoder | None,
    ) -> list[list[dict[str, Any]]]:
        """The rarest reference words each response holds or misses, each weighted by how the
        score moves (in score points) when the response loses it or gains it."""
        reference_words = content_words(item.reference_answer)
        idf = _word_idf(reference_words, self.scorer.idf_word.cpu(), self.scorer.config.n_buckets)
        by_stem: dict[str, str] = {}
        for word in sorted(dict.fromkeys(reference_words), key=lambda w: (-idf[w], w)):
            by_stem.setdefault(stem(word), word)
        variants: list[str] = []
        plan: list[list[tuple[str, bool, int, int]]] = []
        for text in texts:
            normalised = textlib.normalize_text(text)
            own = {stem(w): w for w in textlib.words_of(normalised) if is_content_word(w)}
            found = [s for s in by_stem if s in own][:_EXPLAINED_WORDS]
            missing = [s for s in by_stem if s not in own][:_EXPLAINED_WORDS]
            row = []
            if found:
                # Removing a word also drops the punctuation: compare with the same text whole.
                tokens = textlib.words_of(normalised)
                whole = len(variants)
                variants.append(" ".join(tokens))
                for s in found:
                    kept = [w for w in tokens if not (is_content_word(w) and stem(w) == s)]
                    row.append((by_stem[s], True, len(variants), whole))
                    variants.append(" ".join(kept))
            for s in missing:
                row.append((by_stem[s], False, len(variants), -1))
                variants.append(f"{text} {by_stem[s]}")
            plan.append(row)
        moved = self._raw(item, variants, encoder) if variants else torch.zeros(0)
        result = []
        for i, row in enumerate(plan):
            phrases = []
            for word, found, index, whole in row:
                # Found: the points it earns (lost without it). Missing: the points its absence
                # costs (gained with it), as a negative weight.
                if found:
                    weight = float(moved[whole] - moved[index]) * scale
                else:
                    weight = -float(moved[index] - raw[i]) * scale
                phrases.append({"text": word, "weight": round(weight, 4), "found": found})
            result.append(phrases)
        return result

    def to_bytes(self) -> bytes:
        return checkpoint_bytes(
            self.scorer, metrics=self.metrics, extra={"encoder": self.encoder_name}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainedReferenceGrader:
        loaded = load_checkpoint(data)
        if not isinstance(loaded.model, ReferenceScorer):
            raise GraderUnavailable(
                f"the file holds a {loaded.name!r} model, not a reference grader"
            )
        return cls(
            scorer=loaded.model.eval(),
            encoder_name=str(loaded.extra.get("encoder", "")),
            metrics=dict(loaded.metrics),
        )


def _check_scale(reference_answer: str, min_score: float, max_score: float, n_levels: int) -> None:
    if not reference_answer.strip():
        raise ValueError("the reference grader needs the item's reference answer")
    if max_score <= min_score:
        raise ValueError("max_score must be above min_score")
    if n_levels < 2:
        raise ValueError("n_levels must be at least 2")
