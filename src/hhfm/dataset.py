"""The skimmed dataset on disk (HDF5) and how every training stage reads it.

Layout (the contract between `skim` and everything downstream; README "Dataset format"):

    /jets/features   float32 (Nj, P, 17)  standardised ParT inputs (features.PARTICLE_FEATURE_NAMES), 0 = padding
    /jets/vectors    float32 (Nj, P, 4)   px, py, pz, E in GeV, 0 = padding
    /jets/mask       bool    (Nj, P)      True for real particles; particles sorted by pT, descending
    /jets/hlf        float32 (Nj, 5)      features.HLF_NAMES, raw (heads standardise on the train split)
    /jets/<scalar>   (Nj,)                fj_doubleb, fj_pt, fj_eta, fj_phi, fj_mass, fj_sdmass, fj_gen_pt (float32),
                                          fj_nbHadrons, fj_ncHadrons (int32)
    /jets/label_xbb  int8   (Nj,)  1 = H->bb, 0 = QCD, -1 = unlabelled
    /jets/label_class int8  (Nj,)  index into features.JET_CLASSES, -1 = none
    /jets/in_window  bool   (Nj,)  passes the pT / soft-drop-mass window (skim.pt_min/max, sdmass_min/max)
    /jets/event      int64  (Nj,)  row in /events, -1 if the jet's event was not kept (or, when the window
                                   applies to events, the jet is outside it and so not one of the event's jets)
    /jets/split      int8   (Nj,)  features.SPLITS code of the jet's event (from the event-key hash, so also
                                   defined for jets whose event was not kept)
    /events/jets     int64  (Ne, J)  rows in /jets, ordered by fj_pt descending, -1 = padding
    /events/n_jets   int8   (Ne,)
    /events/label    int8   (Ne,)  1 = signal, 0 = background
    /events/mass     float32 (Ne,) signal mass in GeV, 0 for background / unknown
    /events/weight   float64 (Ne,) cross-section per event in pb (sample xsec x generator weight / sum of weights)
    /events/split    int8   (Ne,)
    /events/rand     float64 (Ne,) uniform in [0, 1) from a hash of the event key (nested fractions)
    /events/sample   int16  (Ne,)  index into attrs["samples"]
    /events/event_no uint32 (Ne,)
    attrs: samples (JSON list of sample dicts: name, process, mass, n_generated, cross_section_pb),
           particle_features, hlf_names, skim_params (JSON strings), max_particles, max_jets (int)

/jets holds every jet of a kept event plus every labelled jet usable for pretraining (in the window
when skim.window_applies_to is `pretraining` or `both`); jet_rows() applies the window only in those modes.
Written by `hhfm merge-skim` (hhfm.skim.merge), block by block; README "Stage: skim" has the details.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from hhfm.errors import InputError
from hhfm.features import SPLITS
from hhfm.io import atomic_path


def write_dataset(path: str | os.PathLike, jets: Mapping[str, np.ndarray], events: Mapping[str, np.ndarray],
                  attrs: Mapping[str, object]) -> None:
    """Write a whole dataset in one go, atomically (chunked + lzf-compressed arrays)."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for group, arrays in (("jets", jets), ("events", events)):
                g = f.create_group(group)
                for name, arr in arrays.items():
                    arr = np.asarray(arr)
                    chunks = (min(len(arr), 1024),) + arr.shape[1:] if len(arr) else None
                    g.create_dataset(name, data=arr, chunks=chunks, compression="lzf" if len(arr) else None)
            for key, value in attrs.items():
                f.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)


def read_rows(dset: h5py.Dataset, rows: np.ndarray, block: int = 16384) -> np.ndarray:
    """dset[rows] for sorted unique `rows`, read in contiguous blocks (h5py fancy indexing is slow)."""
    out = np.empty((len(rows),) + dset.shape[1:], dtype=dset.dtype)
    pos = 0
    while pos < len(rows):
        lo = int(rows[pos])
        end = int(np.searchsorted(rows, lo + block, side="left"))
        chunk = dset[lo : int(rows[end - 1]) + 1]
        out[pos:end] = chunk[rows[pos:end] - lo]
        pos = end
    return out


def multiplicities(mask: h5py.Dataset, rows: np.ndarray, block: int = 16384) -> np.ndarray:
    """Real particles per jet (len(rows),) int32 of sorted unique `rows` of /jets/mask, read block by block
    (bounded memory at any scale: only the counts are kept)."""
    out = np.empty(len(rows), np.int32)
    for a in range(0, len(rows), block):
        out[a:a + block] = read_rows(mask, rows[a:a + block], block).sum(1)
    return out


def open_dataset(path: str | os.PathLike) -> h5py.File:
    """Open a dataset read-only; a missing or unreadable file raises InputError naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: dataset file does not exist (run the skim stage first)")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 dataset ({err})") from err
    for group in ("jets", "events"):
        if group not in f:
            raise InputError(f"{path}: missing group /{group}")
    return f


def attr_json(f: h5py.File, key: str) -> object:
    """Read a JSON-encoded attribute."""
    return json.loads(f.attrs[key])


def split_code(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    return SPLITS[split]


def fraction_mask(rand: np.ndarray, label: np.ndarray, mass: np.ndarray, fraction: float) -> np.ndarray:
    """Events kept at training-data `fraction`: nested in `fraction` and stratified by (label, mass).

    Within each stratum the events are ranked by their stored random number and the first
    round(fraction * n) are kept (at least one per non-empty stratum), so a smaller fraction is
    always a subset of a larger one.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    keep = np.zeros(len(rand), dtype=bool)
    strata = np.stack([label.astype(np.float64), mass.astype(np.float64)], axis=1)
    for key in np.unique(strata, axis=0):
        idx = np.flatnonzero((strata == key).all(axis=1))
        n_keep = max(1, int(round(fraction * len(idx))))
        keep[idx[np.argsort(rand[idx], kind="stable")[:n_keep]]] = True
    return keep


def event_rows(f: h5py.File, split: str, fraction: float = 1.0) -> np.ndarray:
    """Rows of /events in `split` (and, if fraction < 1, in the nested stratified fraction)."""
    ev = f["events"]
    sel = ev["split"][:] == split_code(split)
    if fraction < 1:
        sel &= fraction_mask(ev["rand"][:], ev["label"][:], ev["mass"][:], fraction)
    return np.flatnonzero(sel)


def jet_rows(f: h5py.File, split: str, require_label: str = "label_xbb", in_window: bool = True) -> np.ndarray:
    """Rows of /jets in `split` usable for pretraining: labelled (>= 0) and, if asked, in the window."""
    jets = f["jets"]
    sel = (jets["split"][:] == split_code(split)) & (jets[require_label][:] >= 0)
    if in_window and _window_for_pretraining(f):
        sel &= jets["in_window"][:]
    return np.flatnonzero(sel)


def _window_for_pretraining(f: h5py.File) -> bool:
    """Whether the skim's pT / soft-drop-mass window applies to pretraining jets (skim.window_applies_to)."""
    if "skim_params" not in f.attrs:
        return True
    return attr_json(f, "skim_params").get("window_applies_to", "both") in ("pretraining", "both")
