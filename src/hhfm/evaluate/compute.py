"""Compute accounting of the study (Ho et al., arXiv:2412.10665): performance vs training compute per strategy.

`compute_table`: one row per head run with its own training FLOPs (`train_flops`; for heads on a cache
including the embedding pass over their jets), its backbone's pretraining FLOPs, and the total counted
two ways: `flops_full` (the whole pretraining charged to this analysis) and `flops_amortised` (pretraining
shared by `amortise_over` analyses), next to the run's rejection at 90 % signal efficiency.
`compute_to_reference`: the compute each model needs to reach the reference model's full-data rejection.
The reference (`standard`) is charged only its head training: the fj_doubleb tagger's own training cost
is unknown here (it came with the record).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hhfm.evaluate.summarise import events_to_reach
from hhfm.layout import RUN_COLUMNS, run_labels

COMPUTE_FIELDS = ["n_ranks", "device", "wall_time_s", "train_flops", "pretrain_flops",
                  "pretrain_wall_time_s"]
COMPUTE_COLUMNS = [*RUN_COLUMNS, *COMPUTE_FIELDS, "flops_full", "flops_amortised", "rej90", "rej90_lo", "rej90_hi"]
ACCOUNTING = {"full": "flops_full", "amortised": "flops_amortised"}
TO_REFERENCE_COLUMNS = ["reference", "model", "representation", "strategy", "accounting", "target", "flops_reference",
                        "flops_model", "ratio", "bound"]


def compute_table(runs: list[dict], metrics: pd.DataFrame, amortise_over: int) -> pd.DataFrame:
    """Per head run (run.json dicts): compute fields, the two totals and the inclusive rej90 (value, lo, hi)."""
    rej = metrics[(metrics["mass"] == "all") & (metrics["metric"] == "rej90")]
    rej = {(r.model, float(r.fraction), int(r.seed)): (r.value, r.lo, r.hi) for r in rej.itertuples()}
    rows = []
    for run in runs:
        pre = run.get("pretrain_flops")
        pre = float(pre) if pre is not None else 0.0
        own = float(run.get("train_flops") or 0.0)
        value = rej.get((run["model"], float(run["fraction"]), int(run["seed"])), (np.nan,) * 3)
        rows.append({**run_labels(run), **{c: run.get(c) for c in COMPUTE_FIELDS},
                     "flops_full": own + pre, "flops_amortised": own + pre / amortise_over,
                     "rej90": value[0], "rej90_lo": value[1], "rej90_hi": value[2]})
    return pd.DataFrame(rows, columns=COMPUTE_COLUMNS)


def compute_to_reference(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """FLOPs each model's seed-mean curve (rej90 vs compute) needs to reach the reference's mean rej90 at its
    largest training fraction; `ratio` = model / reference compute; `bound` as in data_efficiency
    (exact, at_most: reached at its smallest compute, more_than: never reached)."""
    rows = []
    mean = table.groupby(["model", "representation", "strategy", "fraction"], as_index=False).agg(
        rej90=("rej90", "mean"), flops_full=("flops_full", "mean"), flops_amortised=("flops_amortised", "mean"))
    ref = mean[mean["model"] == reference]
    if ref.empty:
        return pd.DataFrame(columns=TO_REFERENCE_COLUMNS)
    top = ref.loc[ref["fraction"].idxmax()]
    for (model, rep, strategy), curve in mean[mean["model"] != reference].groupby(["model", "representation",
                                                                                    "strategy"]):
        curve = curve[np.isfinite(curve["rej90"])]
        for accounting, col in ACCOUNTING.items():
            if curve.empty or not np.isfinite(top["rej90"]):
                continue
            flops, bound = events_to_reach(curve[col].to_numpy(), curve["rej90"].to_numpy(), float(top["rej90"]))
            rows.append({"reference": reference, "model": model, "representation": rep, "strategy": strategy,
                         "accounting": accounting, "target": float(top["rej90"]), "flops_reference": float(top[col]),
                         "flops_model": flops, "ratio": flops / float(top[col]) if top[col] > 0 else np.nan,
                         "bound": bound})
    return pd.DataFrame(rows, columns=TO_REFERENCE_COLUMNS)
