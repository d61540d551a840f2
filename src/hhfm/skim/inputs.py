"""The merge's view of its inputs: per-file metadata, one sample table, the small per-jet columns of all files.

Only the columns the event building needs are read into memory; the big per-jet arrays (particles,
HLF) stay in the per-file skims until hhfm.skim.output copies the selected rows block by block.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import h5py
import numpy as np

from hhfm.errors import InputError

#: small per-jet columns read from /keys and /jets of every per-file skim
SMALL_KEY_COLUMNS = ("sample_isQCD", "event_no", "rho", "npv", "ntrueInt", "jet_no", "gen_weight")
SMALL_JET_COLUMNS = ("fj_pt", "label_xbb", "label_class", "in_window")


@dataclass
class MergeInputs:
    """Per-file skims as the merge sees them (jets in input order: file by file, row by row)."""

    files: list[dict]  # per file: path, n (jets), cutflow, source
    samples: list[dict]  # global sample table; a jet's `sample` column indexes it
    cols: dict[str, np.ndarray]  # small per-jet columns over all files

    @property
    def n_jets(self) -> int:
        return len(self.cols["fj_pt"])


def read_inputs(paths: list[str]) -> MergeInputs:
    """Per-file metadata, the global sample table, and concatenated small per-jet columns."""
    files, samples, cols = [], {}, {}
    for path in paths:
        with _open_skim(path) as h5:
            local_to_global = _add_samples(samples, json.loads(h5.attrs["samples"]), path)
            n = h5["keys/entry"].shape[0]
            files.append({"path": path, "n": n, "cutflow": json.loads(h5.attrs["cutflow"]),
                          "source": h5.attrs["source"]})
            local = h5["keys/sample"][:]
            cols.setdefault("sample", []).append(np.asarray(local_to_global, dtype=np.int16)[local] if n else local)
            for k in SMALL_KEY_COLUMNS:
                cols.setdefault(k, []).append(h5[f"keys/{k}"][:])
            for k in SMALL_JET_COLUMNS:
                cols.setdefault(k, []).append(h5[f"jets/{k}"][:])
    return MergeInputs(files, list(samples.values()), {k: np.concatenate(v) for k, v in cols.items()})


def _open_skim(path: str) -> h5py.File:
    """Open a per-file skim for reading; InputError names the file if it is not one."""
    try:
        h5 = h5py.File(path, "r")
    except (OSError, FileNotFoundError) as err:
        raise InputError(f"{path}: not a readable per-file skim ({err})") from err
    for group in ("jets", "keys"):
        if group not in h5:
            h5.close()
            raise InputError(f"{path}: missing group /{group} (not a per-file skim)")
    return h5


def _add_samples(samples: dict, file_samples: list[dict], path: str) -> list[int]:
    """Merge one file's samples into `samples` (name -> sample); return their global indices.

    Several files of one sample: generated events and weights are summed, the cross-section is
    their sum-of-weights weighted mean.
    """
    local_to_global = []
    for s in file_samples:
        g = samples.setdefault(s["name"], {**s, "n_generated": 0, "sum_weights": 0.0, "files": 0})
        if (g["process"], g["mass"]) != (s["process"], s["mass"]):
            raise InputError(f"{path}: sample {s['name']} has process/mass {s['process']}/{s['mass']}, "
                             f"other files say {g['process']}/{g['mass']}")
        if s["n_generated"] is not None:
            g["n_generated"] += s["n_generated"]
            g["sum_weights"] += s["sum_weights"]
            g["files"] += 1
            g["cross_section_pb"] = s["cross_section_pb"] if g["files"] == 1 else (
                (g["cross_section_pb"] * (g["sum_weights"] - s["sum_weights"])
                 + s["cross_section_pb"] * s["sum_weights"]) / g["sum_weights"])
        local_to_global.append(list(samples).index(s["name"]))
    return local_to_global
