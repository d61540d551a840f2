"""Event batches for the heads: the run's train / val / test events and the jets they reference.

The small per-event and per-jet arrays of a run are read once into memory, restricted to the jets
its events reference ("compact" jet rows), so a small fraction reads little from a large dataset:

    events  jets (Ne, J) int64 compact jet rows (-1 = padding), label (Ne,), mass (Ne,), weight (Ne,)
    jets    hlf (Nc, 5) standardised with the training events' jets, rep (Nc, R) cached representation

The constituents of backbone strategies (x (N, P, 17), v (N, P, 4), pmask (N, P) for the N real
jets of a batch) stay on disk: `EventWindows` reads them window by window in DataLoader workers
(hhfm.training.stream), so memory is bounded by the window, not by the run's events.

Event weights (`+weighted` models, hhfm.model_names): `training_weights` turns the physical weights of a
split's events into per-event loss weights; HeadData(weighted=True) keeps them for the train and val events
(`loss_weight`) and puts them in the batches (`weight`). They are a pure function of the data.

Validation-set policy: the run validates on a nested stratified subset of the val split of size
max(val_min_events, val_ratio * n_train), capped at the whole split, so validation shrinks with the
training set (as it would in a real low-data analysis) but never below a usable floor.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from hhfm.dataset import event_rows, multiplicities, open_dataset, read_rows
from hhfm.errors import InputError
from hhfm.training.stream import READ_BLOCK, cut

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
    loss_weight: np.ndarray | None = None  # (Ne,) float64 training_weights of a +weighted run (train, val); else None

    def __len__(self) -> int:
        return len(self.rows)


def training_weights(label: np.ndarray, mass: np.ndarray, weight: np.ndarray, where: str) -> np.ndarray:
    """Per-event loss weights (Ne,) float64 of one split's events for a `+weighted` head; mean 1 over the events.

    label (Ne,) 1 signal / 0 background, mass (Ne,) signal mass in GeV, weight (Ne,) the dataset's `weight` (pb:
    the cross-section an event carries, normalised within each (sample, split) by the skim). In four steps:

    1. background: w_i = weight_i, so each QCD slice counts by its cross-section, as in the limits;
    2. signal: each signal mass is scaled to the same total, sum over the mass = (total signal weight) / (number
       of masses), so every mass counts equally (the limits treat each mass separately);
    3. class balance: the signal is scaled so that total signal weight = total background weight (this replaces
       pos_weight);
    4. everything is scaled to mean 1 over the events, so the loss keeps the scale of an unweighted one.

    `where` names the events in errors (the dataset and the split). InputError: a non-finite or negative weight,
    no signal or no background event, or weights summing to zero over a signal mass or over the background.
    """
    label, mass = np.asarray(label), np.asarray(mass)
    w = np.array(weight, dtype=np.float64)  # a copy
    for bad, what in ((~np.isfinite(w), "non-finite"), (np.isfinite(w) & (w < 0), "negative")):
        if bad.any():
            raise InputError(f"{where}: field 'weight' (/events/weight) holds {int(bad.sum())} {what} value(s), "
                             f"e.g. {w[bad][0]!r}; event weights must be finite and >= 0")
    sig = label == 1
    n_sig = int(sig.sum())
    if n_sig == 0 or n_sig == len(w):
        raise InputError(f"{where}: event weights need signal and background events, got {n_sig} signal and "
                         f"{len(w) - n_sig} background event(s)")
    masses = np.unique(mass[sig])
    total = w[sig].sum()
    for m in masses:
        sel = sig & (mass == m)
        s = w[sel].sum()
        if not s > 0:
            raise InputError(f"{where}: field 'weight' (/events/weight) sums to zero over the signal events of mass "
                             f"{m:g} GeV")
        w[sel] *= total / len(masses) / s
    background = w[~sig].sum()
    if not background > 0:
        raise InputError(f"{where}: field 'weight' (/events/weight) sums to zero over the background events")
    w[sig] *= background / w[sig].sum()
    return w * (len(w) / w.sum())


class HeadData:
    """In-memory train / val / test events of one head run and the jet arrays they need; `weighted`: the train
    and val events carry their `training_weights` (`loss_weight`), and their batches a `weight` tensor."""

    def __init__(self, dataset: str | Path, fraction: float, params: dict, representation: str,
                 embeddings: str | Path | None = None, constituents: bool = False, weighted: bool = False) -> None:
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
            self.n_particles = multiplicities(f["jets/mask"], self.jet_rows)  # (Nc,) compute accounting
            self.splits = {s: self._events(ev, r, all_jets[r], sdmass) for s, r in rows.items()}
            for split in ("train", "val"):
                labels = np.unique(self.splits[split].label)
                if len(labels) < 2:
                    raise InputError(f"{self.path}: the {split} events at fraction {fraction:g} hold only class "
                                     f"{labels.tolist()}; both signal and background are needed")
                if weighted:
                    ev_split = self.splits[split]
                    ev_split.loss_weight = training_weights(ev_split.label, ev_split.mass, ev_split.weight,
                                                            f"{self.path} ({split} events at fraction {fraction:g})")
            self.hlf = self._standardised_hlf(read_rows(f["jets/hlf"], self.jet_rows))  # (Nc, 5)
            if representation == "standard":
                self.rep = read_rows(f["jets/fj_doubleb"], self.jet_rows).astype(np.float32)[:, None]  # (Nc, 1)
            if constituents:
                missing = [n for n in ("features", "vectors", "mask") if n not in f["jets"]]
                if missing:
                    raise InputError(f"{self.path}: missing dataset(s) {['/jets/' + n for n in missing]}")
        if representation != "standard" and embeddings is not None:
            self.rep = self._cached(Path(embeddings), representation)
        self.constituents = constituents
        self._file: h5py.File | None = None
        self._pid = -1
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

    def __getstate__(self) -> dict:  # DataLoader workers get a copy without the open file
        return {**self.__dict__, "_file": None, "_pid": -1}

    def _constituents(self, compact: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (n, P, F), v (n, P, 4), pmask (n, P) of sorted unique compact jet rows, read from the dataset."""
        if self._file is None or self._pid != os.getpid():  # h5py handles do not survive a fork
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        jets, rows = self._file["jets"], self.jet_rows[compact]
        x, v, m = (read_rows(jets[n], rows, READ_BLOCK) for n in ("features", "vectors", "mask"))
        for name, a in (("features", x), ("vectors", v)):
            bad = ~np.isfinite(a).reshape(len(a), -1).all(1)
            if bad.any():
                raise InputError(f"{self.path}: /jets/{name} has non-finite values (row {int(rows[bad.argmax()])})")
        return x, v, m

    def batches(self, split: str, parts: list[np.ndarray]) -> list[dict[str, torch.Tensor]]:
        """CPU tensors of the event batches `parts` (positions in the split), reading constituents once for all:
        jmask (B, J), hlf (B, J, 5), label (B,), pos (B,), weight (B,) float32 (events with a loss_weight
        only), and rep (B, J, R) or x/v/pmask of the real jets."""
        ev = self.splits[split]
        if self.constituents:
            used = np.concatenate([ev.jets[p].ravel() for p in parts]) if parts else np.empty(0, np.int64)
            needed = np.unique(used[used >= 0])
            x, v, m = self._constituents(needed)
        out = []
        for p in parts:
            jets = ev.jets[p]  # (B, J)
            jmask = jets >= 0
            safe = np.maximum(jets, 0)
            b = {"jmask": torch.from_numpy(jmask), "hlf": torch.from_numpy(self.hlf[safe]),
                 "label": torch.from_numpy(ev.label[p]), "pos": torch.from_numpy(np.asarray(p, np.int64))}
            if ev.loss_weight is not None:
                b["weight"] = torch.from_numpy(ev.loss_weight[p].astype(np.float32))
            if self.constituents:
                k = np.searchsorted(needed, jets[jmask])  # (N,) real jets in row-major order of jmask
                b.update(x=torch.from_numpy(x[k]), v=torch.from_numpy(v[k]), pmask=torch.from_numpy(m[k]))
            else:
                b["rep"] = torch.from_numpy(self.rep[safe])
            out.append(b)
        return out

    def batch(self, split: str, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """Tensors of events `idx` of a split on `device` (see `batches`)."""
        return {k: t.to(device, non_blocking=True) for k, t in self.batches(split, [np.asarray(idx)])[0].items()}


class EventWindows(torch.utils.data.Dataset):
    """Item k: the batches of window k (event positions of one split); `shard` (rank, world): this
    rank's slice [rank::world] of every global batch (hhfm.training.stream.cut)."""

    def __init__(self, data: HeadData, split: str, windows: list[np.ndarray], batch_size: int,
                 shard: tuple[int, int] = (0, 1)):
        self.data, self.split, self.windows, self.batch_size, self.shard = data, split, windows, batch_size, shard

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, k: int) -> list[dict[str, torch.Tensor]]:
        rank, world = self.shard
        return self.data.batches(self.split, [b[rank::world] for b in cut(self.windows[k], self.batch_size, world)])
