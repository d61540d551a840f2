"""Domain adaptation: event-level rejection of heads on each pretraining source (hhfm.backbones)."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hhfm import backbones, model_names  # noqa: E402
from hhfm.plots.common import empty, model_colors  # noqa: E402

#: the strategies compared across pretraining sources, one column of panels each
DOMAIN_STRATEGIES = ("frozen", "finetuned")


def with_backbones(agg: pd.DataFrame, default: str) -> pd.DataFrame:
    """aggregated.csv rows of backbone models (not `standard[+weighted]`), with `backbone` (the model's @name, else
    `default`), `weighted` (a +weighted model) and `base` (the model without its @ suffix: the same head on another
    source)."""
    names = [model_names.parse(m) for m in agg["model"]]
    keep = np.array([n.representation != model_names.STANDARD for n in names], dtype=bool)
    rows = agg.loc[keep].copy()
    rows["backbone"] = [backbones.of_head_model(m, default) for m in rows["model"]]
    rows["weighted"] = [n.weighted for n, k in zip(names, keep) if k]
    rows["base"] = [f"{n.representation}-{n.strategy}" + (model_names.WEIGHTED if n.weighted else "")
                    for n, k in zip(names, keep) if k]
    return rows


def domain_adaptation(agg: pd.DataFrame, default: str, metric: str = "rej90") -> plt.Figure:
    """rej90 vs training events of each (representation, source), frozen and fine-tuned side by side; ratio panels
    to the same head on the `default` backbone (Xbb-pretrained unless heads.backbone_task says otherwise)."""
    fig, axes = plt.subplots(2, len(DOMAIN_STRATEGIES), sharex=True, squeeze=False, figsize=(8 * len(DOMAIN_STRATEGIES), 9),
                             gridspec_kw={"height_ratios": [3, 1]})
    data = agg[(agg["metric"] == metric) & (agg["mass"].astype(str) == "all")]
    rows = with_backbones(data, default).sort_values("n_train_events")
    sources = sorted(set(rows["backbone"]))
    colors = model_colors(sources)
    if rows.empty or len(sources) < 2:
        for col in range(len(DOMAIN_STRATEGIES)):
            empty(fig, axes[0, col], f"heads on at least two pretraining sources (have {sources or 'none'})")
            axes[1, col].set_visible(False)
        return fig
    styles = dict(zip(sorted(set(rows["representation"])), ("-", "--", ":")))
    for col, strategy in enumerate(DOMAIN_STRATEGIES):
        ax, rax = axes[0, col], axes[1, col]
        part = rows[rows["strategy"] == strategy]
        if part.empty:
            empty(fig, ax, f"{strategy} heads")
            continue
        for (rep, weighted, source), d in part.groupby(["representation", "weighted", "backbone"]):
            x, y = d["n_train_events"].to_numpy(), d["mean"].to_numpy()
            ls, marker = styles.get(rep, "-"), "s" if weighted else "o"  # +weighted: square markers
            label = f"{rep} @ {source}" + (" (+weighted)" if weighted else "")
            ax.plot(x, y, ls, marker=marker, color=colors[source], label=label)
            ax.fill_between(x, np.maximum(y - d["err_lo"].to_numpy(), 1.0), y + d["err_hi"].to_numpy(),
                            color=colors[source], alpha=0.2)
            ref = part[(part["representation"] == rep) & (part["weighted"] == weighted)
                       & (part["backbone"] == default)].set_index("fraction")["mean"]
            if not ref.empty:
                r = d.set_index("fraction")["mean"] / ref.reindex(d["fraction"]).to_numpy()
                rax.plot(x, r.to_numpy(), ls, marker=marker, color=colors[source])
        ax.set(xscale="log", yscale="log", title=strategy, ylabel=r"$1/\varepsilon_B$ at $\varepsilon_S = 0.9$")
        ax.legend(fontsize="x-small")
        rax.axhline(1.0, color="grey", lw=1)
        rax.set(xlabel="training events")
        rax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        rax.set_ylabel(f"/ @{default}", fontsize="small")
    fig.subplots_adjust(wspace=0.35)
    fig.align_ylabels()
    return fig
