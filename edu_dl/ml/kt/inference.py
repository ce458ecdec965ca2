"""Using a trained knowledge-tracing model for one student or many: mastery of every skill, the
chance of answering given questions, and which past answers moved a skill's estimate most.

Every KT model implements ``predict_next(batch, next_skills, next_items, next_repeats)``; these
helpers work for all of them. Histories longer than the model's window are cut to their most
recent part, the window the model was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edu_dl.ml.kt.data import (
    FIRST_KNOWN,
    PAD,
    REPEAT_FIRST,
    REPEAT_LAST_RIGHT,
    REPEAT_LAST_WRONG,
    UNKNOWN,
    KTSequence,
    collate,
)

Query = tuple[tuple[int, ...], int]  # (skill indices, item index)
NEUTRAL = KTSequence(skills=[(UNKNOWN,)], correct=[0], items=[UNKNOWN])


def most_recent(sequence: KTSequence, max_length: int) -> KTSequence:
    """The last ``max_length`` answers; a neutral one-step history when there are none (the
    model's prior)."""
    if len(sequence) == 0:
        return NEUTRAL
    if len(sequence) <= max_length:
        return sequence
    start = len(sequence) - max_length
    return KTSequence(
        skills=sequence.skills[start:],
        correct=sequence.correct[start:],
        items=None if sequence.items is None else sequence.items[start:],
        repeats=None if sequence.repeats is None else sequence.repeats[start:],
        key=sequence.key,
    )


def _last_outcomes(sequence: KTSequence) -> dict[int, int]:
    """Each known item of the history -> the repeat state of asking it again: the student's
    last outcome on it (one pass over the history, however many items are asked about)."""
    last: dict[int, int] = {}
    if not sequence.items:
        return last
    for item, correct in zip(sequence.items, sequence.correct, strict=True):
        if item >= FIRST_KNOWN:
            last[item] = REPEAT_LAST_RIGHT if correct else REPEAT_LAST_WRONG
    return last


def _queries_for(
    sequences: Sequence[KTSequence], queries: Sequence[Query], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(batch, q, k) skills, (batch, q) items and (batch, q) repeat states."""
    width = max((len(skills) for skills, _ in queries), default=1) or 1
    skills = torch.full((len(queries), width), PAD, dtype=torch.long)
    items = torch.full((len(queries),), UNKNOWN, dtype=torch.long)
    for column, (query_skills, item) in enumerate(queries):
        indices = query_skills or (UNKNOWN,)
        skills[column, : len(indices)] = torch.tensor(indices)
        items[column] = item
    repeats = torch.tensor(
        [
            [last.get(item, REPEAT_FIRST) for _, item in queries]
            for last in map(_last_outcomes, sequences)
        ],
        dtype=torch.long,
    )
    batch = len(sequences)
    return (
        skills.unsqueeze(0).expand(batch, -1, -1).to(device),
        items.unsqueeze(0).expand(batch, -1).to(device),
        repeats.to(device),
    )


@torch.no_grad()
def predict_next_many(
    model: nn.Module,
    sequences: Sequence[KTSequence],
    queries: Sequence[Query],
    *,
    device: torch.device,
    max_length: int = 200,
    batch_size: int = 64,
) -> np.ndarray:
    """Probability of a correct answer to each query next, for each sequence: (students, q)."""
    model.eval()
    result = np.zeros((len(sequences), len(queries)))
    if not queries:
        return result
    for start in range(0, len(sequences), batch_size):
        chunk = [most_recent(s, max_length) for s in sequences[start : start + batch_size]]
        skills, items, repeats = _queries_for(chunk, queries, device)
        probabilities = model.predict_next(collate(chunk).to(device), skills, items, repeats)
        result[start : start + len(chunk)] = probabilities.cpu().numpy()
    return result


def predict_next(
    model: nn.Module,
    sequence: KTSequence,
    queries: Sequence[Query],
    *,
    device: torch.device,
    max_length: int = 200,
) -> np.ndarray:
    """Probability of a correct answer to each (skill indices, item index) question next."""
    return predict_next_many(model, [sequence], queries, device=device, max_length=max_length)[0]


def mastery_many(
    model: nn.Module,
    sequences: Sequence[KTSequence],
    num_skills: int,
    *,
    device: torch.device,
    max_length: int = 200,
    batch_size: int = 64,
) -> np.ndarray:
    """Probability of answering a typical item of each skill correctly now, per student:
    (students, num_skills), indexed by skill index (padding and unknown columns are 0)."""
    result = np.zeros((len(sequences), num_skills))
    if num_skills <= FIRST_KNOWN or not sequences:
        return result
    queries = [((index,), UNKNOWN) for index in range(FIRST_KNOWN, num_skills)]
    result[:, FIRST_KNOWN:] = predict_next_many(
        model, sequences, queries, device=device, max_length=max_length, batch_size=batch_size
    )
    return result


def mastery(
    model: nn.Module, sequence: KTSequence, num_skills: int, *, device: torch.device, **kwargs
) -> np.ndarray:
    """:func:`mastery_many` for one student: (num_skills,)."""
    return mastery_many(model, [sequence], num_skills, device=device, **kwargs)[0]


@dataclass
class Influence:
    position: int  # index of the answer in the sequence given
    change: float  # mastery with the answer minus mastery without it


def _without(sequence: KTSequence, position: int) -> KTSequence:
    keep = [i for i in range(len(sequence)) if i != position]
    if not keep:
        return NEUTRAL
    return KTSequence(
        skills=[sequence.skills[i] for i in keep],
        correct=[sequence.correct[i] for i in keep],
        items=None if sequence.items is None else [sequence.items[i] for i in keep],
        repeats=None if sequence.repeats is None else [sequence.repeats[i] for i in keep],
    )


def explain_skill(
    model: nn.Module,
    sequence: KTSequence,
    skill_index: int,
    *,
    device: torch.device,
    top_k: int = 5,
    window: int = 50,
    max_length: int = 200,
) -> list[Influence]:
    """Leave-one-out: how much each of the last ``window`` answers moved the skill's estimate.

    The estimate is recomputed with each answer left out (all in one batch); the answers whose
    removal changes it most are returned, largest absolute change first.
    """
    if len(sequence) == 0:
        return []
    recent = most_recent(sequence, max_length)
    offset = len(sequence) - len(recent)
    query = [((skill_index,), UNKNOWN)]
    full = predict_next(model, recent, query, device=device, max_length=max_length)[0]
    candidates = list(range(max(0, len(recent) - window), len(recent)))
    without = predict_next_many(
        model,
        [_without(recent, p) for p in candidates],
        query,
        device=device,
        max_length=max_length,
    )[:, 0]
    influences = [
        Influence(position=offset + position, change=float(full - value))
        for position, value in zip(candidates, without, strict=True)
    ]
    influences.sort(key=lambda influence: abs(influence.change), reverse=True)
    return influences[:top_k]
