"""`hhfm evaluate`: metrics of one head run from its saved test scores (no model needed).

Writes one long table, one row per (mass, metric): AUC and background rejection at 50/70/90 %
signal efficiency, inclusive (`mass` = 'all': every signal mass against all background) and per
signal mass (that mass against all background); unweighted (each test event once) and, if
`weighted` is set, cross-section weighted (`*_weighted`). Also the test-set sizes `n_signal`,
`n_background`, which bound the largest measurable rejection.
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from hhfm import config, layout
from hhfm.io import setup_logging
from hhfm.layout import RUN_COLUMNS, mass_label, signal_masses
from hhfm.metrics import binary_metrics

log = logging.getLogger("hhfm.evaluate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help="JSON {'evaluate': {...}}: the tracked config")
    parser.add_argument("--scores", required=True, help="scores.parquet of one head run")
    parser.add_argument("--run", required=True, help="run.json of the same head run")
    parser.add_argument("--output", required=True, help="long metrics table (CSV) to write")


def evaluate_scores(scores: pd.DataFrame, run: dict, weighted: bool = True) -> pd.DataFrame:
    """The long metrics table of one run."""
    rows = []
    bkg = scores[scores["label"] == 0]
    selections = [("all", scores)] + [
        (mass_label(m), pd.concat([scores[(scores["label"] == 1) & (scores["mass"] == m)], bkg]))
        for m in signal_masses(scores)
    ]
    for mass, df in selections:
        score, label, weight = df["score"].to_numpy(), df["label"].to_numpy(), df["weight"].to_numpy()
        values = binary_metrics(score, label)
        if weighted:
            values |= {f"{k}_weighted": v for k, v in binary_metrics(score, label, weight).items()}
        values |= {"n_signal": float((label == 1).sum()), "n_background": float((label == 0).sum())}
        rows += [{"mass": mass, "metric": k, "value": v} for k, v in values.items()]
    table = pd.DataFrame(rows)
    for col in reversed(RUN_COLUMNS):
        table.insert(0, col, run[col])
    return table


def run(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = config.load(args.config, None, sections=["evaluate"])
    scores = layout.read_scores(args.scores)
    run_info = layout.read_run(args.run)
    table = evaluate_scores(scores, run_info, weighted=bool(cfg.evaluate.weighted))
    layout.write_table(table, args.output)
    inclusive = table[(table["mass"] == "all")].set_index("metric")["value"]
    log.info("%s f=%g s=%s: AUC %.4f, rej90 %.1f -> %s", run_info["model"], run_info["fraction"],
             run_info["seed"], inclusive["auc"], inclusive["rej90"], args.output)
