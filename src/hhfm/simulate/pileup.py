"""Pile-up: the per-event profile (npv, ntrueInt, rho) and optional soft pile-up particles
(uniform in eta/phi, exponential pT, charged ones from vertices displaced in z). Settings come
from the `simulate.pileup` config section (defaults in config.schema.yaml)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from hhfm.simulate.detector import CHARGED_HADRON, NEUTRAL_HADRON, PHOTON


def profile(rng: np.random.Generator, n: int, pu: Mapping) -> dict[str, np.ndarray]:
    """Per-event npv, ntrueInt (continuous, so event keys are distinct) and rho [GeV]."""
    mean = float(pu["mean"])
    true_int = np.clip(rng.gamma(6.0, mean / 6.0, n), 0.5, 3 * mean)
    npv = np.maximum(1, rng.binomial(np.round(true_int).astype(np.int64) + 1, 0.72))
    rho = np.clip(0.55 * true_int + rng.normal(0.0, 2.0, n), 0.1, None)
    return {"ntrueInt": true_int, "npv": npv.astype(np.float64), "rho": rho}


def particles(rng: np.random.Generator, npu: np.ndarray, pu: Mapping, tracker_eta: float) -> dict[str, np.ndarray]:
    """Soft pile-up particles of a batch (`npu` interactions per event), as candidate columns."""
    n_each = rng.poisson(npu * float(pu["particles_per_interaction"]))
    n = int(n_each.sum())
    event = np.repeat(np.arange(len(npu)), n_each)
    pt = 0.3 + rng.exponential(0.7, n)
    eta = rng.uniform(-4.0, 4.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    kind = rng.choice(3, size=n, p=[0.6, 0.25, 0.15])
    charge = np.where(kind == 0, rng.choice([-1.0, 1.0], size=n), 0.0)
    charge = np.where(np.abs(eta) < tracker_eta, charge, 0.0)
    ptype = np.where(charge != 0, CHARGED_HADRON, np.where(kind == 1, PHOTON, NEUTRAL_HADRON))
    vz = rng.normal(0.0, 4.0, n)
    return {
        "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "pt": pt,
        "charge": charge, "ptype": ptype, "event": event,
        "vx": np.zeros(n), "vy": np.zeros(n), "vz": vz,
        "from_pv": np.zeros(n, dtype=bool), "truth": -np.ones(n, dtype=np.int64),
    }  # fmt: skip
