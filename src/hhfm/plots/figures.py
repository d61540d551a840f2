"""`hhfm plots`: read the summary tables and head-run files (hhfm.layout) and write every figure."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import pandas as pd  # noqa: E402

from hhfm import config, layout  # noqa: E402
from hhfm.errors import InputError  # noqa: E402
from hhfm.evaluate.summarise import JET_COLUMNS, parse_jet_scores  # noqa: E402
from hhfm.io import atomic_path, setup_logging  # noqa: E402
from hhfm.plots import FIGURES, FORMATS  # noqa: E402
from hhfm.plots.domain import domain_adaptation  # noqa: E402
from hhfm.plots.performance import data_efficiency_bars, jet_roc, metric_vs_events, roc_full_data  # noqa: E402
from hhfm.plots.represent import cka_layers, cka_vs_events, embedding_auc, latent_maps, rejection_vs_compute  # noqa: E402
from hhfm.plots.physics import limit_vs_events, limits_vs_mass, sculpting, score_distributions, training_curves  # noqa: E402

log = logging.getLogger("hhfm.plots")
LATENT_COLUMNS = ["embedding", "jet", "label_class", "label_xbb", "event_label", "x", "y"]


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"{path}: file does not exist (run the summarise / limits stages first)")
    return pd.read_csv(path, dtype={"mass": str} if path.name != "limits.csv" else None)


def load_runs(dirs: list[str]) -> list[dict]:
    """run.json, scores.parquet and metrics.csv of each head run directory (scores/history may be None)."""
    runs = []
    for d in map(Path, dirs):
        scores = layout.read_scores(d / "scores.parquet") if (d / "scores.parquet").exists() else None
        runs.append({"run": layout.read_run(d / "run.json"), "scores": scores,
                     "history": layout.read_history(d / "metrics.csv"), "dir": d})
    return runs


def save(fig: plt.Figure, outdir: Path, name: str) -> None:
    """Write one figure as PDF and PNG, atomically."""
    for ext in FORMATS:
        with atomic_path(outdir / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, bbox_inches="tight", dpi=120)
    plt.close(fig)


def make_all(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = config.load(args.config, None, sections=["seed", "plots", "evaluate", "represent"])
    params = cfg.plots
    hep.style.use("CMS")
    summary, outdir = Path(args.summary), Path(args.outdir)
    agg = _read_csv(summary / "aggregated.csv")
    eff = _read_csv(summary / "data_efficiency.csv")
    limits = _read_csv(summary / "limits.csv")
    cka, dim_auc = _read_csv(summary / "cka.csv"), _read_csv(summary / "embedding_auc.csv")
    compute, to_ref = _read_csv(summary / "compute.csv"), _read_csv(summary / "compute_to_reference.csv")
    latent = layout.read_parquet(summary / "latent.parquet", LATENT_COLUMNS)
    runs = load_runs(args.runs)
    jets = {task: layout.read_parquet(path, JET_COLUMNS) for task, path in parse_jet_scores(args.jet_scores).items()}
    ref = str(params.reference_model)
    figures = {
        "rejection_vs_events_eff90": lambda: metric_vs_events(agg, "rej90", ref, r"$1/\varepsilon_B$ at $\varepsilon_S = 0.9$"),
        "rejection_vs_events_eff90_weighted": lambda: metric_vs_events(
            agg, "rej90_weighted", ref, r"$1/\varepsilon_B$ at $\varepsilon_S = 0.9$ (weighted)"),
        "rejection_vs_events_eff50": lambda: metric_vs_events(agg, "rej50", ref, r"$1/\varepsilon_B$ at $\varepsilon_S = 0.5$"),
        "auc_vs_events": lambda: metric_vs_events(agg, "auc", ref, "AUC", logy=False),
        "data_efficiency": lambda: data_efficiency_bars(eff),
        "roc_full_data": lambda: roc_full_data(runs, ref),
        "limits_vs_mass": lambda: limits_vs_mass(limits),
        "limit_vs_events": lambda: limit_vs_events(limits, params.limit_mass),
        "jet_roc": lambda: jet_roc(jets),
        "training_curves": lambda: training_curves(runs),
        "score_distributions": lambda: score_distributions(runs),
        "sculpting": lambda: sculpting(runs, float(params.sculpting_signal_efficiency)),
        "cka_layers": lambda: cka_layers(cka, str(cfg.represent.latent_model)),
        "cka_vs_events": lambda: cka_vs_events(cka),
        "latent_maps": lambda: latent_maps(latent),
        "embedding_auc": lambda: embedding_auc(dim_auc),
        "rejection_vs_compute": lambda: rejection_vs_compute(compute, to_ref, ref, int(cfg.evaluate.amortise_over)),
        "domain_adaptation": lambda: domain_adaptation(agg, args.default_backbone),
    }
    assert set(figures) == set(FIGURES)
    for name, draw in figures.items():
        save(draw(), outdir, name)
        log.info("wrote %s/%s.{%s}", outdir, name, ",".join(FORMATS))
