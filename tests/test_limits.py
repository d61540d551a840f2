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
from hhfm.limits.model import initial_edges, merge_edges

FAST = {"n_bins": 3, "luminosity_fb": 1.0, "signal_xsec_pb": 0.01}


def _scores(n_sig=300, n_bkg=600, sep=2.0, seed=0, masses=(1000.0,)):
    rng = np.random.default_rng(seed)
    parts = [pd.DataFrame({"score": 1 / (1 + np.exp(-rng.normal(sep, 1, n_sig))), "label": 1, "mass": m,
                           "weight": 1.0 / n_sig}) for m in masses]
    parts.append(pd.DataFrame({"score": 1 / (1 + np.exp(-rng.normal(-sep, 1, n_bkg))), "label": 0, "mass": 0.0,
                               "weight": 0.05 / n_bkg}))
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "event", np.arange(len(df)))
    df.insert(1, "logit", np.log(df["score"] / (1 - df["score"])))
    return df


def test_single_bin_counting_matches_asymptotic_formulae():
    """One bin, no systematics: s = 1000 pb^-1 * 0.01 pb * 1 = 10, b = 1000 * 0.05 = 50.

    Independent calculation (Cowan, Cranmer, Gross, Vitells, EPJC 71 (2011) 1554): on the Asimov
    background-only data n = b, q_mu,A = 2 [mu s - b ln(1 + mu s / b)] and the median expected CLs
    = 2 (1 - Phi(sqrt(q_mu,A))), so the median limit solves sqrt(q_mu,A) = Phi^-1(0.975); the median
    discovery significance is Z_A = sqrt(2 ((s + b) ln(1 + s / b) - s)). Tolerance: 0.5 % on mu, 1e-3 on Z.
    """
    params = FAST | {"n_bins": 1, "binning": "uniform", "staterror": False, "background_normsys": 0.0}
    row = limits_for_scores(_scores(), params).iloc[0]
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
    rows = [limits_for_scores(scores, fast | {"signal_xsec_pb": x}).iloc[0] for x in (0.005, 0.01, 0.04)]
    mus = [r["mu_exp"] for r in rows]
    zs = [r["z_discovery"] for r in rows]
    assert mus[0] > mus[1] > mus[2]  # larger signal -> smaller limit on mu
    assert zs[0] < zs[1] < zs[2]  # and larger significance
    for r in rows:  # the cross-section limit does not depend on the reference cross-section
        assert r["xsec_exp_pb"] == pytest.approx(rows[1]["xsec_exp_pb"], rel=0.02)
        bands = [r[f"mu_{k}"] for k in ("m2", "m1", "exp", "p1", "p2")]
        assert all(a < c for a, c in zip(bands, bands[1:]))
    # better separation -> stronger cross-section limit
    weak = limits_for_scores(_scores(sep=0.5), fast).iloc[0]
    assert weak["xsec_exp_pb"] > rows[1]["xsec_exp_pb"]


def test_binning_has_minimum_background_per_bin():
    rng = np.random.default_rng(3)
    bkg = rng.beta(2, 8, 500)
    yields = np.full(500, 0.1)
    edges = merge_edges(initial_edges(rng.beta(8, 2, 500), bkg, "quantiles", 20), bkg, yields, 2.0, 5)
    counts, _ = np.histogram(bkg, edges)
    assert edges[0] == 0.0 and edges[-1] == 1.0
    assert (counts >= 20).all()  # >= 2.0 expected = 20 events of 0.1, and >= 5 MC events
    assert len(edges) > 3


