"""pyhf expected limits: validation against the single-bin asymptotic formulae, monotonicity,
binning, the saved workspace refitted with `pyhf cls`, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from hhfm.errors import ConfigError
from hhfm.limits import limits_for_scores
from hhfm.limits.model import expected_limits, initial_edges, merge_edges, workspace_spec

FAST = {"n_bins": 3, "luminosity_fb": 1.0, "signal_xsec_pb": 0.01}


def _scores(n_sig=300, n_bkg=600, sep=2.0, seed=0, masses=(1000.0,)):
    rng = np.random.default_rng(seed)
    parts = [pd.DataFrame({"logit": rng.normal(sep, 1, n_sig), "label": 1, "mass": m, "weight": 1.0 / n_sig})
             for m in masses]
    parts.append(pd.DataFrame({"logit": rng.normal(-sep, 1, n_bkg), "label": 0, "mass": 0.0, "weight": 0.05 / n_bkg}))
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "event", np.arange(len(df)))
    df.insert(2, "score", (1 / (1 + np.exp(-df["logit"]))).astype(np.float32))
    df["sdmass_j1"] = df["sdmass_j2"] = 0.0
    return df


def _limits(scores, params, val=None, **kw):
    """Limits with validation events drawn like the test ones (another seed) unless given."""
    return limits_for_scores(scores, _scores(seed=99) if val is None else val, params, **kw)


def test_single_bin_counting_matches_asymptotic_formulae():
    """One bin, no systematics: s = 1000 pb^-1 * 0.01 pb * 1 = 10, b = 1000 * 0.05 = 50.

    Independent calculation (Cowan, Cranmer, Gross, Vitells, EPJC 71 (2011) 1554): on the Asimov
    background-only data n = b, q_mu,A = 2 [mu s - b ln(1 + mu s / b)] and the median expected CLs
    = 2 (1 - Phi(sqrt(q_mu,A))), so the median limit solves sqrt(q_mu,A) = Phi^-1(0.975); the median
    discovery significance is Z_A = sqrt(2 ((s + b) ln(1 + s / b) - s)). Tolerance: 0.5 % on mu, 1e-3 on Z.
    """
    params = FAST | {"n_bins": 1, "binning": "uniform", "staterror": False, "background_normsys": 0.0}
    row = _limits(_scores(), params).iloc[0]
    s, b = 10.0, 50.0
    assert row["n_bins"] == 1
    assert row["signal_yield"] == pytest.approx(s) and row["background_yield"] == pytest.approx(b)
    q = lambda mu: 2 * (mu * s - b * np.log1p(mu * s / b))  # noqa: E731
    mu_expected = brentq(lambda mu: np.sqrt(q(mu)) - norm.ppf(0.975), 1e-3, 100)
    assert row["mu_exp"] == pytest.approx(mu_expected, rel=5e-3)
    assert row["xsec_exp_pb"] == pytest.approx(mu_expected * 0.01, rel=5e-3)
    z_a = np.sqrt(2 * ((s + b) * np.log1p(s / b) - s))
    assert row["z_discovery"] == pytest.approx(z_a, abs=1e-3)


def test_limits_monotonic_in_signal_size_and_bands_ordered():
    scores = _scores()
    fast = FAST | {"staterror": False}  # normsys only: few nuisance parameters, quick fits
    rows = [_limits(scores, fast | {"signal_xsec_pb": x}).iloc[0] for x in (0.005, 0.01, 0.04)]
    mus = [r["mu_exp"] for r in rows]
    zs = [r["z_discovery"] for r in rows]
    assert mus[0] > mus[1] > mus[2]  # larger signal -> smaller limit on mu
    assert zs[0] < zs[1] < zs[2]  # and larger significance
    for r in rows:  # the cross-section limit does not depend on the reference cross-section
        assert r["xsec_exp_pb"] == pytest.approx(rows[1]["xsec_exp_pb"], rel=0.02)
        bands = [r[f"mu_{k}"] for k in ("m2", "m1", "exp", "p1", "p2")]
        assert all(a < c for a, c in zip(bands, bands[1:]))
    # better separation -> stronger cross-section limit
    weak = _limits(_scores(sep=0.5), fast, _scores(sep=0.5, seed=99)).iloc[0]
    assert weak["xsec_exp_pb"] > rows[1]["xsec_exp_pb"]


def test_binning_has_minimum_background_per_bin():
    rng = np.random.default_rng(3)
    bkg = rng.normal(-1, 1, 500)
    yields = np.full(500, 0.1)
    edges = merge_edges(initial_edges(rng.normal(1, 1, 500), bkg, "quantiles", 20), bkg, yields, 2.0, 5)
    counts, _ = np.histogram(bkg, edges)
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert (counts >= 20).all()  # >= 2.0 expected = 20 events of 0.1, and >= 5 MC events
    assert len(edges) > 3


def test_cli_workspace_refits_with_pyhf_cls(tmp_path):
    _scores(masses=(1000.0, 2500.0)).to_parquet(tmp_path / "scores.parquet")
    _scores(masses=(1000.0, 2500.0), seed=5).to_parquet(tmp_path / "val_scores.parquet")
    run = {"model": "score-frozen", "representation": "score", "strategy": "frozen", "fraction": 1.0, "seed": 0,
           "n_train_events": 100}
    (tmp_path / "run.json").write_text(json.dumps(run))
    outdir = tmp_path / "limits" / "score-frozen" / "f1_s0"
    subprocess.run([sys.executable, "-m", "hhfm.cli", "limits", "--config", json.dumps({"limits": FAST}), "--scores",
                    str(tmp_path / "scores.parquet"), "--val-scores", str(tmp_path / "val_scores.parquet"), "--run", str(tmp_path / "run.json"), "--outdir", str(outdir),
                    "--table", str(outdir.with_name("f1_s0.csv"))], check=True, capture_output=True)
    table = pd.read_csv(outdir.with_name("f1_s0.csv"))
    assert list(table["mass"]) == [1000.0, 2500.0]
    assert (table["model"] == "score-frozen").all() and (table["strategy"] == "frozen").all()
    row = table.iloc[0]
    ws = outdir / "workspace_M1000.json"
    res = subprocess.run([str(Path(sys.executable).parent / "pyhf"), "cls", str(ws), "--test-poi", str(row["mu_exp"])],
                         check=True, capture_output=True, text=True)
    cls = json.loads(res.stdout)
    # observations are the Asimov background, so the observed CLs at the median limit is 0.05
    assert cls["CLs_obs"] == pytest.approx(0.05, rel=0.02)
    merged = tmp_path / "summary" / "limits.csv"
    subprocess.run([sys.executable, "-m", "hhfm.cli", "merge-limits", "--inputs", str(outdir.with_name("f1_s0.csv")),
                    "--output", str(merged)], check=True, capture_output=True)
    assert len(pd.read_csv(merged)) == 2


def test_bad_config_and_input(tmp_path):
    with pytest.raises(ConfigError, match="n_bins"):
        _limits(_scores(), {"n_bins": 0})
    with pytest.raises(ConfigError, match="'limits.lumi': unknown key"):
        _limits(_scores(), {"lumi": 3})
    _scores().drop(columns="score").to_parquet(tmp_path / "s.parquet")
    run = {"model": "standard", "representation": "fj_doubleb", "strategy": "frozen", "fraction": 1.0, "seed": 0,
           "n_train_events": 100}
    (tmp_path / "run.json").write_text(json.dumps(run))
    res = subprocess.run([sys.executable, "-m", "hhfm.cli", "limits", "--scores", str(tmp_path / "s.parquet"),
                          "--val-scores", str(tmp_path / "s.parquet"),
                          "--run", str(tmp_path / "run.json"), "--outdir", str(tmp_path / "m" / "f1_s0"),
                          "--table", str(tmp_path / "m" / "f1_s0.csv")], capture_output=True, text=True)
    assert res.returncode == 1 and "s.parquet" in res.stderr and "score" in res.stderr
    assert not (tmp_path / "m" / "f1_s0.csv").exists()


def test_huge_background_and_flat_scores_still_give_limits():
    """A barely trained head (logits ~0) on QCD-sized yields (~1e8 per bin): finite, strictly ordered bands."""
    rng = np.random.default_rng(1)
    n_s, n_b = 20, 40
    logit = 0.1 * rng.standard_normal(n_s + n_b)
    scores = pd.DataFrame({
        "event": np.arange(n_s + n_b), "logit": logit, "score": 1 / (1 + np.exp(-logit)),
        "label": np.r_[np.ones(n_s), np.zeros(n_b)].astype(int), "mass": np.r_[np.full(n_s, 1000.0), np.zeros(n_b)],
        "weight": np.r_[np.full(n_s, 1.0 / n_s), rng.uniform(10, 1000, n_b)], "sdmass_j1": 0.0, "sdmass_j2": 0.0,
    })
    row = limits_for_scores(scores, scores, {"n_bins": 4}).iloc[0]
    bands = [row[f"mu_{b}"] for b in ("m2", "m1", "exp", "p1", "p2")]
    assert np.all(np.isfinite(bands)) and np.all(np.diff(bands) > 0)
    approx = 2 * 0.3 * row["background_yield"] / row["signal_yield"]  # counting bound, ~30 % bkg uncertainty
    assert approx / 5 < row["mu_exp"] < approx * 5


def test_bin_edges_depend_only_on_validation_scores():
    test, val = _scores(), _scores(seed=7)
    base = _limits(test, FAST | {"staterror": False}, val).iloc[0]
    shuffled = test.copy()
    shuffled["logit"] = np.random.default_rng(3).permutation(test["logit"].to_numpy()) + 0.3
    other = _limits(shuffled, FAST | {"staterror": False}, val).iloc[0]
    assert other["bin_edges"] == base["bin_edges"]
    assert other["mu_exp"] != pytest.approx(base["mu_exp"], rel=1e-3)  # the histograms did change


def test_mc_stat_flag_few_heavy_vs_many_light_background_events():
    heavy, light = _scores(n_bkg=600), _scores(n_bkg=600)
    bkg = heavy["label"].eq(0)  # weights spanning decades (pT-hat slices): a few events carry the yield
    heavy.loc[bkg, "weight"] *= np.random.default_rng(4).lognormal(0.0, 4.0, bkg.sum())
    params = FAST | {"staterror": False, "min_background_mc": 1, "n_bins": 5}
    flagged = _limits(heavy, params).iloc[0]
    fine = _limits(light, params).iloc[0]
    assert flagged["bkg_neff_sensitive"] < 10 and bool(flagged["mc_stat_flag"])
    assert fine["bkg_neff_sensitive"] > 10 and not bool(fine["mc_stat_flag"])


def _code4(alpha, delta):
    """pyhf normsys (code4): exponential beyond |alpha| = 1, inside the 6th-order polynomial in alpha matching
    value, first and second derivative of the exponential at +-1 (solved here from those conditions)."""
    hi, lo = 1.0 + delta, 1.0 - delta
    if abs(alpha) >= 1:
        return hi**alpha if alpha > 0 else lo ** (-alpha)
    lh, ll = np.log(hi), np.log(lo)
    powers = np.arange(1, 7)
    rows = [[1.0] * 6, (-1.0) ** powers, powers, powers * (-1.0) ** (powers - 1), powers * (powers - 1),
            powers * (powers - 1) * (-1.0) ** (powers - 2)]
    rhs = [hi - 1, lo - 1, hi * lh, -lo * ll, hi * lh**2, lo * ll**2]
    return 1.0 + np.polyval(np.r_[np.linalg.solve(np.array(rows), rhs)[::-1], 0.0], alpha)


def _fisher_bands(s, b, berr, delta, level=0.05):
    """Asymptotic bands mu_N = sigma (Phi^-1(1 - level Phi(N)) + N), sigma^2 = [I^-1]_mu,mu from the Asimov
    Fisher information (numpy derivatives) of lambda_i = mu s_i + b_i gamma_i code4(alpha), Poisson terms,
    unit-Gaussian alpha, Gaussian gamma_i with width berr_i / b_i."""
    theta0 = np.r_[0.0, 0.0, np.ones(len(b))]
    lam = lambda th: th[0] * s + b * th[2:] * _code4(th[1], delta)  # noqa: E731
    jac = np.stack([(lam(theta0 + e) - lam(theta0 - e)) / 2e-5 for e in 1e-5 * np.eye(len(theta0))], axis=1)
    info = jac.T @ (jac / lam(theta0)[:, None]) + np.diag(np.r_[0.0, 1.0, (b / berr) ** 2])
    sigma = np.sqrt(np.linalg.inv(info)[0, 0])
    return {n: sigma * (norm.ppf(1 - level * norm.cdf(k)) + k) for n, k in zip(BANDS, (-2, -1, 0, 1, 2))}


BANDS = ("m2", "m1", "exp", "p1", "p2")


@pytest.mark.parametrize("n_bins", [5, 9])
def test_expected_limits_match_asimov_fisher_from_1e1_to_1e9_events(n_bins):
    """Shared 10 % normsys, per-bin staterror (0.2 % plus sqrt(b)), b from 1e1 to 1e9 per bin, no rescaling.
    Signal s_i / b_i rising from 1e-5 to 1e-3 (the low bins constrain the normsys), so that at every band
    mu_up s_i / b_i < 2 % in every bin: the Gaussian regime, where q_mu,A = mu^2 / sigma^2 holds. Median
    within 1 %, +-1/2 sigma bands within 2 % of the independent Fisher-information calculation."""
    b = np.geomspace(1e1, 1e9, n_bins)
    s = 1e-3 * b * np.geomspace(0.01, 1.0, n_bins)
    berr = 0.002 * b + np.sqrt(b)
    ref = _fisher_bands(s, b, berr, 0.1)
    assert np.max(ref["p2"] * s / b) < 0.02
    got = expected_limits(workspace_spec(s, b, berr, 0.1, True, 1e6))
    assert got["mu_exp"] == pytest.approx(ref["exp"], rel=0.01)
    for n in BANDS:
        assert got[f"mu_{n}"] == pytest.approx(ref[n], rel=0.02)


def test_no_bias_from_huge_yields():
    """5-bin toy, shared 10 % normsys, no staterror: scaling b by k and s by sqrt(k) keeps s/sqrt(b) and
    so the limit; the old per-bin conditioning gave 0.716 instead of 0.267 here (k = 1)."""
    b, s = np.geomspace(3e6, 5e4, 5), np.array([100.0, 200, 400, 800, 1600])
    mus = [expected_limits(workspace_spec(s * k**0.5, b * k, 0 * b, 0.1, False, 1e6))["mu_exp"] for k in (1, 300)]
    assert mus[0] == pytest.approx(0.267, rel=0.01)
    assert mus[1] == pytest.approx(mus[0], rel=0.01)


def test_expected_limits_match_plain_pyhf_where_its_default_fits_work():
    """Moderate yields (3 bins, b ~ 50-500, staterror and normsys), where pyhf's own numpy/SLSQP fits
    converge: its hypotest expected CLs at our band limits must be the test size (0.05) within 1 %."""
    import pyhf

    s, b, berr = np.array([2.0, 6.0, 12.0]), np.array([500.0, 120.0, 50.0]), np.array([25.0, 12.0, 8.0])
    spec = workspace_spec(s, b, berr, 0.1, True, 1e3)
    got = expected_limits(spec)
    pyhf.set_backend("numpy", "scipy")
    model = pyhf.Workspace(spec).model()
    data = list(b) + list(model.config.auxdata)
    for k, name in enumerate(BANDS):
        _, bands = pyhf.infer.hypotest(got[f"mu_{name}"], data, model, test_stat="qtilde", return_expected_set=True)
        assert float(bands[k]) == pytest.approx(0.05, rel=0.01), name


def test_limits_leave_torch_default_dtype_alone():
    """pyhf's 64b pytorch backend sets torch's default dtype globally; the models (float32) must not see it."""
    import torch

    before = torch.get_default_dtype()
    expected_limits(workspace_spec(np.array([5.0]), np.array([50.0]), np.array([5.0]), 0.1, True, 1e3))
    assert torch.get_default_dtype() == before


def test_bin_without_test_background_takes_the_validation_estimate():
    """Edges come from the validation events, so a bin can hold no test background: it must get the
    validation estimate (a zero yield with zero MC error has no likelihood) and be counted."""
    test, val = _scores(), _scores(seed=7)
    cut = np.median(val.loc[val["label"] == 0, "logit"])
    test = test[~((test["label"] == 0) & (test["logit"] > cut))]  # no test background above the median
    row = _limits(test, FAST, val).iloc[0]
    assert row["bkg_bins_from_validation"] >= 1
    bands = [row[f"mu_{b}"] for b in BANDS]
    assert np.all(np.isfinite(bands)) and np.all(np.diff(bands) > 0)
