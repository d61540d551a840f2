"""Truth labels exactly as record 12102 defines them (schema section 2.5).

Higgs label 41: a generated Higgs whose two daughter quarks are both within dR < 0.6 of the jet
axis. Otherwise the QCD labels from the hadron counts (weakly decaying b / c hadrons within
dR < 0.8 of the jet axis, standing in for ghost association): nb >= 2 -> 51, nb = 1 -> 53,
else nc >= 2 -> 52, nc = 1 -> 54, else 55.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hhfm.features import FJ_LABEL
from hhfm.simulate.generate import Batch

HIGGS_MATCH_DR = 0.6
HADRON_MATCH_DR = 0.8
MISSING = -999.0


def _digit(a: np.ndarray, k: int) -> np.ndarray:
    return (a // 10**k) % 10


@dataclass
class Truth:
    """Per-row truth helpers of a batch (rows of Batch)."""

    last_b: np.ndarray  # weakly decaying b hadron
    last_c: np.ndarray  # weakly decaying c hadron (no b content)
    hf_ancestor: np.ndarray  # vertex hadron of each row: nearest b-hadron ancestor, else nearest c, else -1
    from_b: np.ndarray  # descends from a b hadron
    higgs: np.ndarray  # rows of hard-process Higgs bosons
    higgs_d1: np.ndarray  # rows of their two daughters
    higgs_d2: np.ndarray
    partons: np.ndarray  # rows of outgoing hard-process partons (status -23)


def _propagate(seed: np.ndarray, mother: np.ndarray, fill) -> np.ndarray:
    """Value of the nearest ancestor (via mother1) whose seed differs from `fill` (rows keep their own).

    Pointer jumping: after i passes every row has looked 2**i generations up, so a handful of
    vectorised passes cover the deepest Pythia history.
    """
    rows = np.arange(len(seed))
    out = seed.copy()
    up = np.where(mother >= 0, mother, rows)
    for _ in range(64):
        new = np.where(out == fill, out[up], out)
        up_next = up[up]
        if np.array_equal(up_next, up) and np.array_equal(new, out):
            break
        out, up = new, up_next
    return out


def truth_tables(batch: Batch) -> Truth:
    """Heavy-flavour hadrons, ancestry and hard-process objects of a batch."""
    a = np.abs(batch.pid)
    hrows = np.flatnonzero((np.abs(batch.status) >= 80) & (a > 100))
    ah = a[hrows]
    b_digit = (_digit(ah, 2) == 5) | (_digit(ah, 3) == 5)
    c_digit = ~b_digit & ((_digit(ah, 2) == 4) | (_digit(ah, 3) == 4))
    has_b = np.zeros(len(a), dtype=bool)
    has_b[hrows[b_digit]] = True
    has_c = np.zeros(len(a), dtype=bool)
    has_c[hrows[c_digit]] = True
    mothers_of_b = np.zeros(len(a), dtype=bool)
    mothers_of_b[batch.mother1[has_b & (batch.mother1 >= 0)]] = True
    mothers_of_c = np.zeros(len(a), dtype=bool)
    mothers_of_c[batch.mother1[has_c & (batch.mother1 >= 0)]] = True
    last_b = has_b & ~mothers_of_b
    last_c = has_c & ~mothers_of_c
    rows = np.arange(len(a))
    b_ancestor = _propagate(np.where(last_b, rows, -1), batch.mother1, -1)
    c_ancestor = _propagate(np.where(last_c, rows, -1), batch.mother1, -1)
    hf_ancestor = np.where(b_ancestor >= 0, b_ancestor, c_ancestor)  # b -> c cascades form one vertex
    from_b = _propagate(last_b.astype(np.int8), batch.mother1, 0).astype(bool)
    higgs = np.flatnonzero((batch.pid == 25) & (np.abs(batch.status) == 22))
    partons = np.flatnonzero((batch.status == -23) & ((a <= 5) | (a == 21)))
    return Truth(last_b, last_c, hf_ancestor, from_b, higgs, batch.daughter1[higgs], batch.daughter2[higgs], partons)


def eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pt = np.maximum(np.hypot(px, py), 1e-9)
    return np.arcsinh(pz / pt), np.arctan2(py, px)


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1, phi1, eta2, phi2) -> np.ndarray:
    return np.hypot(eta1 - eta2, delta_phi(phi1, phi2))


def pairs_by_event(jet_event: np.ndarray, obj_event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (jet, object) index pairs in the same event; `obj_event` must be sorted."""
    n_ev = int(max(jet_event.max(initial=-1), obj_event.max(initial=-1))) + 1
    start = np.searchsorted(obj_event, np.arange(n_ev), side="left")
    stop = np.searchsorted(obj_event, np.arange(n_ev), side="right")
    n = (stop - start)[jet_event]
    jets = np.repeat(np.arange(len(jet_event)), n)
    first = np.repeat(start[jet_event], n)
    within = np.arange(len(jets)) - np.repeat(np.cumsum(n) - n, n)
    return jets, first + within


