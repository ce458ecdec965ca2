"""Text to numbers for the graders, with no vocabulary to download.

Every response becomes hashed counts of its character n-grams (spelling variants and word
stems share most of them) and word n-grams (phrases), plus a few surface measures (length,
variety of words, sentences). Hashing keeps the feature space fixed, so a model file holds
plain vectors and a new word needs no vocabulary update. Hashes are computed with tensor
operations over the whole batch at once: a batch of essays is featurised in well under a
second.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from dataclasses import dataclass

import torch

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
# A large prime below 2**31: products with the 8-bit base stay far inside int64.
_PRIME = 2_147_483_629
_BASE = 257


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: what the graders and the rules compare."""
    return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())


def words_of(text: str) -> list[str]:
    return _WORD.findall(text)


@dataclass(frozen=True)
class SparseCounts:
    """Hashed n-gram counts of a batch: ``(doc, bucket, count)`` triples, docs in input order."""

    doc: torch.Tensor  # (nnz,) int64
    bucket: torch.Tensor  # (nnz,) int64
    count: torch.Tensor  # (nnz,) float32
    n_docs: int
    n_buckets: int


def _counts(doc: torch.Tensor, bucket: torch.Tensor, n_docs: int, n_buckets: int) -> SparseCounts:
    if doc.numel() == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return SparseCounts(empty, empty, torch.zeros(0), n_docs, n_buckets)
    keys, counts = torch.unique(doc * n_buckets + bucket, return_counts=True)
    return SparseCounts(
        keys // n_buckets, keys % n_buckets, counts.to(torch.float32), n_docs, n_buckets
    )


def _ngram_counts(
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    *,
    orders: tuple[int, ...],
    n_buckets: int,
    base: int,
    salt: int,
) -> SparseCounts:
    """Hashed counts of the n-grams of each document's run of ``tokens`` (int64 codes, the
    documents' runs laid end to end, ``lengths`` long); an n-gram never spans two documents."""
    n_docs = len(lengths)
    doc_of_position = torch.repeat_interleave(torch.arange(n_docs), lengths)
    docs, buckets = [], []
    for order in orders:
        if tokens.numel() < order:
            continue
        windows = tokens.numel() - order + 1
        value = torch.full((windows,), salt * order, dtype=torch.int64)  # the order salts it
        for offset in range(order):
            value = (value * base + tokens[offset : offset + windows]) % _PRIME
        # Keep windows that start and end inside the same document.
        same_doc = doc_of_position[:windows] == doc_of_position[order - 1 :]
        docs.append(doc_of_position[:windows][same_doc])
        buckets.append(_mix(value[same_doc]) % n_buckets)
    if not docs:
        empty = torch.zeros(0, dtype=torch.int64)
        return _counts(empty, empty, n_docs, n_buckets)
    return _counts(torch.cat(docs), torch.cat(buckets), n_docs, n_buckets)


def char_ngram_counts(texts: list[str], *, orders: tuple[int, ...], n_buckets: int) -> SparseCounts:
    """Counts of character n-grams (over the UTF-8 bytes of normalised text, spaces included)."""
    encoded = [(" " + normalize_text(t) + " ").encode("utf-8") for t in texts]
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
    data = torch.frombuffer(bytearray(b"".join(encoded) or b" "), dtype=torch.uint8)
    data = data[: int(lengths.sum())].to(torch.int64)
    return _ngram_counts(data, lengths, orders=orders, n_buckets=n_buckets, base=_BASE, salt=1)


def _mix(value: torch.Tensor) -> torch.Tensor:
    """Spread hash values over all buckets (multiplicative hashing, kept within int64)."""
    return (value * 2_654_435_761) % 4_294_967_291


def word_hashes(text: str) -> list[int]:
    return [zlib.crc32(word.encode("utf-8")) for word in words_of(normalize_text(text))]


def word_ngram_counts(texts: list[str], *, orders: tuple[int, ...], n_buckets: int) -> SparseCounts:
    """Counts of word n-grams (unigrams, bigrams ...) of normalised text."""
    hashes = [word_hashes(t) for t in texts]
    lengths = torch.tensor([len(h) for h in hashes], dtype=torch.int64)
    flat = torch.tensor([h for row in hashes for h in row], dtype=torch.int64)
    return _ngram_counts(
        flat, lengths, orders=orders, n_buckets=n_buckets, base=1_000_003, salt=7919
    )


def document_frequency(counts: SparseCounts) -> torch.Tensor:
    """How many documents hold each bucket: (n_buckets,) float32."""
    return torch.bincount(counts.bucket, minlength=counts.n_buckets).to(torch.float32)


def idf_from_frequency(frequency: torch.Tensor, n_docs: int) -> torch.Tensor:
    """Smoothed inverse document frequency; buckets never seen get the highest weight."""
    return torch.log((1.0 + n_docs) / (1.0 + frequency)) + 1.0


def tfidf_matrix(counts: SparseCounts, idf: torch.Tensor) -> torch.Tensor:
    """Rows of sublinear tf times idf, each scaled to unit length: sparse CSR (docs, buckets)."""
    values = (1.0 + torch.log(counts.count)) * idf[counts.bucket]
    norms = torch.zeros(counts.n_docs).index_add_(0, counts.doc, values * values).sqrt()
    values = values / norms.clamp_min(1e-12)[counts.doc]
    return torch.sparse_coo_tensor(
        torch.stack([counts.doc, counts.bucket]),
        values,
        (counts.n_docs, counts.n_buckets),
    ).coalesce()


SURFACE_FEATURES = (
    "log_characters",
    "log_words",
    "log_distinct_words",
    "distinct_word_share",
    "mean_word_length",
    "log_sentences",
    "long_word_share",
    "punctuation_per_word",
    "rare_word_share",
)


def surface_features(texts: list[str], *, known_word: set[int] | None = None) -> torch.Tensor:
    """A few measures of length and variety, (docs, len(SURFACE_FEATURES)) float32.

    ``known_word`` holds hashes of words seen in at least two training responses; the share
    of other words is a cheap stand-in for misspellings and off-topic vocabulary.
    """
    rows = []
    for text in texts:
        normalised = normalize_text(text)
        words = words_of(normalised)
        n_words = len(words)
        distinct = set(words)
        hashes = [zlib.crc32(w.encode("utf-8")) for w in words]
        rare = (
            sum(1 for h in hashes if h not in known_word) / n_words
            if known_word is not None and n_words
            else 0.0
        )
        punctuation = sum(1 for c in normalised if unicodedata.category(c).startswith("P"))
        rows.append(
            [
                math.log1p(len(normalised)),
                math.log1p(n_words),
                math.log1p(len(distinct)),
                len(distinct) / n_words if n_words else 0.0,
                sum(len(w) for w in words) / n_words if n_words else 0.0,
                math.log1p(len(_SENTENCE_END.findall(normalised + " "))),
                sum(1 for w in words if len(w) >= 7) / n_words if n_words else 0.0,
                punctuation / n_words if n_words else 0.0,
                rare,
            ]
        )
    return torch.tensor(rows, dtype=torch.float32).reshape(len(texts), len(SURFACE_FEATURES))


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """The words of normalised ``text`` with their character spans (for explanations)."""
    normalised = normalize_text(text)
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(normalised)]
