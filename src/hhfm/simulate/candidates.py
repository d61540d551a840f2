"""The record's jagged particle branches (schema 2.6): PF candidates of each jet (`pfcand_*`) and
its tracks, the charged candidates with b-tag variables (`track_*`, `trackBTag_*`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from hhfm.simulate.detector import (
    CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON, TYPE_MASS, Reco, SecondaryVertices, track_extras,
)  # fmt: skip
from hhfm.simulate.frame import JetFrame, segments
from hhfm.simulate.jets import Jets
from hhfm.simulate.labels import Truth, delta_phi, delta_r, eta_phi, pairs_by_event

PFCAND_MIN_PT = 0.95
#: track branches that repeat the PF candidate's value (track_X = pfcand_X)
FROM_PFCAND = ("VTX_ass charge deltaR drsubjet1 drsubjet2 dxy dxysig dz dzsig erel etarel fromPV isChargedHad isEl "
               "isMu lostInnerHits mass phirel ptrel puppiw").split()  # fmt: skip
Branches = dict[str, np.ndarray]


@dataclass
class PFCands:
    """PF candidates of the jets (pT >= 0.95 GeV, pT-descending within each jet) and their branches."""

    jet: np.ndarray  # jet of each candidate
    rows: np.ndarray  # its Reco row
    offsets: np.ndarray  # per jet (n+1)
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    extras: Branches  # detector.track_extras of every candidate
    branches: Branches  # pfcand_*


@dataclass
class Tracks:
    """Charged PF candidates, sorted by 2D IP significance within each jet, and their branches."""

    branches: Branches  # track_*, trackBTag_*
    offsets: np.ndarray
    jet: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    p3: np.ndarray  # (n, 3)
    pt: np.ndarray
    hadron: np.ndarray  # Batch row of the heavy-flavour hadron the track comes from, -1 if none


def _constituents_by_pt(reco: Reco, jets: Jets, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(jet, Reco row) of the constituents above PFCAND_MIN_PT, by jet then pT descending."""
    cjet = np.repeat(np.arange(n), np.diff(jets.cons_offsets))
    rows = jets.cons
    keep = reco.pt[rows] >= PFCAND_MIN_PT
    cjet, rows = cjet[keep], rows[keep]
    order = np.lexsort((-reco.pt[rows], cjet))
    return cjet[order], rows[order]


def _drminsv(reco: Reco, rows: np.ndarray, eta: np.ndarray, phi: np.ndarray, svs: SecondaryVertices) -> np.ndarray:
    """dR of each candidate to the nearest SV of its event (any jet), -1 without one."""
    sv_eta, sv_phi = eta_phi(svs.px, svs.py, svs.pz)
    pj, ps = pairs_by_event(np.searchsorted(reco.offsets, rows, side="right") - 1, svs.event)
    dmin = np.full(len(rows), np.inf)
    if len(pj):
        np.minimum.at(dmin, pj, delta_r(eta[pj], phi[pj], sv_eta[ps], sv_phi[ps]))
    return np.where(np.isfinite(dmin), dmin, -1.0)


def _pf_kinematics(c: PFCands, reco: Reco, jets: Jets, frame: JetFrame) -> Branches:
    """Type flags and kinematics of the candidates relative to their jet and its subjets."""
    j, ptype = c.jet, reco.ptype[c.rows]
    dr_sj = [np.where(frame.has_sj[j, k], delta_r(c.eta, c.phi, frame.sj_eta[j, k], frame.sj_phi[j, k]), -1.0)
             for k in (0, 1)]  # fmt: skip
    return {
        "pfcand_charge": reco.charge[c.rows],
        "pfcand_deltaR": delta_r(c.eta, c.phi, frame.eta[j], frame.phi[j]),
        "pfcand_drsubjet1": dr_sj[0],
        "pfcand_drsubjet2": dr_sj[1],
        "pfcand_erel": reco.e[c.rows] / jets.e[j],
        "pfcand_etarel": frame.side(j) * (c.eta - frame.eta[j]),
        "pfcand_isChargedHad": (ptype == CHARGED_HADRON).astype(float),
        "pfcand_isEl": (ptype == ELECTRON).astype(float),
        "pfcand_isGamma": (ptype == PHOTON).astype(float),
        "pfcand_isMu": (ptype == MUON).astype(float),
        "pfcand_isNeutralHad": (ptype == NEUTRAL_HADRON).astype(float),
        "pfcand_mass": TYPE_MASS[ptype],
        "pfcand_phirel": delta_phi(c.phi, frame.phi[j]),
        "pfcand_ptrel": c.pt / frame.pt[j],
    }


