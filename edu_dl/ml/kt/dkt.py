"""Deep Knowledge Tracing (Piech et al., 2015): an LSTM over (skill, correct) pairs that predicts,
at every step, the probability of answering each skill correctly next."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from edu_dl.ml.kt.data import PAD, KTBatch
from edu_dl.ml.registry import register_model


@dataclass
class DKTConfig:
    num_skills: int  # vocabulary size, padding and unknown included
    num_items: int = 0  # not used by DKT; kept so every KT model takes the same vocabulary
    embedding_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.2


@dataclass
class KTOutput:
    logits: torch.Tensor  # (batch, seq - 1): answer t + 1 predicted from answers 0..t
    probabilities: torch.Tensor  # (batch, seq - 1)
    targets: torch.Tensor  # (batch, seq - 1)
    mask: torch.Tensor  # (batch, seq - 1) bool: real, scored positions
    loss: torch.Tensor  # scalar: mean binary cross-entropy over the mask


def mean_over_skills(values: torch.Tensor, skills: torch.Tensor) -> torch.Tensor:
    """Average per-skill values over each answer's skills (several skills per item allowed).

    values: (batch, seq, num_skills); skills: (batch, seq, max_skills) -> (batch, seq)
    """
    gathered = values.gather(2, skills)  # (batch, seq, max_skills)
    present = (skills != PAD).float()
    return (gathered * present).sum(-1) / present.sum(-1).clamp(min=1.0)


@register_model("dkt", task="kt", config_class=DKTConfig)
class DKT(nn.Module):
    def __init__(self, config: DKTConfig):
        super().__init__()
        self.config = config
        # Row 2 * skill + correct embeds "answered this skill right / wrong"; padding rows stay 0.
        self.interaction_embedding = nn.Embedding(
            2 * config.num_skills, config.embedding_size, padding_idx=0
        )
        self.lstm = nn.LSTM(
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size, config.num_skills)

    def encode(self, batch: KTBatch) -> torch.Tensor:
        """Hidden state after each answer: (batch, seq, hidden)."""
        correct = batch.correct.long().unsqueeze(-1)  # (batch, seq, 1)
        tokens = torch.where(batch.skills != PAD, 2 * batch.skills + correct, 0)
        embedded = self.interaction_embedding(tokens).sum(2)  # (batch, seq, embedding)
        packed = pack_padded_sequence(
            embedded, batch.lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        hidden, _ = self.lstm(packed)
        hidden, _ = pad_packed_sequence(
            hidden, batch_first=True, total_length=batch.correct.shape[1]
        )
        return self.dropout(hidden)  # (batch, seq, hidden)

    def forward(self, batch: KTBatch) -> KTOutput:
        hidden = self.encode(batch)
        skill_logits = self.output(hidden[:, :-1])  # (batch, seq - 1, num_skills)
        logits = mean_over_skills(skill_logits, batch.skills[:, 1:])  # (batch, seq - 1)
        targets = batch.correct[:, 1:]
        positions = torch.arange(1, batch.correct.shape[1], device=logits.device)
        mask = (positions.unsqueeze(0) < batch.lengths.to(logits.device).unsqueeze(1)) & (
            batch.scored[:, 1:]
        )
        loss = F.binary_cross_entropy_with_logits(logits[mask], targets[mask])
        return KTOutput(logits, torch.sigmoid(logits), targets, mask, loss)

    def predict_next(
        self, batch: KTBatch, next_skills: torch.Tensor, next_items: torch.Tensor
    ) -> torch.Tensor:
        """Probability of answering a next question correctly after each row's whole history.

        next_skills: (batch, queries, max_skills) PAD-filled; next_items: (batch, queries)
        -> (batch, queries). DKT ignores the item.
        """
        hidden = self.encode(batch)
        last = (batch.lengths - 1).to(hidden.device)
        final = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        skill_logits = self.output(final).unsqueeze(1)  # (batch, 1, num_skills)
        skill_logits = skill_logits.expand(-1, next_skills.shape[1], -1)
        return torch.sigmoid(mean_over_skills(skill_logits, next_skills))
