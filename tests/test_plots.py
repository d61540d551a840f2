"""Every figure is written (PDF and PNG, non-empty) from tiny tables; no model or checkpoint is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hhfm.evaluate import evaluate_scores
from hhfm.evaluate.summarise import EFFICIENCY_METRICS
from hhfm.plots import FIGURES, FORMATS

MODELS = {"standard": ("standard", "standard", 0.8), "score-frozen": ("score", "frozen", 1.2),
          "embedding-finetuned": ("embedding", "finetuned", 1.6)}


def _scores(rng, sep, n=240):
    mass = np.array([0.0, 1000.0, 2500.0])[np.arange(n) % 3]
    label = (mass > 0).astype(int)
    logit = rng.normal(0, 1, n) + sep * (2 * label - 1)
    return pd.DataFrame({"event": np.arange(n), "logit": logit, "score": (1 / (1 + np.exp(-logit))).astype(np.float32), "label": label, "mass": mass,
                         "weight": np.where(label == 1, 3.0 / n, rng.uniform(1, 5, n) / n),
                         "sdmass_j1": rng.uniform(20, 250, n), "sdmass_j2": rng.uniform(20, 250, n)})


def _write_runs(root: Path, fractions=(0.1, 1.0), seeds=(0, 1)) -> tuple[list[Path], list[Path], pd.DataFrame]:
    """Head-run directories (no checkpoint), per-run metric CSVs and a limits table."""
    rng = np.random.default_rng(0)
    dirs, csvs, limit_rows = [], [], []
    for model, (rep, strat, sep) in MODELS.items():
        for fraction in fractions:
            for seed in seeds:
                d = root / "heads" / model / f"f{fraction:g}_s{seed}"
                d.mkdir(parents=True)
                run = {"model": model, "representation": rep, "strategy": strat, "fraction": fraction,
                       "seed": seed, "n_train_events": int(5000 * fraction), "n_ranks": 1, "device": "cpu",
                       "wall_time_s": 10.0, "train_flops": 1e9 * fraction * (100 if strat != "standard" else 1),
                       "pretrain_flops": None if model == "standard" else 5e11,
                       "pretrain_wall_time_s": None if model == "standard" else 50.0}
                (d / "run.json").write_text(json.dumps(run))
                scores = _scores(rng, sep * (0.5 + fraction))
                scores.to_parquet(d / "scores.parquet")
                pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [0.7, 0.5, 0.4], "val_loss": [0.72, 0.55, 0.5],
                              "val_auc": [0.6, 0.7, 0.75], "lr": 1e-3, "time_s": 1.0}).to_csv(d / "metrics.csv", index=False)
                csv = root / "evaluate" / model / f"f{fraction:g}_s{seed}.csv"
                csv.parent.mkdir(parents=True, exist_ok=True)
                evaluate_scores(scores, run).to_csv(csv, index=False)
                dirs.append(d)
                csvs.append(csv)
                for mass in (1000.0, 2500.0):
                    med = 0.1 / (sep * fraction + 0.1) * (1 + 0.1 * seed) * (mass / 1000) ** -0.5
                    limit_rows.append(run | {"mass": mass} | {
                        f"xsec_{k}_pb": med * f for k, f in zip(["m2", "m1", "exp", "p1", "p2"], [0.5, 0.7, 1, 1.4, 1.9])})
    return dirs, csvs, pd.DataFrame(limit_rows)


def _jets(rng, n=500):
    label = (rng.random(n) < 0.3).astype(int)
    return pd.DataFrame({"jet": np.arange(n), "score": np.clip(rng.normal(0.3 + 0.4 * label, 0.2), 0, 1),
                         "label_xbb": label, "label_class": label, "fj_doubleb": rng.normal(0.2 * label, 0.3),
                         "fj_pt": rng.uniform(300, 900, n), "fj_sdmass": rng.uniform(40, 200, n)})


def _represent_tables(summary: Path, fractions) -> None:
    """Hand-made cka.csv, embedding_auc.csv and latent.parquet (hhfm.represent's columns)."""
    rng = np.random.default_rng(2)
    layers = ["embed", "block1", "cls1", "output"]
    run = {"model": "embedding-finetuned", "representation": "embedding", "strategy": "finetuned", "seed": 0}
    cka = [{**run, "fraction": f, "n_train_events": int(5000 * f), "layer_a": a, "layer_b": b,
            "cka": (1.0 if a == b else 0.6) - 0.1 * f} for f in fractions for a in layers for b in layers]
    pd.DataFrame(cka).to_csv(summary / "cka.csv", index=False)
    auc = [{"embedding": e, **(run if e != "pretrained" else dict.fromkeys(run)), "fraction": 1.0, "n_train_events": 5000,
            "dim": d, "auc": rng.uniform(0.3, 0.8)} for e in ("pretrained", "embedding-finetuned") for d in range(16)]
    pd.DataFrame(auc).to_csv(summary / "embedding_auc.csv", index=False)
    n = 80
    pd.DataFrame({"embedding": np.repeat(["pretrained", "embedding-finetuned f=1 s=0"], n), "jet": np.tile(np.arange(n), 2),
                  "label_class": rng.integers(-1, 6, 2 * n), "label_xbb": rng.integers(-1, 2, 2 * n),
                  "event_label": rng.integers(0, 2, 2 * n), "x": rng.normal(size=2 * n),
                  "y": rng.normal(size=2 * n)}).to_parquet(summary / "latent.parquet")


def _hhfm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hhfm.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("fractions,with_jets", [((0.1, 1.0), True), ((1.0,), False)])
def test_every_figure_written_from_tiny_tables(tmp_path, fractions, with_jets):
    dirs, csvs, limits = _write_runs(tmp_path, fractions=fractions)
    summary = tmp_path / "summary"
    jets = tmp_path / "jet_scores.parquet"
    _jets(np.random.default_rng(1)).to_parquet(jets)
    res = _hhfm("summarise", "--inputs", *map(str, csvs), "--jet-scores", f"xbb={jets}", "--runs",
                *(str(d / "run.json") for d in dirs), "--outdir", str(summary))
    assert res.returncode == 0, res.stderr
    for name in ("metrics.csv", "metrics.parquet", "aggregated.csv", "data_efficiency.csv", "jet_metrics.csv",
                 "compute.csv", "compute_to_reference.csv"):
        assert (summary / name).stat().st_size > 0
    assert len(pd.read_csv(summary / "compute.csv")) == len(dirs)
    _represent_tables(summary, fractions)
    eff = pd.read_csv(summary / "data_efficiency.csv")
    assert len(eff) == 2 * 3 * len(EFFICIENCY_METRICS)  # 2 models x (all, 1000, 2500) x metrics
    jm = pd.read_csv(summary / "jet_metrics.csv")
    assert set(jm["tagger"]) == {"ParT xbb", "fj_doubleb"}
    limits.to_csv(summary / "limits.csv", index=False)
    outdir = tmp_path / "plots"
    extra = ["--jet-scores", f"xbb={jets}"] if with_jets else []
    res = _hhfm("plots", "--summary", str(summary), "--runs", *map(str, dirs), *extra, "--outdir", str(outdir))
    assert res.returncode == 0, res.stderr
    for name in FIGURES:
        for ext in FORMATS:
            assert (outdir / f"{name}.{ext}").stat().st_size > 1000, name
    assert not list(tmp_path.rglob("*.pt"))  # plotting never needed a model


def test_plots_missing_summary_is_clear_error(tmp_path):
    res = _hhfm("plots", "--summary", str(tmp_path / "nope"), "--outdir", str(tmp_path / "plots"))
    assert res.returncode == 1 and "aggregated.csv" in res.stderr
    assert not (tmp_path / "plots").exists() or not list((tmp_path / "plots").iterdir())


def test_captions_exist_for_every_figure(repo_root):
    for name in FIGURES:
        caption = repo_root / "workflow" / "report" / f"{name}.rst"
        assert caption.exists() and caption.read_text().strip(), name


def test_limit_figures_with_one_pooled_mass(tmp_path):
    """Open data has no per-event mass: limits come as one row at mass 0. The bands must still be drawn
    (a box, not a zero-width line) and the axes must say the signal is pooled, not 'm_X = 0 GeV'."""
    from matplotlib.collections import PolyCollection

    from hhfm.plots.physics import limit_vs_events, limits_vs_mass

    _, _, limits = _write_runs(tmp_path)
    pooled = limits[limits["mass"] == 1000.0].assign(mass=0.0)
    fig = limits_vs_mass(pooled)
    ax = fig.axes[0]
    assert "pooled" in ax.get_xlabel() and "m_X" not in ax.get_xlabel()
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    for band in bands:
        xs = band.get_paths()[0].vertices[:, 0]
        assert xs.max() - xs.min() > 0, "a zero-width band is invisible"
    single = limits[limits["mass"] == 2500.0]  # one real mass: a box too, labelled with m_X
    ax = limits_vs_mass(single).axes[0]
    assert "m_X" in ax.get_xlabel()
    xs = [c for c in ax.collections if isinstance(c, PolyCollection)][0].get_paths()[0].vertices[:, 0]
    assert xs.min() < 2500 < xs.max()
    assert "pooled" in limit_vs_events(pooled, None).axes[0].get_ylabel()
