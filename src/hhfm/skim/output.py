"""The merge's outputs: dataset.h5 (hhfm.dataset layout), cutflow.csv and counts.csv, each written atomically.

The big per-jet arrays are copied from the per-file skims in blocks of COPY_BLOCK jets, so memory is
bounded by the block size, not by the dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np
import pandas as pd
from tqdm import tqdm

from hhfm.features import JET_CLASSES, SPLITS
from hhfm.io import atomic_path
from hhfm.skim import cutflow as cf
from hhfm.skim.h5append import create

COPY_BLOCK = 2048  # jets per copy block


def write_dataset(output: str | Path, *, files: list[dict], keep_jet: np.ndarray, jets: Mapping[str, np.ndarray],
                  events: Mapping[str, np.ndarray], attrs: Mapping, compression: str | None) -> None:
    """Write dataset.h5: the kept rows of every per-file /jets array, then the merge's `jets` and `events` columns.

    Attributes that are not str/int/float are stored as JSON.
    """
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        jg, eg = out.create_group("jets"), out.create_group("events")
        _copy_kept_jets(jg, files, keep_jet, compression)
        for name, arr in jets.items():
            create(jg, name, arr.shape, arr.dtype, compression)[...] = arr
        for name, arr in events.items():
            create(eg, name, arr.shape, arr.dtype, compression)[...] = arr
        for key, value in attrs.items():
            out.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)


def _copy_kept_jets(jg: h5py.Group, files: list[dict], keep_jet: np.ndarray, compression: str | None) -> None:
    """Copy the rows `keep_jet` selects (over all files, in input order) of every per-file /jets array."""
    n_out = int(keep_jet.sum())
    with h5py.File(files[0]["path"], "r") as f0:
        names = list(f0["jets"].keys())
        dsets = {k: create(jg, k, (n_out,) + f0["jets"][k].shape[1:], f0["jets"][k].dtype, compression)
                 for k in names}
    ofs, start = 0, 0
    bar = tqdm(total=len(keep_jet), unit="jet", desc="merge", disable=None)
    for f in files:
        sel = keep_jet[start:start + f["n"]]
        with h5py.File(f["path"], "r") as src:
            for a in range(0, f["n"], COPY_BLOCK):
                b = min(f["n"], a + COPY_BLOCK)
                m = sel[a:b]
                k = int(m.sum())
                if k:
                    for name in names:
                        dsets[name][ofs:ofs + k] = src["jets"][name][a:b][m]
                ofs += k
                bar.update(b - a)
        start += f["n"]
    bar.close()


def write_cutflow(path: str | Path, files: list[dict], merged: Mapping[str, int]) -> None:
    """cutflow.csv: every file's skim counters, their total, then the merge's steps."""
    rows = [{"file": f["source"], "step": k, "count": v} for f in files for k, v in f["cutflow"].items()]
    rows += [{"file": "all", "step": k, "count": v} for k, v in cf.total(f["cutflow"] for f in files).items()]
    rows += [{"file": "merged", "step": k, "count": v} for k, v in merged.items()]
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=["file", "step", "count"]).to_csv(tmp, index=False)


def write_counts(path: str | Path, samples: list[dict], events: Mapping[str, np.ndarray],
                 jets: Mapping[str, np.ndarray]) -> None:
    """counts.csv: events and jets per (level, split, class, mass, sample).

    `jets` holds the written jets' split, event (-1: none), label_class, sample and in_window.
    """
    split_name = {v: k for k, v in SPLITS.items()}
    ev = pd.DataFrame({"split": [split_name[s] for s in events["split"]],
                       "class": np.where(events["label"] == 1, "signal", "background"),
                       "mass": events["mass"], "sample": [samples[i]["name"] for i in events["sample"]],
                       "weight": events["weight"]})
    evc = ev.groupby(["split", "class", "mass", "sample"], as_index=False).agg(n=("weight", "size"),
                                                                           sum_weight_pb=("weight", "sum"))
    evc.insert(0, "level", "event")
    names = np.array(JET_CLASSES + ["unlabelled"])
    jt = pd.DataFrame({"split": [split_name[s] for s in jets["split"]],
                       "class": names[jets["label_class"]],
                       "mass": [float(samples[i]["mass"] or 0) if samples[i]["process"] == "signal" else 0.0
                                for i in jets["sample"]],
                       "sample": [samples[i]["name"] for i in jets["sample"]],
                       "in_window": jets["in_window"], "in_event": jets["event"] >= 0})
    jc = jt.groupby(["split", "class", "mass", "sample"], as_index=False).agg(
        n=("in_window", "size"), n_in_window=("in_window", "sum"), n_in_events=("in_event", "sum"))
    jc.insert(0, "level", "jet")
    with atomic_path(path) as tmp:
        pd.concat([evc, jc], ignore_index=True).to_csv(tmp, index=False)
