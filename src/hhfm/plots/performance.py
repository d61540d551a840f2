"""Performance figures: metrics vs training events, data efficiency, ROC curves (event and jet level)."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hhfm.metrics import rejection_band  # noqa: E402
from hhfm.plots.common import EFF_GRID, empty, model_colors, model_linestyle, full_data  # noqa: E402

#: bootstrap resamples (seed 0) per run for the band of `roc_full_data`
ROC_BOOTSTRAP = 100
EPS_S, REJ = r"$\varepsilon_S$", r"$1/\varepsilon_B$"


def _points(ax: plt.Axes, x: np.ndarray, y: np.ndarray, capped: np.ndarray, color: str, label: str | None = None,
            ls: str = "-") -> None:
    """Line through the points: ordinary markers, capped ones as lower limits (^ with an upward arrow)."""
    ax.plot(x, y, ls=ls, color=color, label=label)
    ax.plot(x[~capped], y[~capped], "o", color=color)
    if capped.any():
        ax.errorbar(x[capped], y[capped], yerr=0.4 * np.abs(y[capped]), lolims=True, fmt="^", color=color,
                    markersize=9, capsize=4)


def _capped_legend(ax: plt.Axes, any_capped: bool) -> None:
    if any_capped:
        ax.plot([], [], "^", color="black", label="capped: lower limit")
    ax.legend(fontsize="x-small")


def _combine(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seeds, points) values and bootstrap bounds -> mean, err_lo, err_hi as in summarise's aggregated.csv."""
    seed_part = values.var(0, ddof=1) / len(values) if len(values) > 1 else 0.0
    err_lo = np.sqrt(seed_part + ((values - lo) ** 2).mean(0))
    return values.mean(0), err_lo, np.sqrt(seed_part + ((hi - values) ** 2).mean(0))


def metric_vs_events(agg: pd.DataFrame, metric: str, reference: str, ylabel: str, ratio: bool = True,
                     logy: bool = True) -> plt.Figure:
    """Mean metric vs training events (band: err_lo/err_hi, seeds and bootstrap), one line per model; ratio panel."""
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
        x, y, capped = d["n_train_events"].to_numpy(), d["mean"].to_numpy(), d["capped"].to_numpy(bool)
        _points(ax, x, y, capped, colors[model], model, model_linestyle(model))
        low = y - d["err_lo"].to_numpy()
        ax.fill_between(x, np.maximum(low, 1.0) if logy else low, y + d["err_hi"].to_numpy(), color=colors[model],
                        alpha=0.25)
        if ratio and not ref.empty:
            r = d.set_index("fraction")["mean"] / ref.reindex(d["fraction"]).to_numpy()
            _points(rax, x, r.to_numpy(), capped, colors[model], ls=model_linestyle(model))
    ax.set_xscale("log")
    (rax if ratio else ax).xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    _capped_legend(ax, bool(data["capped"].any()))
    if ratio:
        rax.axhline(1.0, color="grey", lw=1)
        rax.set_ylabel(f"/ {reference}", fontsize="small")
        rax.set_xlabel("training events")
    else:
        ax.set_xlabel("training events")
    fig.align_ylabels()
    return fig


def data_efficiency_bars(eff: pd.DataFrame) -> plt.Figure:
    """Data-efficiency factors (mass 'all', rej90 and rej50) with factor_lo/hi error bars; hatched where a bound."""
    fig, ax = plt.subplots(figsize=(10, 7))
    data = eff[(eff["mass"] == "all") & eff["metric"].isin(["rej90", "rej50"])] if not eff.empty else eff
    if data.empty:
        return empty(fig, ax, "needs the reference model and several training fractions")
    models = sorted(data["model"].unique())
    width = 0.4
    for k, metric in enumerate(["rej90", "rej50"]):
        d = data[data["metric"] == metric].set_index("model").reindex(models)
        x = np.arange(len(models)) + (k - 0.5) * width
        f = d["factor"].to_numpy()
        yerr = np.clip([f - d["factor_lo"].to_numpy(), d["factor_hi"].to_numpy() - f], 0, None)
        bars = ax.bar(x, f, width, yerr=yerr, capsize=4, label=f"{metric} ({EPS_S} = 0.{metric[3:]})")
        for bar, bound in zip(bars, d["bound"].to_numpy()):
            if bound != "exact":
                bar.set_hatch("xx" if bound == "capped" else "//")
    ax.set_xticks(np.arange(len(models)), models, rotation=30, ha="right", fontsize="small")
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", lw=1)
    ax.set_ylabel(f"data-efficiency factor vs {data['reference'].iloc[0]}")
    ax.legend(fontsize="x-small", title="hatched: // bound, xx capped target", title_fontsize="x-small", ncol=2,
              loc="lower left", bbox_to_anchor=(0.0, 1.01))
    return fig


