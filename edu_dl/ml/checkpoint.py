"""Checkpoints that rebuild a model from the file alone: ``{schema, name, config, state_dict,
metrics, extra}``, serialised with ``torch.save`` and read back with ``weights_only=True`` so a
file can never run code when it is loaded."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edu_dl.ml.registry import build_model, model_config_dict

SCHEMA = "edu_dl.checkpoint/1"


class CheckpointError(ValueError):
    """The bytes are not a checkpoint this code can read."""


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    name: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    extra: dict[str, Any]


def checkpoint_bytes(
    model: nn.Module,
    *,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> bytes:
    """Serialise a registered model (or ``state_dict`` for it, e.g. the best epoch's)."""
    state = state_dict if state_dict is not None else model.state_dict()
    payload = {
        "schema": SCHEMA,
        "name": model.registered_name,
        "config": model_config_dict(model),
        "state_dict": {key: value.detach().cpu() for key, value in state.items()},
        "metrics": metrics or {},
        "extra": extra or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(data: bytes, *, device: torch.device | str = "cpu") -> LoadedCheckpoint:
    """Rebuild the model from checkpoint bytes; the caller checks the checksum first."""
    try:
        payload = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"not a readable checkpoint: {error}") from error
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA:
        raise CheckpointError(f"unknown checkpoint schema: {payload.get('schema')!r}")
    model = build_model(payload["name"], payload["config"])
    model.load_state_dict(payload["state_dict"])
    model.to(device)
    model.eval()
    return LoadedCheckpoint(
        model=model,
        name=payload["name"],
        config=payload["config"],
        metrics=payload["metrics"],
        extra=payload["extra"],
    )
