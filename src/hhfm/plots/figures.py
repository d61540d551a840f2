"""Drawing functions of `hhfm plots`; each takes tables and returns a matplotlib Figure."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hhfm.errors import InputError  # noqa: E402
from hhfm.evaluate.metrics import rejection_curve  # noqa: E402
from hhfm.evaluate.tables import read_run, read_scores, signal_masses  # noqa: E402
from hhfm.io import atomic_path, parse_params, setup_logging  # noqa: E402
from hhfm.plots import DEFAULTS, FIGURES, FORMATS  # noqa: E402

log = logging.getLogger("hhfm.plots")
EFF_GRID = np.linspace(0.05, 1.0, 96)


def _empty(fig: plt.Figure, ax: plt.Axes, what: str) -> plt.Figure:
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"{path}: file does not exist (run the summarise / limits stages first)")
    return pd.read_csv(path, dtype={"mass": str} if path.name != "limits.csv" else None)


def _colors(models: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {m: cycle[i % len(cycle)] for i, m in enumerate(sorted(models))}


def metric_vs_events(agg: pd.DataFrame, metric: str, reference: str, ylabel: str, ratio: bool = True,
                     logy: bool = True) -> plt.Figure:
    """Mean metric (band: +-1 std over seeds) vs training events, one line per model; ratio panel."""
    data = agg[(agg["metric"] == metric) & (agg["mass"] == "all")].sort_values("n_train_events")
    if ratio:
        fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, figsize=(9, 9))
    else:
        fig, ax = plt.subplots(figsize=(9, 7))
    if data.empty:
        return _empty(fig, ax, f"metric {metric}")
    colors = _colors(list(data["model"].unique()))
    ref = data[data["model"] == reference].set_index("fraction")["mean"]
    for model, d in data.groupby("model"):
        x, y, e = d["n_train_events"].to_numpy(), d["mean"].to_numpy(), d["std"].to_numpy()
        ax.plot(x, y, "o-", color=colors[model], label=model)
        ax.fill_between(x, y - e, y + e, color=colors[model], alpha=0.25)
        if ratio and not ref.empty:
            r = d.set_index("fraction")["mean"] / ref.reindex(d["fraction"]).to_numpy()
            rax.plot(x, r.to_numpy(), "o-", color=colors[model])
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="x-small")
    if ratio:
        rax.axhline(1.0, color="grey", lw=1)
        rax.set_ylabel(f"/ {reference}", fontsize="small")
        rax.set_xlabel("training events")
    else:
        ax.set_xlabel("training events")
    fig.align_ylabels()
    return fig


def data_efficiency_bars(eff: pd.DataFrame) -> plt.Figure:
    """Bar chart of data-efficiency factors (mass 'all') for rej90 and rej50; hatched where a bound."""
    fig, ax = plt.subplots(figsize=(10, 7))
    data = eff[(eff["mass"] == "all") & eff["metric"].isin(["rej90", "rej50"])] if not eff.empty else eff
    if data.empty:
        return _empty(fig, ax, "needs the reference model and several training fractions")
    models = sorted(data["model"].unique())
    width = 0.4
    for k, metric in enumerate(["rej90", "rej50"]):
        d = data[data["metric"] == metric].set_index("model").reindex(models)
        x = np.arange(len(models)) + (k - 0.5) * width
        bars = ax.bar(x, d["factor"].to_numpy(), width, label=f"{metric} (eps_S = 0.{metric[3:]})")
        for bar, bound in zip(bars, d["bound"].to_numpy()):
            if bound != "exact":
                bar.set_hatch("//")
    ax.set_xticks(np.arange(len(models)), models, rotation=30, ha="right", fontsize="small")
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", lw=1)
    ax.set_ylabel(f"data-efficiency factor vs {data['reference'].iloc[0]}")
    ax.legend(fontsize="x-small", title="hatched: bound", title_fontsize="x-small")
    return fig


def roc_full_data(runs: list[dict], reference: str) -> plt.Figure:
    """Rejection vs signal efficiency per model at its largest fraction (mean +- std over seeds)."""
    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, figsize=(9, 9))
    full = _full_data(runs)
    if not full:
        return _empty(fig, ax, "no head runs with scores")
    colors = _colors(list(full))
    curves = {}
    for model, items in full.items():
        rej = np.array([rejection_curve(r["scores"]["score"].to_numpy(), r["scores"]["label"].to_numpy(), EFF_GRID)
                        for r in items])
        curves[model] = rej.mean(0)
        ax.plot(EFF_GRID, curves[model], color=colors[model], label=model)
        ax.fill_between(EFF_GRID, rej.mean(0) - rej.std(0), rej.mean(0) + rej.std(0), color=colors[model], alpha=0.25)
    if reference in curves:
        for model, c in curves.items():
            rax.plot(EFF_GRID, c / curves[reference], color=colors[model])
    rax.axhline(1.0, color="grey", lw=1)
    ax.set_yscale("log")
    ax.set_ylabel("background rejection 1/eps_B")
    ax.legend(fontsize="x-small")
    rax.set_xlabel("signal efficiency eps_S")
    rax.set_ylabel(f"/ {reference}", fontsize="small")
    return fig


def _full_data(runs: list[dict]) -> dict[str, list[dict]]:
    """Runs at each model's largest training fraction, grouped by model."""
    out: dict[str, list[dict]] = {}
    for model in sorted({r["run"]["model"] for r in runs if r["scores"] is not None}):
        mine = [r for r in runs if r["run"]["model"] == model and r["scores"] is not None]
        top = max(float(r["run"]["fraction"]) for r in mine)
        out[model] = [r for r in mine if float(r["run"]["fraction"]) == top]
    return out


