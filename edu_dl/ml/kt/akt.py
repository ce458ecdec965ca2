"""An attention model with Rasch item difficulty, in the spirit of AKT (Ghosh et al., KDD 2020)
and simpleKT (Liu et al., ICLR 2023).

- Every answer embeds its skill and, through one learned scalar per item, how much harder or
  easier that item is than its skill's typical item (the Rasch idea: question = skill + mu_item
  times a skill-specific variation vector). Items never seen in training get mu = 0: a typical
  item of their skill.
- A causal self-attention encoder turns the answered questions (skill, item, right or wrong) into
  knowledge states.
- To predict answer t, the question t attends to the earlier questions (keys) and reads their
  knowledge states (values), with a learned per-head decay in the distance between the two, so
  recent answers weigh more (AKT's monotonic attention, in a simpler additive form).
- The retrieved knowledge and the question go through a small MLP to the logit.
- Rasch difficulties alone do not tell two items apart, so the student's last outcome on the very
  same item (if any) joins both the question and the answer embeddings: it is what lets the
  attention recognise a re-attempt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edu_dl.ml.kt.data import PAD, REPEAT_STATES, KTBatch
from edu_dl.ml.kt.dkt import KTOutput
from edu_dl.ml.registry import register_model

NEGATIVE = -1e9


@dataclass
class AKTConfig:
    num_skills: int  # vocabulary sizes, padding and unknown included
    num_items: int
    d_model: int = 64
    num_heads: int = 4
    num_encoder_layers: int = 1
    ff_size: int = 128
    dropout: float = 0.2
    output_size: int = 128
    # L2 penalty on the item difficulties (keeps rarely seen items near their skill's mean).
    rasch_l2: float = 1e-5
    # Initial decay of attention per step of distance (learned per head).
    initial_decay: float = 0.05
    use_items: bool = True
    # The student's last outcome on the same item joins the question's embedding.
    use_repeats: bool = True


def _mean_embedding(embedding: nn.Embedding, indices: torch.Tensor) -> torch.Tensor:
    """Mean of the embeddings of each answer's indices: (batch, seq, k) -> (batch, seq, dim)."""
    present = (indices != PAD).float().unsqueeze(-1)
    return (embedding(indices) * present).sum(2) / present.sum(2).clamp(min=1.0)


class DecayAttention(nn.Module):
    """Multi-head attention whose scores fall with the distance between query and key."""

    def __init__(self, d_model: int, num_heads: int, dropout: float, initial_decay: float):
        super().__init__()
        if d_model % num_heads:
            raise ValueError("d_model must be a multiple of num_heads")
        self.num_heads = num_heads
        self.head_size = d_model // num_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        # softplus(raw) = initial decay
        raw = math.log(math.expm1(initial_decay))
        self.raw_decay = nn.Parameter(torch.full((num_heads, 1, 1), raw))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape  # (batch, len, d_model) -> (batch, heads, len, head)
        return x.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

    def forward(
        self,
        queries: torch.Tensor,  # (batch, q_len, d_model)
        keys: torch.Tensor,  # (batch, k_len, d_model)
        values: torch.Tensor,  # (batch, k_len, d_model)
        allowed: torch.Tensor,  # (batch or 1, q_len, k_len) bool
        distance: torch.Tensor,  # (batch or 1, q_len, k_len) float, >= 0
    ) -> torch.Tensor:
        q, k, v = (
            self._split(self.query(queries)),
            self._split(self.key(keys)),
            self._split(self.value(values)),
        )
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_size)  # (batch, heads, q, k)
        scores = scores - F.softplus(self.raw_decay) * distance.unsqueeze(1)
        scores = scores.masked_fill(~allowed.unsqueeze(1), NEGATIVE)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        # A query with no allowed key reads nothing (not a uniform mix of padding).
        weights = weights * allowed.unsqueeze(1).any(-1, keepdim=True)
        mixed = (weights @ v).transpose(1, 2).reshape(queries.shape)
        return self.out(mixed)


class Block(nn.Module):
    """Attention then a feed-forward layer, each with a residual connection and layer norm."""

    def __init__(self, config: AKTConfig):
        super().__init__()
        self.attention = DecayAttention(
            config.d_model, config.num_heads, config.dropout, config.initial_decay
        )
        self.norm1 = nn.LayerNorm(config.d_model)
        self.feed_forward = nn.Sequential(
            nn.Linear(config.d_model, config.ff_size),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ff_size, config.d_model),
        )
        self.norm2 = nn.LayerNorm(config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, queries, keys, values, allowed, distance) -> torch.Tensor:
        attended = self.attention(queries, keys, values, allowed, distance)
        x = self.norm1(queries + self.dropout(attended))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


