"""Device choice and mixed precision: CUDA with bf16 autocast when present, CPU otherwise."""

from __future__ import annotations

import contextlib

import torch

from hhfm.errors import ConfigError


def resolve_device(preference: str = "auto") -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cuda` without a GPU is a ConfigError."""
    if preference not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device is 'cuda' but no CUDA device is available")
    return torch.device("cuda" if preference != "cpu" and torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, a no-op context on CPU (CPU runs stay fp32 and deterministic)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_name(device: torch.device) -> str:
    """Human-readable device for run records: the GPU model, or the CPU thread count."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()} threads"