def test_cli_workspace_refits_with_pyhf_cls(tmp_path):
    _scores(masses=(1000.0, 2500.0)).to_parquet(tmp_path / "scores.parquet")
    run = {"model": "score-frozen", "representation": "score", "strategy": "frozen", "fraction": 1.0, "seed": 0,
           "n_train_events": 100}
    (tmp_path / "run.json").write_text(json.dumps(run))
    outdir = tmp_path / "limits" / "score-frozen" / "f1_s0"
    subprocess.run([sys.executable, "-m", "hhfm.cli", "limits", "--config", json.dumps({"limits": FAST}), "--scores",
                    str(tmp_path / "scores.parquet"), "--run", str(tmp_path / "run.json"), "--outdir", str(outdir),
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
        limits_for_scores(_scores(), {"n_bins": 0})
    with pytest.raises(ConfigError, match="'limits.lumi': unknown key"):
        limits_for_scores(_scores(), {"lumi": 3})
    _scores().drop(columns="score").to_parquet(tmp_path / "s.parquet")
    run = {"model": "standard", "representation": "fj_doubleb", "strategy": "frozen", "fraction": 1.0, "seed": 0,
           "n_train_events": 100}
    (tmp_path / "run.json").write_text(json.dumps(run))
    res = subprocess.run([sys.executable, "-m", "hhfm.cli", "limits", "--scores", str(tmp_path / "s.parquet"),
                          "--run", str(tmp_path / "run.json"), "--outdir", str(tmp_path / "m" / "f1_s0"),
                          "--table", str(tmp_path / "m" / "f1_s0.csv")], capture_output=True, text=True)
    assert res.returncode == 1 and "s.parquet" in res.stderr and "score" in res.stderr
    assert not (tmp_path / "m" / "f1_s0.csv").exists()


def test_huge_background_and_flat_scores_still_give_limits():
    """A barely trained head (scores ~0.5) on QCD-sized yields (~1e8 per bin) makes the bare pyhf fit fail
    or stall; the conditioned fit must give finite, strictly ordered bands and say it rescaled."""
    rng = np.random.default_rng(1)
    n_s, n_b = 20, 40
    scores = pd.DataFrame({
        "score": 0.49 + 0.03 * rng.random(n_s + n_b),
        "label": np.r_[np.ones(n_s), np.zeros(n_b)].astype(int),
        "mass": np.r_[np.full(n_s, 1000.0), np.zeros(n_b)],
        "weight": np.r_[np.full(n_s, 1.0 / n_s), rng.uniform(10, 1000, n_b)],
        "event": np.arange(n_s + n_b), "sdmass_j1": 0.0, "sdmass_j2": 0.0,
    })
    row = limits_for_scores(scores, {"n_bins": 4}).iloc[0]
    bands = [row[f"mu_{b}"] for b in ("m2", "m1", "exp", "p1", "p2")]
    assert np.all(np.isfinite(bands)) and np.all(np.diff(bands) > 0)
    assert row["fit_yield_scale_min"] < 1
    # a counting-experiment sanity bound: with ~30 % background uncertainty the limit is of order
    # 2 * 0.3 * B / S (within a factor of a few)
    approx = 2 * 0.3 * row["background_yield"] / row["signal_yield"]
    assert approx / 5 < row["mu_exp"] < approx * 5


def test_conditioning_leaves_the_limit_unchanged_where_poisson_is_negligible():
    """Scaling a bin's yields changes only its (negligible) Poisson term: compare against the
    asymptotic single-bin formula with the Poisson term dropped, on a 1e7-event background."""
    from hhfm.limits import conditioning_scale
    from hhfm.limits.model import expected_limits, workspace_spec

    s, b, err = np.array([2000.0]), np.array([1e7]), np.array([2e6])  # 20 % MC stat (Gaussian constraint)
    p = {"background_normsys": 0.0, "staterror": True}
    k = conditioning_scale(b, err, p)
    assert k[0] < 1e-2
    mu = expected_limits(workspace_spec(s * k, b * k, err * k, 0.0, True, 1e4))["mu_exp"]
    sigma_b = b[0] * 0.2  # Gaussian-constrained background, Poisson-free
    # asymptotic median CLs limit for a Gaussian measurement: mu = sigma_b / s * (Phi^-1(1 - 0.05/2))
    expected = sigma_b / s[0] * norm.ppf(1 - 0.05 / 2)
    assert mu == pytest.approx(expected, rel=0.03)
