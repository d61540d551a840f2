"""Sample description of one input file: the simulation sidecar JSON, or the open-data convention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from hhfm.errors import InputError

SIDECAR_KEYS = ("sample", "process", "mass", "n_generated", "cross_section_pb", "sum_weights")
#: names of the two pseudo-samples of the open-data record (index = sample_isQCD)
OPENDATA_SAMPLES = ("opendata_signal", "opendata_qcd")


def read_sidecar(path: str | Path) -> dict:
    """Load and check a sidecar; InputError names the file and the missing/invalid key."""
    path = Path(path)
    try:
        side = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise InputError(f"{path}: sidecar file does not exist") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: sidecar is not valid JSON ({err})") from err
    missing = [k for k in SIDECAR_KEYS if k not in side]
    if missing:
        raise InputError(f"{path}: sidecar lacks key(s) {', '.join(missing)}")
    if side["process"] not in ("signal", "qcd"):
        raise InputError(f"{path}: sidecar key 'process' must be 'signal' or 'qcd', got {side['process']!r}")
    if not side["n_generated"] or not side["sum_weights"] or side["sum_weights"] <= 0:
        raise InputError(f"{path}: sidecar keys 'n_generated'/'sum_weights' must be positive")
    return side


def file_samples(side: dict | None, skim: Mapping) -> list[dict]:
    """Sample dicts (name, process, mass, n_generated, sum_weights, cross_section_pb) of one file."""
    if side is not None:
        xsec = 1.0 if side["process"] == "signal" else float(side["cross_section_pb"])
        return [{"name": side["sample"], "process": side["process"], "mass": side["mass"],
                 "n_generated": int(side["n_generated"]), "sum_weights": float(side["sum_weights"]),
                 "cross_section_pb": xsec, "generator_cross_section_pb": float(side["cross_section_pb"])}]
    od = skim["opendata"]
    # n_generated / sum_weights of open-data samples are unknown: the merge counts distinct events instead
    return [{"name": OPENDATA_SAMPLES[0], "process": "signal", "mass": None, "n_generated": None,
             "sum_weights": None, "cross_section_pb": float(od["signal_cross_section_pb"])},
            {"name": OPENDATA_SAMPLES[1], "process": "qcd", "mass": None, "n_generated": None,
             "sum_weights": None, "cross_section_pb": float(od["qcd_cross_section_pb"])}]


def jet_sample_and_weight(side: dict | None, sample_isqcd: np.ndarray, event_no: np.ndarray,
                          source: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-jet index into file_samples() and generator weight of the jet's event."""
    if side is None:
        return sample_isqcd.astype(np.int16), np.ones(len(event_no))
    weights = side.get("event_weights")
    if weights is None:
        return np.zeros(len(event_no), np.int16), np.ones(len(event_no))
    first = int(side.get("event_no_range", [0])[0])
    try:  # list indexed by event_no - event_no_range[0] (the simulator's), or {"<event_no>": weight}
        idx = event_no.astype(np.int64) - first
        if isinstance(weights, list) and (idx < 0).any():
            raise IndexError(f"event_no below event_no_range[0] = {first}")
        w = (np.asarray(weights, dtype=np.float64)[idx] if isinstance(weights, list)
             else np.array([float(weights[str(int(e))]) for e in event_no]))
    except (IndexError, KeyError, ValueError) as err:
        raise InputError(f"{source}: sidecar 'event_weights' has no entry for some event_no ({err})") from err
    return np.zeros(len(event_no), np.int16), w
