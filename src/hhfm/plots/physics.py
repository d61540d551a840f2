"""Physics and diagnostic figures: expected limits, score distributions, mass sculpting, training curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hhfm.layout import signal_masses  # noqa: E402
from hhfm.plots.common import (empty, first_full, grid, hide_unused, model_colors, model_linestyle,  # noqa: E402
                               per_model_panels)


def _flags(d: pd.DataFrame) -> np.ndarray:
    """`mc_stat_flag` per row (rows of old tables without the column count as unflagged)."""
    if "mc_stat_flag" not in d.columns:
        return np.zeros(len(d), dtype=bool)
    return d["mc_stat_flag"].astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy()


def _flag_note(ax: plt.Axes, limits: pd.DataFrame) -> None:
    """Legend entry explaining hollow markers, only when some limit is flagged."""
    if _flags(limits).any():
        ax.plot([], [], "o", mfc="none", color="k", label="hollow: few effective bkg MC events in sensitive bins")


def _pooled(masses: np.ndarray) -> bool:
    """Mass 0 alone: the signal of every mass pooled (open data has no per-event mass)."""
    return len(masses) == 1 and float(masses[0]) == 0.0


def _mass_label(masses: np.ndarray) -> str:
    return "all signal masses pooled (no per-event mass)" if _pooled(masses) else r"$m_X$ [GeV]"


def limits_vs_mass(limits: pd.DataFrame) -> plt.Figure:
    """Brazil plot per model at its largest fraction: expected sigma x BR limit vs mass (seed mean);
    a mass is drawn hollow when any seed's limit carries `mc_stat_flag`."""
    models = sorted(limits["model"].unique()) if not limits.empty else []
    fig, axes = grid(len(models), 3, 6, 5, sharey=True, layout="constrained")  # titles never overlap labels
    if not models:
        return empty(fig, axes[0, 0], "limits table is empty")
    for ax, model in zip(axes.flat, models):
        d = limits[limits["model"] == model]
        d = d[d["fraction"] == d["fraction"].max()].assign(flag=lambda x: _flags(x))
        d = d.groupby("mass").agg({**{c: "mean" for c in d.columns if c.startswith("xsec_")}, "flag": "any"}).reset_index()
        m, flag = d["mass"].to_numpy(), d["flag"].to_numpy(dtype=bool)
        if len(m) == 1:  # one mass (or the pooled open-data signal): bands as a box around the point
            d = pd.concat([d, d], ignore_index=True)
            d["mass"] = m[0] + np.array([-0.5, 0.5]) * max(0.1 * abs(m[0]), 1.0)
        x = d["mass"].to_numpy()
        ax.fill_between(x, d["xsec_m2_pb"], d["xsec_p2_pb"], color="#F5BB54", label=r"expected $\pm 2\sigma$")
        ax.fill_between(x, d["xsec_m1_pb"], d["xsec_p1_pb"], color="#607641", label=r"expected $\pm 1\sigma$")
        ax.plot(x, d["xsec_exp_pb"], "k--", label="median expected")
        y = d["xsec_exp_pb"].to_numpy()[: len(m)]
        ax.plot(m[~flag], y[~flag], "ko", ls="none")
        ax.plot(m[flag], y[flag], "o", mfc="white", color="k", ls="none")
        ax.set_yscale("log")
        ax.set_title(model, fontsize="small")
        ax.set_xlabel(_mass_label(m))
        if _pooled(m):
            ax.set_xticks([])
    hide_unused(axes, len(models))
    axes[0, 0].set_ylabel(r"95% CL $\sigma \times \mathcal{B}$ [pb]")
    _flag_note(axes[0, 0], limits)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize="small",
               frameon=False)  # below the panels, never over data or labels
    return fig


