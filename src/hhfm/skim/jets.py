"""Per-jet arrays of one chunk: ParT particle inputs, four-vectors, high-level features, labels, keys.

Conventions (README "Stage: skim"): particles re-sorted by pT (descending) and truncated/padded to
`max_particles`; pT = ptrel * fj_pt, E = erel * E_jet with E_jet from (fj_pt, fj_eta, fj_mass);
deta = eta - eta_jet (the record's etarel is sign(eta_jet) * deta); impact parameters in mm.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hhfm.features import (FJ_LABEL, HLF_MASS_FLOOR_GEV, IMPACT_PARAMETER_SCALE, JET_CLASSES,
                           PARTICLE_FEATURE_NAMES, standardise_particles)

#: float / int per-jet scalars copied to /jets/<name>
FLOAT_SCALARS = ["fj_doubleb", "fj_pt", "fj_eta", "fj_phi", "fj_mass", "fj_sdmass", "fj_gen_pt"]
INT_SCALARS = ["fj_nbHadrons", "fj_ncHadrons"]
#: fj_label code -> index into JET_CLASSES
_CLASS_OF_LABEL = {FJ_LABEL[name]: i for i, name in enumerate(JET_CLASSES)}


def _padded(x: ak.Array, n: int) -> np.ndarray:
    """Jagged (N, var) -> float64 (N, n), truncated and zero-padded."""
    return ak.to_numpy(ak.fill_none(ak.pad_none(x, n, axis=1, clip=True), 0.0)).astype(np.float64)


def particle_arrays(chunk: ak.Array, max_particles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(raw (N, P, 17) float64, vectors (N, P, 4) float64, mask (N, P) bool, raw pfcand (N, P) by branch)."""
    order = ak.argsort(chunk["pfcand_ptrel"], axis=1, ascending=False, stable=True)
    pf = {b: _padded(chunk[b][order], max_particles) for b in chunk.fields if b.startswith("pfcand_")}
    n = ak.to_numpy(ak.num(chunk["pfcand_ptrel"], axis=1))
    mask = np.arange(max_particles)[None, :] < n[:, None]
    jet_pt = ak.to_numpy(chunk["fj_pt"]).astype(np.float64)[:, None]
    jet_eta = ak.to_numpy(chunk["fj_eta"]).astype(np.float64)[:, None]
    jet_phi = ak.to_numpy(chunk["fj_phi"]).astype(np.float64)[:, None]
    jet_m = ak.to_numpy(chunk["fj_mass"]).astype(np.float64)[:, None]
    jet_e = np.sqrt((jet_pt * np.cosh(jet_eta)) ** 2 + jet_m**2)
    ptrel, erel = pf["pfcand_ptrel"], pf["pfcand_erel"]
    pt, e = ptrel * jet_pt, erel * jet_e
    deta = np.where(jet_eta >= 0, 1.0, -1.0) * pf["pfcand_etarel"]
    dphi = pf["pfcand_phirel"]
    eta, phi = jet_eta + deta, jet_phi + dphi
    s = IMPACT_PARAMETER_SCALE
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = {
            "part_pt_log": np.log(pt), "part_e_log": np.log(e), "part_logptrel": np.log(ptrel),
            "part_logerel": np.log(erel), "part_deltaR": pf["pfcand_deltaR"], "part_charge": pf["pfcand_charge"],
            "part_isChargedHadron": pf["pfcand_isChargedHad"], "part_isNeutralHadron": pf["pfcand_isNeutralHad"],
            "part_isPhoton": pf["pfcand_isGamma"], "part_isElectron": pf["pfcand_isEl"],
            "part_isMuon": pf["pfcand_isMu"],
            "part_d0": np.tanh(s * pf["pfcand_dxy"]),
            "part_d0err": np.where(pf["pfcand_dxysig"] != 0, s * pf["pfcand_dxy"] / pf["pfcand_dxysig"], 0.0),
            "part_dz": np.tanh(s * pf["pfcand_dz"]),
            "part_dzerr": np.where(pf["pfcand_dzsig"] != 0, s * pf["pfcand_dz"] / pf["pfcand_dzsig"], 0.0),
            "part_deta": deta, "part_dphi": dphi,
        }
    raw = np.stack([np.where(mask, cols[name], 0.0) for name in PARTICLE_FEATURE_NAMES], axis=-1)
    vectors = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e], axis=-1)
    vectors[~mask] = 0.0
    return raw, vectors, mask, {b: np.where(mask, v, 0.0) for b, v in pf.items()}


def jet_columns(chunk: ak.Array, p: dict) -> dict[str, np.ndarray]:
    """Per-jet scalars, HLF, labels, window flag and event-key columns of one chunk."""
    col = {b: ak.to_numpy(chunk[b]) for b in chunk.fields if not b.startswith("pfcand_")}
    out: dict[str, np.ndarray] = {name: col[name].astype(np.float32) for name in FLOAT_SCALARS}
    out.update({name: col[name].astype(np.int32) for name in INT_SCALARS})
    pt, sd = col["fj_pt"].astype(np.float64), col["fj_sdmass"].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["hlf"] = np.stack([np.log(pt), col["fj_eta"], col["fj_phi"],
                               np.log(np.maximum(col["fj_mass"], HLF_MASS_FLOOR_GEV)),
                               np.log(np.maximum(sd, HLF_MASS_FLOOR_GEV))], axis=1).astype(np.float64)
    hbb = col["label_H_bb"] == 1
    qcd = (col["sample_isQCD"] * col["fj_isQCD"]) == 1
    out["label_xbb"] = np.where(hbb & ~qcd, 1, np.where(qcd & ~hbb, 0, -1)).astype(np.int8)
    cls = np.array([_CLASS_OF_LABEL.get(int(c), -1) for c in range(64)], dtype=np.int8)
    codes = np.clip(col["fj_label"], 0, 63)
    out["label_class"] = np.where(out["label_xbb"] >= 0, cls[codes], -1).astype(np.int8)
    out["label_class"][(out["label_xbb"] == 1) & (out["label_class"] != 0)] = -1  # H_bb label, other code
    out["label_class"][(out["label_xbb"] == 0) & (out["label_class"] == 0)] = -1
    out["in_window"] = (p["pt_min"] < pt) & (pt < p["pt_max"]) & (p["sdmass_min"] < sd) & (sd < p["sdmass_max"])
    out["both_labels"] = hbb & qcd
    for key in ("sample_isQCD", "event_no", "rho", "npv", "ntrueInt", "jet_no"):
        out[f"key_{key}"] = col[key]
    return out


def finish_particles(raw: np.ndarray, vectors: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardised float32 features and float32 vectors (non-finite values already handled)."""
    return standardise_particles(raw, mask), vectors.astype(np.float32)
