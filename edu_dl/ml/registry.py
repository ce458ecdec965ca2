"""Models are looked up by name: ``build_model("dkt", {"hidden_size": 64})``.

A model module registers itself with :func:`register_model`; nothing branches on model names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edu_dl.ml.config import config_from_dict, config_to_dict


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    task: str  # "kt", "grader", "recommender"
    model_class: type[nn.Module]
    config_class: type


_REGISTRY: dict[str, RegisteredModel] = {}


def register_model(
    name: str, *, task: str, config_class: type
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def decorator(model_class: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered")
        _REGISTRY[name] = RegisteredModel(name, task, model_class, config_class)
        return model_class

    return decorator


def _ensure_builtin_models_loaded() -> None:
    # Importing the packages runs their @register_model decorators.
    import edu_dl.ml.grading.reference
    import edu_dl.ml.grading.scorer
    import edu_dl.ml.kt
    import edu_dl.ml.recommend.helpfulness  # noqa: F401


def registered(name: str) -> RegisteredModel:
    _ensure_builtin_models_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no model named {name!r}; registered: {', '.join(sorted(_REGISTRY))}"
        ) from None


def model_names(task: str | None = None) -> list[str]:
    _ensure_builtin_models_loaded()
    return sorted(n for n, entry in _REGISTRY.items() if task is None or entry.task == task)


def build_model(name: str, config: dict[str, Any] | Any) -> nn.Module:
    """A fresh model of the registered ``name`` from a config object or a plain dict."""
    entry = registered(name)
    if isinstance(config, dict):
        config = config_from_dict(entry.config_class, config)
    model = entry.model_class(config)
    model.registered_name = name  # type: ignore[assignment]
    return model


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    return config_to_dict(model.config)  # type: ignore[arg-type]


def resolve_device(preference: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (cuda where available). Asking for cuda without one fails."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    if preference not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {preference!r}: use cpu, cuda or auto")
    return torch.device(preference)
