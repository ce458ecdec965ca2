"""Helpers for the ``@dataclass`` configurations of models and training loops."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")


def config_from_dict(config_class: type[ConfigT], values: dict[str, Any]) -> ConfigT:
    """Build a config, refusing unknown keys with a message that names them.

    A typo in an override (``hiden_size``) must fail loudly instead of silently training the
    default model.
    """
    known = {field.name for field in dataclasses.fields(config_class)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown option(s) for {config_class.__name__}: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    return config_class(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_replace(config: ConfigT, **changes: Any) -> ConfigT:
    return config_from_dict(type(config), {**config_to_dict(config), **changes})
