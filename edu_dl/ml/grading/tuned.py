"""The sentence encoder's top layers fine-tuned on one item's teacher scores, blended with the
item's kernel grader (:mod:`edu_dl.ml.grading.scorer`).

Where a sentence encoder is installed (``EDU_DL["GRADING_ENCODER"]``) and an item has enough
teacher-scored answers, the grader trainer copies the encoder's top ``layers`` transformer
layers, puts a regression head on their mean-pooled output and trains both on the item's
answers (the 0-1 score, mean squared error, AdamW). The frozen lower layers run once per answer
and their output is kept, so an epoch costs only the top layers: minutes per item on a school's
CPU. The grade is the average of the tuned model's score and the kernel grader's (weight
``blend_weight``), cut into levels at boundaries that give held-out answers the teacher's
share of each level.

Held out: the item's random check where it holds ``min_validation`` answers of two levels
or more (a fair sample, see :func:`edu_dl.ml.grading.policy.in_audit_sample`; at most half of
the answers), otherwise a seeded ``validation_share`` of the answers. The tuned layers never
see them; they set the level boundaries, fit the confidence model and measure the validated QWK
and release curve that the release policy reads. The kernel grader's part on them is its
leave-one-out prediction.

On ASAP-SAS (benchmarks/bench_finetune_grader.py, both graders trained on 85 % of
``train.tsv``), all-MiniLM-L6-v2 with 2 tuned layers for 6 epochs scored 0.727 mean test QWK on
its own and 0.747 blended half and half, against 0.718 for the kernel grader alone.

The explanation stays the kernel grader's: its most similar scored answers, and its phrases
(their weight scaled by the kernel's share of the blend).

A retrain after new teacher scores keeps the item's earlier tuned layers (checkpoint key
``trained_keys`` names the answers they learnt from) while the teacher has scored fewer than
``retune_growth`` times as many answers again and none of those answers is held out now: the
kernel grader, the level boundaries, the confidence model and the release curve are refitted
on the current answers in seconds, and the minutes of tuning are spent only as the item grows.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from edu_dl.ml.grading.scorer import (
    ItemScorer,
    ScorerOutput,
    Validation,
    _confidence_features,
    _round_with,
    confidence_of,
    cross_fitted_levels,
    fit_confidence_model,
    release_curve,
    share_thresholds,
    two_halves,
)
from edu_dl.ml.metrics import quadratic_weighted_kappa

# Answers per forward pass when nothing is learnt (the frozen layers, grading): taken in order of
# length, a small batch pads each answer only to its neighbours' length. Grading ASAP-SAS
# question 1 in calls of 100 (1 torch thread, benchmarks/bench_grading.py), the model took 31 s
# per 1,000 answers with batches of 64 and 128, 22 s with batches of 16.
BATCH = 16


class TuningUnsupported(RuntimeError):
    """The encoder is not a stack of transformer layers this module can split and tune."""


@dataclass(frozen=True)
class TuneConfig:
    layers: int = 2  # top transformer layers tuned; 0 turns tuning off
    epochs: int = 6
    batch_size: int = 32
    lr_layers: float = 5e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    # Answers are cut at the length 99 % of the training answers fit in, and at most this.
    max_tokens: int = 128
    blend_weight: float = 0.5  # the tuned model's share of the grade
    validation_share: float = 0.15
    # Fewer teacher-scored answers than this: no tuning (the kernel grader alone). Below a few
    # hundred answers the held-out part is too small to set level boundaries on.
    min_responses: int = 400
    min_validation: int = 60
    seed: int = 0
    # A retrain keeps the item's earlier tuned layers (refitting only the blend, its level
    # boundaries and confidence on the held-out answers) until the teacher has scored this share
    # more answers than the layers learnt from: tuning takes minutes, the rest seconds. 0: tune
    # at every retrain.
    retune_growth: float = 0.5


# The settings that shape the tuned layers: layers tuned under other ones are not kept.
_LAYER_SETTINGS = ("layers", "epochs", "batch_size", "lr_layers", "lr_head", "weight_decay", "seed")


def transformer_of(encoder: Any) -> tuple[Any, nn.Module]:
    """The tokenizer and the transformer (embeddings + a stack of layers) inside ``encoder``."""
    parts = getattr(encoder, "transformer", None)
    if parts is None:
        raise TuningUnsupported(f"encoder {getattr(encoder, 'name', encoder)!r} has no layers")
    tokenizer, model = parts()
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if layers is None or not hasattr(model, "embeddings"):
        raise TuningUnsupported(
            f"encoder {encoder.name!r} is a {type(model).__name__}, not a BERT-like layer stack"
        )
    return tokenizer, model


def _additive(mask: torch.Tensor) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def _run_layers(layers, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    additive = _additive(mask)
    for layer in layers:
        out = layer(hidden, attention_mask=additive)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _embed(tokenizer, model, texts: list[str], max_tokens: int):
    """The embedding layer's output for ``texts`` and their mask, on the model's device."""
    encoded = tokenizer(
        [t or " " for t in texts], padding=True, truncation=True, max_length=max_tokens,
        return_tensors="pt",
    )  # fmt: skip
    device = _device(model)
    types = encoded.get("token_type_ids")
    hidden = model.embeddings(
        input_ids=encoded["input_ids"].to(device),
        token_type_ids=None if types is None else types.to(device),
    )
    return hidden, encoded["attention_mask"].to(device)


@torch.no_grad()
def check_split(tokenizer, model) -> None:
    """Raise TuningUnsupported unless running the embeddings and then each layer by hand gives
    the model's own output (a layer stack with relative positions, say, would not)."""
    texts = ["The cell wall keeps the cell's shape.", "no"]
    try:
        hidden, mask = _embed(tokenizer, model, texts, 32)
        ours = _run_layers(model.encoder.layer, hidden, mask)
        encoded = tokenizer(
            texts, padding=True, truncation=True, max_length=32, return_tensors="pt"
        )
        theirs = model(**{key: value.to(mask.device) for key, value in encoded.items()})
        gap = float((ours - theirs.last_hidden_state)[mask.bool()].abs().max())
    except Exception as error:  # another architecture: its layers take other arguments
        raise TuningUnsupported(
            f"the encoder's layers cannot be run one by one: {type(error).__name__}: {error}"
        ) from error
    if not gap < 1e-3:
        raise TuningUnsupported(f"the encoder's layers cannot be run one by one (gap {gap:.3g})")


