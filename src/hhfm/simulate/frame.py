"""Jet kinematics and soft-drop subjet axes of a batch, computed once and shared by the builders of
the record's branches (candidates.py, vertices.py, doubleb.py, ntuple.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hhfm.simulate.jets import Jets
from hhfm.simulate.labels import eta_phi


@dataclass
class JetFrame:
    """Per-jet kinematics (n jets) and the two subjet axes ((n, 2) arrays, 0 where missing)."""

    n: int
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    dir: np.ndarray  # (n, 3) unit momentum
    sj_pt: np.ndarray
    sj_eta: np.ndarray
    sj_phi: np.ndarray
    sj_mass: np.ndarray
    has_sj: np.ndarray  # (n, 2) subjet k exists
    two: np.ndarray  # both subjets exist

    def side(self, jet: np.ndarray) -> np.ndarray:
        """+1 / -1: the sign of the jet's eta (etarel points away from eta = 0)."""
        return np.where(self.eta[jet] >= 0, 1.0, -1.0)


def jet_frame(jets: Jets) -> JetFrame:
    """The JetFrame of the selected jets of a batch."""
    pt = np.hypot(jets.px, jets.py)
    eta, phi = eta_phi(jets.px, jets.py, jets.pz)
    p = np.sqrt(pt**2 + jets.pz**2)
    sj = jets.subjets
    sj_eta, sj_phi = eta_phi(sj[..., 0], sj[..., 1], sj[..., 2])
    return JetFrame(
        n=len(jets), pt=pt, eta=eta, phi=phi,
        mass=np.sqrt(np.maximum(jets.e**2 - p**2, 0.0)),
        dir=np.stack([jets.px, jets.py, jets.pz], -1) / p[:, None],
        sj_pt=np.hypot(sj[..., 0], sj[..., 1]), sj_eta=sj_eta, sj_phi=sj_phi,
        sj_mass=np.sqrt(np.maximum(sj[..., 3] ** 2 - (sj[..., :3] ** 2).sum(-1), 0.0)),
        has_sj=np.stack([jets.n_subjets >= 1, jets.n_subjets >= 2], -1),
        two=jets.n_subjets >= 2,
    )  # fmt: skip


def segments(group: np.ndarray, n: int) -> np.ndarray:
    """Offsets (n+1) of a sorted group index."""
    return np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n))]).astype(np.int64)
