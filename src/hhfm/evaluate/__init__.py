"""`hhfm evaluate`: metrics of one head run from its saved test scores (no model needed).

Writes one long table, one row per (mass, metric): AUC and background rejection at 50/70/90 %
signal efficiency, inclusive (`mass` = 'all': every signal mass against all background) and per
signal mass (that mass against all background); unweighted (each test event once) and, if
`weighted` is set, cross-section weighted (`*_weighted`). Also the test-set sizes `n_signal`,
`n_background`, which bound the largest measurable rejection. Every metric carries a 68 % bootstrap
interval (`lo`, `hi`; `evaluate.bootstrap` resamples seeded by `evaluate.bootstrap_seed`) and a flag
`capped` (a rejection at the largest measurable value: only a lower bound). Rank-based metrics use the
float64 `logit` column (float32 sigmoid scores saturate at 1.0 and tie).
"""

from __future__ import annotations

import argparse
import logging
import time

import pandas as pd

from hhfm import config, layout
from hhfm.io import setup_logging
from hhfm.layout import RUN_COLUMNS, mass_label, signal_masses
from hhfm.metrics import metrics_with_intervals

log = logging.getLogger("hhfm.evaluate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help="JSON {'evaluate': {...}}: the tracked config")
    parser.add_argument("--scores", required=True, help="scores.parquet of one head run")
    parser.add_argument("--run", required=True, help="run.json of the same head run")
    parser.add_argument("--output", required=True, help="long metrics table (CSV) to write")


def _rows(df: pd.DataFrame, weighted: bool, n_boot: int, seed: int) -> list[dict]:
    """Metric rows of one selection; weighted and unweighted use the same resampled events."""
    logit, label, weight = df["logit"].to_numpy(), df["label"].to_numpy(), df["weight"].to_numpy()
    values = metrics_with_intervals(logit, label, None, n_boot, seed)
    if weighted:
        weighted_values = metrics_with_intervals(logit, label, weight, n_boot, seed)
        values |= {f"{k}_weighted": v for k, v in weighted_values.items()}
    for name, n in (("n_signal", (label == 1).sum()), ("n_background", (label == 0).sum())):
        values[name] = {"value": float(n), "lo": float(n), "hi": float(n), "capped": False}
    return [{"metric": k, **v} for k, v in values.items()]


def evaluate_scores(scores: pd.DataFrame, run: dict, weighted: bool = True, bootstrap: int = 200,
                    bootstrap_seed: int = 0) -> pd.DataFrame:
    """The long metrics table of one run: value, 68 % interval (lo, hi) and `capped` per (mass, metric)."""
    bkg = scores[scores["label"] == 0]
    selections = [("all", scores)] + [
        (mass_label(m), pd.concat([scores[(scores["label"] == 1) & (scores["mass"] == m)], bkg]))
        for m in signal_masses(scores)
    ]
    rows = [{"mass": mass, **row} for mass, df in selections for row in _rows(df, weighted, bootstrap, bootstrap_seed)]
    table = pd.DataFrame(rows, columns=["mass", "metric", "value", "lo", "hi", "capped"])
    labels = layout.run_labels(run)
    for col in reversed(RUN_COLUMNS):
        table.insert(0, col, labels[col])
    return table


def run(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = config.load(args.config, None, sections=["evaluate"])
    scores = layout.read_scores(args.scores)
    run_info = layout.read_run(args.run)
    params, start = cfg.evaluate, time.perf_counter()
    table = evaluate_scores(scores, run_info, bool(params.weighted), int(params.bootstrap), int(params.bootstrap_seed))
    log.info("%d events, %d bootstrap resamples: %.2f s", len(scores), int(params.bootstrap), time.perf_counter() - start)
    layout.write_table(table, args.output)
    inclusive = table[(table["mass"] == "all")].set_index("metric")
    log.info("%s f=%g s=%s: AUC %.4f, rej90 %.1f%s -> %s", run_info["model"], run_info["fraction"], run_info["seed"],
             inclusive.loc["auc", "value"], inclusive.loc["rej90", "value"],
             " (capped)" if inclusive.loc["rej90", "capped"] else "", args.output)
