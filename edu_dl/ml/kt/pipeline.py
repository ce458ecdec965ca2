"""One path from raw answer sequences to a trained, evaluated, saved KT model.

The production trainer (sequences from the database, keyed by primary keys) and the evaluation
command (sequences from dataset files, keyed by the files' ids) both call :func:`train_kt`, so
the numbers the evaluation reports are those of the code that trains a course's model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edu_dl.ml.checkpoint import LoadedCheckpoint, checkpoint_bytes
from edu_dl.ml.config import config_from_dict
from edu_dl.ml.kt.data import KTSequence, Vocabulary, repeat_states, split_into_windows
from edu_dl.ml.registry import build_model, registered
from edu_dl.ml.train import (
    EpochReport,
    FitResult,
    TrainConfig,
    evaluate_kt,
    fit_kt,
    seed_everything,
)

DEFAULT_MAX_LENGTH = 200
# "auto" picks the model by what the data carries: the attention model where answers name their
# items (its edge comes from item difficulty and recognising re-attempts; ASSISTments 2009 with
# problem ids: 0.818 against 0.812 for dkt-rasch), the recurrent one where they name skills only
# (ASSISTments 2015, fold 1: dkt-rasch 0.723, akt lower).
AUTO = "auto"
AUTO_WITH_ITEMS = "akt"
AUTO_SKILLS_ONLY = "dkt-rasch"


def choose_model(name: str, train: Sequence[RawSequence]) -> str:
    """The registered model to train for ``name`` (which may be ``auto``)."""
    if name != AUTO:
        return name
    has_items = any(r.items is not None and any(i is not None for i in r.items) for r in train)
    return AUTO_WITH_ITEMS if has_items else AUTO_SKILLS_ONLY


@dataclass
class RawSequence:
    """One student's answers in time order, with the caller's own ids."""

    key: str
    skills: list[tuple[Hashable, ...]]
    correct: list[int]
    items: list[Hashable | None] | None = None

    def __len__(self) -> int:
        return len(self.correct)


@dataclass
class TrainedKT:
    model: nn.Module
    skill_vocabulary: Vocabulary
    item_vocabulary: Vocabulary
    max_length: int
    fit: FitResult | None = None
    train_seconds: float = 0.0
    history: list[EpochReport] = field(default_factory=list)

    def encode(self, raw: RawSequence) -> KTSequence:
        """One history in this model's indices (unknown ids -> the unknown index)."""
        return KTSequence(
            skills=[tuple(self.skill_vocabulary.index(s) for s in sk) for sk in raw.skills],
            correct=list(raw.correct),
            items=None if raw.items is None else [self.item_vocabulary.index(i) for i in raw.items],
            repeats=None if raw.items is None else repeat_states(raw.items, raw.correct),
            key=raw.key,
        )

    def to_sequences(self, raw: Sequence[RawSequence]) -> list[KTSequence]:
        """Histories in this model's indices, cut into the training windows."""
        return split_into_windows([self.encode(r) for r in raw], self.max_length)

    def evaluate(self, raw: Sequence[RawSequence], *, device: torch.device) -> dict[str, float]:
        return evaluate_kt(self.model, self.to_sequences(raw), device=device)

    def checkpoint(self, metrics: dict[str, Any]) -> bytes:
        return checkpoint_bytes(
            self.model,
            metrics=metrics,
            extra={
                "skill_vocabulary": list(self.skill_vocabulary.keys),
                "item_vocabulary": list(self.item_vocabulary.keys),
                "max_length": self.max_length,
            },
        )

    @classmethod
    def from_checkpoint(cls, loaded: LoadedCheckpoint) -> TrainedKT:
        return cls(
            model=loaded.model,
            skill_vocabulary=Vocabulary(list(loaded.extra.get("skill_vocabulary", []))),
            item_vocabulary=Vocabulary(list(loaded.extra.get("item_vocabulary", []))),
            max_length=int(loaded.extra.get("max_length", DEFAULT_MAX_LENGTH)),
        )


def train_kt(
    train: Sequence[RawSequence],
    validation: Sequence[RawSequence],
    *,
    model_name: str,
    model_config: dict[str, Any] | None = None,
    train_config: TrainConfig | dict[str, Any] | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    device: torch.device,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainedKT:
    """Build vocabularies from the training answers, train with early stopping on validation
    AUC, and return the best epoch's model (``model_name`` may be ``auto``)."""
    model_name = choose_model(model_name, train)
    entry = registered(model_name)
    if entry.task != "kt":
        raise ValueError(f"{model_name!r} is not a knowledge-tracing model")
    if isinstance(train_config, dict) or train_config is None:
        train_config = config_from_dict(TrainConfig, train_config or {})
    skill_vocabulary = Vocabulary.from_keys(s for r in train for sk in r.skills for s in sk)
    item_vocabulary = Vocabulary.from_keys(
        i for r in train if r.items is not None for i in r.items if i is not None
    )
    seed_everything(train_config.seed)  # the initial weights too, not only the batch order
    model = build_model(
        model_name,
        {
            **(model_config or {}),
            "num_skills": skill_vocabulary.size,
            "num_items": item_vocabulary.size,
        },
    )
    trained = TrainedKT(model, skill_vocabulary, item_vocabulary, max_length)
    train_sequences = trained.to_sequences(train)
    validation_sequences = trained.to_sequences(validation)
    if not train_sequences or not validation_sequences:
        raise ValueError(
            f"not enough answer history: {len(train_sequences)} training and "
            f"{len(validation_sequences)} validation sequences of two or more answers "
            "(need at least one of each)"
        )
    started = time.perf_counter()
    result = fit_kt(
        model, train_sequences, validation_sequences, train_config, device=device, on_epoch=on_epoch
    )
    trained.train_seconds = time.perf_counter() - started
    model.load_state_dict(result.best_state_dict)
    model.eval()
    trained.fit = result
    trained.history = result.history
    return trained
