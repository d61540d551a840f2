"""`hhfm summarise`: merge per-run metric tables into the study's tidy tables.

Outputs in `--outdir`: metrics.csv / metrics.parquet (every row of every run), aggregated.csv
(mean, sample std and count over seeds, errors combining seed spread and bootstrap, `capped`),
data_efficiency.csv (see `data_efficiency`, with an interval `factor_lo`, `factor_hi`),
jet_metrics.csv (the pretrained tagger's score vs `fj_doubleb` on test jets), and the compute
accounting from the runs' run.json: compute.csv and compute_to_reference.csv (hhfm.evaluate.compute).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hhfm import config
from hhfm.errors import InputError
from hhfm.io import setup_logging
from hhfm.layout import RUN_COLUMNS, SUMMARY_TABLES, read_parquet, read_run, with_weighted, write_table
from hhfm.metrics import binary_metrics

log = logging.getLogger("hhfm.summarise")
METRIC_COLUMNS = RUN_COLUMNS + ["mass", "metric", "value", "lo", "hi", "capped"]
GROUP_COLUMNS = ["model", "representation", "strategy", "weighted", "fraction", "mass", "metric"]
#: metrics for which a data-efficiency factor is computed (higher is better for all of them)
EFFICIENCY_METRICS = ["rej50", "rej70", "rej90", "auc", "rej90_weighted", "auc_weighted"]
JET_COLUMNS = ["score", "label_xbb", "fj_doubleb"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help="JSON {'evaluate': {...}}: the tracked config")
    parser.add_argument("--inputs", nargs="+", required=True, help="per-run CSVs from `hhfm evaluate`")
    parser.add_argument("--jet-scores", nargs="*", default=[], metavar="TASK=PATH",
                        help="jet_scores.parquet of each pretrained backbone, named by its pretraining task")
    parser.add_argument("--runs", nargs="*", default=[], help="run.json of every head run (compute accounting)")
    parser.add_argument("--outdir", required=True, help="summary directory (results/summary)")


def read_metrics(paths: list[str]) -> pd.DataFrame:
    """Concatenate per-run metric tables, checking their columns."""
    frames = []
    for path in paths:
        if not Path(path).exists():
            raise InputError(f"{path}: file does not exist")
        df = with_weighted(pd.read_csv(path, dtype={"mass": str}), path)
        missing = [c for c in METRIC_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing}")
        frames.append(df[METRIC_COLUMNS].assign(capped=df["capped"].astype(str).str.lower() == "true"))
    return pd.concat(frames, ignore_index=True)


def aggregate(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (model, representation, strategy, weighted, fraction, mass, metric): mean, sample std (0 for one seed),
    number of seeds n, errors, capped.

    err_lo = sqrt((std / sqrt(n))^2 + mean over seeds of (value - lo)^2), err_hi likewise with (hi - value):
    the seed spread of the mean plus the typical bootstrap half-width. The bootstrap part is not divided by
    n because all seeds share one test set (its fluctuation does not average out). `capped`: any seed capped.
    """
    m = with_weighted(metrics, "metrics table")  # tables from before the `weighted` column: from the model names
    m = m.assign(boot_lo=(m["value"] - m["lo"]) ** 2, boot_hi=(m["hi"] - m["value"]) ** 2)
    out = m.groupby(GROUP_COLUMNS, sort=True).agg(
        n_train_events=("n_train_events", "mean"), mean=("value", "mean"), std=("value", "std"), n=("value", "size"),
        boot_lo=("boot_lo", "mean"), boot_hi=("boot_hi", "mean"), capped=("capped", "any")).reset_index()
    out["std"] = out["std"].fillna(0.0)
    for side in ("lo", "hi"):
        out[f"err_{side}"] = np.sqrt(out["std"] ** 2 / out["n"] + out.pop(f"boot_{side}"))
    return out[GROUP_COLUMNS + ["n_train_events", "mean", "std", "n", "err_lo", "err_hi", "capped"]]


def events_to_reach(n_events: np.ndarray, values: np.ndarray, target: float) -> tuple[float, str]:
    """Training events at which a curve (values vs n_events) first reaches `target`.

    Linear interpolation in log(n_events) between the two points around the first upward crossing.
    Returns (events, bound): bound 'exact'; 'at_most' if the curve is already at the target at its
    smallest size (it needs at most that many events, so the factor is a lower bound); 'more_than'
    if it never reaches the target (it needs more than its largest size: the factor is an upper bound).
    """
    order = np.argsort(n_events)
    n, v = np.asarray(n_events, float)[order], np.asarray(values, float)[order]
    if v[0] >= target:
        return float(n[0]), "at_most"
    for i in range(1, len(n)):
        if v[i] >= target:
            t = (target - v[i - 1]) / (v[i] - v[i - 1])
            return float(np.exp(np.log(n[i - 1]) + t * (np.log(n[i]) - np.log(n[i - 1])))), "exact"
    return float(n[-1]), "more_than"


