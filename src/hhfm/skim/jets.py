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


def _flat(x: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (N+1,), flat content) of a var * float32 array, without copying when possible."""
    layout = ak.to_layout(x)
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.NumpyArray):
        offsets = np.asarray(layout.offsets.data, dtype=np.int64)
        return offsets - offsets[0], np.asarray(layout.content.data)[offsets[0]:offsets[-1]]
    counts = ak.to_numpy(ak.num(x, axis=1)).astype(np.int64)
    return np.concatenate([[0], np.cumsum(counts)]), ak.to_numpy(ak.flatten(x))


def particle_gather(chunk: ak.Array, max_particles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index into the flat pfcand content (N, P), mask (N, P), counts (N,)): pT-descending, truncated."""
    offsets, ptrel = _flat(chunk["pfcand_ptrel"])
    counts = np.diff(offsets)
    jet = np.repeat(np.arange(len(counts)), counts)
    perm = np.arange(len(ptrel))
    if len(ptrel) and np.any((np.diff(ptrel) > 0) & (jet[1:] == jet[:-1])):  # the record is sorted already
        perm = np.lexsort((-ptrel.astype(np.float64), jet))
    slot = np.arange(max_particles)
    mask = slot[None, :] < counts[:, None]
    index = np.where(mask, offsets[:-1, None] + slot[None, :], 0)
    return perm[index] if len(perm) else index, mask, counts


def particle_arrays(chunk: ak.Array, max_particles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(raw (N, P, 17) float32, vectors (N, P, 4) float32, mask (N, P) bool, raw pfcand (N, P) by branch)."""
    index, mask, _ = particle_gather(chunk, max_particles)
    pf = {}
    for b in chunk.fields:
        if b.startswith("pfcand_"):
            flat = _flat(chunk[b])[1]
            pf[b] = np.where(mask, flat[index], np.float32(0)) if len(flat) else np.zeros(mask.shape, np.float32)
    jet_pt = ak.to_numpy(chunk["fj_pt"]).astype(np.float32)[:, None]
    jet_eta = ak.to_numpy(chunk["fj_eta"]).astype(np.float32)[:, None]
    jet_phi = ak.to_numpy(chunk["fj_phi"]).astype(np.float32)[:, None]
    jet_m = ak.to_numpy(chunk["fj_mass"]).astype(np.float64)[:, None]
    jet_e = np.sqrt((jet_pt * np.cosh(jet_eta.astype(np.float64))) ** 2 + jet_m**2).astype(np.float32)
    ptrel, erel = pf["pfcand_ptrel"], pf["pfcand_erel"]
    pt, e = ptrel * jet_pt, erel * jet_e
    deta = np.where(jet_eta >= 0, np.float32(1), np.float32(-1)) * pf["pfcand_etarel"]
    dphi = pf["pfcand_phirel"]
    eta, phi = jet_eta + deta, jet_phi + dphi
    s = np.float32(IMPACT_PARAMETER_SCALE)
    raw = np.zeros(mask.shape + (len(PARTICLE_FEATURE_NAMES),), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = {
            "part_pt_log": lambda: np.log(pt), "part_e_log": lambda: np.log(e),
            "part_logptrel": lambda: np.log(ptrel), "part_logerel": lambda: np.log(erel),
            "part_deltaR": lambda: pf["pfcand_deltaR"], "part_charge": lambda: pf["pfcand_charge"],
            "part_isChargedHadron": lambda: pf["pfcand_isChargedHad"],
            "part_isNeutralHadron": lambda: pf["pfcand_isNeutralHad"],
            "part_isPhoton": lambda: pf["pfcand_isGamma"], "part_isElectron": lambda: pf["pfcand_isEl"],
            "part_isMuon": lambda: pf["pfcand_isMu"],
            "part_d0": lambda: np.tanh(s * pf["pfcand_dxy"]),
            "part_d0err": lambda: np.where(pf["pfcand_dxysig"] != 0, s * pf["pfcand_dxy"] / pf["pfcand_dxysig"], 0),
            "part_dz": lambda: np.tanh(s * pf["pfcand_dz"]),
            "part_dzerr": lambda: np.where(pf["pfcand_dzsig"] != 0, s * pf["pfcand_dz"] / pf["pfcand_dzsig"], 0),
            "part_deta": lambda: deta, "part_dphi": lambda: dphi,
        }
        for i, name in enumerate(PARTICLE_FEATURE_NAMES):
            raw[..., i] = np.where(mask, cols[name](), np.float32(0))
    vectors = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e], axis=-1)
    vectors[~mask] = 0.0
    return raw, vectors, mask, pf


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
    return standardise_particles(raw, mask), vectors.astype(np.float32, copy=False)