@torch.no_grad()
def lower_states(
    tokenizer, model, texts: list[str], *, frozen: int, max_tokens: int, batch: int = BATCH
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output of the frozen lower layers for each text: (n, tokens, hidden), padded to the
    longest text, with its (n, tokens) mask, both on the CPU. Texts are run in order of length,
    so a batch pads only to its own longest."""
    lengths = [
        len(ids) for ids in tokenizer([t or " " for t in texts], truncation=True,
                                      max_length=max_tokens)["input_ids"]
    ]  # fmt: skip
    width = max(lengths, default=1)
    states = torch.zeros(len(texts), width, model.config.hidden_size)
    mask = torch.zeros(len(texts), width, dtype=torch.int64)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch):
        index = order[start : start + batch]
        hidden, part_mask = _embed(tokenizer, model, [texts[i] for i in index], max_tokens)
        hidden = _run_layers(model.encoder.layer[:frozen], hidden, part_mask)
        states[index, : hidden.shape[1]] = hidden.cpu()
        mask[index, : hidden.shape[1]] = part_mask.cpu()
    return states, mask


def encoder_lower_states(
    encoder: Any, texts: list[str], *, frozen: int, max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`lower_states` of ``texts`` through ``encoder``'s own store of them where it keeps
    one (the review simulation's encoder does: it grades the same waiting answers after every
    retrain, and the frozen layers give each the same output every time), else computed."""
    if getattr(encoder, "keep_lower_states", False):
        return encoder.lower_states(texts, frozen=frozen, max_tokens=max_tokens)
    tokenizer, model = transformer_of(encoder)
    return lower_states(tokenizer, model, texts, frozen=frozen, max_tokens=max_tokens)


class TunedTop(nn.Module):
    """Copies of the encoder's top layers and a head: mean-pooled states to a 0-1 score."""

    def __init__(self, layers: nn.ModuleList, hidden: int):
        super().__init__()
        self.layers = layers
        self.head = nn.Linear(hidden, 1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """0-1 scores of a batch of lower-layer states (moved to this module's device)."""
        width = max(1, int(mask.sum(1).max()))  # padding beyond every answer changes nothing
        device = self.head.weight.device
        states, mask = states[:, :width].to(device), mask[:, :width].to(device)
        hidden = _run_layers(self.layers, states, mask)
        weights = mask[..., None].float()
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return torch.sigmoid(self.head(pooled).squeeze(1))

    @torch.no_grad()
    def predict(self, states: torch.Tensor, mask: torch.Tensor, batch: int = BATCH) -> torch.Tensor:
        was_training = self.training
        self.eval()
        order = torch.argsort(mask.sum(1))
        out = torch.zeros(len(states))
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            out[index] = self(states[index], mask[index]).cpu()
        self.train(was_training)
        return out


class TunedBlend:
    """A fitted tuned model and how it blends with the kernel grader; rebuilt from its
    checkpoint state once the encoder it was tuned from is at hand."""

    def __init__(self, config: dict[str, Any], state: dict[str, torch.Tensor]):
        self.config = config
        self.state = state
        self._top: TunedTop | None = None

    @property
    def weight(self) -> float:
        return float(self.config["blend_weight"])

    def to_state(self) -> dict[str, Any]:
        return {"config": dict(self.config), "state": dict(self.state)}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> TunedBlend:
        return cls(dict(data["config"]), dict(data["state"]))

    def attach(self, encoder: Any) -> TunedTop:
        """The tuned layers and head, built on ``encoder``'s copy of them once."""
        if self._top is None:
            _, model = transformer_of(encoder)
            frozen = int(self.config["frozen"])
            layers = nn.ModuleList(copy.deepcopy(list(model.encoder.layer[frozen:])))
            top = TunedTop(layers, model.config.hidden_size).to(_device(model))
            top.load_state_dict(
                {k: v for k, v in self.state.items() if k.startswith(("layers.", "head."))}
            )
            self._top = top.eval()
        return self._top

    def raw(self, texts: list[str], encoder: Any) -> torch.Tensor:
        """The tuned model's score of each text, on the 0-1 scale."""
        top = self.attach(encoder)
        states, mask = encoder_lower_states(
            encoder,
            texts,
            frozen=int(self.config["frozen"]),
            max_tokens=int(self.config["max_tokens"]),
        )
        return top.predict(states, mask)

    def combine(
        self, scorer: ItemScorer, output: ScorerOutput, tuned_raw: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The blended raw score, its level and its confidence."""
        thresholds = self.state["thresholds"].cpu()
        raw = self.weight * tuned_raw + (1.0 - self.weight) * output.raw
        level = torch.bucketize(raw, thresholds)
        features = _confidence_features(
            raw,
            level,
            thresholds,
            output.neighbour_similarity,
            scorer.train_level.cpu()[output.neighbour_index],
            scorer.config.n_levels,
        )
        return raw, level, confidence_of(features, self.state["calibrator"].cpu())


def frozen_layers(model: nn.Module, layers: int) -> int:
    """How many of the encoder's layers stay frozen when its top ``layers`` are tuned."""
    total = len(model.encoder.layer)
    if not 0 < layers <= total:
        raise ValueError(f"cannot tune {layers} of the encoder's {total} layers")
    return total - layers


def token_budget(tokenizer, texts: list[str], max_tokens: int) -> int:
    """The length (in tokens) that 99 % of ``texts`` fit in, at most ``max_tokens``."""
    lengths = [len(ids) for ids in tokenizer([t or " " for t in texts])["input_ids"]]
    return int(min(max_tokens, max(8, math.ceil(np.percentile(lengths, 99)))))


def tune_top(
    model: nn.Module,
    states: torch.Tensor,
    mask: torch.Tensor,
    target: torch.Tensor,
    train: np.ndarray,
    config: TuneConfig,
    on_epoch: Callable[[int, TunedTop], None] | None = None,
) -> TunedTop:
    """Copies of ``model``'s top ``config.layers`` layers and a head, trained on the answers at
    positions ``train`` (lower-layer ``states``, ``mask``; ``target`` on the 0-1 scale);
    deterministic for a seed, and the global torch random state is left as it was.
    ``on_epoch(epoch, top)`` is called after each epoch. Returns the module in eval mode."""
    frozen = frozen_layers(model, config.layers)
    rng = np.random.default_rng(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        top = TunedTop(
            nn.ModuleList(copy.deepcopy(list(model.encoder.layer[frozen:]))),
            model.config.hidden_size,
        ).to(_device(model))
        top.requires_grad_(True)
        optimiser = torch.optim.AdamW(
            [
                {"params": top.layers.parameters(), "lr": config.lr_layers},
                {"params": top.head.parameters(), "lr": config.lr_head},
            ],
            weight_decay=config.weight_decay,
        )
        top.train()
        for epoch in range(1, config.epochs + 1):
            shuffled = torch.as_tensor(rng.permutation(train))
            for start in range(0, len(shuffled), config.batch_size):
                batch = shuffled[start : start + config.batch_size]
                predicted = top(states[batch], mask[batch])
                loss = nn.functional.mse_loss(predicted, target[batch].to(predicted.device))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            if on_epoch is not None:
                on_epoch(epoch, top)  # TunedTop.predict leaves the training mode as it was
    return top.eval().requires_grad_(False)


def _held_out(n: int, gold: np.ndarray, audit: np.ndarray | None, cfg: TuneConfig):
    """Positions held out of tuning, and whether they are the item's random check: used when
    it holds ``min_validation`` answers of two levels or more; where it holds more than half
    the answers (the teacher grades it first, so it does early on) a seeded half of them, still
    a fair sample, leaving the other half to tune on. Otherwise a seeded draw of
    ``validation_share`` of the answers, at least ``min_validation`` and at most half."""
    checked = np.flatnonzero(audit) if audit is not None else np.array([], dtype=np.int64)
    if len(checked) > n // 2:
        rng = np.random.default_rng(cfg.seed)
        checked = np.sort(rng.choice(checked, size=n // 2, replace=False))
    if len(checked) >= cfg.min_validation and len(np.unique(gold[checked])) > 1:
        return checked, True
    order = np.random.default_rng(cfg.seed).permutation(n)
    count = min(n // 2, max(cfg.min_validation, int(n * cfg.validation_share)))
    return np.sort(order[:count]), False


def retune_reason(
    previous: TunedBlend | None,
    *,
    encoder_name: str,
    config: TuneConfig,
    keys: list[Any],
    held: np.ndarray,
) -> str:
    """Why the layers must be tuned again rather than ``previous`` (the item's earlier tuned
    layers) kept; "" when they can be kept: tuned from the same encoder under the same settings,
    on none of the answers now held out (they must stay unseen), and the teacher has scored
    fewer than ``config.retune_growth`` times as many answers again since."""
    if previous is None:
        return "no earlier tuned layers"
    if previous.config.get("encoder") != encoder_name:
        return f"the earlier layers were tuned from {previous.config.get('encoder')!r}"
    changed = [k for k in _LAYER_SETTINGS if previous.config.get(k) != getattr(config, k)]
    if changed:
        return f"the tuning settings changed ({', '.join(changed)})"
    learnt = previous.config.get("trained_keys")
    if not isinstance(learnt, list | tuple):
        return "the earlier layers do not say which answers they learnt from"
    learnt = set(learnt)
    held_keys = {keys[i] for i in held}
    if learnt & held_keys:
        return "the earlier layers learnt from answers now held out"
    new = len(set(keys) - learnt - held_keys)
    if new >= config.retune_growth * len(learnt):
        return f"{new} answers to learn from since the layers learnt from {len(learnt)}"
    return ""


def fit_tuned_blend(
    scorer: ItemScorer,
    texts: list[str],
    gold: np.ndarray,
    loo: np.ndarray,
    encoder: Any,
    *,
    config: TuneConfig,
    keys: list[Any] | None = None,
    audit: np.ndarray | None = None,
    previous: TunedBlend | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[TunedBlend, dict[str, Any]]:
    """Tune the encoder's top layers on ``texts`` (levels ``gold``, identified by ``keys``,
    their positions by default) but the held-out ones, and blend them with ``scorer``, whose
    leave-one-out predictions are ``loo`` (those of the random check from settings chosen
    without it: ``FitReport.held_out_loo``, so that the blend is measured as new answers would
    find it). ``previous`` (the item's earlier tuned layers) is
    kept instead of tuning where :func:`retune_reason` allows. Returns the blend and its
    figures: ``validated_qwk`` and ``release_curve`` on the held-out answers, as the release
    policy reads them, and those of each part alone for comparison. ``progress`` is called after
    each tuning epoch with (epoch, epochs). The caller has checked the encoder with
    :func:`check_split` (the grader must know before fitting its kernel part)."""
    n_levels = scorer.config.n_levels
    keys = list(range(len(texts))) if keys is None else list(keys)
    if len(keys) != len(texts):
        raise ValueError("texts and keys differ in length")
    tokenizer, model = transformer_of(encoder)
    held, on_audit = _held_out(len(texts), gold, audit, config)
    train = np.setdiff1d(np.arange(len(texts)), held)
    reason = retune_reason(previous, encoder_name=encoder.name, config=config, keys=keys, held=held)

    started = time.perf_counter()
    if reason:
        frozen = frozen_layers(model, config.layers)
        max_tokens = token_budget(tokenizer, [texts[i] for i in train], config.max_tokens)
        states, mask = encoder_lower_states(encoder, texts, frozen=frozen, max_tokens=max_tokens)
        lower_seconds = time.perf_counter() - started

        started = time.perf_counter()
        top = tune_top(
            model,
            states,
            mask,
            torch.tensor(gold / (n_levels - 1), dtype=torch.float32),
            train,
            config,
            on_epoch=None if progress is None else lambda epoch, _: progress(epoch, config.epochs),
        )
        tune_seconds = time.perf_counter() - started
        trained_keys = [keys[i] for i in train]
        held_states, held_mask = states[held], mask[held]
    else:
        # Kept: only the held-out answers go through the layers, to refit the blend on them.
        frozen, max_tokens = int(previous.config["frozen"]), int(previous.config["max_tokens"])
        top = previous.attach(encoder)
        held_states, held_mask = encoder_lower_states(
            encoder, [texts[i] for i in held], frozen=frozen, max_tokens=max_tokens
        )
        lower_seconds, tune_seconds = time.perf_counter() - started, 0.0
        trained_keys = list(previous.config["trained_keys"])

    held_gold = gold[held]
    tuned_held = top.predict(held_states, held_mask).numpy().astype(np.float64)
    blend_held = config.blend_weight * tuned_held + (1 - config.blend_weight) * loo[held]
    thresholds = share_thresholds(blend_held, held_gold, n_levels)

    def cross_fitted(raw: np.ndarray) -> np.ndarray:
        return cross_fitted_levels(raw, held_gold, n_levels, 2, rule="shares")

    def held_out_qwk(raw: np.ndarray) -> float:
        return quadratic_weighted_kappa(held_gold, cross_fitted(raw), n_levels)

    # Confidence: the kernel grader's neighbours of each held-out answer among the others.
    sketch = scorer.train_sketch
    similarity = sketch[held] @ sketch.T
    similarity[torch.arange(len(held)), torch.as_tensor(held)] = -2.0
    k = min(scorer.config.neighbours, len(texts) - 1)
    top_similarity, top_index = similarity.topk(k, dim=1)
    level = _round_with(blend_held, thresholds)
    raw32 = torch.tensor(blend_held, dtype=torch.float32)
    threshold32 = torch.tensor(thresholds, dtype=torch.float32)
    features = _confidence_features(
        raw32,
        torch.as_tensor(level),
        threshold32,
        top_similarity,
        scorer.train_level[top_index],
        n_levels,
    )
    calibrator = fit_confidence_model(features, level, held_gold)
    # The release curve reads each held-out answer's confidence from a model fitted on the
    # other half of them: fitted on the answers it then ranks, it reads its own fit.
    confidence = np.zeros(len(held))
    first, second = two_halves(np.arange(len(held)))
    for half, other in ((first, second), (second, first)):
        weights = fit_confidence_model(features[other], level[other], held_gold[other])
        confidence[half] = confidence_of(features[half], weights).numpy()
    cross_levels = cross_fitted(blend_held)

    state = {key: value.detach().cpu().clone() for key, value in top.state_dict().items()}
    state["thresholds"] = threshold32
    state["calibrator"] = calibrator.detach().clone()
    blend = TunedBlend(
        {
            "encoder": encoder.name,
            "frozen": frozen,
            "max_tokens": max_tokens,
            **{k: v for k, v in asdict(config).items() if k != "max_tokens"},
            # The answers the layers learnt from: a later retrain keeps them only if none of
            # these is held out then.
            "trained_keys": trained_keys,
        },
        state,
    )
    blend._top = top
    figures = {
        "validated_qwk": quadratic_weighted_kappa(held_gold, cross_levels, n_levels),
        "release_curve": release_curve(confidence, held_gold, cross_levels, n_levels),
        "validation": Validation(
            positions=np.asarray(held),
            gold=np.asarray(held_gold),
            levels=np.asarray(cross_levels),
            confidence=np.asarray(confidence, dtype=np.float64),
        ),
        "validated_answers": len(held),
        "validated_on_audit": on_audit,
        "tuned": {
            "layers": config.layers,
            "epochs": config.epochs,
            "blend_weight": config.blend_weight,
            "tokens": max_tokens,
            "trained_on": len(trained_keys),
            # Whether the layers are the item's earlier ones, and if not, why they were tuned.
            "layers_kept": not reason,
            **({"tuned_because": reason} if reason else {}),
            "held_out_qwk_kernel": round(held_out_qwk(loo[held]), 4),
            "held_out_qwk_tuned": round(held_out_qwk(tuned_held), 4),
            "lower_layers_seconds": round(lower_seconds, 1),
            "tuning_seconds": round(tune_seconds, 1),
        },
    }
    return blend, figures
