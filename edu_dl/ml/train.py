"""The training loop shared by the knowledge-tracing models: Adam, gradient clipping, early
stopping on validation AUC, the best epoch's weights kept, a callback after each epoch."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edu_dl.ml.kt.data import KTSequence, iterate_batches
from edu_dl.ml.metrics import accuracy, binary_log_loss, roc_auc


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    gradient_clip: float = 1.0
    # Stop when validation AUC has not improved for this many epochs.
    patience: int = 5
    seed: int = 0


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    train_loss: float
    val_auc: float
    val_accuracy: float
    val_loss: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "train_loss": round(self.train_loss, 5),
            "val_auc": round(self.val_auc, 5),
            "val_accuracy": round(self.val_accuracy, 5),
            "val_loss": round(self.val_loss, 5),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class FitResult:
    best_state_dict: dict[str, torch.Tensor]
    best_epoch: int
    best_val_auc: float
    history: list[EpochReport] = field(default_factory=list)
    stopped_early: bool = False


class TrainingStopped(Exception):
    """Raised by an ``on_epoch`` callback to end training (a cancel request)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def predict_kt(
    model: nn.Module, sequences: Sequence[KTSequence], *, device: torch.device, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predicted probabilities over every scored position of ``sequences``."""
    model.eval()
    labels: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    for batch in iterate_batches(sequences, batch_size, shuffle=False):
        output = model(batch.to(device))
        labels.append(output.targets[output.mask].cpu().numpy())
        probabilities.append(output.probabilities[output.mask].cpu().numpy())
    if not labels:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(labels), np.concatenate(probabilities)


def evaluate_kt(
    model: nn.Module, sequences: Sequence[KTSequence], *, device: torch.device, batch_size: int = 64
) -> dict[str, float]:
    labels, probabilities = predict_kt(model, sequences, device=device, batch_size=batch_size)
    return {
        "auc": roc_auc(labels, probabilities),
        "accuracy": accuracy(labels, probabilities),
        "log_loss": binary_log_loss(labels, probabilities),
        "positions": int(labels.size),
    }


def fit_kt(
    model: nn.Module,
    train: Sequence[KTSequence],
    validation: Sequence[KTSequence],
    config: TrainConfig,
    *,
    device: torch.device,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> FitResult:
    """Train ``model`` in place; return the best epoch's weights by validation AUC."""
    if not train:
        raise ValueError("no training sequences (each needs at least two answers)")
    if not validation:
        raise ValueError("no validation sequences (each needs at least two answers)")
    seed_everything(config.seed)
    generator = np.random.default_rng(config.seed)
    model.to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    best_auc = -1.0
    best_epoch = 0
    best_state = copy.deepcopy(model.state_dict())
    history: list[EpochReport] = []
    epochs_without_gain = 0
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        total_loss, total_batches = 0.0, 0
        for batch in iterate_batches(train, config.batch_size, shuffle=True, generator=generator):
            output = model(batch.to(device))
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            if config.gradient_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip)
            optimizer.step()
            total_loss += float(output.loss.detach())
            total_batches += 1
        metrics = evaluate_kt(model, validation, device=device, batch_size=config.batch_size)
        report = EpochReport(
            epoch=epoch,
            epochs=config.epochs,
            train_loss=total_loss / max(total_batches, 1),
            val_auc=metrics["auc"],
            val_accuracy=metrics["accuracy"],
            val_loss=metrics["log_loss"],
            seconds=time.perf_counter() - started,
        )
        history.append(report)
        improved = report.val_auc > best_auc
        if improved:
            best_auc, best_epoch = report.val_auc, epoch
            best_state = copy.deepcopy(model.state_dict())
            epochs_without_gain = 0
        else:
            epochs_without_gain += 1
        if on_epoch is not None:
            on_epoch(report)
        if epochs_without_gain >= config.patience:
            return FitResult(best_state, best_epoch, best_auc, history, stopped_early=True)
    return FitResult(best_state, best_epoch, best_auc, history)