def _pairs_with_rows(batch: Batch, rows: np.ndarray, jet_event: np.ndarray):
    """`rows` sorted by event (stable), their `order`, and every same-event (jet, position in rows) pair."""
    order = np.argsort(batch.event[rows], kind="stable")
    rows = rows[order]
    j, o = pairs_by_event(jet_event, batch.event[rows])
    return rows, order, j, o


def _count_within(batch: Batch, rows: np.ndarray, jet_event, jet_eta, jet_phi, dr: float) -> np.ndarray:
    rows, _, j, o = _pairs_with_rows(batch, rows, jet_event)
    eta, phi = eta_phi(batch.px[rows], batch.py[rows], batch.pz[rows])
    close = delta_r(jet_eta[j], jet_phi[j], eta[o], phi[o]) < dr
    return np.bincount(j[close], minlength=len(jet_event))


def _higgs_match(batch: Batch, truth: Truth, jet_event, jet_eta, jet_phi) -> tuple[np.ndarray, ...]:
    """(is H->bb jet, gen pT, gen eta, legacy label) of each jet: both Higgs daughters within
    HIGGS_MATCH_DR of the jet axis; legacy label 4 for a Higgs within HADRON_MATCH_DR."""
    n = len(jet_event)
    gen_pt, gen_eta = np.full(n, MISSING), np.full(n, MISSING)
    is_h, legacy = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
    if not len(truth.higgs):
        return is_h, gen_pt, gen_eta, legacy
    h, order, j, o = _pairs_with_rows(batch, truth.higgs, jet_event)
    d1, d2 = truth.higgs_d1[order], truth.higgs_d2[order]
    e1, p1 = eta_phi(batch.px[d1[o]], batch.py[d1[o]], batch.pz[d1[o]])
    e2, p2 = eta_phi(batch.px[d2[o]], batch.py[d2[o]], batch.pz[d2[o]])
    eh, ph = eta_phi(batch.px[h[o]], batch.py[h[o]], batch.pz[h[o]])
    match = (delta_r(jet_eta[j], jet_phi[j], e1, p1) < HIGGS_MATCH_DR) & (
        delta_r(jet_eta[j], jet_phi[j], e2, p2) < HIGGS_MATCH_DR
    )
    near = delta_r(jet_eta[j], jet_phi[j], eh, ph) < HADRON_MATCH_DR
    legacy[j[near]] = 4
    jm, om = j[match], o[match]
    is_h[jm] = True
    gen_pt[jm] = np.hypot(batch.px[h[om]], batch.py[h[om]])
    gen_eta[jm] = eh[match]
    return is_h, gen_pt, gen_eta, legacy


