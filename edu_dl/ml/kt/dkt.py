"""Deep Knowledge Tracing (Piech et al., 2015): an LSTM over (skill, correct) pairs that predicts,
at every step, the probability of answering each skill correctly next."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from edu_dl.ml.kt.data import PAD, REPEAT_STATES, KTBatch
from edu_dl.ml.registry import register_model


@dataclass
class DKTConfig:
    num_skills: int  # vocabulary size, padding and unknown included
    num_items: int = 0  # not used by DKT; kept so every KT model takes the same vocabulary
    embedding_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.2
    # Rasch-style item difficulty: one learned scalar per item shifts the input embedding of
    # the answer and the logit of the prediction (0 = a typical item of its skill).
    use_items: bool = False
    rasch_l2: float = 1e-5
    # Whether the student met the same item before, and how it went, shifts the prediction.
    use_repeats: bool = False


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
        if config.use_repeats:
            self.repeat_bias = nn.Embedding(REPEAT_STATES, 1, padding_idx=0)
            nn.init.zeros_(self.repeat_bias.weight)
        if config.use_items:
            self.difficulty = nn.Embedding(max(config.num_items, 2), 1, padding_idx=0)
            nn.init.zeros_(self.difficulty.weight)
            self.answer_variation = nn.Embedding(
                2 * config.num_skills, config.embedding_size, padding_idx=0
            )

    def _difficulty(self, items: torch.Tensor) -> torch.Tensor:
        """(batch, n) item indices -> (batch, n) difficulties (zeros without items)."""
        if not self.config.use_items:
            return torch.zeros(items.shape, device=items.device)
        return self.difficulty(items).squeeze(-1)

    def encode(self, batch: KTBatch) -> torch.Tensor:
        """Hidden state after each answer: (batch, seq, hidden)."""
        correct = batch.correct.long().unsqueeze(-1)  # (batch, seq, 1)
        tokens = torch.where(batch.skills != PAD, 2 * batch.skills + correct, 0)
        embedded = self.interaction_embedding(tokens).sum(2)  # (batch, seq, embedding)
        if self.config.use_items:
            variation = self.answer_variation(tokens).sum(2)
            embedded = embedded + self._difficulty(batch.items).unsqueeze(-1) * variation
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
        logits = logits - self._difficulty(batch.items[:, 1:])
        if self.config.use_repeats:
            logits = logits + self.repeat_bias(batch.repeats[:, 1:]).squeeze(-1)
        targets = batch.correct[:, 1:]
        positions = torch.arange(1, batch.correct.shape[1], device=logits.device)
        mask = (positions.unsqueeze(0) < batch.lengths.to(logits.device).unsqueeze(1)) & (
            batch.scored[:, 1:]
        )
        loss = F.binary_cross_entropy_with_logits(logits[mask], targets[mask])
        if self.config.use_items and self.config.rasch_l2:
            loss = loss + self.config.rasch_l2 * self.difficulty.weight.pow(2).sum()
        return KTOutput(logits, torch.sigmoid(logits), targets, mask, loss)

    def predict_next(
        self,
        batch: KTBatch,
        next_skills: torch.Tensor,
        next_items: torch.Tensor,
        next_repeats: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Probability of answering a next question correctly after each row's whole history.

        next_skills: (batch, queries, max_skills) PAD-filled; next_items: (batch, queries)
        next_repeats: (batch, queries) REPEAT_* states (default: first attempt)
        -> (batch, queries). Without ``use_items`` the item is ignored.
        """
        hidden = self.encode(batch)
        last = (batch.lengths - 1).to(hidden.device)
        final = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        skill_logits = self.output(final).unsqueeze(1)  # (batch, 1, num_skills)
        skill_logits = skill_logits.expand(-1, next_skills.shape[1], -1)
        logits = mean_over_skills(skill_logits, next_skills) - self._difficulty(next_items)
        if self.config.use_repeats and next_repeats is not None:
            logits = logits + self.repeat_bias(next_repeats).squeeze(-1)
        return torch.sigmoid(logits)


@dataclass
class DKTRaschConfig(DKTConfig):
    """DKT that also knows each item's difficulty (a Rasch scalar per item) and the student's
    last outcome on the same item; wider than the classic DKT defaults, which it can afford
    because the item terms regularise it."""

    embedding_size: int = 128
    hidden_size: int = 256
    dropout: float = 0.3
    use_items: bool = True
    use_repeats: bool = True


register_model("dkt-rasch", task="kt", config_class=DKTRaschConfig)(DKT)