def _pf_vertexing(c: PFCands, reco: Reco, rng: np.random.Generator) -> Branches:
    """Vertex association, PUPPI weight, HCAL fraction and impact parameters; fills `c.extras`."""
    rows, ptype = c.rows, reco.ptype[c.rows]
    is_pv, charged = reco.from_pv[rows], reco.charge[rows] != 0
    hcal = np.where(ptype == NEUTRAL_HADRON, 1.0, np.where(ptype == CHARGED_HADRON, rng.beta(5.0, 2.0, len(rows)), 0.0))
    c.extras = track_extras(rng, len(rows), np.hypot(reco.vx[rows], reco.vy[rows]))
    dxy, dz = reco.dxy[rows], reco.dz[rows]
    return {
        "pfcand_VTX_ass": np.where(charged, np.where(is_pv, 7.0, 1.0), 7.0),
        "pfcand_dxy": dxy,
        "pfcand_dxysig": np.where(charged, np.clip(dxy / np.where(charged, reco.dxy_err[rows], 1.0), -2000, 2000), 0.0),
        "pfcand_dz": dz,
        "pfcand_dzsig": np.where(charged, np.clip(dz / np.where(charged, reco.dz_err[rows], 1.0), -2000, 2000), 0.0),
        "pfcand_fromPV": np.where(charged, np.where(is_pv, 3.0, 0.0), 3.0),
        "pfcand_hcalFrac": hcal,
        "pfcand_lostInnerHits": np.where(charged, c.extras["lostInnerHits"], 0.0),
        "pfcand_puppiw": np.where(charged, is_pv.astype(float), 1.0 - np.exp(-c.pt / 1.5)),
    }


def pf_candidates(reco: Reco, jets: Jets, frame: JetFrame, svs: SecondaryVertices, rng: np.random.Generator) -> PFCands:
    """The PF candidates of the selected jets with every `pfcand_*` branch."""
    cjet, rows = _constituents_by_pt(reco, jets, frame.n)
    eta, phi = eta_phi(reco.px[rows], reco.py[rows], reco.pz[rows])
    c = PFCands(cjet, rows, segments(cjet, frame.n), reco.pt[rows], eta, phi, extras={}, branches={})
    c.branches = _pf_kinematics(c, reco, jets, frame)
    c.branches["pfcand_drminsv"] = _drminsv(reco, rows, eta, phi, svs)
    c.branches.update(_pf_vertexing(c, reco, rng))
    return c


def _btag_geometry(reco: Reco, rows: np.ndarray, p3: np.ndarray, pt: np.ndarray, jd: np.ndarray) -> Branches:
    """Signed impact parameters and the track momentum relative to the jet axis `jd` (unsorted)."""
    dxy, dz, sxy, sz = reco.dxy[rows], reco.dz[rows], reco.dxy_err[rows], reco.dz_err[rows]
    pmag = np.linalg.norm(p3, axis=-1)
    ux, uy = p3[:, 0] / pt, p3[:, 1] / pt
    sign = np.where(dxy * (uy * jd[:, 0] - ux * jd[:, 1]) >= 0, 1.0, -1.0)
    sin_t = pt / pmag
    ip2, ip3 = sign * np.abs(dxy), sign * np.hypot(dxy, dz * sin_t)
    ppar = (p3 * jd).sum(-1)
    pperp = np.linalg.norm(np.cross(p3, jd), axis=-1)
    theta_rel = np.arctan2(pperp, ppar)
    pca = np.stack([dxy * uy, -dxy * ux, dz], -1)
    txj = np.cross(p3 / pmag[:, None], jd)
    jetdist = -np.abs((pca * txj).sum(-1)) / np.maximum(np.linalg.norm(txj, axis=-1), 1e-9)
    return {
        "pmag": pmag, "sxy": sxy, "sz": sz, "ip2": ip2, "ip3": ip3, "sig2": ip2 / sxy,
        "sig3": ip3 / np.hypot(sxy, sz * sin_t), "ppar": ppar, "pperp": pperp, "jetdist": jetdist,
        "etarel": -np.log(np.tan(np.clip(theta_rel, 1e-6, np.pi - 1e-6) / 2)),
    }  # fmt: skip


