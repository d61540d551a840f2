"""Per-jet arrays of one chunk: ParT particle inputs, four-vectors, high-level features, labels, keys.

Conventions (README "Stage: skim"): particles re-sorted by pT (descending) and truncated/padded to
`max_particles`; pT = ptrel * fj_pt, E = erel * E_jet with E_jet from (fj_pt, fj_eta, fj_mass);
deta = eta - eta_jet (the record's etarel is sign(eta_jet) * deta); impact parameters in mm.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hhfm.features import (FJ_LABEL, HLF_MASS_FLOOR_GEV, IMPACT_PARAMETER_SCALE, JET_CLASSES,
                           PARTICLE_FEATURE_NAMES, particle_transform)

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
    """(index (N, P) into the flat pfcand content + one trailing 0 for padding, mask (N, P), counts (N,)).

    Particles are pT-descending (the record's order; re-sorted only if a jet is not) and truncated.
    """
    offsets, ptrel = _flat(chunk["pfcand_ptrel"])
    counts = np.diff(offsets)
    jet = np.repeat(np.arange(len(counts)), counts)
    perm = np.arange(len(ptrel) + 1)
    if len(ptrel) and np.any((np.diff(ptrel) > 0) & (jet[1:] == jet[:-1])):
        perm[:-1] = np.lexsort((-ptrel.astype(np.float64), jet))
    slot = np.arange(max_particles)
    mask = slot[None, :] < counts[:, None]
    index = perm[np.where(mask, offsets[:-1, None] + slot[None, :], len(ptrel))]
    return index, mask, counts


def particle_arrays(chunk: ak.Array, max_particles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Raw ParT inputs (17, N, P) float32, vectors (N, P, 4) float32, mask (N, P), non-finite count per branch.

    Padding is 0 everywhere (logs are evaluated on real particles only).
    """
    index, mask, _ = particle_gather(chunk, max_particles)
    pf, nonfinite = {}, {}
    for b in chunk.fields:
        if b.startswith("pfcand_"):
            flat = _flat(chunk[b])[1]
            nonfinite[b] = int(flat.size - np.count_nonzero(np.isfinite(flat)))
            pf[b] = np.append(flat.astype(np.float32, copy=False), np.float32(0))[index]
    n, P = mask.shape
    jet_pt = ak.to_numpy(chunk["fj_pt"]).astype(np.float32)[:, None]
    jet_eta = ak.to_numpy(chunk["fj_eta"]).astype(np.float32)[:, None]
    jet_phi = ak.to_numpy(chunk["fj_phi"]).astype(np.float32)[:, None]
    jet_m = ak.to_numpy(chunk["fj_mass"]).astype(np.float64)[:, None]
    jet_e = np.sqrt((jet_pt * np.cosh(jet_eta.astype(np.float64))) ** 2 + jet_m**2).astype(np.float32)
    ptrel, erel = pf["pfcand_ptrel"], pf["pfcand_erel"]
    pt, e = ptrel * jet_pt, erel * jet_e
    raw = np.zeros((len(PARTICLE_FEATURE_NAMES), n, P), dtype=np.float32)
    col = {name: raw[i] for i, name in enumerate(PARTICLE_FEATURE_NAMES)}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, x in (("part_pt_log", pt), ("part_e_log", e), ("part_logptrel", ptrel), ("part_logerel", erel)):
            np.log(x, out=col[name], where=mask)
        for name, branch in (("part_deltaR", "deltaR"), ("part_charge", "charge"),
                             ("part_isChargedHadron", "isChargedHad"), ("part_isNeutralHadron", "isNeutralHad"),
                             ("part_isPhoton", "isGamma"), ("part_isElectron", "isEl"), ("part_isMuon", "isMu"),
                             ("part_dphi", "phirel")):
            col[name][...] = pf[f"pfcand_{branch}"]
        np.multiply(np.where(jet_eta >= 0, np.float32(1), np.float32(-1)), pf["pfcand_etarel"], out=col["part_deta"])
        s = np.float32(IMPACT_PARAMETER_SCALE)
        for ip, name in (("dxy", "part_d0"), ("dz", "part_dz")):
            np.tanh(s * pf[f"pfcand_{ip}"], out=col[name])
            sig = pf[f"pfcand_{ip}sig"]
            np.divide(s * pf[f"pfcand_{ip}"], sig, out=col[f"{name}err"], where=sig != 0)
    eta, phi = jet_eta + col["part_deta"], jet_phi + col["part_dphi"]
    vectors = np.empty((n, P, 4), dtype=np.float32)
    vectors[..., 0] = pt * np.cos(phi)
    vectors[..., 1] = pt * np.sin(phi)
    vectors[..., 2] = pt * np.sinh(eta)
    vectors[..., 3] = e
    vectors *= mask[..., None]
    return raw, vectors, mask, nonfinite


def standardise(raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """features.PARTICLE_FEATURES transform of raw (17, N, P) inputs -> (N, P, 17) float32, padding 0."""
    shift, scale, lo, hi = particle_transform()
    for i in range(len(raw)):
        if scale[i] != 1 or shift[i] != 0 or np.isfinite(lo[i]) or np.isfinite(hi[i]):
            x = raw[i]
            x -= shift[i]
            x *= scale[i]
            np.clip(x, lo[i], hi[i], out=x)
            x *= mask
    return np.ascontiguousarray(raw.transpose(1, 2, 0))


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