def roc_full_data(runs: list[dict], reference: str) -> plt.Figure:
    """Rejection vs signal efficiency (from the logit) per model at its largest fraction, seed mean with a band
    combining the seed spread and a per-run bootstrap (`ROC_BOOTSTRAP` resamples) like aggregated.csv."""
    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, figsize=(9, 9))
    full = full_data(runs)
    if not full:
        return empty(fig, ax, "no head runs with scores")
    colors = model_colors(list(full))
    curves = {}
    for model, items in full.items():
        bands = np.array([rejection_band(r["scores"]["logit"].to_numpy(), r["scores"]["label"].to_numpy(), EFF_GRID,
                                         ROC_BOOTSTRAP) for r in items])  # (seeds, 3, grid)
        curves[model], err_lo, err_hi = _combine(bands[:, 0], bands[:, 1], bands[:, 2])
        ax.plot(EFF_GRID, curves[model], color=colors[model], ls=model_linestyle(model), label=model)
        ax.fill_between(EFF_GRID, np.maximum(curves[model] - err_lo, 1.0), curves[model] + err_hi, color=colors[model],
                        alpha=0.25)
    if reference in curves:
        for model, c in curves.items():
            rax.plot(EFF_GRID, c / curves[reference], color=colors[model], ls=model_linestyle(model))
    rax.axhline(1.0, color="grey", lw=1)
    ax.set_yscale("log")
    ax.set_ylabel(f"background rejection {REJ}")
    ax.legend(fontsize="x-small", title=r"band: seeds $\oplus$ bootstrap", title_fontsize="x-small")
    rax.set_xlabel(f"signal efficiency {EPS_S}")
    rax.set_ylabel(f"/ {reference}", fontsize="small")
    return fig


def jet_roc(jets: dict[str, pd.DataFrame]) -> plt.Figure:
    """Jet-level rejection vs efficiency of each pretrained tagger's Xbb score and of fj_doubleb (68 % bootstrap bands)."""
    fig, ax = plt.subplots(figsize=(9, 7))
    if not jets:
        return empty(fig, ax, "no jet_scores.parquet given")
    for i, (task, frame) in enumerate(sorted(jets.items())):
        frame = frame[frame["label_xbb"].isin([0, 1])]
        if frame["label_xbb"].nunique() < 2:
            return empty(fig, ax, f"jet scores of {task} need both H->bb and QCD jets")
        curves = [(_label(task), "score")] + ([("fj_doubleb", "fj_doubleb")] if i == 0 else [])
        for name, col in curves:
            rej, lo, hi = rejection_band(frame[col].to_numpy(), frame["label_xbb"].to_numpy(), EFF_GRID, ROC_BOOTSTRAP)
            line, = ax.plot(EFF_GRID, rej, label=name)
            ax.fill_between(EFF_GRID, np.maximum(lo, 1.0), hi, color=line.get_color(), alpha=0.25)
    ax.set_yscale("log")
    ax.set_xlabel(r"$H\to b\bar{b}$ jet efficiency")
    ax.set_ylabel("QCD jet rejection")
    ax.legend(title="band: 68 % bootstrap", title_fontsize="x-small")
    return fig


def _label(task: str) -> str:
    """A backbone's tagger as tables and figures name it (hhfm.backbones.tagger_label; other names as given)."""
    from hhfm import backbones

    return backbones.tagger_label(task) if task in backbones.BACKBONES else f"ParT {task}"
