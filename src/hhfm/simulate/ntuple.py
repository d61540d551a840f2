"""Per-jet record branches (schema section 2.5-2.6) from jets, PF candidates, SVs and truth."""

from __future__ import annotations

import numpy as np

from hhfm.simulate import tagger
from hhfm.simulate.detector import (
    CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON, TYPE_MASS, Reco, SecondaryVertices, track_extras,
)  # fmt: skip
from hhfm.simulate.generate import Batch
from hhfm.simulate.jets import Jets
from hhfm.simulate.labels import Truth, delta_phi, delta_r, eta_phi, jet_labels, pairs_by_event

PFCAND_MIN_PT = 0.95


def _segments(group: np.ndarray, n: int) -> np.ndarray:
    """Offsets (n+1) of a sorted group index."""
    return np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n))]).astype(np.int64)


def _kth(values: np.ndarray, offsets: np.ndarray, k: int, default: float) -> np.ndarray:
    """k-th value of each segment (values sorted within segments), `default` where too short."""
    idx = offsets[:-1] + k
    ok = idx < offsets[1:]
    out = np.full(len(offsets) - 1, default, dtype=np.float64)
    out[ok] = values[idx[ok]]
    return out


def build(batch: Batch, reco: Reco, truth: Truth, svs: SecondaryVertices, jets: Jets, event_info: dict,
          is_qcd: bool, rng: np.random.Generator, det: dict) -> tuple[dict, dict, dict, dict]:  # fmt: skip
    """(jet scalars, pfcands, tracks, svs) dicts of numpy arrays for the jets of one batch."""
    nj = len(jets)
    jpt = np.hypot(jets.px, jets.py)
    jeta, jphi = eta_phi(jets.px, jets.py, jets.pz)
    jp = np.sqrt(jpt**2 + jets.pz**2)
    jmass = np.sqrt(np.maximum(jets.e**2 - jp**2, 0.0))
    jdir = np.stack([jets.px, jets.py, jets.pz], -1) / jp[:, None]

    # subjet axes
    sj = jets.subjets
    sj_pt = np.hypot(sj[..., 0], sj[..., 1])
    sj_eta, sj_phi = eta_phi(sj[..., 0], sj[..., 1], sj[..., 2])
    sj_mass = np.sqrt(np.maximum(sj[..., 3] ** 2 - (sj[..., :3] ** 2).sum(-1), 0.0))
    has_sj = np.stack([jets.n_subjets >= 1, jets.n_subjets >= 2], -1)

    # --- PF candidates (pT >= 0.95), sorted by pT descending within each jet ---
    cjet = np.repeat(np.arange(nj), np.diff(jets.cons_offsets))
    rows = jets.cons
    keep = reco.pt[rows] >= PFCAND_MIN_PT
    cjet, rows = cjet[keep], rows[keep]
    order = np.lexsort((-reco.pt[rows], cjet))
    cjet, rows = cjet[order], rows[order]
    pf_off = _segments(cjet, nj)
    c_pt = reco.pt[rows]
    c_eta, c_phi = eta_phi(reco.px[rows], reco.py[rows], reco.pz[rows])
    ptype = reco.ptype[rows]
    charge = reco.charge[rows]
    sgn = np.where(jeta[cjet] >= 0, 1.0, -1.0)
    dr_sj = [np.where(has_sj[cjet, k], delta_r(c_eta, c_phi, sj_eta[cjet, k], sj_phi[cjet, k]), -1.0) for k in (0, 1)]

    # SVs of the event (any) for drminsv
    sv_eta, sv_phi = eta_phi(svs.px, svs.py, svs.pz)
    pj, ps = pairs_by_event(_event_of(reco, rows), svs.event)
    dmin = np.full(len(rows), np.inf)
    if len(pj):
        np.minimum.at(dmin, pj, delta_r(c_eta[pj], c_phi[pj], sv_eta[ps], sv_phi[ps]))
    drminsv = np.where(np.isfinite(dmin), dmin, -1.0)

    is_pv = reco.from_pv[rows]
    is_charged = charge != 0
    hcal = np.where(ptype == NEUTRAL_HADRON, 1.0, np.where(ptype == CHARGED_HADRON, rng.beta(5.0, 2.0, len(rows)), 0.0))
    puppi = np.where(is_charged, is_pv.astype(float), 1.0 - np.exp(-c_pt / 1.5))
    vtx_ass = np.where(is_charged, np.where(is_pv, 7.0, 1.0), 7.0)
    from_pv = np.where(is_charged, np.where(is_pv, 3.0, 0.0), 3.0)
    r_prod = np.hypot(reco.vx[rows], reco.vy[rows])
    extras = track_extras(rng, len(rows), r_prod)
    dxy, dz = reco.dxy[rows], reco.dz[rows]
    dxysig = np.where(is_charged, np.clip(dxy / np.where(is_charged, reco.dxy_err[rows], 1.0), -2000, 2000), 0.0)
    dzsig = np.where(is_charged, np.clip(dz / np.where(is_charged, reco.dz_err[rows], 1.0), -2000, 2000), 0.0)
    pf = {
        "pfcand_VTX_ass": vtx_ass,
        "pfcand_charge": charge,
        "pfcand_deltaR": delta_r(c_eta, c_phi, jeta[cjet], jphi[cjet]),
        "pfcand_drminsv": drminsv,
        "pfcand_drsubjet1": dr_sj[0],
        "pfcand_drsubjet2": dr_sj[1],
        "pfcand_dxy": dxy,
        "pfcand_dxysig": dxysig,
        "pfcand_dz": dz,
        "pfcand_dzsig": dzsig,
        "pfcand_erel": reco.e[rows] / jets.e[cjet],
        "pfcand_etarel": sgn * (c_eta - jeta[cjet]),
        "pfcand_fromPV": from_pv,
        "pfcand_hcalFrac": hcal,
        "pfcand_isChargedHad": (ptype == CHARGED_HADRON).astype(float),
        "pfcand_isEl": (ptype == ELECTRON).astype(float),
        "pfcand_isGamma": (ptype == PHOTON).astype(float),
        "pfcand_isMu": (ptype == MUON).astype(float),
        "pfcand_isNeutralHad": (ptype == NEUTRAL_HADRON).astype(float),
        "pfcand_lostInnerHits": np.where(is_charged, extras["lostInnerHits"], 0.0),
        "pfcand_mass": TYPE_MASS[ptype],
        "pfcand_phirel": delta_phi(c_phi, jphi[cjet]),
        "pfcand_ptrel": c_pt / jpt[cjet],
        "pfcand_puppiw": puppi,
    }

    # --- tracks: the charged PF candidates, with b-tag variables; sorted by 2D IP significance ---
    t = np.flatnonzero(is_charged)
    tjet = cjet[t]
    trows = rows[t]
    p3 = np.stack([reco.px[trows], reco.py[trows], reco.pz[trows]], -1)
    pmag = np.linalg.norm(p3, axis=-1)
    jd = jdir[tjet]
    ux, uy = p3[:, 0] / c_pt[t], p3[:, 1] / c_pt[t]
    pca_dot_jet = dxy[t] * (uy * jd[:, 0] - ux * jd[:, 1])
    sign = np.where(pca_dot_jet >= 0, 1.0, -1.0)
    sxy, sz = reco.dxy_err[trows], reco.dz_err[trows]
    sin_t = c_pt[t] / pmag
    ip2 = sign * np.abs(dxy[t])
    ip3 = sign * np.hypot(dxy[t], dz[t] * sin_t)
    err3 = np.hypot(sxy, sz * sin_t)
    sig2_raw, sig3_raw = ip2 / sxy, ip3 / err3
    ppar = (p3 * jd).sum(-1)
    cross = np.cross(p3, jd)
    pperp = np.linalg.norm(cross, axis=-1)
    theta_rel = np.arctan2(pperp, ppar)
    eta_rel = -np.log(np.tan(np.clip(theta_rel, 1e-6, np.pi - 1e-6) / 2))
    pca = np.stack([dxy[t] * uy, -dxy[t] * ux, dz[t]], -1)
    tdir = p3 / pmag[:, None]
    txj = np.cross(tdir, jd)
    jetdist = -np.abs((pca * txj).sum(-1)) / np.maximum(np.linalg.norm(txj, axis=-1), 1e-9)
    a, b = det["track_pt_res"]
    dpt = np.hypot(a, b * c_pt[t]) / pmag
    dang = 1e-3 * np.hypot(1.0, 1.0 / c_pt[t])
    dr_sv_any = np.where(drminsv[t] >= 0, drminsv[t], 0.8)
    trk = {
        "trackBTag_DeltaR": np.clip(pf["pfcand_deltaR"][t], -5, 5),
        "trackBTag_Eta": np.clip(c_eta[t], -5, 5),
        "trackBTag_EtaRel": np.clip(eta_rel, -5, 15),
        "trackBTag_JetDistVal": np.clip(jetdist, -20, 1),
        "trackBTag_Momentum": np.clip(pmag, 0, 1000),
        "trackBTag_PPar": np.clip(ppar, -1e5, 1e5),
        "trackBTag_PParRatio": np.clip(ppar / pmag, -10, 100),
        "trackBTag_PtRatio": np.clip(pperp / pmag, -1, 10),
        "trackBTag_PtRel": np.clip(pperp, -1, 4),
        "trackBTag_Sip2dSig": np.clip(sig2_raw, -1, 4e4),
        "trackBTag_Sip2dVal": np.clip(ip2, -1, 70),
        "trackBTag_Sip3dSig": np.clip(sig3_raw, -1, 4e4),
        "trackBTag_Sip3dVal": np.clip(ip3, -1, 1e5),
        "track_VTX_ass": vtx_ass[t],
        "track_charge": charge[t],
        "track_deltaR": pf["pfcand_deltaR"][t],
        "track_detadeta": dang**2,
        "track_dlambdadz": -0.5 * dang * sz,
        "track_dphidphi": dang**2,
        "track_dphidxy": -0.5 * dang * sxy,
        "track_dptdpt": dpt**2,
        "track_drminsv": np.minimum(0.8, dr_sv_any) - 0.8,
        "track_drsubjet1": dr_sj[0][t],
        "track_drsubjet2": dr_sj[1][t],
        "track_dxy": dxy[t],
        "track_dxydxy": sxy**2,
        "track_dxydz": 0.05 * sxy * sz,
        "track_dxysig": dxysig[t],
        "track_dz": dz[t],
        "track_dzdz": sz**2,
        "track_dzsig": dzsig[t],
        "track_erel": pf["pfcand_erel"][t],
        "track_etarel": pf["pfcand_etarel"][t],
        "track_fromPV": from_pv[t],
        "track_isChargedHad": pf["pfcand_isChargedHad"][t],
        "track_isEl": pf["pfcand_isEl"][t],
        "track_isMu": pf["pfcand_isMu"][t],
        "track_lostInnerHits": pf["pfcand_lostInnerHits"][t],
        "track_mass": pf["pfcand_mass"][t],
        "track_normchi2": extras["normchi2"][t],
        "track_phirel": pf["pfcand_phirel"][t],
        "track_pt": c_pt[t],
        "track_ptrel": pf["pfcand_ptrel"][t],
        "track_puppiw": puppi[t],
        "track_quality": extras["quality"][t],
    }
    torder = np.lexsort((-c_pt[t], -sig2_raw, tjet))
    trk = {k: v[torder] for k, v in trk.items()}
    tk_off = _segments(tjet, nj)
    aux = {  # track quantities used for the double-b inputs (same track order)
        "jet": tjet[torder], "sig3": trk["trackBTag_Sip3dSig"], "sig2": trk["trackBTag_Sip2dSig"],
        "eta": c_eta[t][torder], "phi": c_phi[t][torder], "p3": p3[torder], "pt": c_pt[t][torder],
        "hadron": np.where(reco.truth[trows] >= 0, truth.hf_ancestor[np.maximum(reco.truth[trows], 0)], -1)[torder],
    }  # fmt: skip

    # --- SVs within dR < 0.8 of the jet, sorted by 2D flight significance ---
    sj_idx, sv_idx = pairs_by_event(jets.event, svs.event)
    dr_jsv = delta_r(jeta[sj_idx], jphi[sj_idx], sv_eta[sv_idx], sv_phi[sv_idx]) if len(sj_idx) else np.zeros(0)
    near = dr_jsv < 0.8
    sj_idx, sv_idx, dr_jsv = sj_idx[near], sv_idx[near], dr_jsv[near]
    sv_dxy = np.hypot(svs.x, svs.y)[sv_idx]
    sv_dxysig_raw = sv_dxy / svs.err_xy[sv_idx]
    sorder = np.lexsort((-sv_dxysig_raw, sj_idx))
    sj_idx, sv_idx, dr_jsv, sv_dxy, sv_dxysig_raw = (x[sorder] for x in (sj_idx, sv_idx, dr_jsv, sv_dxy, sv_dxysig_raw))
    sv_off = _segments(sj_idx, nj)
    spt = np.hypot(svs.px, svs.py)[sv_idx]
    sp = np.sqrt(spt**2 + svs.pz[sv_idx] ** 2)
    smass = np.sqrt(np.maximum(svs.e[sv_idx] ** 2 - sp**2, 0.0))
    pos = np.stack([svs.x, svs.y, svs.z], -1)[sv_idx]
    d3d = np.linalg.norm(pos, axis=-1)
    d3derr = np.sqrt((svs.err_xy[sv_idx] * sv_dxy / d3d) ** 2 + (svs.err_z[sv_idx] * pos[:, 2] / d3d) ** 2)
    mom = np.stack([svs.px, svs.py, svs.pz], -1)[sv_idx]
    sgn_sv = np.where(jeta[sj_idx] >= 0, 1.0, -1.0)
    sv = {
        "sv_chi2": svs.chi2[sv_idx],
        "sv_costhetasvpv": (pos * mom).sum(-1) / np.maximum(d3d * sp, 1e-12),
        "sv_d3d": d3d,
        "sv_d3derr": d3derr,
        "sv_d3dsig": np.clip(d3d / d3derr, -1, 800),
        "sv_deltaR": np.clip(dr_jsv - 0.5, -2, 0),
        "sv_dxy": sv_dxy,
        "sv_dxyerr": svs.err_xy[sv_idx],
        "sv_dxysig": np.clip(sv_dxysig_raw, -1, 800),
        "sv_erel": svs.e[sv_idx] / jets.e[sj_idx],
        "sv_etarel": sgn_sv * (sv_eta[sv_idx] - jeta[sj_idx]),
        "sv_mass": smass,
        "sv_ndf": svs.ndf[sv_idx],
        "sv_normchi2": np.clip(svs.chi2[sv_idx] / svs.ndf[sv_idx], -1000, 1000),
        "sv_ntracks": svs.ntracks[sv_idx],
        "sv_phirel": delta_phi(sv_phi[sv_idx], jphi[sj_idx]),
        "sv_pt": spt,
        "sv_ptrel": spt / jpt[sj_idx],
    }

    # --- jet scalars ---
    tau = jets.tau
    tau21 = np.where(tau[:, 0] > 0, tau[:, 1] / np.where(tau[:, 0] > 0, tau[:, 0], 1), 1.01)
    tau32 = np.where(tau[:, 1] > 0, tau[:, 2] / np.where(tau[:, 1] > 0, tau[:, 1], 1), 1.01)
    two = jets.n_subjets >= 2
    dr12 = np.where(two, delta_r(sj_eta[:, 0], sj_phi[:, 0], sj_eta[:, 1], sj_phi[:, 1]), 0.0)
    z = np.where(two, sj_pt[:, 1] / np.maximum(sj_pt[:, 0] + sj_pt[:, 1], 1e-9), 0.0)
    jet = {
        "fj_pt": jpt, "fj_eta": jeta, "fj_phi": jphi, "fj_mass": jmass, "fj_sdmass": jets.msd,
        "fj_tau1": tau[:, 0], "fj_tau2": tau[:, 1], "fj_tau3": tau[:, 2], "fj_tau21": tau21, "fj_tau32": tau32,
        "fj_n_sdsubjets": jets.n_subjets.astype(float),
        "fj_ptDR": np.where(two, jpt * dr12, 0.0),
        "fj_relptdiff": np.where(two, np.abs(sj_pt[:, 0] - sj_pt[:, 1]) / jpt, 0.0),
        "fj_sdn2": np.where(two, z * dr12**2, 0.0),
        "jet_pt": jpt, "jet_corr_pt": jpt, "jet_eta": jeta, "jet_phi": jphi,
        "event_no": event_info["event_no"][jets.event], "jet_no": jets.jet_no,
        "npv": event_info["npv"][jets.event], "ntrueInt": event_info["ntrueInt"][jets.event],
        "rho": event_info["rho"][jets.event],
    }  # fmt: skip
    max_sip2d_sj = [np.full(nj, -1.0), np.full(nj, -1.0)]
    for k in (0, 1):
        for name, val in (("pt", sj_pt[:, k]), ("eta", sj_eta[:, k]), ("phi", sj_phi[:, k]), ("mass", sj_mass[:, k])):
            jet[f"fj_sdsj{k + 1}_{name}"] = np.where(two, val, 0.0)
        for i, name in enumerate(("ptD", "axis1", "axis2", "mult")):
            jet[f"fj_sdsj{k + 1}_{name}"] = np.where(two, jets.subjet_shapes[:, k, i], 0.0)
        near_sj = trk[f"track_drsubjet{k + 1}"]
        close = (near_sj >= 0) & (near_sj < 0.4)
        np.maximum.at(max_sip2d_sj[k], aux["jet"][close], trk["trackBTag_Sip2dSig"][close])
        jet[f"fj_sdsj{k + 1}_csv"] = np.where(two, tagger.subjet_csv(max_sip2d_sj[k]), 0.0)

    jet.update(_doubleb_inputs(nj, jeta, jphi, sj_eta, sj_phi, two, aux, tk_off, svs, sv_idx, sv_off,
                               sv_eta, sv_phi, dr_jsv, sv_dxysig_raw, smass, trk))  # fmt: skip
    jet["fj_doubleb"] = tagger.doubleb(jet)
    jet["pfBoostedDoubleSecondaryVertexAK8BJetTags"] = jet["fj_doubleb"]
    jet.update(tagger.single_b_scores(jet, np.diff(sv_off)))
    mu = pf["pfcand_isMu"] > 0
    el = pf["pfcand_isEl"] > 0
    jet["softPFMuonBJetTags"] = _lepton_tag(mu, cjet, pf["pfcand_ptrel"], pf["pfcand_deltaR"], nj)
    jet["softPFElectronBJetTags"] = _lepton_tag(el, cjet, pf["pfcand_ptrel"], pf["pfcand_deltaR"], nj)

    # jet ID from energy fractions, generator-level pT from the true momenta of the constituents
    jet.update(_jet_id(reco, jets, nj))
    tr = reco.truth[jets.cons]
    allj = np.repeat(np.arange(nj), np.diff(jets.cons_offsets))
    real = tr >= 0
    gpx = np.bincount(allj[real], batch.px[tr[real]], nj)
    gpy = np.bincount(allj[real], batch.py[tr[real]], nj)
    jet["gen_pt"] = np.hypot(gpx, gpy)
    jet["Delta_gen_pt"] = jet["gen_pt"] - jpt

    jet.update(jet_labels(batch, truth, jets.event, jeta, jphi, is_qcd))
    return jet, pf, trk, sv, {"pfcands": pf_off, "tracks": tk_off, "sv": sv_off}


