"""The jets a pretraining task reads: labelled, in-window jets of one split, streamed from dataset.h5.

A `JetSplit` keeps only small per-jet columns in memory (labels, JET_INFO, regression targets: tens
of bytes per jet) and streams the big arrays window by window (hhfm.training.stream). Its batches:

    x (B, L, 17) standardised particle features, v (B, L, 4) four-vectors, mask (B, L) bool,
    pos (B,) positions in the split, and the small columns (L: the batch's longest jet)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from hhfm.dataset import jet_rows, multiplicities, open_dataset, read_rows
from hhfm.errors import InputError
from hhfm.features import JET_CLASSES, JETCLASS_CLASSES, REGRESSION_TARGETS
from hhfm.training.stream import Batch, StreamSettings, WindowDataset, epoch_windows, stream

#: the label column (in /jets) of each training objective (hhfm.backbones.OBJECTIVES)
LABEL = {"xbb": "label_xbb", "multiclass": "label_class", "multilabel": "label_class", "jetclass": "label_jetclass"}
H_BB = JET_CLASSES.index("H_bb")
JETCLASS_HBB = JETCLASS_CLASSES.index("Hbb")
#: per-jet columns carried into jet_scores.parquet next to the tagger's score
JET_INFO = ["fj_doubleb", "fj_pt", "fj_sdmass"]
#: per-particle arrays, streamed: (name in /jets, name in a batch)
BIG = {"features": "x", "vectors": "v", "mask": "mask"}


def _small(task: str) -> list[str]:
    extra = REGRESSION_TARGETS if task == "multilabel" else ["label_jetclass"] if task == "jetclass" else []
    return ["label_xbb", "label_class", *JET_INFO, *extra]


@dataclass
class JetSplit:
    """One split's jets: rows of /jets (sorted), small columns in memory, big arrays on disk."""

    path: str
    rows: np.ndarray
    cols: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.rows)

    def multiplicities(self) -> np.ndarray:
        """Real particles per jet of the split (len(self),), read from /jets/mask block by block."""
        with open_dataset(self.path) as f:
            return multiplicities(f["jets/mask"], self.rows)

    def batches(self, batch_size: int, settings: StreamSettings, seed: int | None = None, epoch: int = 0,
                multiple_of: int = 1, pin_memory: bool = False, shard: tuple[int, int] = (0, 1),
                by_window: bool = False) -> Iterator[Batch]:
        """Batches of the split (module docstring): shuffled by (seed, epoch), or in row order if seed is None.

        `shard` (rank, world): this rank's slice of every batch (training), or with `by_window` its
        share of the windows (prediction: whole batches, gathered afterwards by position).
        """
        windows = epoch_windows(len(self), settings, seed, epoch)
        if by_window:
            windows, shard = windows[shard[0]::shard[1]], (0, 1)
        prepare = _Prepare(self.path, self.rows, multiple_of)
        small = {k: v.numpy() for k, v in self.cols.items()}
        ds = WindowDataset(self.path, self.rows, list(BIG), small, windows, batch_size, prepare, shard)
        return stream(ds, settings.workers, pin_memory)


class _Prepare:
    """Per batch, in the worker: rename, check finite (naming the file and row), trim to the longest jet."""

    def __init__(self, path: str, rows: np.ndarray, multiple_of: int):
        self.path, self.rows, self.multiple_of = path, rows, multiple_of

    def __call__(self, batch: Batch) -> Batch:
        from hhfm.models import trim_to_longest

        for name in ("features", "vectors"):
            bad = ~torch.isfinite(batch[name]).flatten(1).all(1)
            if bad.any():
                row = int(self.rows[int(batch["pos"][bad.nonzero()[0, 0]])])
                raise InputError(f"{self.path}: /jets/{name} has non-finite values (row {row})")
        x, v, m = trim_to_longest(batch.pop("features").float(), batch.pop("vectors").float(),
                                  batch.pop("mask").bool(), self.multiple_of)
        batch.update(x=x, v=v, mask=m)
        return batch


def load_split(path: str, split: str, task: str, limit: int = 0, seed: int = 0) -> JetSplit:
    """Labelled, in-window jets of one split (`limit` > 0 keeps a seeded subset); big arrays stay on disk.

    `task`: the training objective (LABEL), whose label column selects the jets."""
    label = LABEL[task]
    needed = [*BIG, *_small(task), "in_window", "split"]
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
        cols = {name: torch.from_numpy(np.asarray(read_rows(jets[name], rows))) for name in _small(task)}
    return JetSplit(str(path), rows.astype(np.int64), cols)


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
    if task == "jetclass":
        return data["label_jetclass"] == JETCLASS_HBB
    return (data["label_xbb"] == 1) if task == "xbb" else (data["label_class"] == H_BB)