def limits_vs_mass(limits: pd.DataFrame) -> plt.Figure:
    """Brazil plot per model at its largest fraction: expected sigma x BR limit vs mass (seed mean)."""
    models = sorted(limits["model"].unique()) if not limits.empty else []
    ncol = max(1, min(3, len(models)))
    nrow = max(1, int(np.ceil(len(models) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 5 * nrow), squeeze=False, sharey=True)
    if not models:
        return _empty(fig, axes[0, 0], "limits table is empty")
    for ax, model in zip(axes.flat, models):
        d = limits[limits["model"] == model]
        d = d[d["fraction"] == d["fraction"].max()].groupby("mass").mean(numeric_only=True).reset_index()
        m = d["mass"].to_numpy()
        ax.fill_between(m, d["xsec_m2_pb"], d["xsec_p2_pb"], color="#F5BB54", label="expected +-2 sigma")
        ax.fill_between(m, d["xsec_m1_pb"], d["xsec_p1_pb"], color="#607641", label="expected +-1 sigma")
        ax.plot(m, d["xsec_exp_pb"], "k--", marker="o", label="median expected")
        ax.set_yscale("log")
        ax.set_title(model, fontsize="small")
        ax.set_xlabel("m_X [GeV]")
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("95% CL sigma x BR [pb]")
    axes[0, 0].legend(fontsize="xx-small")
    return fig


def limit_vs_events(limits: pd.DataFrame, mass: float | None) -> plt.Figure:
    """Median expected sigma x BR limit at one mass vs training events per model (+-1 std over seeds)."""
    fig, ax = plt.subplots(figsize=(9, 7))
    if limits.empty:
        return _empty(fig, ax, "limits table is empty")
    mass = float(limits["mass"].min()) if mass is None else float(mass)
    d = limits[limits["mass"] == mass]
    if d.empty:
        return _empty(fig, ax, f"no limits at mass {mass:g}")
    colors = _colors(list(d["model"].unique()))
    for model, g in d.groupby("model"):
        s = g.groupby("fraction").agg(n=("n_train_events", "mean"), y=("xsec_exp_pb", "mean"),
                                      e=("xsec_exp_pb", "std")).fillna(0.0).sort_values("n")
        ax.plot(s["n"], s["y"], "o-", color=colors[model], label=model)
        ax.fill_between(s["n"], s["y"] - s["e"], s["y"] + s["e"], color=colors[model], alpha=0.25)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training events")
    ax.set_ylabel(f"expected 95% CL sigma x BR [pb], m_X = {mass:g} GeV")
    ax.legend(fontsize="x-small")
    return fig


def jet_roc(jets: pd.DataFrame | None) -> plt.Figure:
    """Jet-level rejection vs efficiency of the pretrained Xbb score and of fj_doubleb."""
    fig, ax = plt.subplots(figsize=(9, 7))
    if jets is None:
        return _empty(fig, ax, "no jet_scores.parquet given")
    jets = jets[jets["label_xbb"].isin([0, 1])]
    if jets["label_xbb"].nunique() < 2:
        return _empty(fig, ax, "jet scores need both H->bb and QCD jets")
    for name, col in (("ParT Xbb", "score"), ("fj_doubleb", "fj_doubleb")):
        ax.plot(EFF_GRID, rejection_curve(jets[col].to_numpy(), jets["label_xbb"].to_numpy(), EFF_GRID), label=name)
    ax.set_yscale("log")
    ax.set_xlabel("H->bb jet efficiency")
    ax.set_ylabel("QCD jet rejection")
    ax.legend()
    return fig


def training_curves(runs: list[dict]) -> plt.Figure:
    """Small multiples: train and validation loss per epoch of every head run."""
    items = [r for r in runs if r["history"] is not None]
    ncol = max(1, min(4, len(items)))
    nrow = max(1, int(np.ceil(len(items) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.2 * nrow), squeeze=False)
    if not items:
        return _empty(fig, axes[0, 0], "no metrics.csv of head runs")
    for ax, r in zip(axes.flat, items):
        h = r["history"]
        ax.plot(h["epoch"], h["train_loss"], label="train")
        ax.plot(h["epoch"], h["val_loss"], label="val")
        ax.set_title(f"{r['run']['model']} f{float(r['run']['fraction']):g} s{r['run']['seed']}", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(items):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=8)
    return fig


def _first_full(runs: list[dict]) -> dict[str, dict]:
    return {model: sorted(items, key=lambda r: r["run"]["seed"])[0] for model, items in _full_data(runs).items()}


def score_distributions(runs: list[dict]) -> plt.Figure:
    """Per model (largest fraction, lowest seed): normalised score histograms of background and each signal mass."""
    chosen = _first_full(runs)
    ncol = max(1, min(3, len(chosen)))
    nrow = max(1, int(np.ceil(len(chosen) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 5 * nrow), squeeze=False)
    if not chosen:
        return _empty(fig, axes[0, 0], "no head runs with scores")
    bins = np.linspace(0, 1, 26)
    for ax, (model, r) in zip(axes.flat, chosen.items()):
        s = r["scores"]
        bkg = s[s["label"] == 0]
        ax.hist(bkg["score"], bins, weights=bkg["weight"], density=True, histtype="stepfilled", alpha=0.4,
                color="grey", label="background")
        for m in signal_masses(s):
            sig = s[(s["label"] == 1) & (s["mass"] == m)]
            ax.hist(sig["score"], bins, density=True, histtype="step", lw=2, label=f"signal {m:g} GeV")
        ax.set_yscale("log")
        ax.set_title(model, fontsize="small")
        ax.set_xlabel("event score")
    for ax in axes.flat[len(chosen):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize="xx-small")
    return fig


def sculpting(runs: list[dict], signal_efficiency: float) -> plt.Figure:
    """Per model: background leading-jet soft-drop mass before and after a score cut keeping `signal_efficiency`."""
    chosen = {m: r for m, r in _first_full(runs).items() if "sdmass_j1" in r["scores"].columns}
    ncol = max(1, min(3, len(chosen)))
    nrow = max(1, int(np.ceil(len(chosen) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 5 * nrow), squeeze=False)
    if not chosen:
        return _empty(fig, axes[0, 0], "no scores with sdmass_j1")
    bins = np.linspace(0, 300, 31)
    for ax, (model, r) in zip(axes.flat, chosen.items()):
        s = r["scores"]
        cut = np.quantile(s.loc[s["label"] == 1, "score"], 1 - signal_efficiency)
        bkg = s[s["label"] == 0]
        passed = bkg[bkg["score"] >= cut]
        for d, lab in ((bkg, "background, all"), (passed, f"background, score cut (eps_S = {signal_efficiency:g})")):
            if len(d) and d["weight"].sum() > 0:
                ax.hist(d["sdmass_j1"], bins, weights=d["weight"], density=True, histtype="step", lw=2, label=lab)
        ax.set_title(f"{model}: {len(passed)}/{len(bkg)} bkg pass", fontsize="small")
        ax.set_xlabel("leading-jet soft-drop mass [GeV]")
    for ax in axes.flat[len(chosen):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize="xx-small")
    return fig


def load_runs(dirs: list[str]) -> list[dict]:
    """run.json, scores.parquet and metrics.csv of each head run directory (scores/history may be None)."""
    runs = []
    for d in map(Path, dirs):
        run = read_run(d / "run.json")
        scores = read_scores(d / "scores.parquet") if (d / "scores.parquet").exists() else None
        history = pd.read_csv(d / "metrics.csv") if (d / "metrics.csv").exists() else None
        if history is not None and not {"epoch", "train_loss", "val_loss"} <= set(history.columns):
            raise InputError(f"{d / 'metrics.csv'}: needs columns epoch, train_loss, val_loss")
        runs.append({"run": run, "scores": scores, "history": history, "dir": d})
    return runs


def save(fig: plt.Figure, outdir: Path, name: str) -> None:
    """Write one figure as PDF and PNG, atomically."""
    for ext in FORMATS:
        with atomic_path(outdir / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, bbox_inches="tight", dpi=120)
    plt.close(fig)


def make_all(args: argparse.Namespace) -> None:
    setup_logging()
    params = DEFAULTS | parse_params(args.params)
    params.pop("seed", None)
    hep.style.use("CMS")
    summary, outdir = Path(args.summary), Path(args.outdir)
    agg = _read_csv(summary / "aggregated.csv")
    eff = _read_csv(summary / "data_efficiency.csv")
    limits = _read_csv(summary / "limits.csv")
    runs = load_runs(args.runs)
    jets = None
    if args.jet_scores:
        from hhfm.evaluate.tables import read_parquet

        jets = read_parquet(args.jet_scores, ["score", "label_xbb", "fj_doubleb"])
    ref = str(params["reference_model"])
    figures = {
        "rejection_vs_events_eff90": lambda: metric_vs_events(agg, "rej90", ref, r"$1/\varepsilon_B$ at $\varepsilon_S = 0.9$"),
        "rejection_vs_events_eff50": lambda: metric_vs_events(agg, "rej50", ref, r"$1/\varepsilon_B$ at $\varepsilon_S = 0.5$"),
        "auc_vs_events": lambda: metric_vs_events(agg, "auc", ref, "AUC", logy=False),
        "data_efficiency": lambda: data_efficiency_bars(eff),
        "roc_full_data": lambda: roc_full_data(runs, ref),
        "limits_vs_mass": lambda: limits_vs_mass(limits),
        "limit_vs_events": lambda: limit_vs_events(limits, params["limit_mass"]),
        "jet_roc": lambda: jet_roc(jets),
        "training_curves": lambda: training_curves(runs),
        "score_distributions": lambda: score_distributions(runs),
        "sculpting": lambda: sculpting(runs, float(params["sculpting_signal_efficiency"])),
    }
    assert set(figures) == set(FIGURES)
    for name, draw in figures.items():
        save(draw(), outdir, name)
        log.info("wrote %s/%s.{%s}", outdir, name, ",".join(FORMATS))
