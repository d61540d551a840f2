"""Figures of the representation and compute studies: CKA matrix, CKA vs training events, latent maps,
per-dimension AUCs, rejection vs training compute (tables from hhfm.represent and hhfm.evaluate.compute)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hhfm import model_names  # noqa: E402
from hhfm.features import JET_CLASSES  # noqa: E402
from hhfm.plots.common import empty, model_colors, model_linestyle  # noqa: E402


def _layer_order(names) -> list[str]:
    """embed, block1.., cls1.., output (the order of the forward pass)."""
    rank = {"embed": 0, "block": 1, "cls": 2, "output": 3}
    key = lambda n: (rank[n.rstrip("0123456789")], int(n[len(n.rstrip("0123456789")):] or 0))  # noqa: E731
    return sorted(set(names), key=key)


def cka_layers(cka: pd.DataFrame, model: str) -> plt.Figure:
    """Layer-by-layer CKA between the pretrained backbone and one run's (`model` at its largest fraction, seed 1st)."""
    fig, ax = plt.subplots(figsize=(9, 7.5))
    mine = cka[cka["model"] == model] if model in set(cka["model"]) else cka
    if mine.empty:
        return empty(fig, ax, "no head run trained its backbone (finetuned / scratch)")
    top = mine[mine["fraction"] == mine["fraction"].max()]
    top = top[top["seed"] == top["seed"].min()]
    model, frac = top["model"].iloc[0], top["fraction"].iloc[0]
    rows, cols = _layer_order(top["layer_a"]), _layer_order(top["layer_b"])
    m = top.pivot_table(index="layer_a", columns="layer_b", values="cka").loc[rows, cols].to_numpy()
    im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis", origin="lower")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize="x-small", color="w" if v < 0.6 else "k")
    ax.set_xticks(range(len(cols)), cols, rotation=45, fontsize="small")
    ax.set_yticks(range(len(rows)), rows, fontsize="small")
    ax.set_xlabel(f"{model} backbone (f = {frac:g}) layer")
    ax.set_ylabel("pretrained backbone layer")
    fig.colorbar(im, ax=ax, label="linear CKA")
    return fig


def cka_vs_events(cka: pd.DataFrame) -> plt.Figure:
    """CKA(pretrained, trained) at the last layer vs training events, one line per model (seed mean +- spread)."""
    fig, ax = plt.subplots(figsize=(9, 7))
    last = cka[(cka["layer_a"] == "output") & (cka["layer_b"] == "output")]
    if last.empty:
        return empty(fig, ax, "no head run trained its backbone (finetuned / scratch)")
    colors = model_colors(list(last["model"].unique()))
    for model, d in last.groupby("model"):
        g = d.groupby("n_train_events")["cka"].agg(["mean", "std"]).fillna(0.0).reset_index()
        ax.errorbar(g["n_train_events"], g["mean"], yerr=g["std"], marker="o", capsize=3, color=colors[model],
                    label=model, ls=_cka_linestyle(model))
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("training events")
    ax.set_ylabel("CKA(pretrained, trained) at the jet embedding")
    ax.legend(fontsize="small")
    return fig


def _cka_linestyle(model: str) -> str:
    """cka_vs_events: fine-tuned solid, scratch dashed; their +weighted twins dotted and dash-dotted."""
    name = model_names.parse(model)
    return {(False, False): "-", (False, True): "--", (True, False): ":", (True, True): "-."}[
        (name.weighted, name.strategy == "scratch")]


