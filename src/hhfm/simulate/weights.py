"""Cross-section weights of simulated events, weighted spectra and effective MC statistics.

Used to validate a biased QCD sample against the unbiased pT-hat slices (tests/test_qcd_bias.py) and to
measure what each costs (benchmarks/qcd_bias.py). An event's cross-section is sigmaGen * w / sum(w) over
the file's generated events (w = 1 for unbiased files), the normalisation the skim's merge applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hhfm.errors import InputError

#: the signal-like region of the bias benchmark: both leading jets with pT > 300 GeV and 90 < m_SD < 150 GeV
REGION_PT_MIN, REGION_SDMASS = 300.0, (90.0, 150.0)


@dataclass
class LeadingJets:
    """The two leading AK8 jets of every generated event of one or more files (NaN where absent)."""

    pt: np.ndarray  # (Ne, 2) GeV
    sdmass: np.ndarray  # (Ne, 2) GeV
    xsec_pb: np.ndarray  # (Ne,) cross-section each event stands for

    def concat(self, other: LeadingJets) -> LeadingJets:
        return LeadingJets(*(np.concatenate([a, b]) for a, b in
                             ((self.pt, other.pt), (self.sdmass, other.sdmass), (self.xsec_pb, other.xsec_pb))))  # fmt: skip


def event_xsec(side: dict) -> np.ndarray:
    """Cross-section (pb) of each generated event of a simulated file, from its sidecar dict."""
    n = int(side["n_generated"])
    w = np.ones(n) if side.get("event_weights") is None else np.asarray(side["event_weights"], dtype=np.float64)
    if len(w) != n or not np.all(np.isfinite(w)) or (w < 0).any():
        raise InputError(f"sidecar of {side.get('sample')}: 'event_weights' must be {n} finite weights >= 0")
    return float(side["cross_section_pb"]) * w / w.sum()


def leading_jets(root: str | Path, side: dict) -> LeadingJets:
    """The two leading jets (by pT) of every generated event of one simulated file and its sidecar."""
    import uproot

    from hhfm.simulate.writer import TREE

    with uproot.open(root) as f:
        cols = f[TREE].arrays(["event_no", "fj_pt", "fj_sdmass"], library="np")
    first = int(side["event_no_range"][0])
    xsec = event_xsec(side)
    pt, sd = np.full((len(xsec), 2), np.nan), np.full((len(xsec), 2), np.nan)
    ev = cols["event_no"].astype(np.int64) - first
    order = np.lexsort((-cols["fj_pt"], ev))  # by event, then pT descending
    ev, jpt, jsd = ev[order], cols["fj_pt"][order], cols["fj_sdmass"][order]
    rank = np.arange(len(ev)) - np.searchsorted(ev, ev)  # 0 for each event's leading jet
    keep = rank < 2
    pt[ev[keep], rank[keep]], sd[ev[keep], rank[keep]] = jpt[keep], jsd[keep]
    return LeadingJets(pt, sd, xsec)


def in_region(jets: LeadingJets) -> np.ndarray:
    """Events whose two leading jets both have pT > 300 GeV and 90 < m_SD < 150 GeV (NaN never passes)."""
    lo, hi = REGION_SDMASS
    with np.errstate(invalid="ignore"):
        ok = (jets.pt > REGION_PT_MIN) & (jets.sdmass > lo) & (jets.sdmass < hi)
    return ok.all(axis=1)


def effective_events(w: np.ndarray) -> float:
    """Kish's effective number of MC events (sum w)^2 / sum w^2 (0 for no events)."""
    w = np.asarray(w, dtype=np.float64)
    return float(w.sum() ** 2 / (w**2).sum()) if len(w) and (w**2).sum() > 0 else 0.0


def weighted_hist(values: np.ndarray, w: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of weights and sum of squared weights per bin (values outside the edges are dropped)."""
    ok = np.isfinite(values)
    s, _ = np.histogram(values[ok], edges, weights=w[ok])
    s2, _ = np.histogram(values[ok], edges, weights=w[ok] ** 2)
    return s, s2


def chi2_compare(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[float, int, float]:
    """chi2, ndf and p-value of two weighted histograms (sum w, sum w^2) estimating the same spectrum.

    Bins where both are empty are skipped; the variance of a difference is the sum of the sums of w^2.
    """
    from scipy.stats import chi2 as chi2_dist

    (sa, va), (sb, vb) = a, b
    use = (va + vb) > 0
    stat = float((((sa - sb) ** 2)[use] / (va + vb)[use]).sum())
    ndf = int(use.sum())
    return stat, ndf, float(chi2_dist.sf(stat, ndf)) if ndf else 1.0
