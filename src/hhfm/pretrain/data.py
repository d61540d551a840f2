"""The jets a pretraining task reads: labelled, in-window jets of one split, held in memory as tensors.

    x (N, P, 17) standardised particle features, v (N, P, 4) four-vectors, mask (N, P) bool,
    rows (N,) rows in /jets, label_xbb, label_class, the JET_INFO columns and, for multilabel,
    the REGRESSION_TARGETS (P is trimmed to the longest jet of the split)
"""

from __future__ import annotations

import numpy as np
import torch

from hhfm.dataset import jet_rows, open_dataset, read_rows
from hhfm.errors import InputError
from hhfm.features import JET_CLASSES, REGRESSION_TARGETS

TASKS = ("xbb", "multiclass", "multilabel")
H_BB = JET_CLASSES.index("H_bb")
#: per-jet columns carried into jet_scores.parquet next to the tagger's score
JET_INFO = ["fj_doubleb", "fj_pt", "fj_sdmass"]


def _needed(task: str) -> list[str]:
    names = ["features", "vectors", "mask", "label_xbb", "label_class", "in_window", "split", *JET_INFO]
    return names + (REGRESSION_TARGETS if task == "multilabel" else [])


def _check_finite(path: str, data: dict[str, np.ndarray], rows: np.ndarray) -> None:
    for name in ("features", "vectors"):
        bad = ~np.isfinite(data[name]).all(axis=(1, 2))
        if bad.any():
            raise InputError(f"{path}: /jets/{name} has non-finite values in {int(bad.sum())} jets "
                             f"(first row {int(rows[np.argmax(bad)])})")


def load_split(path: str, split: str, task: str, limit: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    """Labelled, in-window jets of one split as tensors (module docstring); `limit` > 0 keeps a seeded subset."""
    label = "label_xbb" if task == "xbb" else "label_class"
    needed = _needed(task)
    with open_dataset(path) as f:
        jets = f["jets"]
        missing = [n for n in needed if n not in jets]
        if missing:
            raise InputError(f"{path}: missing dataset(s) {['/jets/' + n for n in missing]}")
        rows = jet_rows(f, split, require_label=label)
        if 0 < limit < len(rows):
            rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
        if not len(rows):
            raise InputError(f"{path}: no labelled in-window jets in split {split!r} for task {task!r} ({label} >= 0)")
        data = {name: read_rows(jets[name], rows) for name in needed if name not in ("in_window", "split")}
    _check_finite(path, data, rows)
    n_max = max(int(data["mask"].sum(1).max()), 1)  # drop particle slots no jet uses
    out = {"x": torch.from_numpy(data["features"][:, :n_max]).float(),
           "v": torch.from_numpy(data["vectors"][:, :n_max]).float(),
           "mask": torch.from_numpy(data["mask"][:, :n_max]).bool(),
           "rows": torch.from_numpy(rows.astype(np.int64))}
    for name in ["label_xbb", "label_class", *JET_INFO, *(REGRESSION_TARGETS if task == "multilabel" else [])]:
        out[name] = torch.from_numpy(np.asarray(data[name]))
    return out


def regression_transform(data: dict[str, torch.Tensor]) -> torch.Tensor:
    """Regression targets (n, 3): log1p(soft-drop mass), number of b hadrons, log1p(generator pT); NaN = unknown."""
    cols = []
    for name in REGRESSION_TARGETS:
        t = data[name].double()
        t = torch.where(torch.isfinite(t) & (t >= 0), t, torch.full_like(t, float("nan")))
        cols.append(t if name == "fj_nbHadrons" else torch.log1p(t))
    return torch.stack(cols, 1)


def signal_of(data: dict[str, torch.Tensor], task: str) -> torch.Tensor:
    """1 for H->bb jets (the Xbb metric's signal), 0 otherwise."""
    return (data["label_xbb"] == 1) if task == "xbb" else (data["label_class"] == H_BB)
