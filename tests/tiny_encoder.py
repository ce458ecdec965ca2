"""A BERT-shaped sentence encoder small enough for tests: a whitespace tokenizer, word and
position embeddings, a stack of self-attention layers that take BERT's additive mask, and the
``encode`` / ``transformer`` interface of ``edu_dl.ml.grading.encoder.SentenceEncoder``."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

HIDDEN = 16
VOCAB = 101


def word_id(word: str) -> int:
    return 2 + sum(ord(c) * (i + 1) for i, c in enumerate(word)) % (VOCAB - 2)


class Tokenizer:
    """Whitespace words to ids, with a leading [CLS] (id 1); pads with 0."""

    def __call__(self, texts, padding=False, truncation=False, max_length=None,
                 return_tensors=None):  # fmt: skip
        ids = [[1] + [word_id(w) for w in t.lower().split()] for t in texts]
        if truncation and max_length:
            ids = [row[:max_length] for row in ids]
        if return_tensors is None:
            return {"input_ids": ids}
        width = max(len(row) for row in ids)
        input_ids = torch.zeros(len(ids), width, dtype=torch.int64)
        mask = torch.zeros(len(ids), width, dtype=torch.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": torch.zeros_like(input_ids),
        }


class Embeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.words = nn.Embedding(VOCAB, HIDDEN)
        self.positions = nn.Embedding(256, HIDDEN)

    def forward(self, input_ids, token_type_ids=None):
        positions = torch.arange(input_ids.shape[1])[None, :]
        return self.words(input_ids) + self.positions(positions)


class Layer(nn.Module):
    """Self-attention with an additive (batch, 1, 1, tokens) mask, then a feed-forward."""

    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.feed = nn.Linear(HIDDEN, HIDDEN)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden, attention_mask=None):
        scores = self.query(hidden) @ self.key(hidden).transpose(1, 2) / HIDDEN**0.5
        if attention_mask is not None:
            scores = scores + attention_mask[:, 0]
        hidden = hidden + torch.softmax(scores, dim=-1) @ self.value(hidden)
        return (hidden + self.dropout(torch.tanh(self.feed(hidden))),)


class Bert(nn.Module):
    def __init__(self, layers: int = 3):
        super().__init__()
        self.config = SimpleNamespace(hidden_size=HIDDEN)
        self.embeddings = Embeddings()
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(Layer() for _ in range(layers))

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        hidden = self.embeddings(input_ids)
        additive = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.encoder.layer:
            hidden = layer(hidden, attention_mask=additive)[0]
        return SimpleNamespace(last_hidden_state=hidden)


class TunableEncoder:
    name = "tiny-bert"
    dim = HIDDEN

    def __init__(self):
        torch.manual_seed(3)
        self.tokenizer, self.model = Tokenizer(), Bert().eval()

    def transformer(self):
        return self.tokenizer, self.model

    @torch.no_grad()
    def encode(self, texts):
        encoded = self.tokenizer(texts, padding=True, return_tensors="pt")
        hidden = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"][..., None].float()
        return nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
