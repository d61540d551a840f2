"""Performance figures: metrics vs training events, data efficiency, ROC curves (event and jet level)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hhfm.metrics import rejection_curve  # noqa: E402
from hhfm.plots.common import EFF_GRID, empty, model_colors, full_data  # noqa: E402


def metric_vs_events(agg: pd.DataFrame, metric: str, reference: str, ylabel: str, ratio: bool = True,
                     logy: bool = True) -> plt.Figure:
    """Mean metric (band: +-1 std over seeds) vs training events, one line per model; ratio panel."""
    data = agg[(agg["metric"] == metric) & (agg["mass"] == "all")].sort_values("n_train_events")
    if ratio:
        fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, figsize=(9, 9))
    else:
        fig, ax = plt.subplots(figsize=(9, 7))
    if data.empty:
        return empty(fig, ax, f"metric {metric}")
    colors = model_colors(list(data["model"].unique()))
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
        return empty(fig, ax, "needs the reference model and several training fractions")
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
    full = full_data(runs)
    if not full:
        return empty(fig, ax, "no head runs with scores")
    colors = model_colors(list(full))
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


def jet_roc(jets: dict[str, pd.DataFrame]) -> plt.Figure:
    """Jet-level rejection vs efficiency of each pretrained tagger's Xbb score and of fj_doubleb."""
    fig, ax = plt.subplots(figsize=(9, 7))
    if not jets:
        return empty(fig, ax, "no jet_scores.parquet given")
    for i, (task, frame) in enumerate(sorted(jets.items())):
        frame = frame[frame["label_xbb"].isin([0, 1])]
        if frame["label_xbb"].nunique() < 2:
            return empty(fig, ax, f"jet scores of {task} need both H->bb and QCD jets")
        curves = [(f"ParT {task}", "score")] + ([("fj_doubleb", "fj_doubleb")] if i == 0 else [])
        for name, col in curves:
            rej = rejection_curve(frame[col].to_numpy(), frame["label_xbb"].to_numpy(), EFF_GRID)
            ax.plot(EFF_GRID, rej, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("H->bb jet efficiency")
    ax.set_ylabel("QCD jet rejection")
    ax.legend()
    return fig
