"""The data contract of knowledge tracing: answer sequences in, padded tensors out.

Indices: 0 is padding, 1 stands for a skill (or item) the model has not seen, known ones start
at 2. A :class:`Vocabulary` maps the caller's own keys (database ids, dataset ids) to indices and
travels in the checkpoint, so a model file alone knows which skills it speaks of.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

PAD = 0
UNKNOWN = 1
FIRST_KNOWN = 2

# Whether the student met the same item before, and how the last attempt went.
REPEAT_FIRST = 1  # first attempt at this item (or the item is not known)
REPEAT_LAST_WRONG = 2
REPEAT_LAST_RIGHT = 3
REPEAT_STATES = 4  # with padding


def repeat_states(items: Sequence, correct: Sequence[int]) -> list[int]:
    """For each answer, the student's last outcome on the very same item before it.

    Computed on the caller's own item ids (not vocabulary indices, where every unseen item is
    the same "unknown"), over the whole history.
    """
    last: dict = {}
    states = []
    for item, outcome in zip(items, correct, strict=True):
        if item is None or item not in last:
            states.append(REPEAT_FIRST)
        else:
            states.append(REPEAT_LAST_RIGHT if last[item] else REPEAT_LAST_WRONG)
        if item is not None:
            last[item] = outcome
    return states


@dataclass
class Vocabulary:
    keys: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index = {key: position + FIRST_KNOWN for position, key in enumerate(self.keys)}

    @classmethod
    def from_keys(cls, keys: Iterable) -> Vocabulary:
        return cls(sorted(set(keys)))

    def index(self, key) -> int:
        return self._index.get(key, UNKNOWN)

    @property
    def size(self) -> int:
        """Number of embedding rows needed, padding and unknown included."""
        return len(self.keys) + FIRST_KNOWN


@dataclass
class KTSequence:
    """One student's answers in time order, already mapped to vocabulary indices."""

    skills: list[tuple[int, ...]]  # per answer, the skill indices of the item (one or more)
    correct: list[int]  # per answer, 1 correct / 0 wrong
    items: list[int] | None = None  # per answer, the item index (models that use items)
    repeats: list[int] | None = None  # per answer, a REPEAT_* state (see repeat_states)
    # Positions that count in loss and metrics (a window's first answer has no history to use).
    scored_from: int = 1
    key: str = ""

    def __len__(self) -> int:
        return len(self.correct)


def split_into_windows(sequences: Iterable[KTSequence], max_length: int) -> list[KTSequence]:
    """Cut long sequences into consecutive windows of at most ``max_length`` answers.

    Each window starts fresh (no hidden state carried over), so its first answer is not scored.
    """
    windows: list[KTSequence] = []
    for sequence in sequences:
        for start in range(0, len(sequence), max_length):
            stop = start + max_length
            chunk = KTSequence(
                skills=sequence.skills[start:stop],
                correct=sequence.correct[start:stop],
                items=None if sequence.items is None else sequence.items[start:stop],
                repeats=None if sequence.repeats is None else sequence.repeats[start:stop],
                scored_from=1,
                key=sequence.key,
            )
            if len(chunk) >= 2:
                windows.append(chunk)
    return windows


@dataclass
class KTBatch:
    skills: torch.Tensor  # (batch, seq, max_skills_per_answer) long, PAD-filled
    items: torch.Tensor  # (batch, seq) long, PAD-filled
    repeats: torch.Tensor  # (batch, seq) long REPEAT_* states, PAD-filled
    correct: torch.Tensor  # (batch, seq) float
    lengths: torch.Tensor  # (batch,) long, on the CPU (pack_padded_sequence wants it there)
    scored: torch.Tensor  # (batch, seq) bool: positions that count in loss and metrics

    def to(self, device: torch.device) -> KTBatch:
        return KTBatch(
            skills=self.skills.to(device),
            items=self.items.to(device),
            repeats=self.repeats.to(device),
            correct=self.correct.to(device),
            lengths=self.lengths,
            scored=self.scored.to(device),
        )


def collate(sequences: Sequence[KTSequence]) -> KTBatch:
    batch_size = len(sequences)
    max_length = max(len(s) for s in sequences)
    max_skills = max((len(k) for s in sequences for k in s.skills), default=1) or 1
    skills = np.zeros((batch_size, max_length, max_skills), dtype=np.int64)
    items = np.zeros((batch_size, max_length), dtype=np.int64)
    repeats = np.zeros((batch_size, max_length), dtype=np.int64)
    correct = np.zeros((batch_size, max_length), dtype=np.float32)
    scored = np.zeros((batch_size, max_length), dtype=bool)
    lengths = np.zeros(batch_size, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        n = len(sequence)
        lengths[row] = n
        for position, skill_indices in enumerate(sequence.skills):
            indices = skill_indices or (UNKNOWN,)
            skills[row, position, : len(indices)] = indices
        if sequence.items is not None:
            items[row, :n] = sequence.items
        repeats[row, :n] = REPEAT_FIRST if sequence.repeats is None else sequence.repeats
        correct[row, :n] = sequence.correct
        scored[row, sequence.scored_from : n] = True
    return KTBatch(
        skills=torch.from_numpy(skills),
        items=torch.from_numpy(items),
        repeats=torch.from_numpy(repeats),
        correct=torch.from_numpy(correct),
        lengths=torch.from_numpy(lengths),
        scored=torch.from_numpy(scored),
    )


def iterate_batches(
    sequences: Sequence[KTSequence],
    batch_size: int,
    *,
    shuffle: bool,
    generator: np.random.Generator | None = None,
) -> Iterator[KTBatch]:
    """Batches of similar length (less padding); shuffled batch order when training."""
    order = np.argsort([len(s) for s in sequences], kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        rng = generator or np.random.default_rng()
        rng.shuffle(chunks)
    for chunk in chunks:
        yield collate([sequences[i] for i in chunk])
