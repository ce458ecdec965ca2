"""Torch set-up for the processes that run models (workers and CLI commands, never web)."""

from __future__ import annotations

from edu_dl.conf import edu_settings


def torch_device():
    """The torch device from ``EDU_DL['DEVICE']`` (cpu, cuda or auto)."""
    import torch

    from edu_dl.ml.registry import resolve_device

    threads = edu_settings.TORCH_THREADS
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return resolve_device(edu_settings.DEVICE)
