"""What helped similar students: the probability that a resource helps this student.

Learnt from students' feedback on resources (a "helpful" / "not helpful" vote, or a completion
followed by a rise in mastery) together with the student's mastery of the resource's skills
just before. The recommender uses it as one signal among others.

The model, for one student and one resource teaching skills ``k`` with weights ``w_k`` (summing
to 1):

  student  u = sum_k w_k * MLP([skill embedding e_k, mastery m_k, gap to target g_k, known_k])
  resource r = sum_k w_k * e_k + residual(resource)
  logit      = bias + sum_k w_k * skill_bias_k + resource_bias + direct([m, g, known]) + u . r

A resource the model never saw in training has no residual and no bias (both are masked to zero
for the unknown index), so it is scored from its skills alone: a new resource on a skill is
treated like the typical resource on that skill for this student.

The data contracts are plain Python (keys are the caller's own ids: database ids in production,
strings in tests), so this module knows nothing of where the feedback came from.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edu_dl.ml.checkpoint import LoadedCheckpoint, checkpoint_bytes, load_checkpoint
from edu_dl.ml.config import config_from_dict
from edu_dl.ml.kt.data import FIRST_KNOWN, PAD, Vocabulary
from edu_dl.ml.metrics import accuracy, binary_log_loss, roc_auc
from edu_dl.ml.registry import build_model, register_model
from edu_dl.ml.train import EpochReport, seed_everything

MODEL_NAME = "resource-helpfulness"
# The baseline's per-resource mean is pulled towards the overall mean by this many examples'
# worth of weight, so a resource seen once does not get a certain 0 or 1.
BASELINE_PRIOR_WEIGHT = 1.0
SCORE_CHUNK = 4096


class HelpfulnessUnavailable(ValueError):
    """The file does not hold a resource-helpfulness model."""


@dataclass(frozen=True)
class FeedbackExample:
    """One student's feedback on one resource, with what the student knew just before.

    ``skills``: the resource's skills and how much it teaches each (positive weights).
    ``mastery``: the student's mastery (0..1) of skills; skills absent are unknown.
    ``label``: 1 the resource helped, 0 it did not; ``weight``: how much this example counts.
    """

    student_key: Hashable
    resource_key: Hashable
    skills: Mapping[Hashable, float]
    mastery: Mapping[Hashable, float]
    label: float
    weight: float = 1.0


@dataclass
class HelpfulnessConfig:
    num_skills: int  # vocabulary size, padding and unknown included
    num_resources: int  # vocabulary size, padding and unknown included
    dim: int = 16
    hidden_size: int = 32
    dropout: float = 0.1
    # The mastery a resource aims to bring a student to: the gap is max(0, target - mastery).
    target_mastery: float = 0.8
    # The mastery assumed for a skill the student has no estimate of (flagged as unknown too).
    unknown_mastery: float = 0.5
    init_std: float = 0.1


@dataclass
class HelpfulnessTrainConfig:
    epochs: int = 40
    batch_size: int = 256
    # Small data still takes several steps per epoch: the batch shrinks down to n / this.
    min_steps_per_epoch: int = 8
    learning_rate: float = 0.01
    weight_decay: float = 1e-4
    # Stop when validation log loss has not improved for this many epochs.
    patience: int = 5
    seed: int = 0
    validation_share: float = 0.2


@dataclass
class HelpfulnessBatch:
    skills: torch.Tensor  # (batch, max_skills) long skill indices, PAD-filled
    skill_weights: torch.Tensor  # (batch, max_skills) float, sums to 1 per row (0 at PAD)
    mastery: torch.Tensor  # (batch, max_skills) float 0..1 (unknown_mastery where not known)
    mastery_known: torch.Tensor  # (batch, max_skills) float 1 / 0
    resources: torch.Tensor  # (batch,) long resource indices (UNKNOWN for a new resource)
    labels: torch.Tensor | None = None  # (batch,) float 0 / 1
    weights: torch.Tensor | None = None  # (batch,) float example weights

    def __len__(self) -> int:
        return int(self.resources.shape[0])

    def to(self, device: torch.device | str) -> HelpfulnessBatch:
        return HelpfulnessBatch(
            **{
                name: None if value is None else value.to(device)
                for name, value in self.__dict__.items()
            }
        )

    def select(self, rows: torch.Tensor) -> HelpfulnessBatch:
        """The rows ``rows`` (a 1-d index tensor on the batch's device)."""
        return HelpfulnessBatch(
            **{
                name: None if value is None else value[rows]
                for name, value in self.__dict__.items()
            }
        )


@dataclass
class HelpfulnessOutput:
    logits: torch.Tensor  # (batch,)
    probabilities: torch.Tensor  # (batch,)
    loss: torch.Tensor | None  # scalar: weighted mean binary cross-entropy (None without labels)


@register_model(MODEL_NAME, task="recommender", config_class=HelpfulnessConfig)
class ResourceHelpfulness(nn.Module):
    def __init__(self, config: HelpfulnessConfig):
        super().__init__()
        self.config = config
        self.skill_embedding = nn.Embedding(config.num_skills, config.dim, padding_idx=PAD)
        self.skill_bias = nn.Embedding(config.num_skills, 1, padding_idx=PAD)
        self.resource_residual = nn.Embedding(config.num_resources, config.dim, padding_idx=PAD)
        self.resource_bias = nn.Embedding(config.num_resources, 1, padding_idx=PAD)
        # Per skill: its embedding and the student's (mastery, gap, known) -> a student vector.
        self.student = nn.Sequential(
            nn.Linear(config.dim + 3, config.hidden_size),
            nn.GELU(),
            nn.Linear(config.hidden_size, config.dim),
        )
        # The plain effect of low mastery, whatever the resource: easy to learn from little data.
        self.direct = nn.Linear(3, 1)
        self.dropout = nn.Dropout(config.dropout)
        nn.init.normal_(self.skill_embedding.weight, std=config.init_std)
        # A resource starts as the weighted mean of its skills; residuals and biases are learnt.
        for table in (self.skill_bias, self.resource_residual, self.resource_bias):
            nn.init.zeros_(table.weight)
        with torch.no_grad():
            self.skill_embedding.weight[PAD].zero_()

    def forward(self, batch: HelpfulnessBatch) -> HelpfulnessOutput:
        config = self.config
        # Unknown skills (and padding) contribute their mastery but no learnt embedding or bias.
        known_skill = (batch.skills >= FIRST_KNOWN).float()  # (batch, max_skills)
        weights = batch.skill_weights  # (batch, max_skills)
        embedded = self.skill_embedding(batch.skills) * known_skill.unsqueeze(-1)
        # embedded: (batch, max_skills, dim)
        known = batch.mastery_known
        mastery = known * batch.mastery + (1.0 - known) * config.unknown_mastery
        gap = known * (config.target_mastery - batch.mastery).clamp(min=0.0)
        per_skill = torch.stack([mastery, gap, known], dim=-1)  # (batch, max_skills, 3)

        student = self.student(torch.cat([embedded, per_skill], dim=-1))
        student = (weights.unsqueeze(-1) * student).sum(1)  # (batch, dim)
        known_resource = (batch.resources >= FIRST_KNOWN).float()  # (batch,)
        residual = self.resource_residual(batch.resources) * known_resource.unsqueeze(-1)
        resource = (weights.unsqueeze(-1) * embedded).sum(1) + residual  # (batch, dim)

        summary = (weights.unsqueeze(-1) * per_skill).sum(1)  # (batch, 3)
        skill_bias = (weights * self.skill_bias(batch.skills).squeeze(-1) * known_skill).sum(1)
        resource_bias = self.resource_bias(batch.resources).squeeze(-1) * known_resource
        logits = (
            self.direct(summary).squeeze(-1)
            + skill_bias
            + resource_bias
            + (self.dropout(student) * self.dropout(resource)).sum(-1)
        )  # (batch,)
        loss = None
        if batch.labels is not None:
            example_weights = (
                torch.ones_like(batch.labels) if batch.weights is None else batch.weights
            )
            losses = F.binary_cross_entropy_with_logits(logits, batch.labels, reduction="none")
            loss = (losses * example_weights).sum() / example_weights.sum().clamp(min=1e-8)
        return HelpfulnessOutput(logits, torch.sigmoid(logits), loss)


@dataclass
class TrainedHelpfulness:
    model: ResourceHelpfulness
    skill_vocabulary: Vocabulary
    resource_vocabulary: Vocabulary
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[EpochReport] = field(default_factory=list)
    # The held-out examples of the run that trained it (not saved in the checkpoint): the
    # evaluation gate scores another version on them.
    validation: list[FeedbackExample] = field(default_factory=list)
    # The settings that trained it (None for a model read from a file).
    train_config: HelpfulnessTrainConfig | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(
        self,
        rows: Sequence[tuple[Hashable, Mapping[Hashable, float], Mapping[Hashable, float]]],
        labels: Sequence[float] | None = None,
        weights: Sequence[float] | None = None,
    ) -> HelpfulnessBatch:
        """``(resource key, skills with weights, mastery)`` rows in this model's indices."""
        count = len(rows)
        width = max((len(skills) for _, skills, _ in rows), default=1) or 1
        skills = np.zeros((count, width), dtype=np.int64)
        skill_weights = np.zeros((count, width), dtype=np.float32)
        mastery = np.zeros((count, width), dtype=np.float32)
        mastery_known = np.zeros((count, width), dtype=np.float32)
        resources = np.zeros(count, dtype=np.int64)
        for row, (resource_key, resource_skills, student_mastery) in enumerate(rows):
            resources[row] = self.resource_vocabulary.index(resource_key)
            positive = [(key, float(w)) for key, w in resource_skills.items() if w > 0]
            total = sum(w for _, w in positive)
            for column, (skill_key, weight) in enumerate(positive):
                skills[row, column] = self.skill_vocabulary.index(skill_key)
                skill_weights[row, column] = weight / total
                value = student_mastery.get(skill_key)
                if value is not None:
                    mastery[row, column] = min(1.0, max(0.0, float(value)))
                    mastery_known[row, column] = 1.0
        return HelpfulnessBatch(
            skills=torch.from_numpy(skills),
            skill_weights=torch.from_numpy(skill_weights),
            mastery=torch.from_numpy(mastery),
            mastery_known=torch.from_numpy(mastery_known),
            resources=torch.from_numpy(resources),
            labels=None if labels is None else torch.tensor(labels, dtype=torch.float32),
            weights=None if weights is None else torch.tensor(weights, dtype=torch.float32),
        )

    def encode_examples(self, examples: Sequence[FeedbackExample]) -> HelpfulnessBatch:
        return self.encode(
            [(e.resource_key, e.skills, e.mastery) for e in examples],
            labels=[float(e.label) for e in examples],
            weights=[float(e.weight) for e in examples],
        )

    @torch.no_grad()
    def _probabilities(self, batch: HelpfulnessBatch) -> np.ndarray:
        self.model.eval()
        parts = []
        for start in range(0, len(batch), SCORE_CHUNK):
            rows = torch.arange(start, min(start + SCORE_CHUNK, len(batch)))
            part = batch.select(rows).to(self.device)
            part.labels = part.weights = None
            parts.append(self.model(part).probabilities.cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def predict(self, examples: Sequence[FeedbackExample]) -> np.ndarray:
        """Probability that each example's resource helps its student."""
        return self._probabilities(
            self.encode([(e.resource_key, e.skills, e.mastery) for e in examples])
        )

    def evaluate(self, examples: Sequence[FeedbackExample]) -> dict[str, float]:
        """AUC, log loss and accuracy of the predictions on ``examples`` (unweighted)."""
        labels = np.array([float(e.label) for e in examples])
        return _binary_metrics(labels, self.predict(examples))

    def score(
        self,
        mastery: Mapping[Hashable, float],
        resources: Mapping[Hashable, Mapping[Hashable, float]],
    ) -> dict[Hashable, float]:
        """For one student (their mastery by skill), the probability that each resource helps
        (resources given as their skills with weights; unseen resources are scored from their
        skills alone)."""
        keys = list(resources)
        probabilities = self._probabilities(
            self.encode([(key, resources[key], mastery) for key in keys])
        )
        return {key: float(p) for key, p in zip(keys, probabilities, strict=True)}

    def to_bytes(self) -> bytes:
        return checkpoint_bytes(
            self.model,
            metrics=self.metrics,
            extra={
                "skill_vocabulary": list(self.skill_vocabulary.keys),
                "resource_vocabulary": list(self.resource_vocabulary.keys),
            },
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, device: torch.device | str = "cpu") -> TrainedHelpfulness:
        return cls.from_checkpoint(load_checkpoint(data, device=device))

    @classmethod
    def from_checkpoint(cls, loaded: LoadedCheckpoint) -> TrainedHelpfulness:
        if not isinstance(loaded.model, ResourceHelpfulness):
            raise HelpfulnessUnavailable(
                f"the file holds a {loaded.name!r} model, not {MODEL_NAME!r}"
            )
        return cls(
            model=loaded.model.eval(),
            skill_vocabulary=Vocabulary(list(loaded.extra.get("skill_vocabulary", []))),
            resource_vocabulary=Vocabulary(list(loaded.extra.get("resource_vocabulary", []))),
            metrics=dict(loaded.metrics),
        )


def _binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    return {
        "auc": roc_auc(labels, probabilities),
        "log_loss": binary_log_loss(labels, probabilities),
        "accuracy": accuracy(labels, probabilities),
    }


def split_by_student(
    examples: Sequence[FeedbackExample], *, share: float, salt: str = ""
) -> tuple[list[FeedbackExample], list[FeedbackExample]]:
    """(train, validation): every example of a held-out student is held out.

    A student is held out when a hash of ``salt`` and their key, read as a number in [0, 1),
    falls below ``share``: not a draw, so the same students are held out run after run (the
    evaluation gate compares versions on the same people) and a new student never moves an
    old one to the other side. With so few students that one side would be empty, the
    student ranked first by the hash is held out, or the one ranked last trained on.
    """

    def position(student_key: Hashable) -> float:
        digest = hashlib.sha256(f"{salt}:{student_key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    students = sorted({e.student_key for e in examples}, key=position)
    held_out = {key for key in students if position(key) < share}
    if len(students) >= 2:
        if not held_out:
            held_out = {students[0]}
        elif len(held_out) == len(students):
            held_out.discard(students[-1])
    else:
        held_out = set()
    train = [e for e in examples if e.student_key not in held_out]
    validation = [e for e in examples if e.student_key in held_out]
    return train, validation


def resource_mean_baseline(
    train: Sequence[FeedbackExample],
) -> Callable[[Sequence[FeedbackExample]], np.ndarray]:
    """The baseline the model must beat: each resource's (weighted) mean label in training,
    shrunk towards the overall mean; the overall mean for a resource not seen in training."""
    total_weight = sum(e.weight for e in train)
    overall = sum(e.weight * e.label for e in train) / total_weight if total_weight else 0.5
    sums: dict[Hashable, list[float]] = {}
    for e in train:
        entry = sums.setdefault(e.resource_key, [0.0, 0.0])
        entry[0] += e.weight * e.label
        entry[1] += e.weight
    means = {
        key: (helped + BASELINE_PRIOR_WEIGHT * overall) / (weight + BASELINE_PRIOR_WEIGHT)
        for key, (helped, weight) in sums.items()
    }

    def predict(examples: Sequence[FeedbackExample]) -> np.ndarray:
        return np.array([means.get(e.resource_key, overall) for e in examples], dtype=np.float64)

    return predict


def _finite_or_none(value: float) -> float | None:
    """None for NaN (AUC with one class only): model files and JSON metrics carry no NaN."""
    return None if math.isnan(value) else float(value)


def train_helpfulness(
    examples: Sequence[FeedbackExample],
    *,
    device: torch.device,
    seed: int = 0,
    epochs: int = 40,
    validation_share: float = 0.2,
    validation_salt: str = "",
    model_config: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainedHelpfulness:
    """Split the examples by student, train with early stopping on validation log loss and
    return the best epoch's model, with its metrics and those of the per-resource mean baseline.

    ``train_config`` overrides any :class:`HelpfulnessTrainConfig` field (the keyword arguments
    are its most used ones); ``model_config`` any :class:`HelpfulnessConfig` field but the
    vocabulary sizes. Deterministic for a seed on the CPU.
    """
    config = config_from_dict(
        HelpfulnessTrainConfig,
        {
            "seed": seed,
            "epochs": epochs,
            "validation_share": validation_share,
            **(train_config or {}),
        },
    )
    train, validation = split_by_student(
        examples, share=config.validation_share, salt=validation_salt
    )
    if not train or not validation:
        students = len({e.student_key for e in examples})
        raise ValueError(
            f"not enough feedback: {len(examples)} examples from {students} students; "
            "training needs examples from at least two students (some are held out to validate)"
        )
    skill_vocabulary = Vocabulary.from_keys(key for e in train for key in e.skills)
    resource_vocabulary = Vocabulary.from_keys(e.resource_key for e in train)
    seed_everything(config.seed)  # the initial weights too, not only the batch order
    model = build_model(
        MODEL_NAME,
        {
            **(model_config or {}),
            "num_skills": skill_vocabulary.size,
            "num_resources": resource_vocabulary.size,
        },
    )
    model.to(device)
    trained = TrainedHelpfulness(model, skill_vocabulary, resource_vocabulary)
    train_batch = trained.encode_examples(train).to(device)
    validation_labels = np.array([float(e.label) for e in validation])
    validation_batch = trained.encode([(e.resource_key, e.skills, e.mastery) for e in validation])

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    batch_size = max(1, min(config.batch_size, math.ceil(len(train) / config.min_steps_per_epoch)))
    best_loss, best_epoch = math.inf, 0
    best_state = copy.deepcopy(model.state_dict())
    epochs_without_gain = 0
    stopped_early = False
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_batch), generator=generator).to(device)
        total_loss, total_batches = 0.0, 0
        for start in range(0, len(order), batch_size):
            output = model(train_batch.select(order[start : start + batch_size]))
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            optimizer.step()
            total_loss += float(output.loss.detach())
            total_batches += 1
        measured = _binary_metrics(validation_labels, trained._probabilities(validation_batch))
        report = EpochReport(
            epoch=epoch,
            epochs=config.epochs,
            train_loss=total_loss / max(total_batches, 1),
            val_auc=measured["auc"],
            val_accuracy=measured["accuracy"],
            val_loss=measured["log_loss"],
            seconds=time.perf_counter() - epoch_started,
        )
        trained.history.append(report)
        if report.val_loss < best_loss:
            best_loss, best_epoch = report.val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
            epochs_without_gain = 0
        else:
            epochs_without_gain += 1
        if on_epoch is not None:
            on_epoch(report)
        if epochs_without_gain >= config.patience:
            stopped_early = True
            break
    train_seconds = time.perf_counter() - started
    model.load_state_dict(best_state)
    model.eval()

    best = trained.evaluate(validation)
    baseline = _binary_metrics(validation_labels, resource_mean_baseline(train)(validation))
    trained.validation = list(validation)
    trained.train_config = config
    trained.metrics = {
        "validation_auc": _finite_or_none(best["auc"]),
        "validation_log_loss": _finite_or_none(best["log_loss"]),
        "validation_accuracy": _finite_or_none(best["accuracy"]),
        "baseline_validation_auc": _finite_or_none(baseline["auc"]),
        "baseline_validation_log_loss": _finite_or_none(baseline["log_loss"]),
        "baseline_validation_accuracy": _finite_or_none(baseline["accuracy"]),
        "baseline": "each resource's mean helpfulness in training",
        "n_train": len(train),
        "n_validation": len(validation),
        "train_students": len({e.student_key for e in train}),
        "validation_students": len({e.student_key for e in validation}),
        "skills": len(skill_vocabulary.keys),
        "resources": len(resource_vocabulary.keys),
        "best_epoch": best_epoch,
        "epochs_run": len(trained.history),
        "stopped_early": stopped_early,
        "train_seconds": round(train_seconds, 3),
    }
    return trained