def limit_vs_events(limits: pd.DataFrame, mass: float | None) -> plt.Figure:
    """Median expected sigma x BR limit at one mass vs training events per model (+-1 std over seeds);
    hollow markers where any seed's limit carries `mc_stat_flag`."""
    fig, ax = plt.subplots(figsize=(9, 7))
    if limits.empty:
        return empty(fig, ax, "limits table is empty")
    mass = float(limits["mass"].min()) if mass is None else float(mass)
    d = limits[limits["mass"] == mass]
    if d.empty:
        return empty(fig, ax, f"no limits at mass {mass:g}")
    d = d.assign(flag=_flags(d))
    colors = model_colors(list(d["model"].unique()))
    for model, g in d.groupby("model"):
        s = g.groupby("fraction").agg(n=("n_train_events", "mean"), y=("xsec_exp_pb", "mean"),
                                      e=("xsec_exp_pb", "std"), flag=("flag", "any")).fillna(0.0).sort_values("n")
        flag = s["flag"].to_numpy(dtype=bool)
        ax.plot(s["n"], s["y"], ls=model_linestyle(model), color=colors[model], label=model)
        ax.plot(s["n"][~flag], s["y"][~flag], "o", color=colors[model], ls="none")
        ax.plot(s["n"][flag], s["y"][flag], "o", mfc="white", color=colors[model], ls="none")
        ax.fill_between(s["n"], s["y"] - s["e"], s["y"] + s["e"], color=colors[model], alpha=0.25)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training events")
    where = "all signal masses pooled" if _pooled(np.array([mass])) else rf"$m_X$ = {mass:g} GeV"
    ax.set_ylabel(rf"expected 95% CL $\sigma \times \mathcal{{B}}$ [pb], {where}")
    _flag_note(ax, d)
    ax.legend(fontsize="x-small")
    return fig


def training_curves(runs: list[dict]) -> plt.Figure:
    """Small multiples: train and validation loss per epoch of every head run."""
    items = [r for r in runs if r["history"] is not None]
    fig, axes = grid(len(items), 4, 4, 3.2)
    if not items:
        return empty(fig, axes[0, 0], "no metrics.csv of head runs")
    for ax, r in zip(axes.flat, items):
        h = r["history"]
        ax.plot(h["epoch"], h["train_loss"], label="train")
        ax.plot(h["epoch"], h["val_loss"], label="val")
        ax.set_title(f"{r['run']['model']} f{float(r['run']['fraction']):g} s{r['run']['seed']}", fontsize=9)
        ax.tick_params(labelsize=8)
    hide_unused(axes, len(items))
    axes[0, 0].legend(fontsize=8)
    return fig


def score_distributions(runs: list[dict]) -> plt.Figure:
    """Per model (largest fraction, lowest seed): normalised score histograms of background and each signal mass."""
    bins = np.linspace(0, 1, 26)

    def draw(ax: plt.Axes, model: str, run: dict) -> None:
        s = run["scores"]
        bkg = s[s["label"] == 0]
        ax.hist(bkg["score"], bins, weights=bkg["weight"], density=True, histtype="stepfilled", alpha=0.4,
                color="grey", label="background")
        for m in signal_masses(s):
            sig = s[(s["label"] == 1) & (s["mass"] == m)]
            ax.hist(sig["score"], bins, density=True, histtype="step", lw=2, label=f"signal {m:g} GeV")
        ax.set_yscale("log")
        ax.set_title(model, fontsize="small")
        ax.set_xlabel("event score")

    return per_model_panels(first_full(runs), draw, "no head runs with scores")


def sculpting(runs: list[dict], signal_efficiency: float) -> plt.Figure:
    """Per model: background leading-jet soft-drop mass before and after a score cut keeping `signal_efficiency`."""
    chosen = {m: r for m, r in first_full(runs).items() if "sdmass_j1" in r["scores"].columns}
    bins = np.linspace(0, 300, 31)

    def draw(ax: plt.Axes, model: str, run: dict) -> None:
        s = run["scores"]
        cut = np.quantile(s.loc[s["label"] == 1, "score"], 1 - signal_efficiency)
        bkg = s[s["label"] == 0]
        passed = bkg[bkg["score"] >= cut]
        for d, lab in ((bkg, "background, all"), (passed, f"background, score cut (eps_S = {signal_efficiency:g})")):
            if len(d) and d["weight"].sum() > 0:
                ax.hist(d["sdmass_j1"], bins, weights=d["weight"], density=True, histtype="step", lw=2, label=lab)
        ax.set_title(f"{model}: {len(passed)}/{len(bkg)} bkg pass", fontsize="small")
        ax.set_xlabel("leading-jet soft-drop mass [GeV]")

    return per_model_panels(chosen, draw, "no scores with sdmass_j1")
