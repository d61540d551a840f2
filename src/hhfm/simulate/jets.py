"""FastJet jets: anti-kT R=0.8 on PF candidates, soft drop (beta=0, z_cut=0.1) by C/A
reclustering + `exclusive_jets_softdrop_grooming`, N-subjettiness tau1..3 (beta=1, exclusive kT
axes, computed in numpy: fastjet's njettiness costs as much as the generation), soft-drop subjets
(the two exclusive C/A subjets of the groomed constituents)."""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import awkward as ak
import numpy as np

from hhfm.simulate.detector import Reco

R = 0.8
CA_RECLUSTER_R = 10.0
SD_BETA, SD_ZCUT = 0.0, 0.1
JET_MIN_PT_ALL = 20.0  # jets counted for `jet_no` (before the pT/eta selection)


@contextlib.contextmanager
def _no_banner():
    """FastJet prints a banner once on stdout at first use; keep it out of our outputs."""
    fd = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # fastjet's note on exclusive anti-kT jets
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


def _four(px, py, pz, e, counts) -> ak.Array:
    rec = ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D")
    return ak.unflatten(rec, counts)


@dataclass
class Jets:
    """Selected jets of a batch; constituents are rows of the Reco table (`cons_offsets` per jet)."""

    event: np.ndarray
    jet_no: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    cons: np.ndarray  # reco rows, concatenated per jet
    cons_offsets: np.ndarray
    msd: np.ndarray
    tau: np.ndarray  # (n_jets, 3)
    subjets: np.ndarray  # (n_jets, 2, 4) px, py, pz, E (0 if missing), ordered by pT
    n_subjets: np.ndarray
    subjet_shapes: np.ndarray  # (n_jets, 2, 4) ptD, axis1, axis2, mult

    def __len__(self) -> int:
        return len(self.event)


def cluster(reco: Reco, min_pt: float, max_eta: float) -> Jets:
    """Cluster every event of the batch and compute soft drop, N-subjettiness and subjets."""
    import fastjet

    counts = np.diff(reco.offsets)
    events = _four(reco.px, reco.py, reco.pz, reco.e, counts)
    with _no_banner():
        cs = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.antikt_algorithm, R))
        jets = cs.inclusive_jets(min_pt=JET_MIN_PT_ALL)
        idx = cs.constituent_index(min_pt=JET_MIN_PT_ALL)
    jpx, jpy, jpz, je = (np.asarray(ak.flatten(jets[f])) for f in ("px", "py", "pz", "E"))
    njet = ak.to_numpy(ak.num(jets, axis=1))
    jev = np.repeat(np.arange(len(counts)), njet)
    jpt = np.hypot(jpx, jpy)
    # pT ordering within each event -> jet_no
    order = np.lexsort((-jpt, jev))
    rank = np.empty(len(order), dtype=np.int64)
    starts = np.repeat(np.cumsum(njet) - njet, njet)
    rank[order] = np.arange(len(order)) - starts[order] if len(order) else rank[order]
    eta = np.arcsinh(jpz / np.maximum(jpt, 1e-9))
    sel_unsorted = np.flatnonzero((jpt > min_pt) & (np.abs(eta) < max_eta))
    sel = sel_unsorted[np.lexsort((rank[sel_unsorted], jev[sel_unsorted]))]  # event order, then pT

    flat_idx = ak.flatten(idx, axis=1)  # per jet (all events), local constituent indices
    cons_local = flat_idx[sel]
    ncons = ak.to_numpy(ak.num(cons_local, axis=1))
    cons = np.asarray(ak.flatten(cons_local)).astype(np.int64) + np.repeat(reco.offsets[jev[sel]], ncons)
    cons_offsets = np.concatenate([[0], np.cumsum(ncons)]).astype(np.int64)

    msd, tau, subjets, nsub, shapes = substructure(reco, cons, ncons)
    return Jets(jev[sel], rank[sel], jpx[sel], jpy[sel], jpz[sel], je[sel], cons, cons_offsets,
                msd, tau, subjets, nsub, shapes)  # fmt: skip


def substructure(reco: Reco, cons: np.ndarray, ncons: np.ndarray):
    """Soft-drop mass, tau1..3 and the two soft-drop subjets of each jet."""
    import fastjet

    n = len(ncons)
    tau = np.zeros((n, 3))
    msd = np.zeros(n)
    subjets = np.zeros((n, 2, 4))
    shapes = np.zeros((n, 2, 4))
    nsub = np.zeros(n, dtype=np.int64)
    if n == 0:
        return msd, tau, subjets, nsub, shapes
    parts = _four(reco.px[cons], reco.py[cons], reco.pz[cons], reco.e[cons], ncons)
    ca = fastjet.JetDefinition(fastjet.cambridge_algorithm, CA_RECLUSTER_R)
    with _no_banner():
        cs = fastjet.ClusterSequence(parts, ca)
        sd = cs.exclusive_jets_softdrop_grooming(njets=1, beta=SD_BETA, symmetry_cut=SD_ZCUT, R0=R)
        kt = fastjet.ClusterSequence(parts, fastjet.JetDefinition(fastjet.kt_algorithm, CA_RECLUSTER_R))
        axes = [kt.exclusive_jets_up_to(n_jets=k) for k in (1, 2, 3)]
    msd = np.nan_to_num(np.asarray(sd.msoftdrop, dtype=np.float64))
    tau = nsubjettiness(reco, cons, ncons, axes)
    groomed = sd.constituents
    ng = ak.to_numpy(ak.num(groomed, axis=1))
    two = np.flatnonzero(ng >= 2)
    nsub[ng == 1] = 1
    if len(two):
        g = groomed[two]
        g = ak.zip({"px": g.px, "py": g.py, "pz": g.pz, "E": g.E}, with_name="Momentum4D")
        with _no_banner():
            cs2 = fastjet.ClusterSequence(g, ca)
            sj = cs2.exclusive_jets(n_jets=2)
            sjc = cs2.exclusive_jets_constituents(njets=2)
        v = np.stack([ak.to_numpy(sj[f]) for f in ("px", "py", "pz", "E")], axis=-1)  # (m, 2, 4)
        spt = np.hypot(v[..., 0], v[..., 1])
        flip = spt[:, 1] > spt[:, 0]
        v[flip] = v[flip][:, ::-1]
        subjets[two] = v
        nsub[two] = 2
        shapes[two] = _subjet_shapes(sjc, v, flip)
    # a jet groomed to a single particle: that particle is the one subjet
    one = np.flatnonzero(ng == 1)
    if len(one):
        g = groomed[one]
        subjets[one, 0] = np.stack([ak.to_numpy(ak.firsts(g[f])) for f in ("px", "py", "pz", "E")], -1)
        shapes[one, 0] = [1.0, 0.0, 0.0, 1.0]
    return msd, tau, subjets, nsub, shapes


