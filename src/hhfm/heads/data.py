"""Event batches for the heads: the run's train / val / test events and the jets they reference.

Everything a run needs is read once into memory, restricted to the jets its events reference
("compact" jet rows), so a small fraction reads little even from a large dataset:

    events  jets (Ne, J) int64 compact jet rows (-1 = padding), label (Ne,), mass (Ne,), weight (Ne,)
    jets    hlf (Nc, 5) standardised with the training events' jets, rep (Nc, R) cached representation,
            and for backbone strategies the constituents x (Nc, P, 17), v (Nc, P, 4), pmask (Nc, P)

Validation-set policy: the run validates on a nested stratified subset of the val split of size
max(val_min_events, val_ratio * n_train), capped at the whole split, so validation shrinks with the
training set (as it would in a real low-data analysis) but never below a usable floor.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from hhfm.dataset import event_rows, open_dataset, read_rows
from hhfm.errors import InputError

log = logging.getLogger("hhfm.heads")

#: per-event columns kept for every split
EVENT_COLUMNS = ("label", "mass", "weight")


def val_fraction(n_train: int, n_val_split: int, ratio: float, min_events: int) -> float:
    """Fraction of the val split used for validation: max(min_events, ratio * n_train) events, capped at 1."""
    if n_val_split == 0:
        return 1.0
    return min(1.0, max(min_events, math.ceil(ratio * n_train)) / n_val_split)


@dataclass
class SplitEvents:
    """The events of one split of a run (rows in /events and their columns)."""

    rows: np.ndarray  # (Ne,) rows in /events
    jets: np.ndarray  # (Ne, J) compact jet rows, -1 = padding
    label: np.ndarray  # (Ne,) float32
    mass: np.ndarray  # (Ne,) float32
    weight: np.ndarray  # (Ne,) float64
    sdmass: np.ndarray  # (Ne, 2) soft-drop mass of the two leading jets (NaN if absent)

    def __len__(self) -> int:
        return len(self.rows)


class HeadData:
    """In-memory train / val / test events of one head run and the jet arrays they need."""

    def __init__(self, dataset: str | Path, fraction: float, params: dict, representation: str,
                 embeddings: str | Path | None = None, constituents: bool = False) -> None:
        self.path = Path(dataset)
        with open_dataset(self.path) as f:
            self._check(f)
            rows = {"train": event_rows(f, "train", fraction)}
            n_val_split = len(event_rows(f, "val"))
            vf = val_fraction(len(rows["train"]), n_val_split, params["val_ratio"], params["val_min_events"])
            rows["val"] = event_rows(f, "val", vf)
            rows["test"] = event_rows(f, "test")
            for split, r in rows.items():
                if len(r) == 0:
                    raise InputError(f"{self.path}: no {split} events at fraction {fraction:g}")
            ev = f["events"]
            all_jets = ev["jets"][:]
            used = np.unique(np.concatenate([all_jets[r].ravel() for r in rows.values()]))
            self.jet_rows = used[used >= 0]  # (Nc,) rows in /jets, sorted
            sdmass = read_rows(f["jets/fj_sdmass"], self.jet_rows)  # (Nc,)
            self.splits = {s: self._events(ev, r, all_jets[r], sdmass) for s, r in rows.items()}
            for split in ("train", "val"):
                labels = np.unique(self.splits[split].label)
                if len(labels) < 2:
                    raise InputError(f"{self.path}: the {split} events at fraction {fraction:g} hold only class "
                                     f"{labels.tolist()}; both signal and background are needed")
            self.hlf = self._standardised_hlf(read_rows(f["jets/hlf"], self.jet_rows))  # (Nc, 5)
            if representation == "standard":
                self.rep = read_rows(f["jets/fj_doubleb"], self.jet_rows).astype(np.float32)[:, None]  # (Nc, 1)
            if constituents:
                self.x = read_rows(f["jets/features"], self.jet_rows)  # (Nc, P, F)
                self.v = read_rows(f["jets/vectors"], self.jet_rows)  # (Nc, P, 4)
                self.pmask = read_rows(f["jets/mask"], self.jet_rows)  # (Nc, P)
        if representation != "standard" and embeddings is not None:
            self.rep = self._cached(Path(embeddings), representation)
        self.constituents = constituents
        log.info("events: %s; jets referenced: %d", {s: len(e) for s, e in self.splits.items()}, len(self.jet_rows))

    def _check(self, f: h5py.File) -> None:
        for name in ("jets", "n_jets", "label", "mass", "weight", "split", "rand"):
            if name not in f["events"]:
                raise InputError(f"{self.path}: missing dataset /events/{name}")
        for name in ("hlf", "fj_doubleb", "fj_sdmass"):
            if name not in f["jets"]:
                raise InputError(f"{self.path}: missing dataset /jets/{name}")

    def _events(self, ev: h5py.Group, rows: np.ndarray, jets: np.ndarray, sd: np.ndarray) -> SplitEvents:
        """Columns of the events `rows` of one split; `jets` (Ne, J) rows in /jets, `sd` (Nc,) jet soft-drop masses."""
        compact = np.where(jets >= 0, np.searchsorted(self.jet_rows, jets), -1)
        lead = compact[:, :2]
        sdmass = np.where(lead >= 0, sd[np.maximum(lead, 0)], np.nan).astype(np.float32)
        if sdmass.shape[1] < 2:
            sdmass = np.pad(sdmass, ((0, 0), (0, 2 - sdmass.shape[1])), constant_values=np.nan)
        label = ev["label"][:][rows].astype(np.float32)
        weight = ev["weight"][:][rows].astype(np.float64)
        if not np.isfinite(weight).all():
            raise InputError(f"{self.path}: /events/weight holds non-finite values")
        return SplitEvents(rows, compact, label, ev["mass"][:][rows].astype(np.float32), weight, sdmass)

    def _standardised_hlf(self, hlf: np.ndarray) -> np.ndarray:
        """Standardise the HLF with mean / std over the jets of the training events only."""
        if not np.isfinite(hlf).all():
            raise InputError(f"{self.path}: /jets/hlf holds non-finite values")
        train = np.unique(self.splits["train"].jets)
        train = train[train >= 0]
        self.hlf_mean = hlf[train].mean(0)
        std = hlf[train].std(0)
        self.hlf_std = np.where(std > 1e-6, std, 1.0)
        return ((hlf - self.hlf_mean) / self.hlf_std).astype(np.float32)

    def _cached(self, path: Path, representation: str) -> np.ndarray:
        """Cached frozen-backbone representation of the run's jets: (Nc, 1) scores or (Nc, D) embeddings."""
        if not path.exists():
            raise InputError(f"{path}: embeddings file does not exist (run the embed rule first)")
        with h5py.File(path, "r") as f:
            name = "score" if representation == "score" else "embedding"
            if name not in f:
                raise InputError(f"{path}: missing dataset /{name}")
            rep = read_rows(f[name], self.jet_rows).astype(np.float32)
        rep = rep[:, None] if rep.ndim == 1 else rep
        if not np.isfinite(rep).all():
            raise InputError(f"{path}: /{name} is not finite for some jets the events use (stale cache?)")
        return rep

    def batch(self, split: str, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """Tensors of events `idx` of a split: jmask (B, J), hlf (B, J, 5), label (B,) and rep or x/v/pmask."""
        jets = self.splits[split].jets[idx]  # (B, J)
        jmask = jets >= 0
        safe = np.maximum(jets, 0)
        out = {"jmask": torch.from_numpy(jmask), "hlf": torch.from_numpy(self.hlf[safe]),
               "label": torch.from_numpy(self.splits[split].label[idx])}
        if self.constituents:
            real = jets[jmask]  # (N,) in row-major order of jmask
            out.update(x=torch.from_numpy(self.x[real]), v=torch.from_numpy(self.v[real]),
                       pmask=torch.from_numpy(self.pmask[real]))
        else:
            out["rep"] = torch.from_numpy(self.rep[safe])
        return {k: t.to(device, non_blocking=True) for k, t in out.items()}