@register_model("akt", task="kt", config_class=AKTConfig)
class AKT(nn.Module):
    def __init__(self, config: AKTConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.skill = nn.Embedding(config.num_skills, d, padding_idx=PAD)
        self.skill_variation = nn.Embedding(config.num_skills, d, padding_idx=PAD)
        self.answer = nn.Embedding(2 * config.num_skills, d, padding_idx=PAD)
        self.answer_variation = nn.Embedding(2 * config.num_skills, d, padding_idx=PAD)
        self.difficulty = nn.Embedding(max(config.num_items, 2), 1, padding_idx=PAD)
        nn.init.zeros_(self.difficulty.weight)
        if config.use_repeats:
            self.repeat = nn.Embedding(REPEAT_STATES, d, padding_idx=PAD)
            nn.init.zeros_(self.repeat.weight)
        self.encoder = nn.ModuleList(Block(config) for _ in range(config.num_encoder_layers))
        self.retriever = Block(config)
        self.output = nn.Sequential(
            nn.Linear(2 * d, config.output_size),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.output_size, config.output_size // 2),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.output_size // 2, 1),
        )

    # --- embeddings ---------------------------------------------------------------------
    def _mu(self, items: torch.Tensor) -> torch.Tensor:
        if not self.config.use_items:
            return torch.zeros((*items.shape, 1), device=items.device)
        return self.difficulty(items)  # (batch, seq, 1)

    def embed_questions(
        self, skills: torch.Tensor, items: torch.Tensor, repeats: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(batch, seq, k), (batch, seq) -> (batch, seq, d): skill + mu_item * variation
        (+ the student's last outcome on the same item)."""
        embedded = _mean_embedding(self.skill, skills) + self._mu(items) * _mean_embedding(
            self.skill_variation, skills
        )
        if self.config.use_repeats and repeats is not None:
            embedded = embedded + self.repeat(repeats)
        return embedded

    def embed_answers(self, batch: KTBatch) -> torch.Tensor:
        correct = batch.correct.long().unsqueeze(-1)  # (batch, seq, 1)
        tokens = torch.where(batch.skills != PAD, 2 * batch.skills + correct, PAD)
        return _mean_embedding(self.answer, tokens) + self._mu(batch.items) * _mean_embedding(
            self.answer_variation, tokens
        )

    # --- the model ----------------------------------------------------------------------
    def encode(self, batch: KTBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Questions (keys) and knowledge states after each answer (values): (batch, seq, d)."""
        length = batch.correct.shape[1]
        device = batch.correct.device
        positions = torch.arange(length, device=device)
        real = positions.unsqueeze(0) < batch.lengths.to(device).unsqueeze(1)  # (batch, seq)
        causal = positions.unsqueeze(1) >= positions.unsqueeze(0)  # (seq, seq): key <= query
        allowed = causal.unsqueeze(0) & real.unsqueeze(1)
        distance = (positions.unsqueeze(1) - positions.unsqueeze(0)).clamp(min=0).float()
        questions = self.embed_questions(batch.skills, batch.items)
        knowledge = self.embed_answers(batch)
        if self.config.use_repeats:
            knowledge = knowledge + self.repeat(batch.repeats)
        for block in self.encoder:
            knowledge = block(knowledge, knowledge, knowledge, allowed, distance.unsqueeze(0))
        return questions, knowledge

    def retrieve(
        self,
        queries: torch.Tensor,  # (batch, q, d) questions asked
        query_positions: torch.Tensor,  # (batch, q) long: position each question would take
        keys: torch.Tensor,  # (batch, seq, d)
        values: torch.Tensor,  # (batch, seq, d)
        lengths: torch.Tensor,  # (batch,)
    ) -> torch.Tensor:
        """The logit of answering each query right, from the answers before its position."""
        positions = torch.arange(keys.shape[1], device=keys.device)
        before = positions.view(1, 1, -1) < query_positions.unsqueeze(-1)  # (batch, q, seq)
        real = positions.view(1, 1, -1) < lengths.to(keys.device).view(-1, 1, 1)
        distance = (query_positions.unsqueeze(-1) - positions.view(1, 1, -1)).clamp(min=0)
        retrieved = self.retriever(queries, keys, values, before & real, distance.float())
        return self.output(torch.cat([retrieved, queries], dim=-1)).squeeze(-1)  # (batch, q)

    def forward(self, batch: KTBatch) -> KTOutput:
        questions, knowledge = self.encode(batch)
        length = batch.correct.shape[1]
        positions = torch.arange(length, device=questions.device)
        query_positions = positions[1:].unsqueeze(0).expand(questions.shape[0], -1)
        queries = questions[:, 1:]
        if self.config.use_repeats:
            queries = queries + self.repeat(batch.repeats[:, 1:])
        logits = self.retrieve(
            queries, query_positions, questions, knowledge, batch.lengths
        )  # (batch, seq - 1)
        targets = batch.correct[:, 1:]
        mask = (query_positions < batch.lengths.to(logits.device).unsqueeze(1)) & batch.scored[
            :, 1:
        ]
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
        """(batch, q, k) skills, (batch, q) items and REPEAT_* states asked after each whole
        history -> (batch, q) probabilities."""
        questions, knowledge = self.encode(batch)
        queries = self.embed_questions(next_skills, next_items, next_repeats)
        query_positions = (
            batch.lengths.to(queries.device).view(-1, 1).expand(-1, next_items.shape[1])
        )
        logits = self.retrieve(queries, query_positions, questions, knowledge, batch.lengths)
        return torch.sigmoid(logits)
