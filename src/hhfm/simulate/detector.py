"""The whole parametric detector model: particle-flow candidates, track impact parameters,
secondary vertices and pile-up. Every number comes from the `detector` / `pileup` config
(defaults in DEFAULTS); units are GeV and cm (Pythia vertices in mm are converted here).

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
- Pile-up: npv / ntrueInt / rho drawn per event from a profile; optional soft pile-up particles
  (uniform in eta/phi, exponential pT, charged ones from vertices displaced in z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hhfm.simulate.generate import Batch

DEFAULTS: dict = {
    "tracker_eta": 2.5,
    "pf_eta": 5.0,
    "track_pt_res": [0.01, 0.0001],  # sigma(pT)/pT = a (+) b*pT
    "ecal_res": [0.05, 0.01],  # sigma(E)/E = s/sqrt(E) (+) c
    "hcal_res": [1.0, 0.05],
    "dxy_res_um": [10.0, 30.0],  # sigma(dxy) = a (+) b/pT  [um, um*GeV]
    "dz_res_um": [30.0, 60.0],
    "ip_tail_fraction": 0.05,  # share of tracks whose IP error is underestimated ...
    "ip_tail_scale": 4.0,  # ... by this factor (non-Gaussian tails)
    "v0_fraction": 0.05,  # share of prompt tracks given a displaced origin (V0s, conversions, ...)
    "v0_length_cm": 1.0,  # mean flight length of that emulated parent [cm]
    "v0_angle_gev": 0.3,  # opening angle to the parent ~ this / p [rad]
    "sv_track_min_pt": 0.8,
    "sv_res_um": [100.0, 0.02],  # sigma_xy = a (+) b*flight distance
    "sv_min_dxysig": 3.0,
    "sv_efficiency_b": 0.7,
    "sv_efficiency_c": 0.5,
}
PILEUP_DEFAULTS: dict = {
    "mean": 25.0,  # mean true interactions (2016-like profile)
    "particles": False,  # overlay soft pile-up particles
    "particles_per_interaction": 10.0,
}

# particle-flow types (column order of the pfcand_is* flags)
CHARGED_HADRON, NEUTRAL_HADRON, PHOTON, ELECTRON, MUON = range(5)
TYPE_MASS = np.array([0.13957, 0.0, 0.0, 0.000511, 0.10566])
INVISIBLE = (12, 14, 16)


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


def merged(cfg: dict | None, defaults: dict) -> dict:
    """Config section over its defaults."""
    out = dict(defaults)
    out.update(cfg or {})
    return out


def pileup_profile(rng: np.random.Generator, n: int, cfg: dict) -> dict[str, np.ndarray]:
    """Per-event npv, ntrueInt (continuous, so event keys are distinct) and rho [GeV]."""
    mean = float(cfg["mean"])
    true_int = np.clip(rng.gamma(6.0, mean / 6.0, n), 0.5, 3 * mean)
    npv = np.maximum(1, rng.binomial(np.round(true_int).astype(np.int64) + 1, 0.72))
    rho = np.clip(0.55 * true_int + rng.normal(0.0, 2.0, n), 0.1, None)
    return {"ntrueInt": true_int, "npv": npv.astype(np.float64), "rho": rho}


def _type_of(pid: np.ndarray, charge: np.ndarray, eta: np.ndarray, tracker_eta: float) -> np.ndarray:
    a = np.abs(pid)
    t = np.where(charge != 0, CHARGED_HADRON, NEUTRAL_HADRON)
    t = np.where(a == 22, PHOTON, t)
    t = np.where(a == 11, ELECTRON, t)
    t = np.where(a == 13, MUON, t)
    outside = (charge != 0) & (np.abs(eta) > tracker_eta)
    return np.where(outside, np.where(a == 11, PHOTON, NEUTRAL_HADRON), t)


def reconstruct(batch: Batch, rng: np.random.Generator, det: dict, pu: dict, npu: np.ndarray) -> Reco:
    """PF candidates of a batch: visible final-state particles (+ optional pile-up), smeared."""
    vis = (batch.status > 0) & ~np.isin(np.abs(batch.pid), INVISIBLE)
    rows = np.flatnonzero(vis)
    px, py, pz = batch.px[rows], batch.py[rows], batch.pz[rows]
    pt = np.hypot(px, py)
    p = np.sqrt(pt**2 + pz**2)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-9))
    keep = (np.abs(eta) < det["pf_eta"]) & (pt > 1e-3)
    rows, px, py, pz, pt, p, eta = (a[keep] for a in (rows, px, py, pz, pt, p, eta))
    charge = batch.charge[rows]
    ptype = _type_of(batch.pid[rows], charge, eta, det["tracker_eta"])
    charge = np.where((ptype == CHARGED_HADRON) | (ptype == ELECTRON) | (ptype == MUON), charge, 0.0)
    event = batch.event[rows]
    vx, vy, vz = batch.vx[rows] / 10.0, batch.vy[rows] / 10.0, batch.vz[rows] / 10.0
    from_pv = np.ones(len(rows), dtype=bool)
    truth = rows

    if pu["particles"]:
        n_each = rng.poisson(npu * float(pu["particles_per_interaction"]))
        n = int(n_each.sum())
        pu_event = np.repeat(np.arange(batch.n_events), n_each)
        pu_pt = 0.3 + rng.exponential(0.7, n)
        pu_eta = rng.uniform(-4.0, 4.0, n)
        pu_phi = rng.uniform(-np.pi, np.pi, n)
        kind = rng.choice(3, size=n, p=[0.6, 0.25, 0.15])
        pu_charge = np.where(kind == 0, rng.choice([-1.0, 1.0], size=n), 0.0)
        pu_charge = np.where(np.abs(pu_eta) < det["tracker_eta"], pu_charge, 0.0)
        pu_type = np.where(pu_charge != 0, CHARGED_HADRON, np.where(kind == 1, PHOTON, NEUTRAL_HADRON))
        pu_vz = rng.normal(0.0, 4.0, n)
        px = np.concatenate([px, pu_pt * np.cos(pu_phi)])
        py = np.concatenate([py, pu_pt * np.sin(pu_phi)])
        pz = np.concatenate([pz, pu_pt * np.sinh(pu_eta)])
        pt = np.concatenate([pt, pu_pt])
        p = np.sqrt(px**2 + py**2 + pz**2)
        charge = np.concatenate([charge, pu_charge])
        ptype = np.concatenate([ptype, pu_type])
        event = np.concatenate([event, pu_event])
        vx = np.concatenate([vx, np.zeros(n)])
        vy = np.concatenate([vy, np.zeros(n)])
        vz = np.concatenate([vz, pu_vz])
        from_pv = np.concatenate([from_pv, np.zeros(n, dtype=bool)])
        truth = np.concatenate([truth, -np.ones(n, dtype=np.int64)])
        order = np.argsort(event, kind="stable")
        px, py, pz, pt, p, charge, ptype, event, vx, vy, vz, from_pv, truth = (
            a[order] for a in (px, py, pz, pt, p, charge, ptype, event, vx, vy, vz, from_pv, truth)
        )

    # --- momentum smearing by type (direction kept) ---
    energy_true = p
    track = charge != 0
    a, b = det["track_pt_res"]
    res_trk = np.hypot(a, b * pt)
    s_e, c_e = det["ecal_res"]
    res_ecal = np.hypot(s_e / np.sqrt(np.maximum(energy_true, 1e-3)), c_e)
    s_h, c_h = det["hcal_res"]
    res_hcal = np.hypot(s_h / np.sqrt(np.maximum(energy_true, 1e-3)), c_h)
    res = np.where(track, res_trk, np.where(ptype == PHOTON, res_ecal, res_hcal))
    scale = np.clip(1.0 + res * rng.standard_normal(len(pt)), 0.05, None)
    px, py, pz, pt, p = px * scale, py * scale, pz * scale, pt * scale, p * scale
    e = np.sqrt(p**2 + TYPE_MASS[ptype] ** 2)

    # --- emulated long-lived parents of light tracks (V0s, conversions, nuclear interactions) ---
    prompt = (charge != 0) & from_pv & (np.hypot(vx, vy) < 1e-3)
    v0 = prompt & (rng.random(len(pt)) < det["v0_fraction"])
    n_v0 = int(v0.sum())
    if n_v0:
        length = rng.exponential(det["v0_length_cm"], n_v0)
        alpha = rng.normal(0.0, 1.0, (n_v0, 2)) * (det["v0_angle_gev"] / p[v0])[:, None]
        d = np.stack([px[v0], py[v0], pz[v0]], -1) / p[v0, None]
        e1 = np.cross(d, [0.0, 0.0, 1.0])
        e1 /= np.maximum(np.linalg.norm(e1, axis=-1, keepdims=True), 1e-12)
        e2 = np.cross(d, e1)
        parent = d + alpha[:, :1] * e1 + alpha[:, 1:] * e2
        parent /= np.linalg.norm(parent, axis=-1, keepdims=True)
        vx, vy, vz = vx.copy(), vy.copy(), vz.copy()
        vx[v0] += length * parent[:, 0]
        vy[v0] += length * parent[:, 1]
        vz[v0] += length * parent[:, 2]

    # --- impact parameters (straight line from the true production vertex, PV at the origin) ---
    ux, uy = px / pt, py / pt
    dxy_true = vx * uy - vy * ux
    dz_true = vz - (vx * ux + vy * uy) * pz / pt
    dxy_err = 1e-4 * np.hypot(det["dxy_res_um"][0], det["dxy_res_um"][1] / pt)
    dz_err = 1e-4 * np.hypot(det["dz_res_um"][0], det["dz_res_um"][1] / pt)
    tail = np.where(rng.random(len(pt)) < det["ip_tail_fraction"], det["ip_tail_scale"], 1.0)
    dxy = dxy_true + dxy_err * tail * rng.standard_normal(len(pt))
    dz = dz_true + dz_err * tail * rng.standard_normal(len(pt))
    dxy_err = dxy_err * rng.uniform(0.9, 1.1, len(pt))
    dz_err = dz_err * rng.uniform(0.9, 1.1, len(pt))
    dxy, dz, dxy_err, dz_err = (np.where(track, x, 0.0) for x in (dxy, dz, dxy_err, dz_err))

    counts = np.bincount(event, minlength=batch.n_events)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return Reco(offsets, truth, px, py, pz, e, ptype, charge, dxy, dz, dxy_err, dz_err, vx, vy, vz, from_pv)


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
    batch: Batch, reco: Reco, hf_ancestor: np.ndarray, is_b_hadron: np.ndarray, rng: np.random.Generator, det: dict
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
