"""Per-jet record branches (schema section 2.5-2.6) from jets, PF candidates, SVs and truth: `build`
assembles the jet scalars here and the jagged groups of candidates.py and vertices.py."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from hhfm.simulate import tagger
from hhfm.simulate.candidates import PFCands, Tracks, pf_candidates, tracks
from hhfm.simulate.detector import CHARGED_HADRON, ELECTRON, NEUTRAL_HADRON, PHOTON, Reco, SecondaryVertices
from hhfm.simulate.doubleb import doubleb_inputs
from hhfm.simulate.frame import JetFrame, jet_frame
from hhfm.simulate.generate import Batch
from hhfm.simulate.jets import Jets
from hhfm.simulate.labels import Truth, delta_r, jet_labels
from hhfm.simulate.vertices import JetSVs, jet_svs

SUBJET_TRACK_DR = 0.4  # tracks within this dR of a subjet enter its CSV score
Branches = dict[str, np.ndarray]


def _ratio(num: np.ndarray, den: np.ndarray, default: float) -> np.ndarray:
    """num / den where den > 0, else `default`."""
    return np.where(den > 0, num / np.where(den > 0, den, 1), default)


def _kinematics(jets: Jets, f: JetFrame, event_info: Mapping) -> Branches:
    """Jet momentum, mass, N-subjettiness and the event keys of each jet."""
    tau, ev = jets.tau, jets.event
    return {
        "fj_pt": f.pt, "fj_eta": f.eta, "fj_phi": f.phi, "fj_mass": f.mass, "fj_sdmass": jets.msd,
        "fj_tau1": tau[:, 0], "fj_tau2": tau[:, 1], "fj_tau3": tau[:, 2],
        "fj_tau21": _ratio(tau[:, 1], tau[:, 0], 1.01), "fj_tau32": _ratio(tau[:, 2], tau[:, 1], 1.01),
        "jet_pt": f.pt, "jet_corr_pt": f.pt, "jet_eta": f.eta, "jet_phi": f.phi,
        "event_no": event_info["event_no"][ev], "jet_no": jets.jet_no,
        "npv": event_info["npv"][ev], "ntrueInt": event_info["ntrueInt"][ev], "rho": event_info["rho"][ev],
    }  # fmt: skip


def _subjets(jets: Jets, f: JetFrame, tk: Tracks) -> Branches:
    """Soft-drop subjet branches (0 unless the jet has two subjets), subjet CSV from nearby tracks."""
    two = f.two
    dr12 = np.where(two, delta_r(f.sj_eta[:, 0], f.sj_phi[:, 0], f.sj_eta[:, 1], f.sj_phi[:, 1]), 0.0)
    z = np.where(two, f.sj_pt[:, 1] / np.maximum(f.sj_pt[:, 0] + f.sj_pt[:, 1], 1e-9), 0.0)
    out = {
        "fj_n_sdsubjets": jets.n_subjets.astype(float),
        "fj_ptDR": np.where(two, f.pt * dr12, 0.0),
        "fj_relptdiff": np.where(two, np.abs(f.sj_pt[:, 0] - f.sj_pt[:, 1]) / f.pt, 0.0),
        "fj_sdn2": np.where(two, z * dr12**2, 0.0),
    }
    for k in (0, 1):
        sj = f"fj_sdsj{k + 1}"
        for name, val in (("pt", f.sj_pt[:, k]), ("eta", f.sj_eta[:, k]), ("phi", f.sj_phi[:, k]),
                          ("mass", f.sj_mass[:, k])):  # fmt: skip
            out[f"{sj}_{name}"] = np.where(two, val, 0.0)
        for i, name in enumerate(("ptD", "axis1", "axis2", "mult")):
            out[f"{sj}_{name}"] = np.where(two, jets.subjet_shapes[:, k, i], 0.0)
        dr = tk.branches[f"track_drsubjet{k + 1}"]
        close = (dr >= 0) & (dr < SUBJET_TRACK_DR)
        max_sip2d = np.full(f.n, -1.0)
        np.maximum.at(max_sip2d, tk.jet[close], tk.branches["trackBTag_Sip2dSig"][close])
        out[f"{sj}_csv"] = np.where(two, tagger.subjet_csv(max_sip2d), 0.0)
    return out


def _lepton_tag(pf: PFCands, flag: str, n: int) -> np.ndarray:
    """Soft-lepton score: pT-rel-like discriminant of the hardest `flag` lepton (isMu / isEl), -1 if none."""
    mask = pf.branches[flag] > 0
    out = np.full(n, -1.0)
    val = np.tanh(20 * pf.branches["pfcand_ptrel"][mask] * np.clip(pf.branches["pfcand_deltaR"][mask], 0.01, 0.8))
    np.maximum.at(out, pf.jet[mask], val)
    return out


def _btag_scores(jet: Branches, pf: PFCands, jsv: JetSVs, n: int) -> Branches:
    """fj_doubleb and the single-b / soft-lepton scores, from the double-b inputs already in `jet`."""
    out = {"fj_doubleb": tagger.doubleb(jet)}
    out["pfBoostedDoubleSecondaryVertexAK8BJetTags"] = out["fj_doubleb"]
    out.update(tagger.single_b_scores(jet, np.diff(jsv.offsets)))
    out["softPFMuonBJetTags"] = _lepton_tag(pf, "pfcand_isMu", n)
    out["softPFElectronBJetTags"] = _lepton_tag(pf, "pfcand_isEl", n)
    return out


def _jet_id(reco: Reco, jets: Jets, nj: int) -> Branches:
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


def _gen_pt(batch: Batch, reco: Reco, jets: Jets, f: JetFrame) -> Branches:
    """Generator-level pT from the true momenta of the (non pile-up) constituents."""
    tr = reco.truth[jets.cons]
    allj = np.repeat(np.arange(f.n), np.diff(jets.cons_offsets))
    real = tr >= 0
    gpx = np.bincount(allj[real], batch.px[tr[real]], f.n)
    gpy = np.bincount(allj[real], batch.py[tr[real]], f.n)
    gen_pt = np.hypot(gpx, gpy)
    return {"gen_pt": gen_pt, "Delta_gen_pt": gen_pt - f.pt}


def build(batch: Batch, reco: Reco, truth: Truth, svs: SecondaryVertices, jets: Jets, *, event_info: Mapping,
          is_qcd: bool, rng: np.random.Generator, det: Mapping) -> tuple[Branches, ...]:  # fmt: skip
    """(jet scalars, pfcands, tracks, svs, offsets per group) for the jets of one batch."""
    f = jet_frame(jets)
    pf = pf_candidates(reco, jets, f, svs, rng)
    tk = tracks(reco, truth, f, pf, det)
    jsv = jet_svs(svs, jets, f)
    jet = {**_kinematics(jets, f, event_info), **_subjets(jets, f, tk), **doubleb_inputs(f, tk, jsv, svs)}
    jet.update(_btag_scores(jet, pf, jsv, f.n))
    jet.update(_jet_id(reco, jets, f.n))
    jet.update(_gen_pt(batch, reco, jets, f))
    jet.update(jet_labels(batch, truth, jets.event, f.eta, f.phi, is_qcd))
    offsets = {"pfcands": pf.offsets, "tracks": tk.offsets, "sv": jsv.offsets}
    return jet, pf.branches, tk.branches, jsv.branches, offsets