def _event_of(reco: Reco, rows: np.ndarray) -> np.ndarray:
    return np.searchsorted(reco.offsets, rows, side="right") - 1


def _lepton_tag(mask, cjet, ptrel, dr, nj) -> np.ndarray:
    """Soft-lepton score: pT-rel-like discriminant of the hardest lepton, -1 without one."""
    out = np.full(nj, -1.0)
    val = np.tanh(20 * ptrel[mask] * np.clip(dr[mask], 0.01, 0.8))
    np.maximum.at(out, cjet[mask], val)
    return out


def _jet_id(reco: Reco, jets: Jets, nj: int) -> dict[str, np.ndarray]:
    """2016 PF loose / tight jet ID from neutral/charged energy fractions."""
    rows = jets.cons
    j = np.repeat(np.arange(nj), np.diff(jets.cons_offsets))
    e = reco.e[rows]
    tot = np.maximum(np.bincount(j, e, nj), 1e-9)
    pt = reco.ptype[rows]
    nhf = np.bincount(j, e * (pt == NEUTRAL_HADRON), nj) / tot
    nemf = np.bincount(j, e * (pt == PHOTON), nj) / tot
    chf = np.bincount(j, e * (pt == CHARGED_HADRON), nj) / tot
    cef = np.bincount(j, e * (pt == ELECTRON), nj) / tot
    chm = np.bincount(j, (reco.charge[rows] != 0).astype(float), nj)
    ncons = np.diff(jets.cons_offsets)
    loose = (nhf < 0.99) & (nemf < 0.99) & (ncons > 1) & (chf > 0) & (chm > 0) & (cef < 0.99)
    tight = loose & (nhf < 0.90) & (nemf < 0.90)
    return {"jet_looseId": loose.astype(float), "jet_tightId": tight.astype(float)}


