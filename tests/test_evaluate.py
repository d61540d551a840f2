"""Metrics against hand-computed cases; per-run tables; summary and data-efficiency interpolation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hhfm.evaluate import evaluate_scores
from hhfm.metrics import auc, binary_metrics, metrics_with_intervals, rejection_at, roc_curve
from hhfm.evaluate.summarise import aggregate, data_efficiency, events_to_reach


def test_auc_hand_computed():
    # signal 0.9, 0.4; background 0.6, 0.1: 3 of 4 pairs ordered -> 0.75
    assert auc([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0]) == pytest.approx(0.75)
    # a tie counts one half: pairs (0.5 vs 0.5) 0.5 + (0.5 > 0.2) 1 -> 0.75
    assert auc([0.5, 0.5, 0.2], [1, 0, 0]) == pytest.approx(0.75)


def test_perfect_inverted_and_constant_scores():
    label = np.array([1] * 10 + [0] * 40)
    perfect = np.where(label == 1, 0.9, 0.1) + np.linspace(0, 0.01, 50)
    m = binary_metrics(perfect, label)
    assert m["auc"] == pytest.approx(1.0)
    assert m["rej90"] == pytest.approx(40.0)  # no background passes: capped at N_B
    inv = binary_metrics(1 - perfect, label)
    assert inv["auc"] == pytest.approx(0.0)
    assert inv["rej50"] == pytest.approx(1.0)  # every background event passes
    const = binary_metrics(np.full(50, 0.3), label)
    assert const["auc"] == pytest.approx(0.5)
    assert const["rej90"] == pytest.approx(1 / 0.9)  # one tie group: the ROC is the diagonal


def test_random_scores_and_interpolation():
    rng = np.random.default_rng(1)
    score, label = rng.random(200_000), (rng.random(200_000) < 0.5).astype(int)
    m = binary_metrics(score, label)
    assert m["auc"] == pytest.approx(0.5, abs=0.01)
    for name, eff in (("rej50", 0.5), ("rej70", 0.7), ("rej90", 0.9)):
        assert m[name] == pytest.approx(1 / eff, rel=0.02)
    # interpolation between ROC points: S = {0.8, 0.6}, B = {0.7, 0.5, 0.3, 0.1}
    s = [0.8, 0.6, 0.7, 0.5, 0.3, 0.1]
    lab = [1, 1, 0, 0, 0, 0]
    eff_s, eff_b, _ = roc_curve(s, lab)
    np.testing.assert_allclose(eff_s, [0, 0.5, 0.5, 1, 1, 1, 1])
    np.testing.assert_allclose(eff_b, [0, 0, 0.25, 0.25, 0.5, 0.75, 1])
    # at eps_S = 0.75, halfway between (0.5, 0.25) and (1, 0.25): eps_B = 0.25
    assert rejection_at(s, lab, 0.75) == pytest.approx(4.0)
    # at eps_S = 0.5 the smallest eps_B reaching it: 0 -> capped at N_B = 4
    assert rejection_at(s, lab, 0.5) == pytest.approx(4.0)


def test_gaussian_separation_matches_analytic_auc():
    rng = np.random.default_rng(2)
    n = 100_000
    score = np.r_[rng.normal(1.0, 1, n), rng.normal(0.0, 1, n)]
    label = np.r_[np.ones(n), np.zeros(n)]
    from scipy.stats import norm
    assert auc(score, label) == pytest.approx(norm.cdf(1 / np.sqrt(2)), abs=0.005)
    # rejection at 50 %: threshold at 1.0 -> eps_B = 1 - Phi(1)
    assert rejection_at(score, label, 0.5) == pytest.approx(1 / norm.sf(1.0), rel=0.03)


def test_weighted_metrics_use_weights():
    score = np.array([0.9, 0.8, 0.7, 0.2])
    label = np.array([1, 0, 1, 0])
    assert auc(score, label) == pytest.approx(0.75)
    # weight the background above the second signal by 3: pairs weigh 1*3, 1*1 (ok), 1*3 (wrong), 1*1 -> 5/8
    assert auc(score, label, np.array([1, 3, 1, 1.0])) == pytest.approx(5 / 8)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        auc([0.1, np.nan], [1, 0])
    with pytest.raises(ValueError):
        auc([0.1, 0.2], [1, 1])


def _scores(n=400, seed=0, sep=1.5):
    rng = np.random.default_rng(seed)
    mass = np.where(np.arange(n) % 4 == 0, 0.0, np.where(np.arange(n) % 4 == 1, 1000.0, 2500.0))
    label = (mass > 0).astype(int)
    logit = rng.normal(0, 1, n) + sep * (label - 0.5) * 2
    return pd.DataFrame({"event": np.arange(n), "logit": logit, "score": (1 / (1 + np.exp(-logit))).astype(np.float32), "label": label, "mass": mass,
                         "weight": np.where(label == 1, 1.0 / n, 5.0 / n),
                         "sdmass_j1": rng.uniform(30, 200, n), "sdmass_j2": rng.uniform(30, 200, n)})


RUN = {"model": "score-frozen", "representation": "score", "strategy": "frozen", "fraction": 1.0, "seed": 0,
       "n_train_events": 1000}


def test_evaluate_table_layout():
    table = evaluate_scores(_scores(), RUN)
    assert set(table["mass"]) == {"all", "1000", "2500"}
    assert {"auc", "rej50", "rej70", "rej90", "auc_weighted", "rej90_weighted", "n_signal"} <= set(table["metric"])
    assert len(table) == table[["mass", "metric"]].drop_duplicates().shape[0]
    inclusive = table[(table["mass"] == "all")].set_index("metric")["value"]
    assert 0.7 < inclusive["auc"] < 1.0
    assert inclusive["n_background"] == 100


def test_evaluate_cli_and_missing_column(tmp_path):
    scores = _scores()
    scores.to_parquet(tmp_path / "scores.parquet")
    (tmp_path / "run.json").write_text(json.dumps(RUN))
    out = tmp_path / "out" / "f1_s0.csv"
    cmd = [sys.executable, "-m", "hhfm.cli", "evaluate", "--scores", str(tmp_path / "scores.parquet"),
           "--run", str(tmp_path / "run.json"), "--output", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert len(pd.read_csv(out)) > 10
    scores.drop(columns="weight").to_parquet(tmp_path / "bad.parquet")
    cmd[cmd.index(str(tmp_path / "scores.parquet"))] = str(tmp_path / "bad.parquet")
    res = subprocess.run(cmd + ["--output", str(tmp_path / "bad.csv")], capture_output=True, text=True)
    assert res.returncode == 1 and "bad.parquet" in res.stderr and "weight" in res.stderr
    assert not (tmp_path / "bad.csv").exists()


def test_events_to_reach_log_interpolation():
    n = np.array([100, 1000, 10000])
    v = np.array([10.0, 20.0, 40.0])
    # target 30 is halfway between 20 (1e3) and 40 (1e4) -> 10**3.5 events
    assert events_to_reach(n, v, 30.0) == (pytest.approx(10**3.5), "exact")
    assert events_to_reach(n, v, 5.0) == (100.0, "at_most")
    assert events_to_reach(n, v, 50.0) == (10000.0, "more_than")


def test_data_efficiency_on_synthetic_curves():
    # reference: rejection = 10 * log10(N) -> 40 at 1e4; model: shifted by a factor 10 in N -> reaches 40 at 1e3
    rows = []
    for model, shift in (("standard", 1.0), ("embedding-finetuned", 10.0)):
        for n in (10, 100, 1000, 10000):
            for seed in (0, 1):
                rows.append({"model": model, "representation": model.split("-")[0],
                             "strategy": "finetuned" if "-" in model else "standard", "fraction": n / 1e4,
                             "seed": seed, "n_train_events": n, "mass": "all", "metric": "rej90",
                             "value": 10 * np.log10(n * shift) + (seed - 0.5), "lo": np.nan, "hi": np.nan,
                             "capped": False})
    rows = pd.DataFrame(rows).assign(lo=lambda d: d["value"] - 0.3, hi=lambda d: d["value"] + 0.4)
    agg = aggregate(rows)
    assert set(agg["n"]) == {2}
    assert agg["std"].iloc[0] == pytest.approx(np.std([-0.5, 0.5], ddof=1))
    eff = data_efficiency(agg, "standard")
    row = eff[eff["model"] == "embedding-finetuned"].iloc[0]
    assert row["target"] == pytest.approx(40.0)
    assert row["factor"] == pytest.approx(10.0)
    assert row["bound"] == "exact"


def test_bootstrap_interval_covers_true_auc():
    # Gaussian scores separated by 1 sigma: AUC = Phi(1/sqrt(2)); the 68 % interval should cover it in ~68 % of toys
    from scipy.stats import norm
    true_auc, rng, hits, toys = norm.cdf(1 / np.sqrt(2)), np.random.default_rng(3), 0, 200
    label = np.r_[np.ones(100), np.zeros(100)]
    for toy in range(toys):
        score = rng.normal(label, 1.0)
        m = metrics_with_intervals(score, label, None, n_boot=200, seed=toy)["auc"]
        assert m["lo"] <= m["value"] <= m["hi"]
        hits += m["lo"] <= true_auc <= m["hi"]
    assert 0.58 <= hits / toys <= 0.78, hits / toys


def test_bootstrap_deterministic_and_weighted():
    rng = np.random.default_rng(4)
    label = (rng.random(300) < 0.4).astype(int)
    score, weight = rng.normal(label, 1.0), rng.uniform(0.5, 2.0, 300)
    a = metrics_with_intervals(score, label, weight, n_boot=50, seed=7)
    assert a == metrics_with_intervals(score, label, weight, n_boot=50, seed=7)
    assert a != metrics_with_intervals(score, label, weight, n_boot=50, seed=8)
    assert a["auc"]["value"] == pytest.approx(auc(score, label, weight))
    off = metrics_with_intervals(score, label, weight)  # n_boot = 0: lo = hi = value
    assert all(v["lo"] == v["value"] == v["hi"] for v in off.values())


def test_capped_detection():
    label = np.array([1] * 20 + [0] * 50)
    perfect = np.r_[np.linspace(5, 6, 20), np.linspace(0, 1, 50)]
    m = metrics_with_intervals(perfect, label, None, n_boot=50, seed=0)
    assert m["rej90"]["capped"] and m["rej90"]["value"] == pytest.approx(50.0)
    assert not m["auc"]["capped"]
    overlap = np.r_[np.linspace(0.5, 2, 20), np.linspace(0, 1, 50)]
    m = metrics_with_intervals(overlap, label, None, n_boot=50, seed=0)
    assert not m["rej90"]["capped"] and m["rej90"]["value"] < 50
    table = evaluate_scores(_scores(sep=4.0), RUN, bootstrap=20)
    rej90 = table[(table["mass"] == "all") & (table["metric"] == "rej90")].iloc[0]
    assert bool(rej90["capped"]) and rej90["value"] == rej90["lo"]


def test_logit_used_not_saturated_score():
    # float32 sigmoids of logits > ~17 are exactly 1.0: the score ties signal with background, the logit does not
    logit = np.array([30.0, 40.0, 20.0, 25.0, -3.0, -4.0])
    label = np.array([1, 1, 0, 0, 0, 0])
    score = (1 / (1 + np.exp(-logit))).astype(np.float32)
    assert auc(score, label) == pytest.approx(0.75)  # ties count one half
    scores = pd.DataFrame({"event": np.arange(6), "logit": logit, "score": score, "label": label,
                           "mass": np.where(label == 1, 1000.0, 0.0), "weight": 1.0})
    table = evaluate_scores(scores, RUN, bootstrap=10).set_index(["mass", "metric"])
    assert table.loc[("all", "auc"), "value"] == pytest.approx(1.0)


def test_aggregated_errors_and_efficiency_interval_by_hand():
    base = {"model": "standard", "representation": "standard", "strategy": "standard", "mass": "all", "metric": "rej90"}
    rows = [base | {"fraction": 1.0, "seed": s, "n_train_events": 1000, "value": v, "lo": v - dl, "hi": v + dh,
                    "capped": c} for s, v, dl, dh, c in ((0, 10.0, 1.0, 2.0, False), (1, 12.0, 3.0, 2.0, True))]
    agg = aggregate(pd.DataFrame(rows)).iloc[0]
    std = np.std([10.0, 12.0], ddof=1)
    assert agg["mean"] == pytest.approx(11.0) and agg["n"] == 2 and bool(agg["capped"])
    assert agg["err_lo"] == pytest.approx(np.sqrt(std**2 / 2 + (1 + 9) / 2))
    assert agg["err_hi"] == pytest.approx(np.sqrt(std**2 / 2 + 4))
    # reference top: target 40 +- 10; model curve mean 10*log10(N) +- 0 -> crosses 30, 40, 50 at 1e3, 1e4, 1e5
    agg_rows = [base | {"fraction": 1.0, "n_train_events": 1e4, "mean": 40.0, "std": 0.0, "n": 1, "err_lo": 10.0,
                        "err_hi": 10.0, "capped": False}]
    agg_rows += [base | {"model": "m", "fraction": n / 1e5, "n_train_events": n, "mean": 10 * np.log10(n), "std": 0.0,
                         "n": 1, "err_lo": 0.0, "err_hi": 0.0, "capped": False} for n in (100, 1e3, 1e4, 1e5)]
    row = data_efficiency(pd.DataFrame(agg_rows), "standard").iloc[0]
    assert (row["factor"], row["factor_lo"], row["factor_hi"]) == (pytest.approx(1.0), pytest.approx(0.1),
                                                                   pytest.approx(10.0))
    assert row["bound"] == "exact"
    agg_rows[0]["capped"] = True
    assert data_efficiency(pd.DataFrame(agg_rows), "standard").iloc[0]["bound"] == "capped"


def test_compute_accounting_tables():
    """Totals with pretraining in full / amortised, and the compute to reach the reference (log interpolation)."""
    from hhfm.evaluate.compute import compute_table, compute_to_reference

    def run(model, fraction, flops, pre):
        rep, strategy = ("fj_doubleb", "standard") if model == "standard" else model.split("-")
        return {"model": model, "representation": rep, "strategy": strategy, "fraction": fraction, "seed": 0,
                "n_train_events": int(1000 * fraction), "n_ranks": 1, "device": "cpu", "wall_time_s": 1.0,
                "train_flops": flops, "pretrain_flops": pre, "pretrain_wall_time_s": None if pre is None else 5.0}

    runs = [run("standard", 0.1, 1e6, None), run("standard", 1.0, 1e7, None),
            run("embedding-finetuned", 0.1, 1e9, 9e10), run("embedding-finetuned", 1.0, 1e11, 9e10)]
    rej = {("standard", 0.1): 40.0, ("standard", 1.0): 100.0, ("embedding-finetuned", 0.1): 50.0,
           ("embedding-finetuned", 1.0): 200.0}
    metrics = pd.DataFrame([{"model": m, "fraction": f, "seed": 0, "mass": "all", "metric": "rej90", "value": v,
                             "lo": v - 1, "hi": v + 1} for (m, f), v in rej.items()])
    table = compute_table(runs, metrics, amortise_over=10)
    ft = table[table["model"] == "embedding-finetuned"].set_index("fraction")
    assert ft.loc[0.1, "flops_full"] == pytest.approx(1e9 + 9e10) and ft.loc[0.1, "flops_amortised"] == pytest.approx(1e9 + 9e9)
    assert ft.loc[1.0, "rej90"] == 200 and ft.loc[1.0, "rej90_lo"] == 199
    std = table[table["model"] == "standard"]
    assert (std["flops_full"] == std["train_flops"]).all()  # nothing to pretrain
    reach = compute_to_reference(table, "standard").set_index("accounting")
    # 100 lies 1/3 of the way from 50 to 200: flops = x0 * (x1 / x0) ** (1/3) in each accounting
    for acc, (x0, x1) in {"full": (9.1e10, 1.9e11), "amortised": (1e10, 1.09e11)}.items():
        assert reach.loc[acc, "flops_model"] == pytest.approx(x0 * (x1 / x0) ** (1 / 3), rel=1e-9)
        assert reach.loc[acc, "ratio"] == pytest.approx(reach.loc[acc, "flops_model"] / 1e7)
        assert reach.loc[acc, "bound"] == "exact" and reach.loc[acc, "target"] == 100
    never = compute_to_reference(table.assign(rej90=table["rej90"].where(table["model"] == "standard", 10.0)),
                                 "standard")
    assert (never["bound"] == "more_than").all()
