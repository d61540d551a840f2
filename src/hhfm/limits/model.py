"""Score histograms, the HistFactory (pyhf) model and its expected limits for one signal mass.

Yields: signal s_i = L * sigma_ref * sum(w_sig) (signal weights are normalised to sigma x BR = 1 pb),
background b_i = L * sum(w_bkg) with MC statistical error L * sqrt(sum(w_bkg^2)); L in pb^-1.
The POI `mu` scales the signal, so the cross-section limit is mu_up * sigma_ref.
"""

from __future__ import annotations

import logging

import numpy as np
import pyhf
from scipy.optimize import brentq
from scipy.stats import norm

from hhfm.errors import InputError
from hhfm.limits.asimov import AsimovProfile, expected_cls

log = logging.getLogger("hhfm.limits")
CHANNEL = "score"
POI = "mu"
BAND_NAMES = ["m2", "m1", "exp", "p1", "p2"]  # -2, -1, median, +1, +2 sigma


def initial_edges(sig_logit: np.ndarray, bkg_logit: np.ndarray, policy: str, n_bins: int) -> np.ndarray:
    """Fine bin edges in logit (head output) space before merging; first/last edge -inf/+inf.

    `quantiles`: the union of the n_bins-quantiles of the signal and of the background logits (fine
    where either sample lives, so the merge can place the top bin just where enough background
    appears); `uniform`: n_bins bins of equal width in sigmoid score, mapped to logit space.
    Binning on the logit avoids the ties of a float32 sigmoid saturating at 1.
    """
    if policy == "uniform":
        with np.errstate(divide="ignore"):
            p = np.linspace(0.0, 1.0, n_bins + 1)
            edges = np.log(p) - np.log1p(-p)
    elif policy == "quantiles":
        q = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
        edges = np.concatenate([np.quantile(x, q) for x in (sig_logit, bkg_logit) if len(x)] + [[-np.inf, np.inf]])
    else:
        raise ValueError(f"unknown binning policy {policy!r}")
    return np.unique(edges)


def merge_edges(edges: np.ndarray, bkg_score: np.ndarray, bkg_yield: np.ndarray,
                min_background: float, min_mc: int) -> np.ndarray:
    """Merge fine bins from the highest score down until every bin has >= `min_background` expected
    background and >= `min_mc` background MC events; a leftover at the low end joins the bin above."""
    b, _ = np.histogram(bkg_score, edges, weights=bkg_yield)
    n, _ = np.histogram(bkg_score, edges)
    kept = [edges[-1]]  # upper edges of merged bins, from the top
    acc_b, acc_n = 0.0, 0
    for i in range(len(b) - 1, -1, -1):
        acc_b, acc_n = acc_b + b[i], acc_n + n[i]
        if acc_b >= min_background and acc_n >= min_mc:
            kept.append(edges[i])
            acc_b, acc_n = 0.0, 0
    if len(kept) == 1:  # not enough background anywhere: one bin
        return np.array([edges[0], edges[-1]])
    kept[-1] = edges[0]  # close the lowest bin at 0 (absorbing any leftover)
    return np.array(sorted(set(kept)))


def histograms(sig_score: np.ndarray, sig_yield: np.ndarray, bkg_score: np.ndarray, bkg_yield: np.ndarray,
               edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal yields, background yields and background MC-stat errors per bin."""
    s, _ = np.histogram(sig_score, edges, weights=sig_yield)
    b, _ = np.histogram(bkg_score, edges, weights=bkg_yield)
    b2, _ = np.histogram(bkg_score, edges, weights=bkg_yield**2)
    return s, b, np.sqrt(b2)


def workspace_spec(signal: np.ndarray, background: np.ndarray, background_err: np.ndarray,
                   normsys: float, staterror: bool, poi_max: float) -> dict:
    """pyhf workspace: free signal strength, background with staterror and normsys; Asimov B-only data."""
    bkg_modifiers = []
    if staterror:
        bkg_modifiers.append({"name": f"staterror_{CHANNEL}", "type": "staterror",
                              "data": [float(x) for x in background_err]})
    if normsys > 0:
        bkg_modifiers.append({"name": "background_norm", "type": "normsys",
                              "data": {"hi": 1.0 + normsys, "lo": max(1.0 - normsys, 1e-6)}})
    return {
        "version": "1.0.0",
        "channels": [{"name": CHANNEL, "samples": [
            {"name": "signal", "data": [float(x) for x in signal],
             "modifiers": [{"name": POI, "type": "normfactor", "data": None}]},
            {"name": "background", "data": [float(x) for x in background], "modifiers": bkg_modifiers},
        ]}],
        "observations": [{"name": CHANNEL, "data": [float(x) for x in background]}],
        "measurements": [{"name": "expected", "config": {
            "poi": POI, "parameters": [{"name": POI, "bounds": [[0.0, float(poi_max)]], "inits": [1.0]}]}}],
    }


def rough_limit(signal: np.ndarray, background: np.ndarray, background_err: np.ndarray, normsys: float) -> float:
    """Best single-bin counting estimate of the 95 % limit on mu: brackets the exact search."""
    ok = signal > 0
    if not ok.any():
        raise InputError("signal histogram is empty: no signal events in the test set for this mass")
    var = background[ok] + background_err[ok] ** 2 + (normsys * background[ok]) ** 2
    return float(np.min((2.0 * np.sqrt(var) + 3.0) / signal[ok]))


def expected_limits(spec: dict, level: float = 0.05, rtol: float = 1e-4) -> dict[str, float]:
    """Expected CLs upper limits on mu (median and +-1/2 sigma) and the expected discovery significance.

    Asymptotic q~_mu (Cowan et al.): on the Asimov background-only data (the workspace's observations)
    the band-N expected CLs is Phi(-(sqrt(q_mu,A) - N)) / Phi(N); each band's root of CLs = `level` is
    found with Brent's method, q_mu,A from the profiled Asimov likelihood of the pyhf model
    (`hhfm.limits.asimov`, stable at 1e9 events per bin, no rescaling). Significance: sqrt(q0) on the
    Asimov signal-plus-background (mu = 1) data set.
    """
    pyhf.set_backend("numpy")
    model = pyhf.Workspace(spec).model()
    prof = AsimovProfile(model, mu_data=0.0)
    out = {}
    for name, nsig in zip(BAND_NAMES, (-2, -1, 0, 1, 2)):
        f = lambda mu: np.log(max(expected_cls(np.sqrt(prof.q(mu)), nsig), 1e-300)) - np.log(level)  # noqa: E731
        guess = prof.sigma_mu * (norm.ppf(1 - level * norm.cdf(nsig)) + nsig)  # Gaussian-regime value
        lo, hi = guess / 1.5, guess * 1.5
        while f(lo) < 0 and lo > guess * 1e-6:
            lo /= 3
        while f(hi) > 0 and hi < guess * 1e6:
            hi *= 3
        out[f"mu_{name}"] = float(brentq(f, lo, hi, rtol=rtol))
    out["z_discovery"] = float(np.sqrt(AsimovProfile(model, mu_data=1.0).q(0.0)))
    return out