def nsubjettiness(reco: Reco, cons: np.ndarray, ncons: np.ndarray, axes: list[ak.Array]) -> np.ndarray:
    """tau_N (N=1..3, beta=1, normalised by sum pT * R0) with exclusive kT axes; (n_jets, 3)."""
    n = len(ncons)
    jet = np.repeat(np.arange(n), ncons)
    pt = reco.pt[cons]
    eta = np.arcsinh(reco.pz[cons] / np.maximum(pt, 1e-9))
    phi = np.arctan2(reco.py[cons], reco.px[cons])
    norm = np.maximum(np.bincount(jet, pt, n) * R, 1e-12)
    tau = np.zeros((n, 3))
    for k, ax in enumerate(axes):
        counts = ak.to_numpy(ak.num(ax, axis=1))
        flat = {f: ak.to_numpy(ak.flatten(ax[f])) for f in ("px", "py", "pz")}
        apt = np.hypot(flat["px"], flat["py"])
        aeta_flat = np.arcsinh(flat["pz"] / np.maximum(apt, 1e-9))
        aphi_flat = np.arctan2(flat["py"], flat["px"])
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        best = np.full(len(pt), np.inf)
        for a in range(k + 1):
            has = counts > a
            idx = np.where(has, start + a, 0)
            aeta = np.where(has, aeta_flat[idx] if len(aeta_flat) else 0.0, np.nan)
            aphi = np.where(has, aphi_flat[idx] if len(aphi_flat) else 0.0, np.nan)
            dr = np.hypot(eta - aeta[jet], (phi - aphi[jet] + np.pi) % (2 * np.pi) - np.pi)
            best = np.fmin(best, dr)
        best = np.where(np.isfinite(best), best, 0.0)
        tau[:, k] = np.bincount(jet, pt * best, n) / norm
        if k:  # N axes can always reproduce the N-1 axis solution: keep tau_N <= tau_(N-1)
            tau[:, k] = np.minimum(tau[:, k], tau[:, k - 1])
    return tau


def _subjet_shapes(sjc: ak.Array, axes: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """ptD, axis1, axis2 (pT^2-weighted eta/phi moments) and multiplicity of each subjet."""
    m = len(axes)
    out = np.zeros((m, 2, 4))
    for k in range(2):
        c = sjc[:, k]
        px, py, pz = (ak.to_numpy(ak.flatten(c[f])) for f in ("px", "py", "pz"))
        cnt = ak.to_numpy(ak.num(c, axis=1))
        jet = np.repeat(np.arange(m), cnt)
        pt = np.hypot(px, py)
        eta = np.arcsinh(pz / np.maximum(pt, 1e-9))
        phi = np.arctan2(py, px)
        ax = axes[:, k]
        aeta = np.arcsinh(ax[:, 2] / np.maximum(np.hypot(ax[:, 0], ax[:, 1]), 1e-9))
        aphi = np.arctan2(ax[:, 1], ax[:, 0])
        de = eta - aeta[jet]
        dp = (phi - aphi[jet] + np.pi) % (2 * np.pi) - np.pi
        w = pt**2
        sw = np.bincount(jet, w, m)
        spt = np.bincount(jet, pt, m)
        safe = np.maximum(sw, 1e-12)
        me, mp = np.bincount(jet, w * de, m) / safe, np.bincount(jet, w * dp, m) / safe
        see = np.bincount(jet, w * de * de, m) / safe - me**2
        spp = np.bincount(jet, w * dp * dp, m) / safe - mp**2
        sep = np.bincount(jet, w * de * dp, m) / safe - me * mp
        tr, det = see + spp, see * spp - sep**2
        disc = np.sqrt(np.maximum(tr**2 / 4 - det, 0.0))
        res = np.stack([np.sqrt(sw) / np.maximum(spt, 1e-12), np.sqrt(np.maximum(tr / 2 + disc, 0)),
                        np.sqrt(np.maximum(tr / 2 - disc, 0)), cnt.astype(float)], -1)  # fmt: skip
        out[:, k] = res
    out[flip] = out[flip][:, ::-1]
    return out
