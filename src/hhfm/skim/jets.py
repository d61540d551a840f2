"""Per-jet arrays of one chunk: ParT particle inputs, four-vectors, high-level features, labels, keys.

Conventions (README "Stage: skim"): particles re-sorted by pT (descending) and truncated/padded to
`max_particles`; pT = ptrel * fj_pt, E = erel * E_jet with E_jet from (fj_pt, fj_eta, fj_mass);
part_deta = sign(eta_jet) * (eta - eta_jet), the record's etarel and JetClass' convention (so published
JetClass weights see the same jet at eta and -eta); the four-vectors use the true eta = eta_jet + Δη;
impact parameters in mm.
"""

from __future__ import annotations

from typing import Mapping

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


def particle_gather(offsets: np.ndarray, ptrel: np.ndarray, max_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """(index (N, P) into flat particle rows, where row M (one past the end) is the zero padding row; mask (N, P)).

    Particles are pT-descending (the record's order; re-sorted only if some jet is not) and truncated.
    """
    counts = np.diff(offsets)
    perm = np.arange(len(ptrel) + 1)
    if len(ptrel) > 1:
        jet = np.repeat(np.arange(len(counts)), counts)
        if np.any((np.diff(ptrel) > 0) & (jet[1:] == jet[:-1])):
            perm[:-1] = np.lexsort((-ptrel.astype(np.float64), jet))
    slot = np.arange(max_particles)
    mask = slot[None, :] < counts[:, None]
    return perm[np.where(mask, offsets[:-1, None] + slot[None, :], len(ptrel))], mask


def particle_arrays(chunk: ak.Array, max_particles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Standardised features (N, P, 17), vectors (N, P, 4), mask (N, P), bad (N,), non-finite counts.

    Everything is computed once per real particle on the flat arrays, then gathered into the padded
    layout (padding = an all-zero row). Non-finite raw values are set to 0 before standardisation and
    reported: `bad` flags jets with one among their stored particles; counts are per input branch and
    per derived feature, over all particles.
    """
    offsets, _ = _flat(chunk["pfcand_ptrel"])
    pf = {b: _flat(chunk[b])[1].astype(np.float32, copy=False) for b in chunk.fields if b.startswith("pfcand_")}
    nonfinite = {b: int(v.size - np.count_nonzero(np.isfinite(v))) for b, v in pf.items()}
    raw, vec = _raw_particle_columns(chunk, offsets, pf)
    row_bad = _zero_nonfinite(raw, vec, nonfinite)
    _standardise(raw)
    index, mask = particle_gather(offsets, pf["pfcand_ptrel"], max_particles)
    features = np.take(np.ascontiguousarray(raw.T), index, axis=0)
    vectors = np.take(np.ascontiguousarray(vec.T), index, axis=0)
    return features, vectors, mask, row_bad[index].any(axis=1), nonfinite


def _jet_kinematics(chunk: ak.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pt, eta, phi, energy) per jet as float32; E from (fj_pt, fj_eta, fj_mass) in float64."""
    jet_pt = ak.to_numpy(chunk["fj_pt"]).astype(np.float32)
    jet_eta = ak.to_numpy(chunk["fj_eta"]).astype(np.float32)
    jet_phi = ak.to_numpy(chunk["fj_phi"]).astype(np.float32)
    jet_m = ak.to_numpy(chunk["fj_mass"]).astype(np.float64)
    jet_e = np.sqrt((jet_pt * np.cosh(jet_eta.astype(np.float64))) ** 2 + jet_m**2).astype(np.float32)
    return jet_pt, jet_eta, jet_phi, jet_e


def _raw_particle_columns(chunk: ak.Array, offsets: np.ndarray, pf: dict) -> tuple[np.ndarray, np.ndarray]:
    """Raw features (17, M+1) and four-vectors (4, M+1) per flat particle, feature-major; last column: padding."""
    jet = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    jet_pt, jet_eta, jet_phi, jet_e = _jet_kinematics(chunk)
    m = len(jet)
    ptrel, erel = pf["pfcand_ptrel"], pf["pfcand_erel"]
    pt, e = ptrel * jet_pt[jet], erel * jet_e[jet]
    etarel = pf["pfcand_etarel"]  # sign(eta_jet) * (eta - eta_jet): the stored part_deta (JetClass convention)
    deta = np.where(jet_eta >= 0, np.float32(1), np.float32(-1))[jet] * etarel  # true eta - eta_jet
    dphi = pf["pfcand_phirel"]
    raw = np.zeros((len(PARTICLE_FEATURE_NAMES), m + 1), dtype=np.float32)
    col = {name: raw[i, :m] for i, name in enumerate(PARTICLE_FEATURE_NAMES)}
    s = np.float32(IMPACT_PARAMETER_SCALE)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for name, x in (("part_pt_log", pt), ("part_e_log", e), ("part_logptrel", ptrel), ("part_logerel", erel)):
            np.log(x, out=col[name])
        for name, x in (("part_deltaR", pf["pfcand_deltaR"]), ("part_charge", pf["pfcand_charge"]),
                        ("part_isChargedHadron", pf["pfcand_isChargedHad"]),
                        ("part_isNeutralHadron", pf["pfcand_isNeutralHad"]), ("part_isPhoton", pf["pfcand_isGamma"]),
                        ("part_isElectron", pf["pfcand_isEl"]), ("part_isMuon", pf["pfcand_isMu"]),
                        ("part_deta", etarel), ("part_dphi", dphi)):
            col[name][...] = x
        for ip, name in (("dxy", "part_d0"), ("dz", "part_dz")):
            d, sig = s * pf[f"pfcand_{ip}"], pf[f"pfcand_{ip}sig"]
            np.tanh(d, out=col[name])
            np.divide(d, sig, out=col[f"{name}err"], where=sig != 0)
        eta, phi = jet_eta[jet] + deta, jet_phi[jet] + dphi
        vec = np.zeros((4, m + 1), dtype=np.float32)
        vec[0, :m], vec[1, :m], vec[2, :m], vec[3, :m] = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e
    return raw, vec


def _zero_nonfinite(raw: np.ndarray, vec: np.ndarray, nonfinite: dict) -> np.ndarray:
    """Count non-finite raw features into `nonfinite`, set them (and bad vector entries) to 0; bad particle rows."""
    finite = np.isfinite(raw)
    for name, count in zip(PARTICLE_FEATURE_NAMES, raw.shape[1] - finite.sum(axis=1)):
        nonfinite[name] = int(count)
    vec_finite = np.isfinite(vec)
    row_bad = ~finite.all(axis=0) | ~vec_finite.all(axis=0)
    if row_bad.any():
        raw[~finite] = 0.0
        vec[~vec_finite] = 0.0
    return row_bad


def _standardise(raw: np.ndarray) -> None:
    """Apply the ParT shift, scale and clip per feature in place (the padding column stays 0)."""
    m = raw.shape[1] - 1
    shift, scale, lo, hi = particle_transform()
    for i in range(len(raw)):
        if shift[i] != 0 or scale[i] != 1 or np.isfinite(lo[i]) or np.isfinite(hi[i]):
            x = raw[i, :m]
            x -= shift[i]
            x *= scale[i]
            np.clip(x, lo[i], hi[i], out=x)


def jet_columns(chunk: ak.Array, p: Mapping) -> dict[str, np.ndarray]:
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