def latent_maps(latent: pd.DataFrame) -> plt.Figure:
    """t-SNE maps: one row per embedding (pretrained, fine-tuned), coloured by jet class and by event label."""
    names = list(dict.fromkeys(latent["embedding"])) if not latent.empty else []
    fig, axes = plt.subplots(max(1, len(names)), 2, figsize=(13, 6 * max(1, len(names))), squeeze=False)
    if not names:
        return empty(fig, axes[0, 0], "no latent map")
    for row, name in zip(axes, names):
        d = latent[latent["embedding"] == name]
        for cls in sorted(d["label_class"].unique()):
            s = d[d["label_class"] == cls]
            label = JET_CLASSES[cls] if 0 <= cls < len(JET_CLASSES) else "unlabelled"
            row[0].scatter(s["x"], s["y"], s=4, alpha=0.6, label=label)
        for lab, color, text in ((0, "tab:blue", "background event"), (1, "tab:red", "signal event")):
            s = d[d["event_label"] == lab]
            row[1].scatter(s["x"], s["y"], s=4, alpha=0.5, color=color, label=text)
        for ax, what in zip(row, ("jet class", "event label")):
            ax.set_title(f"{name}: {what}", fontsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.legend(fontsize="xx-small", markerscale=3, loc="best")
    return fig


def embedding_auc(auc: pd.DataFrame) -> plt.Figure:
    """Distribution of the per-dimension separation max(AUC, 1 - AUC) (H->bb vs QCD jets) of each embedding
    (pretrained, and each trained backbone at its largest fraction and first seed)."""
    fig, ax = plt.subplots(figsize=(9, 7))
    d = auc.dropna(subset=["auc"])
    if d.empty:
        return empty(fig, ax, "no per-dimension AUC (needs H->bb and QCD jets in the sample)")
    trained = d[d["embedding"] != "pretrained"]
    if not trained.empty:
        top = trained.groupby("model")["fraction"].transform("max") == trained["fraction"]
        trained = trained[top]
        trained = trained[trained.groupby("model")["seed"].transform("min") == trained["seed"]]
    bins = np.linspace(0.5, 1.0, 26)
    for name, g in pd.concat([d[d["embedding"] == "pretrained"], trained]).groupby("embedding", sort=False):
        sep = np.maximum(g["auc"], 1 - g["auc"])
        label = name if name == "pretrained" else f"{name} (f = {g['fraction'].iloc[0]:g})"
        ax.hist(sep, bins=bins, histtype="step", lw=2, label=f"{label}: median {np.median(sep):.3f}")
    ax.set_xlabel(r"per-dimension max(AUC, 1 - AUC), $H\to b\bar{b}$ vs QCD jets")
    ax.set_ylabel("embedding dimensions")
    ax.legend(fontsize="x-small")
    return fig


def rejection_vs_compute(compute: pd.DataFrame, to_ref: pd.DataFrame, reference: str, amortise_over: int
                         ) -> plt.Figure:
    """rej90 vs training FLOPs per model, pretraining charged in full (left) or amortised (right); the
    reference's full-data rejection as a line, stars where a model's curve reaches it (compute_to_reference)."""
    fig, axes = plt.subplots(1, 2, figsize=(16, 7), sharey=True)
    d = compute.dropna(subset=["rej90"])
    d = d[d["flops_full"] > 0]
    if d.empty:
        return empty(fig, axes[0], "no run with a compute record and a rejection")
    colors = model_colors(list(d["model"].unique()))
    titles = {"flops_full": "pretraining counted in full",
              "flops_amortised": f"pretraining amortised over {amortise_over} analyses"}
    for ax, (col, title) in zip(axes, titles.items()):
        for model, g in d.groupby("model"):
            m = g.groupby("fraction").agg(x=(col, "mean"), y=("rej90", "mean"), lo=("rej90_lo", "mean"),
                                          hi=("rej90_hi", "mean")).sort_values("x")
            ax.errorbar(m["x"], m["y"], yerr=[np.maximum(m["y"] - m["lo"], 0), np.maximum(m["hi"] - m["y"], 0)],
                        marker="o", capsize=3, color=colors[model], ls=model_linestyle(model), label=model)
        accounting = "full" if col == "flops_full" else "amortised"
        reached = to_ref[(to_ref["accounting"] == accounting) & (to_ref["bound"] == "exact")]
        for r in reached.itertuples():
            ax.plot(r.flops_model, r.target, marker="*", ms=14, color=colors.get(r.model, "k"), ls="none")
        ref = d[d["model"] == reference]
        if not ref.empty:
            top = ref[ref["fraction"] == ref["fraction"].max()]["rej90"].mean()
            ax.axhline(top, color="k", ls=":", label=f"{reference}, full data")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training compute (FLOP)")
        ax.set_title(title, fontsize="small")
    axes[0].set_ylabel(r"$1/\varepsilon_B$ at $\varepsilon_S = 0.9$")
    axes[1].legend(fontsize="x-small")
    return fig
