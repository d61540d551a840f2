"""Score histograms, the HistFactory (pyhf) model and its expected limits for one signal mass.

Yields: signal s_i = L * sigma_ref * sum(w_sig) (signal weights are normalised to sigma x BR = 1 pb),
background b_i = L * sum(w_bkg) with MC statistical error L * sqrt(sum(w_bkg^2)); L in pb^-1.
The POI `mu` scales the signal, so the cross-section limit is mu_up * sigma_ref.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pyhf
from scipy.optimize import brentq

from hhfm.errors import InputError

log = logging.getLogger("hhfm.limits")
CHANNEL = "score"
POI = "mu"
BAND_NAMES = ["m2", "m1", "exp", "p1", "p2"]  # -2, -1, median, +1, +2 sigma


def initial_edges(sig_score: np.ndarray, bkg_score: np.ndarray, policy: str, n_bins: int) -> np.ndarray:
    """Fine bin edges on [0, 1] before merging.

    `quantiles`: the union of the n_bins-quantiles of the signal scores and of the background
    scores (fine where either sample lives, so the merge can place the top bin just where enough
    background appears); `uniform`: n_bins equal-width bins.
    """
    if policy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif policy == "quantiles":
        q = np.linspace(0.0, 1.0, n_bins + 1)
        edges = np.concatenate([np.quantile(x, q) for x in (sig_score, bkg_score) if len(x)] + [[0.0, 1.0]])
    else:
        raise ValueError(f"unknown binning policy {policy!r}")
    return np.unique(np.clip(edges, 0.0, 1.0))


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


def _scaled(spec: dict, factor: float, poi_max: float) -> dict:
    """Copy of `spec` with the signal multiplied by `factor` (keeps the fitted mu near 1)."""
    out = json.loads(json.dumps(spec))
    sig = out["channels"][0]["samples"][0]
    sig["data"] = [x * factor for x in sig["data"]]
    out["measurements"][0]["config"]["parameters"][0]["bounds"] = [[0.0, poi_max]]
    return out


def expected_limits(spec: dict, level: float = 0.05, rtol: float = 1e-3) -> dict[str, float]:
    """Expected CLs upper limits on mu (median and +-1/2 sigma) and the expected discovery significance.

    Limits: asymptotic CLs with the q~_mu test statistic (pyhf `hypotest`, expected set from the
    Asimov background-only data set); each band's root of CLs(mu) = `level` is found with Brent's
    method on log CLs. The fit runs on a copy whose signal is scaled so that the limit is O(1)
    (numerically stable); results are quoted for the workspace as written.
    Significance: sqrt(q0) on the Asimov signal-plus-background (mu = 1) data set.
    """
    pyhf.set_backend("numpy")
    samples = spec["channels"][0]["samples"]
    sig, bkg = (np.asarray(s["data"], dtype=np.float64) for s in samples)
    mods = {m["type"]: m for m in samples[1]["modifiers"]}
    err = np.asarray(mods["staterror"]["data"]) if "staterror" in mods else np.zeros_like(bkg)
    normsys = mods["normsys"]["data"]["hi"] - 1.0 if "normsys" in mods else 0.0
    scale = rough_limit(sig, bkg, err, normsys)  # mu in units of this rough single-bin limit
    model = pyhf.Workspace(_scaled(spec, scale, 1e4)).model()
    data = np.asarray(list(bkg) + list(model.config.auxdata))
    cache: dict[float, np.ndarray] = {}

    def log_cls(mu: float) -> np.ndarray:
        if mu not in cache:
            _, bands = pyhf.infer.hypotest(mu, data, model, test_stat="qtilde", return_expected_set=True)
            cache[mu] = np.log(np.maximum(np.asarray(bands, dtype=np.float64), 1e-300)) - np.log(level)
        return cache[mu]

    lo, hi = 0.05, 2.0
    while log_cls(lo)[0] < 0 and lo > 1e-8:  # every band must still be allowed at lo
        lo /= 4
    while log_cls(hi)[-1] > 0 and hi < 1e3:  # and excluded at hi
        hi *= 4
    grid = np.geomspace(lo, hi, 6)
    values = np.array([log_cls(mu) for mu in grid])  # (6, 5)
    out = {}
    for k, name in enumerate(BAND_NAMES):
        j = int(np.argmax(values[:, k] < 0))  # first grid point where band k is excluded
        if j == 0:
            raise RuntimeError(f"could not bracket the {name} expected limit")
        root = brentq(lambda mu: log_cls(mu)[k], grid[j - 1], grid[j], rtol=rtol)
        out[f"mu_{name}"] = float(root * scale)
    full = pyhf.Workspace(spec).model()
    pars = full.config.suggested_init()
    pars[full.config.poi_index] = 1.0
    asimov_sb = full.expected_data(pars)
    q0 = pyhf.infer.test_statistics.q0(0.0, asimov_sb, full, full.config.suggested_init(),
                                       full.config.suggested_bounds(), full.config.suggested_fixed())
    out["z_discovery"] = float(np.sqrt(max(float(q0), 0.0)))
    return out
