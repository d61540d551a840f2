"""Helpers shared by the figure modules: empty-figure note, colours, grids, run selection."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hhfm.model_names import split_weighted  # noqa: E402

#: signal efficiencies of ROC-type curves
EFF_GRID = np.linspace(0.05, 1.0, 96)


def empty(fig: plt.Figure, ax: plt.Axes, what: str) -> plt.Figure:
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def model_colors(models: list[str]) -> dict[str, str]:
    """A colour per name; a `+weighted` model shares its unweighted twin's (`model_linestyle` tells them apart)."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bases = sorted({split_weighted(m)[0] for m in models})
    return {m: cycle[bases.index(split_weighted(m)[0]) % len(cycle)] for m in sorted(models)}


def model_linestyle(model: str, unweighted: str = "-") -> str:
    """Line style of a model's curves: dashed for a `+weighted` model (same colour as its twin), else `unweighted`."""
    return "--" if split_weighted(model)[1] else unweighted


def grid(n: int, max_cols: int, width: float, height: float, **kw) -> tuple[plt.Figure, np.ndarray]:
    """Small multiples for `n` panels (at least one); unused panels are hidden by `hide_unused`."""
    ncol = max(1, min(max_cols, n))
    nrow = max(1, int(np.ceil(n / ncol)))
    return plt.subplots(nrow, ncol, figsize=(width * ncol, height * nrow), squeeze=False, **kw)


def hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def full_data(runs: list[dict]) -> dict[str, list[dict]]:
    """Runs at each model's largest training fraction, grouped by model."""
    out: dict[str, list[dict]] = {}
    for model in sorted({r["run"]["model"] for r in runs if r["scores"] is not None}):
        mine = [r for r in runs if r["run"]["model"] == model and r["scores"] is not None]
        top = max(float(r["run"]["fraction"]) for r in mine)
        out[model] = [r for r in mine if float(r["run"]["fraction"]) == top]
    return out


def first_full(runs: list[dict]) -> dict[str, dict]:
    return {model: sorted(items, key=lambda r: r["run"]["seed"])[0] for model, items in full_data(runs).items()}


def per_model_panels(chosen: dict[str, dict], draw, missing: str) -> plt.Figure:
    """One panel per model (3 a row): `draw(ax, model, run)` fills each; a note when `chosen` is empty."""
    fig, axes = grid(len(chosen), 3, 6, 5)
    if not chosen:
        return empty(fig, axes[0, 0], missing)
    for ax, (model, run) in zip(axes.flat, chosen.items()):
        draw(ax, model, run)
    hide_unused(axes, len(chosen))
    axes[0, 0].legend(fontsize="xx-small")
    return fig