def _label_flags(label: np.ndarray, nb: np.ndarray, nc: np.ndarray) -> dict[str, np.ndarray]:
    """The one-hot `label_*` branches and the fj_is* / hadron-count branches of the labels."""
    out = {f"label_{name}": (label == code).astype(np.int32) for name, code in FJ_LABEL.items()}
    out["fj_isTop"] = ((label >= 10) & (label < 20)).astype(np.int32)
    out["fj_isW"] = ((label >= 20) & (label < 30)).astype(np.int32)
    out["fj_isZ"] = ((label >= 30) & (label < 40)).astype(np.int32)
    out["fj_isH"] = ((label >= 40) & (label < 50)).astype(np.int32)
    out["fj_isQCD"] = (label >= 50).astype(np.int32)
    out["fj_isBB"] = (nb >= 2).astype(np.int32)
    out["fj_isNonBB"] = (nb < 2).astype(np.int32)
    out["fj_nbHadrons"] = nb.astype(np.int32)
    out["fj_ncHadrons"] = nc.astype(np.int32)
    return out


def jet_labels(batch: Batch, truth: Truth, jet_event: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray,
               is_qcd_sample: bool) -> dict[str, np.ndarray]:  # fmt: skip
    """Every label branch of the record for the given jets (event index within the batch)."""
    nb = _count_within(batch, np.flatnonzero(truth.last_b), jet_event, jet_eta, jet_phi, HADRON_MATCH_DR)
    nc = _count_within(batch, np.flatnonzero(truth.last_c), jet_event, jet_eta, jet_phi, HADRON_MATCH_DR)
    is_h, gen_pt, gen_eta, legacy = _higgs_match(batch, truth, jet_event, jet_eta, jet_phi)
    label = np.where(
        nb >= 2, FJ_LABEL["QCD_bb"],
        np.where(nb == 1, FJ_LABEL["QCD_b"],
                 np.where(nc >= 2, FJ_LABEL["QCD_cc"], np.where(nc == 1, FJ_LABEL["QCD_c"], FJ_LABEL["QCD_others"]))),
    )  # fmt: skip
    label = np.where(is_h, FJ_LABEL["H_bb"], label)
    out: dict[str, np.ndarray] = {"fj_label": label, **_label_flags(label, nb, nc)}
    out["fj_labelLegacy"] = legacy.astype(np.int32)
    out["fj_labelJMAR"] = legacy.astype(np.int32)
    out["fj_gen_pt"] = gen_pt
    out["fj_gen_eta"] = gen_eta
    out["sample_isQCD"] = np.full(len(jet_event), int(is_qcd_sample), dtype=np.int32)
    out.update(_ak4_flavour(batch, truth, jet_event, jet_eta, jet_phi, nb, nc))
    return out


def _ak4_flavour(batch, truth, jet_event, jet_eta, jet_phi, nb, nc) -> dict[str, np.ndarray]:
    """One-hot hadron/parton flavour of the fat jet (isB, isBB, ..., isUndefined)."""
    n = len(jet_event)
    parton = np.zeros(n, dtype=np.int64)  # |pdgId| of the nearest hard parton within 0.8, 0 if none
    if len(truth.partons):
        rows, _, j, o = _pairs_with_rows(batch, truth.partons, jet_event)
        eta, phi = eta_phi(batch.px[rows], batch.py[rows], batch.pz[rows])
        dr = delta_r(jet_eta[j], jet_phi[j], eta[o], phi[o])
        best = np.full(n, np.inf)
        np.minimum.at(best, j, dr)
        hit = (dr == best[j]) & (dr < HADRON_MATCH_DR)
        parton[j[hit]] = np.abs(batch.pid[rows[o[hit]]])
    flags = {
        "isBB": nb >= 2,
        "isB": nb == 1,
        "isLeptonicB": np.zeros(n, dtype=bool),
        "isLeptonicB_C": np.zeros(n, dtype=bool),
        "isC": (nb == 0) & (nc >= 1),
    }
    light = (nb == 0) & (nc == 0)
    flags["isS"] = light & (parton == 3)
    flags["isUD"] = light & ((parton == 1) | (parton == 2))
    flags["isG"] = light & (parton == 21)
    flags["isUndefined"] = light & ~(flags["isS"] | flags["isUD"] | flags["isG"])
    return {k: v.astype(np.int32) for k, v in flags.items()}
