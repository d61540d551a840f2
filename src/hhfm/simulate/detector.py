"""The parametric detector model: particle-flow candidates, track impact parameters and secondary
vertices (pile-up is in pileup.py). Every number comes from the `simulate.detector` config (defaults
in config.schema.yaml); units are GeV and cm (Pythia vertices in mm are converted here).

Model (documented in README "Stage: simulate"):
- PF candidate type from |pdgId|: 11 electron, 13 muon, 22 photon, other charged -> charged
  hadron, other neutral -> neutral hadron. Charged particles outside the tracker (|eta| > 2.5)
  are seen by the calorimeters only (electrons -> photons, the rest -> neutral hadrons).
- Momentum smearing (direction kept): tracks sigma(pT)/pT = a (+) b*pT; photons and neutral
  hadrons sigma(E)/E = s/sqrt(E) (+) c. Masses set by type (pi+-, mu, e, 0).
- Track impact parameters from the true production vertex (straight line): dxy, dz, smeared
  with sigma = a (+) b/pT and a non-Gaussian tail (a fraction of tracks with a wider core),
  so prompt tracks are not at 0 and the significance is not a perfect discriminator.
- Displaced light tracks: with `limitTau0 = on` K0S / Lambda do not decay and there is no material,
  so a fraction `v0_fraction` of prompt tracks gets an emulated long-lived parent: production vertex
  at an exponential flight length along a direction `v0_angle_gev / p` away from the track. This
  gives light jets their real-world displaced tracks (and the double-b tagger its mistag rate).
- Secondary vertices: one candidate per weakly decaying b or c hadron with >= 2 reconstructed
  charged daughters (pT > sv_track_min_pt); its position is the true decay vertex smeared by a
  resolution; it is kept with a flavour-dependent efficiency if its 2D flight significance passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from hhfm.simulate.generate import Batch

# particle-flow types (column order of the pfcand_is* flags)
CHARGED_HADRON, NEUTRAL_HADRON, PHOTON, ELECTRON, MUON = range(5)
TYPE_MASS = np.array([0.13957, 0.0, 0.0, 0.000511, 0.10566])
INVISIBLE = (12, 14, 16)

#: candidate columns while a batch is reconstructed (dicts of equal-length arrays)
Columns = dict[str, np.ndarray]


@dataclass
class Reco:
    """Reconstructed PF candidates of a batch (flat arrays, `offsets` delimit events).

    `truth` is the row in the Batch (-1 for pile-up particles); lengths in cm, momenta in GeV.
    """

    offsets: np.ndarray
    truth: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    ptype: np.ndarray
    charge: np.ndarray
    dxy: np.ndarray  # measured transverse IP [cm] (0 for neutrals)
    dz: np.ndarray
    dxy_err: np.ndarray
    dz_err: np.ndarray
    vx: np.ndarray  # true production vertex [cm]
    vy: np.ndarray
    vz: np.ndarray
    from_pv: np.ndarray  # True for particles of the hard interaction

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)


def _type_of(pid: np.ndarray, charge: np.ndarray, eta: np.ndarray, tracker_eta: float) -> np.ndarray:
    a = np.abs(pid)
    t = np.where(charge != 0, CHARGED_HADRON, NEUTRAL_HADRON)
    t = np.where(a == 22, PHOTON, t)
    t = np.where(a == 11, ELECTRON, t)
    t = np.where(a == 13, MUON, t)
    outside = (charge != 0) & (np.abs(eta) > tracker_eta)
    return np.where(outside, np.where(a == 11, PHOTON, NEUTRAL_HADRON), t)


def _visible_particles(batch: Batch, det: Mapping) -> Columns:
    """Visible final-state particles inside the PF acceptance, typed, as candidate columns."""
    rows = np.flatnonzero((batch.status > 0) & ~np.isin(np.abs(batch.pid), INVISIBLE))
    px, py, pz = batch.px[rows], batch.py[rows], batch.pz[rows]
    pt = np.hypot(px, py)
    p = np.sqrt(pt**2 + pz**2)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-9))
    keep = (np.abs(eta) < det["pf_eta"]) & (pt > 1e-3)
    rows, px, py, pz, pt, p, eta = (a[keep] for a in (rows, px, py, pz, pt, p, eta))
    charge = batch.charge[rows]
    ptype = _type_of(batch.pid[rows], charge, eta, det["tracker_eta"])
    charge = np.where((ptype == CHARGED_HADRON) | (ptype == ELECTRON) | (ptype == MUON), charge, 0.0)
    return {
        "px": px, "py": py, "pz": pz, "pt": pt, "p": p, "charge": charge, "ptype": ptype,
        "event": batch.event[rows], "vx": batch.vx[rows] / 10.0, "vy": batch.vy[rows] / 10.0,
        "vz": batch.vz[rows] / 10.0, "from_pv": np.ones(len(rows), dtype=bool), "truth": rows,
    }  # fmt: skip


def _with_pileup(c: Columns, pileup: Columns) -> Columns:
    """Candidate columns with the pile-up particles appended, then sorted by event (stable)."""
    out = {k: np.concatenate([c[k], pileup[k]]) for k in pileup}
    out["p"] = np.sqrt(out["px"] ** 2 + out["py"] ** 2 + out["pz"] ** 2)
    order = np.argsort(out["event"], kind="stable")
    return {k: out[k][order] for k in c}


def _smear_momenta(c: Columns, rng: np.random.Generator, det: Mapping) -> None:
    """Smear the momenta by type (direction kept) and set energies from the type masses; in place."""
    pt, p, ptype = c["pt"], c["p"], c["ptype"]
    a, b = det["track_pt_res"]
    res_trk = np.hypot(a, b * pt)
    s_e, c_e = det["ecal_res"]
    res_ecal = np.hypot(s_e / np.sqrt(np.maximum(p, 1e-3)), c_e)
    s_h, c_h = det["hcal_res"]
    res_hcal = np.hypot(s_h / np.sqrt(np.maximum(p, 1e-3)), c_h)
    res = np.where(c["charge"] != 0, res_trk, np.where(ptype == PHOTON, res_ecal, res_hcal))
    scale = np.clip(1.0 + res * rng.standard_normal(len(pt)), 0.05, None)
    for k in ("px", "py", "pz", "pt", "p"):
        c[k] = c[k] * scale
    c["e"] = np.sqrt(c["p"] ** 2 + TYPE_MASS[ptype] ** 2)


def _displace_v0_tracks(c: Columns, rng: np.random.Generator, det: Mapping) -> None:
    """Give a share of prompt tracks an emulated long-lived parent (V0s, conversions, nuclear
    interactions): their production vertex moves along a direction close to the track; in place."""
    p = c["p"]
    prompt = (c["charge"] != 0) & c["from_pv"] & (np.hypot(c["vx"], c["vy"]) < 1e-3)
    v0 = prompt & (rng.random(len(p)) < det["v0_fraction"])
    n_v0 = int(v0.sum())
    if not n_v0:
        return
    length = rng.exponential(det["v0_length_cm"], n_v0)
    alpha = rng.normal(0.0, 1.0, (n_v0, 2)) * (det["v0_angle_gev"] / p[v0])[:, None]
    d = np.stack([c["px"][v0], c["py"][v0], c["pz"][v0]], -1) / p[v0, None]
    e1 = np.cross(d, [0.0, 0.0, 1.0])
    e1 /= np.maximum(np.linalg.norm(e1, axis=-1, keepdims=True), 1e-12)
    e2 = np.cross(d, e1)
    parent = d + alpha[:, :1] * e1 + alpha[:, 1:] * e2
    parent /= np.linalg.norm(parent, axis=-1, keepdims=True)
    for i, k in enumerate(("vx", "vy", "vz")):
        c[k] = c[k].copy()
        c[k][v0] += length * parent[:, i]


def _impact_parameters(c: Columns, rng: np.random.Generator, det: Mapping) -> Columns:
    """Measured dxy, dz and their errors (straight line from the true vertex, PV at the origin; 0 for neutrals)."""
    pz, pt, vx, vy = c["pz"], c["pt"], c["vx"], c["vy"]
    ux, uy = c["px"] / pt, c["py"] / pt
    dxy_true = vx * uy - vy * ux
    dz_true = c["vz"] - (vx * ux + vy * uy) * pz / pt
    dxy_err = 1e-4 * np.hypot(det["dxy_res_um"][0], det["dxy_res_um"][1] / pt)
    dz_err = 1e-4 * np.hypot(det["dz_res_um"][0], det["dz_res_um"][1] / pt)
    tail = np.where(rng.random(len(pt)) < det["ip_tail_fraction"], det["ip_tail_scale"], 1.0)
    dxy = dxy_true + dxy_err * tail * rng.standard_normal(len(pt))
    dz = dz_true + dz_err * tail * rng.standard_normal(len(pt))
    dxy_err = dxy_err * rng.uniform(0.9, 1.1, len(pt))
    dz_err = dz_err * rng.uniform(0.9, 1.1, len(pt))
    ip = {"dxy": dxy, "dz": dz, "dxy_err": dxy_err, "dz_err": dz_err}
    return {k: np.where(c["charge"] != 0, x, 0.0) for k, x in ip.items()}


def reconstruct(batch: Batch, rng: np.random.Generator, det: Mapping, pileup: Columns | None = None) -> Reco:
    """PF candidates of a batch: visible final-state particles (+ `pileup`, from pileup.particles), smeared."""
    c = _visible_particles(batch, det)
    if pileup is not None:
        c = _with_pileup(c, pileup)
    _smear_momenta(c, rng, det)
    _displace_v0_tracks(c, rng, det)
    ip = _impact_parameters(c, rng, det)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(c["event"], minlength=batch.n_events))])
    return Reco(offsets, c["truth"], c["px"], c["py"], c["pz"], c["e"], c["ptype"], c["charge"], ip["dxy"],
                ip["dz"], ip["dxy_err"], ip["dz_err"], c["vx"], c["vy"], c["vz"], c["from_pv"])  # fmt: skip


@dataclass
class SecondaryVertices:
    """Reconstructed SVs of a batch (flat arrays; `event` = event in batch), sorted by event."""

    event: np.ndarray
    hadron: np.ndarray  # Batch row of the true decaying hadron (truth link, used for SV-track membership)
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    x: np.ndarray  # measured position [cm]
    y: np.ndarray
    z: np.ndarray
    err_xy: np.ndarray
    err_z: np.ndarray
    ntracks: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray


def reconstruct_svs(
    batch: Batch, reco: Reco, hf_ancestor: np.ndarray, is_b_hadron: np.ndarray, rng: np.random.Generator, det: Mapping
) -> SecondaryVertices:
    """SVs from true heavy-flavour decay vertices (see module docstring)."""
    pt = reco.pt
    eta = np.arcsinh(reco.pz / pt)
    ok = (reco.charge != 0) & (reco.truth >= 0) & (pt > det["sv_track_min_pt"]) & (np.abs(eta) < det["tracker_eta"])
    cand = np.flatnonzero(ok)
    anc = hf_ancestor[reco.truth[cand]]
    cand, anc = cand[anc >= 0], anc[anc >= 0]
    hadrons, inverse, ntrk = np.unique(anc, return_inverse=True, return_counts=True)

    def total(x: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=x[cand], minlength=len(hadrons))

    spx, spy, spz, se = total(reco.px), total(reco.py), total(reco.pz), total(reco.e)
    d1 = batch.daughter1[hadrons]
    tx, ty, tz = (np.where(d1 >= 0, v[np.maximum(d1, 0)], 0.0) / 10.0 for v in (batch.vx, batch.vy, batch.vz))
    flight = np.hypot(tx, ty)
    err_xy = np.hypot(det["sv_res_um"][0] * 1e-4, det["sv_res_um"][1] * flight)
    err_z = 1.5 * err_xy
    n = len(hadrons)
    x = tx + err_xy * rng.standard_normal(n)
    y = ty + err_xy * rng.standard_normal(n)
    z = tz + err_z * rng.standard_normal(n)
    eff = np.where(is_b_hadron[hadrons], det["sv_efficiency_b"], det["sv_efficiency_c"])
    keep = (ntrk >= 2) & (np.hypot(x, y) / err_xy > det["sv_min_dxysig"]) & (rng.random(n) < eff)
    ndf = 2.0 * ntrk - 3.0
    chi2 = rng.gamma(np.maximum(ndf, 1.0), 1.0)
    event = np.searchsorted(batch.offsets, hadrons, side="right") - 1
    sel = np.flatnonzero(keep)
    return SecondaryVertices(
        event[sel], hadrons[sel], spx[sel], spy[sel], spz[sel], se[sel], x[sel], y[sel], z[sel],
        err_xy[sel] * rng.uniform(0.9, 1.1, len(sel)), err_z[sel], ntrk[sel].astype(np.float64), chi2[sel], ndf[sel],
    )  # fmt: skip


def track_extras(rng: np.random.Generator, n: int, r_prod: np.ndarray) -> dict[str, np.ndarray]:
    """Per-track quality quantities: normalised chi2, quality bitmask, lost inner hits."""
    return {
        "normchi2": np.clip(rng.gamma(5.0, 0.2, n), 0.0, 300.0),
        "quality": np.where(rng.random(n) < 0.95, 5.0, 1.0),
        "lostInnerHits": np.where(r_prod > 7.3, 2.0, np.where(r_prod > 4.4, 1.0, 0.0)),
    }