def _doubleb_inputs(nj, jeta, jphi, sj_eta, sj_phi, two, aux, tk_off, svs, sv_idx, sv_off, sv_eta, sv_phi,
                    dr_jsv, sv_sig, smass, trk) -> dict[str, np.ndarray]:  # fmt: skip
    """The 27 inputs of the double-b tagger (schema 2.5) with their defaults; tau axes = subjet axes."""
    out: dict[str, np.ndarray] = {}
    sig3 = aux["sig3"]
    # jet-level largest 3D IP significances
    o3 = np.lexsort((-sig3, aux["jet"]))
    for k in range(4):
        out[f"fj_trackSipdSig_{k}"] = _kth(sig3[o3], tk_off, k, -50.0)
    out["fj_jetNTracks"] = np.bincount(aux["jet"], (aux["pt"] > 1.0).astype(float), nj)
    out["fj_nSV"] = np.bincount(np.repeat(np.arange(nj), np.diff(sv_off)), (dr_jsv < 0.7).astype(float), nj)
    # axes: subjets if two, else the jet axis for axis 0 and none for axis 1
    ax_eta = np.stack([np.where(two, sj_eta[:, 0], jeta), sj_eta[:, 1]], -1)
    ax_phi = np.stack([np.where(two, sj_phi[:, 0], jphi), sj_phi[:, 1]], -1)
    tj = aux["jet"]
    d0 = delta_r(aux["eta"], aux["phi"], ax_eta[tj, 0], ax_phi[tj, 0])
    d1 = np.where(two[tj], delta_r(aux["eta"], aux["phi"], ax_eta[tj, 1], ax_phi[tj, 1]), np.inf)
    near1 = d1 < d0
    for a, mask in ((0, ~near1), (1, near1)):
        sel = np.flatnonzero(mask)
        oo = sel[np.lexsort((-sig3[sel], tj[sel]))]
        off = _segments(tj[oo], nj)
        for k in range(2):
            out[f"fj_trackSipdSig_{a}_{k}"] = _kth(sig3[oo], off, k, -50.0)
    # tracks lifting the running mass above the charm / bottom thresholds (tracks ordered by Sip2dSig)
    above_c = np.full(nj, -19.0)
    above_b = np.full((nj, 2), -19.0)
    p3 = aux["p3"]
    e = np.sqrt((p3**2).sum(-1) + 0.13957**2)
    for j in range(nj):
        s, t = tk_off[j], tk_off[j + 1]
        if t == s:
            continue
        ce, cp = np.cumsum(e[s:t]), np.cumsum(p3[s:t], axis=0)
        m = np.sqrt(np.maximum(ce**2 - (cp**2).sum(-1), 0.0))
        ic = np.flatnonzero(m > 1.5)
        if len(ic):
            above_c[j] = aux["sig2"][s + ic[0]]
        ib = np.flatnonzero(m > 5.2)
        if len(ib):
            above_b[j, 0] = aux["sig2"][s + ib[0]]
            if ib[0] + 1 < t - s:
                above_b[j, 1] = aux["sig2"][s + ib[0] + 1]
    out["fj_trackSip2dSigAboveCharm_0"] = above_c
    out["fj_trackSip2dSigAboveBottom_0"] = above_b[:, 0]
    out["fj_trackSip2dSigAboveBottom_1"] = above_b[:, 1]
    # per-axis leading SV (SVs in a jet are sorted by flight significance)
    vmass = np.full((nj, 2), -1.0)
    veratio = np.full((nj, 2), -1.0)
    vfd = np.full((nj, 2), -1.0)
    vdr0 = np.full(nj, -1.0)
    etarel = np.full((nj, 2, 3), -1.0)
    zr = np.full(nj, -3.0)
    for j in range(nj):
        s, t = sv_off[j], sv_off[j + 1]
        if t == s:
            continue
        chosen = [-1, -1]
        for i in range(s, t):
            v = sv_idx[i]
            da = [delta_r(sv_eta[v], sv_phi[v], ax_eta[j, 0], ax_phi[j, 0]),
                  delta_r(sv_eta[v], sv_phi[v], ax_eta[j, 1], ax_phi[j, 1]) if two[j] else np.inf]  # fmt: skip
            a = int(np.argmin(da))
            if da[a] < 0.7 and chosen[a] < 0:
                chosen[a] = i
        svp = []
        for a in (0, 1):
            i = chosen[a]
            if i < 0:
                continue
            v = sv_idx[i]
            vmass[j, a] = smass[i]
            vfd[j, a] = min(sv_sig[i], 800.0)
            ts, tt = tk_off[j], tk_off[j + 1]
            mine = np.flatnonzero(aux["hadron"][ts:tt] == svs.hadron[v]) + ts
            tk_e = e[ts:tt].sum()
            veratio[j, a] = svs.e[v] / tk_e if tk_e > 0 else -1.0
            rel = np.sort(_eta_rel(p3[mine], ax_eta[j, a], ax_phi[j, a]))[:3]
            etarel[j, a, : len(rel)] = rel
            if a == 0:
                vdr0[j] = delta_r(sv_eta[v], sv_phi[v], ax_eta[j, 0], ax_phi[j, 0])
            svp.append(np.array([svs.px[v], svs.py[v], svs.pz[v], svs.e[v]]))
        if len(svp) == 2:
            tot = svp[0] + svp[1]
            m = np.sqrt(max(tot[3] ** 2 - (tot[:3] ** 2).sum(), 1e-9))
            e0, p0 = eta_phi(*svp[0][:3])
            e1, p1 = eta_phi(*svp[1][:3])
            zr[j] = delta_r(e0, p0, e1, p1) * np.hypot(svp[1][0], svp[1][1]) / m
        elif len(svp) == 1:
            m = np.sqrt(max(svp[0][3] ** 2 - (svp[0][:3] ** 2).sum(), 1e-9))
            e0, p0 = eta_phi(*svp[0][:3])
            zr[j] = delta_r(e0, p0, jeta[j], jphi[j]) * np.hypot(svp[0][0], svp[0][1]) / m
    for a in (0, 1):
        out[f"fj_tau_vertexMass_{a}"] = vmass[:, a]
        out[f"fj_tau_vertexEnergyRatio_{a}"] = veratio[:, a]
        out[f"fj_tau_flightDistance2dSig_{a}"] = vfd[:, a]
        for k in range(3):
            out[f"fj_tau{a}_trackEtaRel_{k}"] = etarel[:, a, k]
    out["fj_tau_vertexDeltaR_0"] = vdr0
    out["fj_z_ratio"] = zr
    return out


def _eta_rel(p3: np.ndarray, eta: float, phi: float) -> np.ndarray:
    """Pseudorapidity of momenta relative to an axis given by (eta, phi)."""
    ax = np.array([np.cos(phi), np.sin(phi), np.sinh(eta)]) / np.cosh(eta)
    par = p3 @ ax
    perp = np.linalg.norm(np.cross(p3, ax), axis=-1)
    th = np.arctan2(perp, par)
    return -np.log(np.tan(np.clip(th, 1e-6, np.pi - 1e-6) / 2))