def _factor(top: pd.Series, curve: pd.DataFrame) -> dict:
    """Factor, its interval and bound of one model `curve` against the reference's largest-size row `top`."""
    target, n_ref = float(top["mean"]), float(top["n_train_events"])
    n, mean = curve["n_train_events"].to_numpy(), curve["mean"].to_numpy()
    n_model, bound = events_to_reach(n, mean, target)
    # fewest events: upper edge of the model band reaching the lower edge of the target, and vice versa
    n_fast, _ = events_to_reach(n, mean + curve["err_hi"].to_numpy(), target - float(top["err_lo"]))
    n_slow, _ = events_to_reach(n, mean - curve["err_lo"].to_numpy(), target + float(top["err_hi"]))
    factor = n_ref / n_model
    return {"target": target, "n_reference": n_ref, "n_model": n_model, "factor": factor,
            "factor_lo": min(factor, n_ref / n_slow), "factor_hi": max(factor, n_ref / n_fast),
            "bound": "capped" if bool(top["capped"]) else bound}


def data_efficiency(aggregated: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Data-efficiency factor of every model vs `reference` per mass and metric (README definition).

    Target = the reference's mean metric at its largest training set (N_ref events); the factor is
    N_ref / N_model, where N_model is the events the model's mean curve needs to reach the target.
    Interval: factor_hi from the curve mean + err_hi reaching target - err_lo, factor_lo from mean - err_lo
    reaching target + err_hi (each widened to contain the factor). bound 'capped': the target is capped.
    """
    cols = ["reference", "model", "representation", "strategy", "mass", "metric", "target",
            "n_reference", "n_model", "factor", "factor_lo", "factor_hi", "bound"]
    rows = []
    agg = aggregated[aggregated["metric"].isin(EFFICIENCY_METRICS)]
    ref = agg[agg["model"] == reference]
    for (mass, metric), ref_curve in ref.groupby(["mass", "metric"]):
        top = ref_curve.loc[ref_curve["n_train_events"].idxmax()]
        others = agg[(agg["mass"] == mass) & (agg["metric"] == metric) & (agg["model"] != reference)]
        for model, curve in others.groupby("model"):
            rows.append({"reference": reference, "model": model, "representation": curve["representation"].iloc[0],
                         "strategy": curve["strategy"].iloc[0], "mass": mass, "metric": metric, **_factor(top, curve)})
    return pd.DataFrame(rows, columns=cols)


def parse_jet_scores(items: list[str]) -> dict[str, str]:
    """`TASK=PATH` arguments -> {task: path} (the pretraining task names the tagger in the tables)."""
    out = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep or not task or not path:
            raise InputError(f"--jet-scores {item!r}: expected TASK=PATH")
        out[task] = path
    return out


def jet_metrics(paths: dict[str, str]) -> pd.DataFrame:
    """AUC and rejections of each pretrained tagger's Xbb score and of `fj_doubleb` on labelled test jets."""
    rows = []
    for i, (task, path) in enumerate(sorted(paths.items())):
        df = read_parquet(path, JET_COLUMNS)
        df = df[df["label_xbb"].isin([0, 1])]
        if df["label_xbb"].nunique() < 2:
            raise InputError(f"{path}: column 'label_xbb' needs both H->bb (1) and QCD (0) jets")
        taggers = [(_label(task), "score")] + ([("fj_doubleb", "fj_doubleb")] if i == 0 else [])
        for tagger, column in taggers:
            values = binary_metrics(df[column].to_numpy(), df["label_xbb"].to_numpy())
            values |= {"n_signal": float((df["label_xbb"] == 1).sum()),
                       "n_background": float((df["label_xbb"] == 0).sum())}
            rows += [{"tagger": tagger, "metric": k, "value": v} for k, v in values.items()]
    return pd.DataFrame(rows, columns=["tagger", "metric", "value"])


def run(args: argparse.Namespace) -> None:
    from hhfm.evaluate.compute import compute_table, compute_to_reference

    setup_logging()
    params = config.load(args.config, None, sections=["evaluate"]).evaluate
    outdir = Path(args.outdir)
    metrics = read_metrics(args.inputs)
    aggregated = aggregate(metrics)
    reference = str(params.reference_model)
    if reference not in set(metrics["model"]):
        log.warning("reference model %r has no runs; data_efficiency.csv will be empty", reference)
    tables = {"metrics.csv": metrics, "metrics.parquet": metrics, "aggregated.csv": aggregated,
              "data_efficiency.csv": data_efficiency(aggregated, reference),
              "jet_metrics.csv": jet_metrics(parse_jet_scores(args.jet_scores))}
    tables["compute.csv"] = compute_table([read_run(p) for p in args.runs], metrics, int(params.amortise_over))
    tables["compute_to_reference.csv"] = compute_to_reference(tables["compute.csv"], reference)
    assert set(tables) == set(SUMMARY_TABLES)
    for name, frame in tables.items():
        write_table(frame, outdir / name)
    log.info("%d runs, %d metric rows -> %s", metrics.groupby(["model", "fraction", "seed"]).ngroups, len(metrics), outdir)


def _label(task: str) -> str:
    """A backbone's tagger as tables and figures name it (hhfm.backbones.tagger_label; other names as given)."""
    from hhfm import backbones

    return backbones.tagger_label(task) if task in backbones.BACKBONES else f"ParT {task}"