def _btag_branches(g: Branches, eta: np.ndarray, deltar: np.ndarray) -> Branches:
    """The clipped `trackBTag_*` branches from the geometry of _btag_geometry."""
    return {
        "trackBTag_DeltaR": np.clip(deltar, -5, 5),
        "trackBTag_Eta": np.clip(eta, -5, 5),
        "trackBTag_EtaRel": np.clip(g["etarel"], -5, 15),
        "trackBTag_JetDistVal": np.clip(g["jetdist"], -20, 1),
        "trackBTag_Momentum": np.clip(g["pmag"], 0, 1000),
        "trackBTag_PPar": np.clip(g["ppar"], -1e5, 1e5),
        "trackBTag_PParRatio": np.clip(g["ppar"] / g["pmag"], -10, 100),
        "trackBTag_PtRatio": np.clip(g["pperp"] / g["pmag"], -1, 10),
        "trackBTag_PtRel": np.clip(g["pperp"], -1, 4),
        "trackBTag_Sip2dSig": np.clip(g["sig2"], -1, 4e4),
        "trackBTag_Sip2dVal": np.clip(g["ip2"], -1, 70),
        "trackBTag_Sip3dSig": np.clip(g["sig3"], -1, 4e4),
        "trackBTag_Sip3dVal": np.clip(g["ip3"], -1, 1e5),
    }


def _track_branches(pf: PFCands, t: np.ndarray, g: Branches, det: Mapping) -> Branches:
    """The `track_*` branches: PF candidate values, track parameter covariances and quality."""
    pt, sxy, sz = pf.pt[t], g["sxy"], g["sz"]
    a, b = det["track_pt_res"]
    dpt = np.hypot(a, b * pt) / g["pmag"]
    dang = 1e-3 * np.hypot(1.0, 1.0 / pt)
    drminsv = pf.branches["pfcand_drminsv"][t]
    out = {f"track_{k}": pf.branches[f"pfcand_{k}"][t] for k in FROM_PFCAND}
    out.update({
        "track_detadeta": dang**2, "track_dlambdadz": -0.5 * dang * sz, "track_dphidphi": dang**2,
        "track_dphidxy": -0.5 * dang * sxy, "track_dptdpt": dpt**2,
        "track_drminsv": np.minimum(0.8, np.where(drminsv >= 0, drminsv, 0.8)) - 0.8,
        "track_dxydxy": sxy**2, "track_dxydz": 0.05 * sxy * sz, "track_dzdz": sz**2,
        "track_normchi2": pf.extras["normchi2"][t], "track_pt": pt, "track_quality": pf.extras["quality"][t],
    })  # fmt: skip
    return out


def tracks(reco: Reco, truth: Truth, frame: JetFrame, pf: PFCands, det: Mapping) -> Tracks:
    """The tracks of the jets (charged PF candidates) with every `track_*` / `trackBTag_*` branch."""
    t = np.flatnonzero(pf.branches["pfcand_charge"] != 0)
    jet, rows = pf.jet[t], pf.rows[t]
    p3 = np.stack([reco.px[rows], reco.py[rows], reco.pz[rows]], -1)
    g = _btag_geometry(reco, rows, p3, pf.pt[t], frame.dir[jet])
    branches = {**_btag_branches(g, pf.eta[t], pf.branches["pfcand_deltaR"][t]), **_track_branches(pf, t, g, det)}
    order = np.lexsort((-pf.pt[t], -g["sig2"], jet))
    hadron = np.where(reco.truth[rows] >= 0, truth.hf_ancestor[np.maximum(reco.truth[rows], 0)], -1)
    return Tracks({k: v[order] for k, v in branches.items()}, segments(jet, frame.n), jet[order], pf.eta[t][order],
                  pf.phi[t][order], p3[order], pf.pt[t][order], hadron[order])  # fmt: skip
