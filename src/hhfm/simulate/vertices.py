"""The record's secondary-vertex branches (`sv_*`, schema 2.6): the SVs within dR < 0.8 of each
jet, sorted by 2D flight significance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hhfm.simulate.detector import SecondaryVertices
from hhfm.simulate.frame import JetFrame, segments
from hhfm.simulate.jets import Jets
from hhfm.simulate.labels import delta_phi, delta_r, eta_phi, pairs_by_event

JET_SV_DR = 0.8


@dataclass
class JetSVs:
    """(jet, SV) pairs within JET_SV_DR, by jet then 2D flight significance, and their branches."""

    branches: dict[str, np.ndarray]  # sv_*
    offsets: np.ndarray  # per jet (n+1)
    jet: np.ndarray
    sv: np.ndarray  # index into SecondaryVertices
    dr: np.ndarray  # dR(jet, SV)
    dxysig: np.ndarray  # 2D flight significance (unclipped)
    mass: np.ndarray
    eta: np.ndarray
    phi: np.ndarray


def _pairs_near_jets(svs: SecondaryVertices, jets: Jets, frame: JetFrame) -> tuple[np.ndarray, ...]:
    """(jet, sv, dR, eta, phi) of the jet-SV pairs of each event within JET_SV_DR, sorted by jet then
    descending 2D flight significance."""
    sv_eta, sv_phi = eta_phi(svs.px, svs.py, svs.pz)
    jet, sv = pairs_by_event(jets.event, svs.event)
    dr = delta_r(frame.eta[jet], frame.phi[jet], sv_eta[sv], sv_phi[sv]) if len(jet) else np.zeros(0)
    near = dr < JET_SV_DR
    jet, sv, dr = jet[near], sv[near], dr[near]
    dxysig = np.hypot(svs.x, svs.y)[sv] / svs.err_xy[sv]
    order = np.lexsort((-dxysig, jet))
    return jet[order], sv[order], dr[order], sv_eta[sv[order]], sv_phi[sv[order]]


def jet_svs(svs: SecondaryVertices, jets: Jets, frame: JetFrame) -> JetSVs:
    """The SVs of every jet with each `sv_*` branch."""
    jet, sv, dr, eta, phi = _pairs_near_jets(svs, jets, frame)
    dxy = np.hypot(svs.x, svs.y)[sv]
    dxysig = dxy / svs.err_xy[sv]
    pt = np.hypot(svs.px, svs.py)[sv]
    p = np.sqrt(pt**2 + svs.pz[sv] ** 2)
    mass = np.sqrt(np.maximum(svs.e[sv] ** 2 - p**2, 0.0))
    pos = np.stack([svs.x, svs.y, svs.z], -1)[sv]
    d3d = np.linalg.norm(pos, axis=-1)
    d3derr = np.sqrt((svs.err_xy[sv] * dxy / d3d) ** 2 + (svs.err_z[sv] * pos[:, 2] / d3d) ** 2)
    mom = np.stack([svs.px, svs.py, svs.pz], -1)[sv]
    branches = {
        "sv_chi2": svs.chi2[sv],
        "sv_costhetasvpv": (pos * mom).sum(-1) / np.maximum(d3d * p, 1e-12),
        "sv_d3d": d3d,
        "sv_d3derr": d3derr,
        "sv_d3dsig": np.clip(d3d / d3derr, -1, 800),
        "sv_deltaR": np.clip(dr - 0.5, -2, 0),
        "sv_dxy": dxy,
        "sv_dxyerr": svs.err_xy[sv],
        "sv_dxysig": np.clip(dxysig, -1, 800),
        "sv_erel": svs.e[sv] / jets.e[jet],
        "sv_etarel": frame.side(jet) * (eta - frame.eta[jet]),
        "sv_mass": mass,
        "sv_ndf": svs.ndf[sv],
        "sv_normchi2": np.clip(svs.chi2[sv] / svs.ndf[sv], -1000, 1000),
        "sv_ntracks": svs.ntracks[sv],
        "sv_phirel": delta_phi(phi, frame.phi[jet]),
        "sv_pt": pt,
        "sv_ptrel": pt / frame.pt[jet],
    }
    return JetSVs(branches, segments(jet, frame.n), jet, sv, dr, dxysig, mass, eta, phi)
