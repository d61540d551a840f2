"""Checkpoints of a training run: one fingerprint scheme, atomic writes, weights_only loading."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from hhfm.io import atomic_path

log = logging.getLogger("hhfm.training")


def fingerprint(params: Mapping[str, Any], inputs: Sequence[str | os.PathLike | None] = ()) -> str:
    """Identity of a run: its result-affecting params and its input files (path, size, mtime).

    A checkpoint is resumed only by a run with the same fingerprint; runtime-only options (chunk
    sizes, devices, threads: `x-runtime` in the schema) must not be part of `params`.
    """
    files = []
    for path in inputs:
        if path is None:
            files.append(None)
            continue
        st = os.stat(path)
        files.append([os.path.abspath(path), st.st_size, st.st_mtime_ns])
    text = json.dumps({"params": params, "inputs": files}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save(path: Path, blob: Mapping[str, Any]) -> None:
    """torch.save atomically (a kill never leaves a truncated checkpoint)."""
    with atomic_path(path) as tmp:
        torch.save(dict(blob), tmp)


def load_matching(path: Path, fp: str) -> dict | None:
    """The checkpoint at `path` if it exists and has fingerprint `fp`, else None (logged)."""
    if not path.exists():
        return None
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("fingerprint") != fp:
        log.warning("%s belongs to another run (params or inputs changed); starting afresh", path)
        return None
    return blob


def rng_state() -> dict:
    """Torch CPU and (when present) CUDA generator states."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if torch.cuda.is_available() and state.get("cuda"):
        torch.cuda.set_rng_state_all(state["cuda"])


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's weights (kept as the best weights)."""
    return {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}
