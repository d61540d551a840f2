"""Pythia 8 set-up and batched generation into flat numpy particle tables."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import awkward as ak
import numpy as np

from hhfm.errors import ConfigError

MB_TO_PB = 1e9


def make_pythia(settings: list[str]):
    """A configured, initialised Pythia; ConfigError naming the setting if any line is rejected.

    `Print:quiet = on` keeps Pythia silent except for its own error messages (on stdout).
    """
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise ConfigError(f"invalid Pythia setting {line!r} (readString returned False)")
    if not pythia.init():
        raise ConfigError(f"Pythia init() failed (Pythia's message is on stdout); settings: {settings}")
    return pythia


@dataclass
class Batch:
    """All particles of a batch of events as flat arrays; `offsets` (n_events+1) delimit events.

    Indices (mother1, daughter1, daughter2) are global rows into the flat arrays (-1 = none).
    Vertices are Pythia's production vertices in mm.
    """

    offsets: np.ndarray
    pid: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    charge: np.ndarray
    weights: np.ndarray  # per-event generator weight

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    @functools.cached_property
    def event(self) -> np.ndarray:
        """Event number within the batch of every particle row."""
        return np.repeat(np.arange(self.n_events), np.diff(self.offsets))


_CHARGE_CACHE: dict[int, float] = {}


def _charges(pythia, pid: np.ndarray) -> np.ndarray:
    """Electric charge per particle from Pythia's particle data (cached per PDG id)."""
    ids, inverse = np.unique(pid, return_inverse=True)
    for i in ids.tolist():
        if i not in _CHARGE_CACHE:
            _CHARGE_CACHE[i] = float(pythia.particleData.charge(i))
    return np.array([_CHARGE_CACHE[i] for i in ids.tolist()], dtype=np.float64)[inverse]


def _flat(array: ak.Array, dtype=None) -> np.ndarray:
    out = ak.to_numpy(ak.flatten(array, axis=1))
    return out.astype(dtype) if dtype is not None else out


def next_batch(pythia, n_events: int) -> Batch:
    """Generate `n_events` events and return them as flat numpy tables."""
    raw = pythia.nextBatch(n_events)
    prt = raw.prt
    counts = ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    start = np.repeat(offsets[:-1], counts)

    def glob(local: np.ndarray) -> np.ndarray:
        return np.where(local > 0, local + start, -1)

    pid = _flat(prt.id, np.int64)
    vprod = ak.fill_none(prt.vProd, {"px": 0.0, "py": 0.0, "pz": 0.0, "e": 0.0})
    weights = ak.to_numpy(ak.firsts(raw.info.weights)).astype(np.float64) if len(counts) else np.zeros(0)
    return Batch(
        offsets=offsets,
        pid=pid,
        status=_flat(prt.status, np.int64),
        mother1=glob(_flat(prt.mother1, np.int64)),
        daughter1=glob(_flat(prt.daughter1, np.int64)),
        daughter2=glob(_flat(prt.daughter2, np.int64)),
        px=_flat(prt.p.px),
        py=_flat(prt.p.py),
        pz=_flat(prt.p.pz),
        e=_flat(prt.p.e),
        vx=_flat(vprod.px),
        vy=_flat(vprod.py),
        vz=_flat(vprod.pz),
        charge=_charges(pythia, pid),
        weights=np.nan_to_num(weights, nan=1.0),
    )


def cross_section_pb(pythia) -> tuple[float, float]:
    """Pythia's estimated cross-section and its statistical error (pb)."""
    info = pythia.infoPython()
    return info.sigmaGen() * MB_TO_PB, info.sigmaErr() * MB_TO_PB
