"""Using a trained knowledge-tracing model for one student: mastery of every skill, the chance
of answering given questions, and which past answers moved a skill's estimate most.

Every KT model implements ``predict_next(batch, next_skills, next_items)``; these helpers work
for all of them. Histories longer than the model's window are cut to their most recent part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edu_dl.ml.kt.data import FIRST_KNOWN, PAD, UNKNOWN, KTSequence, collate


def _recent(sequence: KTSequence, max_length: int) -> KTSequence:
    if len(sequence) <= max_length:
        return sequence
    start = len(sequence) - max_length
    return KTSequence(
        skills=sequence.skills[start:],
        correct=sequence.correct[start:],
        items=None if sequence.items is None else sequence.items[start:],
        key=sequence.key,
    )


def _query_tensors(
    queries: Sequence[tuple[tuple[int, ...], int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((len(skills) for skills, _ in queries), default=1) or 1
    skills = torch.full((1, len(queries), width), PAD, dtype=torch.long)
    items = torch.full((1, len(queries)), UNKNOWN, dtype=torch.long)
    for column, (query_skills, item) in enumerate(queries):
        indices = query_skills or (UNKNOWN,)
        skills[0, column, : len(indices)] = torch.tensor(indices)
        items[0, column] = item
    return skills.to(device), items.to(device)


@torch.no_grad()
def predict_next(
    model: nn.Module,
    sequence: KTSequence,
    queries: Sequence[tuple[tuple[int, ...], int]],
    *,
    device: torch.device,
    max_length: int = 200,
) -> np.ndarray:
    """Probability of a correct answer to each (skill indices, item index) question next."""
    model.eval()
    if not queries:
        return np.zeros(0)
    if len(sequence) == 0:
        # No history: the model's prior for each question, from a history of one neutral step.
        sequence = KTSequence(skills=[(UNKNOWN,)], correct=[0], items=[UNKNOWN])
    recent = _recent(sequence, max_length)
    batch = collate([recent]).to(device)
    skills, items = _query_tensors(queries, device)
    return model.predict_next(batch, skills, items)[0].cpu().numpy()


def mastery(
    model: nn.Module, sequence: KTSequence, num_skills: int, *, device: torch.device, **kwargs
) -> np.ndarray:
    """Probability of answering a typical item of each skill correctly now: (num_skills,),
    indexed by skill index (entries for padding and unknown are 0)."""
    queries = [((index,), UNKNOWN) for index in range(FIRST_KNOWN, num_skills)]
    result = np.zeros(num_skills)
    result[FIRST_KNOWN:] = predict_next(model, sequence, queries, device=device, **kwargs)
    return result


@dataclass
class Influence:
    position: int  # index of the answer in the sequence given
    change: float  # mastery with the answer minus mastery without it


@torch.no_grad()
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
    model.eval()
    recent = _recent(sequence, max_length)
    offset = len(sequence) - len(recent)
    if len(recent) == 0:
        return []
    query = [((skill_index,), UNKNOWN)]
    full = predict_next(model, recent, query, device=device, max_length=max_length)[0]
    candidates = list(range(max(0, len(recent) - window), len(recent)))
    variants = []
    for position in candidates:
        keep = [i for i in range(len(recent)) if i != position]
        if not keep:
            keep_sequence = KTSequence(skills=[(UNKNOWN,)], correct=[0], items=[UNKNOWN])
        else:
            keep_sequence = KTSequence(
                skills=[recent.skills[i] for i in keep],
                correct=[recent.correct[i] for i in keep],
                items=None if recent.items is None else [recent.items[i] for i in keep],
            )
        variants.append(keep_sequence)
    batch = collate(variants).to(device)
    skills, items = _query_tensors(query, device)
    skills = skills.expand(len(variants), -1, -1)
    items = items.expand(len(variants), -1)
    without = model.predict_next(batch, skills, items)[:, 0].cpu().numpy()
    influences = [
        Influence(position=offset + position, change=float(full - value))
        for position, value in zip(candidates, without, strict=True)
    ]
    influences.sort(key=lambda influence: abs(influence.change), reverse=True)
    return influences[:top_k]
