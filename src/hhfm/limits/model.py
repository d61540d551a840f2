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
from hhfm.limits.fit import robust_backend, wald

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


def _scaled(spec: dict, factor: float, poi_max: float) -> dict:
    """Copy of `spec` with the signal multiplied by `factor`: the POI in units of `1 / factor`.

    An exact reparametrisation (mu' = mu / factor); it only puts the limit near mu' = 1.
    """
    out = json.loads(json.dumps(spec))
    sig = out["channels"][0]["samples"][0]
    sig["data"] = [x * factor for x in sig["data"]]
    poi = out["measurements"][0]["config"]["parameters"][0]
    poi["bounds"], poi["inits"] = [[0.0, poi_max]], [0.0]  # free fits of Asimov B-only data start at their optimum
    return out


def expected_limits(spec: dict, level: float = 0.05, rtol: float = 1e-4) -> dict[str, float]:
    """Expected CLs upper limits on mu (median and +-1/2 sigma) and the expected discovery significance.

    Asymptotic CLs with pyhf's q~_mu on the Asimov background-only data (the workspace's observations).
    pyhf's asymptotic distributions give each band's expected CLs as a function of sqrt(q_mu,A) alone, so
    each band's target value of sqrt(q_mu,A) comes first (no fit), then the mu where the profiled
    sqrt(q_mu,A) (pyhf fits of the POI-fixed and free models) reaches it. Fits: `hhfm.limits.fit` (Newton on
    pyhf's autodiff likelihood), so the model is fitted as written at any event count. The POI is measured
    in units of twice its Fisher-information sigma (an exact rescaling) so that the roots sit near 1.
    Significance: sqrt(q0) on the Asimov signal-plus-background (mu = 1) data.
    """
    bkg = np.asarray(spec["channels"][0]["samples"][1]["data"], dtype=np.float64)
    with robust_backend():
        tl = pyhf.tensorlib
        model = pyhf.Workspace(spec).model()
        data = tl.astensor(list(bkg) + list(model.config.auxdata))
        poi = model.config.poi_index
        nominal = np.asarray(model.config.suggested_init(), dtype=np.float64)
        nominal[poi] = 0.0
        sigma, slope = wald(model, data, nominal)
        unit = 2.0 * sigma  # POI unit: about the median limit in the Gaussian regime
        model = pyhf.Workspace(_scaled(spec, unit, 1e4)).model()
        slope[[i for i in range(len(slope)) if i != poi]] *= unit
        bounds, fixed = model.config.suggested_bounds(), model.config.suggested_fixed()
        lo, hi = (np.asarray([b[i] for b in bounds]) for i in (0, 1))
        fitted: dict[float, np.ndarray] = {}  # mu -> conditional fit parameters

        def start(mu: float) -> list[float]:
            """Fit start: the nearest conditional fit moved along the linearised profile (else the nominal)."""
            near = min(fitted, key=lambda m: abs(m - mu), default=None)
            base, shift = (nominal, mu) if near is None else (fitted[near], mu - near)
            return np.clip(base + slope * shift, lo, hi).tolist()
        free = pyhf.infer.mle.fit(data, model, init_pars=start(0.0), par_bounds=bounds, fixed_params=fixed,
                                  return_fitted_val=True)
        mu_hat, nll_free = float(free[0][poi]), float(free[1])
        calc = pyhf.infer.calculators.AsymptoticCalculator(data, model, test_stat="qtilde")
        cache: dict[float, float] = {}

        def sqrt_q(mu: float) -> float:
            """sqrt(q~_mu) on the Asimov background-only data (0 below mu_hat)."""
            if mu not in cache:
                pars, nll = pyhf.infer.mle.fixed_poi_fit(mu, data, model, init_pars=start(mu), par_bounds=bounds,
                                                         fixed_params=fixed, return_fitted_val=True)
                fitted[mu] = np.asarray(pars, dtype=np.float64)
                cache[mu] = float(np.sqrt(max(float(nll) - nll_free, 0.0))) if mu >= mu_hat else 0.0
            return cache[mu]

        def log_cls(t: float) -> np.ndarray:
            """log(expected CLs / level) per band (m2 ... p2) when sqrt(q_mu,A) = t (pyhf's distributions)."""
            calc.sqrtqmuA_v = tl.astensor(t)
            return np.log(np.maximum([float(x) for x in calc.expected_pvalues(*calc.distributions(1.0))[-1]],
                                     1e-300)) - np.log(level)

        out, known = {}, {}
        for k, name in enumerate(BAND_NAMES):
            target = brentq(lambda t: log_cls(t)[k], 1e-6, 50.0, rtol=1e-10)  # sqrt(q_mu,A) at CLs = level
            out[f"mu_{name}"] = _solve_increasing(sqrt_q, target, target * sigma / unit, rtol, known) * unit
        signal_nominal = nominal.copy()
        signal_nominal[poi] = 1.0 / unit  # mu = 1 in workspace units, nuisance parameters nominal
        asimov_sb = model.expected_data(tl.astensor(signal_nominal))
        init = np.clip(nominal + slope / unit, lo, hi).tolist()
        q0 = float(pyhf.infer.test_statistics.q0(0.0, asimov_sb, model, init, bounds, fixed))
    out["z_discovery"] = float(np.sqrt(max(q0, 0.0)))
    return out


def _solve_increasing(f, target: float, guess: float, rtol: float, known: dict[float, float]) -> float:
    """x > 0 with f(x) = target for increasing f, nearly proportional to x. Secant steps from the two
    `known` points (x: f(x), filled as f is evaluated) closest to the target, or from `guess` and its ratio
    step x * target / f(x); Brent's method on a bracket of the evaluated points if that fails."""

    def ev(x: float) -> float:
        known[x] = f(x)
        return known[x]

    if len(known) < 2:
        y0 = ev(guess)
        if abs(y0 - target) <= rtol * target:
            return guess
        if y0 > 0:
            ev(guess * target / y0)
    for _ in range(6):
        (x0, y0), (x1, y1) = sorted(known.items(), key=lambda kv: abs(kv[1] - target))[:2]
        if abs(y0 - target) <= rtol * target:
            return x0
        if y1 == y0:
            break
        x = x0 - (y0 - target) * (x1 - x0) / (y1 - y0)
        if not x > 0 or x in known:
            break
        ev(x)
    lo = max([x for x, y in known.items() if y < target], default=guess)
    hi = min([x for x, y in known.items() if y > target], default=guess)
    while f(lo) > target and lo > guess * 1e-6:
        lo /= 3
    while f(hi) < target and hi < guess * 1e6:
        hi *= 3
    if not f(lo) <= target <= f(hi):
        raise RuntimeError(f"could not bracket sqrt(q_mu,A) = {target:.3g} between mu = {lo:.3g} and {hi:.3g}")
    return float(brentq(lambda v: f(v) - target, lo, hi, rtol=rtol))
