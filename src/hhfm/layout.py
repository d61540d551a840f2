"""The run layout and the files exchanged between stages, defined once.

Every path the workflow produces (as Snakemake patterns with `{wildcards}`), every column of the
tables stages hand to each other and every field of `run.json` lives here. Writers, readers and the
rule files import it, so nothing parses a directory name and no path is spelled twice
(README "Architecture" is the human-readable copy of this contract).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from hhfm.errors import ConfigError, InputError

# ----------------------------------------------------------------------------------- paths
RESULTS = "results"
SIMULATION_ROOT = "results/simulation/{sample}/ntuple_{index}.root"
SIMULATION_SIDECAR = "results/simulation/{sample}/ntuple_{index}.json"
SKIM_FILE = "results/skim/files/{name}.h5"
SKIM_FILE_CUTFLOW = "results/skim/files/{name}.cutflow.json"
DATASET = "results/skim/dataset.h5"
SKIM_CUTFLOW = "results/skim/cutflow.csv"
SKIM_COUNTS = "results/skim/counts.csv"

#: JetClass-format jets (jetclass section): the simulated stand-in's files (a real download's file names) and the
#: jet-level dataset the jetclass backbone trains on (hhfm.jetclass; /jets as DATASET, /events empty)
JETCLASS_SIMULATION = "results/jetclass/simulation/{jetclass_file}.root"
JETCLASS_DATASET = "results/jetclass/dataset.h5"

PRETRAIN_DIR = "results/pretrain/{task}"
BACKBONE = PRETRAIN_DIR + "/backbone.pt"
PRETRAIN_HISTORY = PRETRAIN_DIR + "/metrics.csv"
JET_SCORES = PRETRAIN_DIR + "/jet_scores.parquet"
EMBEDDINGS = "results/embed/{task}/embeddings.h5"

HEAD_RUN = "results/heads/{model}/f{fraction}_s{seed}"
HEAD_SCORES = HEAD_RUN + "/scores.parquet"
HEAD_VAL_SCORES = HEAD_RUN + "/val_scores.parquet"
HEAD_HISTORY = HEAD_RUN + "/metrics.csv"
HEAD_RUN_JSON = HEAD_RUN + "/run.json"
HEAD_MODEL = HEAD_RUN + "/model.pt"  # best weights of the head (+ its jet tagger), hhfm.heads.model.save_event_model
HEAD_FILES = (HEAD_SCORES, HEAD_VAL_SCORES, HEAD_HISTORY, HEAD_RUN_JSON, HEAD_MODEL)
#: resumable training state inside a training output directory (not a declared output)
CHECKPOINT = "checkpoint.pt"

EVALUATE_TABLE = "results/evaluate/{model}/f{fraction}_s{seed}.csv"
LIMITS_TABLE = "results/limits/{model}/f{fraction}_s{seed}.csv"
LIMITS_WORKSPACES = "results/limits/{model}/f{fraction}_s{seed}"

SUMMARY_DIR = "results/summary"
SUMMARY_TABLES = {name: f"{SUMMARY_DIR}/{name}" for name in
                  ("metrics.csv", "metrics.parquet", "aggregated.csv", "data_efficiency.csv", "jet_metrics.csv",
                  "compute.csv", "compute_to_reference.csv")}
LIMITS_SUMMARY = f"{SUMMARY_DIR}/limits.csv"
#: the seed documents' claims checked against the summary tables and limits.csv (hhfm.evaluate.claims)
CLAIMS_TABLE = f"{SUMMARY_DIR}/claims.csv"
CLAIMS_WEIGHTED_TABLE = f"{SUMMARY_DIR}/claims_weighted.csv"  # the same claims on the cross-section-weighted metrics
#: the representation study's tables (hhfm.represent)
REPRESENT_TABLES = {name: f"{SUMMARY_DIR}/{name}" for name in ("cka.csv", "embedding_auc.csv", "latent.parquet")}
PLOTS_DIR = "results/plots"


def fmt_fraction(value: float | str) -> str:
    """Training-data fraction as it appears in paths (`%g`: 0.01, 0.1, 1)."""
    return f"{float(value):g}"


def head_run(model: str, fraction: float | str, seed: int | str, pattern: str = HEAD_RUN) -> str:
    """`pattern` (a HEAD_* or per-run pattern) filled for one head run."""
    return pattern.format(model=model, fraction=fmt_fraction(fraction), seed=seed)


def task_path(pattern: str, task: str) -> str:
    """A per-pretraining-task pattern (BACKBONE, JET_SCORES, EMBEDDINGS, ...) filled for `task`."""
    return pattern.format(task=task)


# ---------------------------------------------------------------------- files exchanged
#: scores.parquet (test events) and val_scores.parquet (the run's validation events) of a head run:
#: `logit` is the head's output (float64: ranks never tie through float32 sigmoid saturation, so
#: ROC curves, metrics and limit binning use it); `score` = sigmoid(logit) in [0, 1] for display
SCORE_COLUMNS = ["event", "logit", "score", "label", "mass", "weight", "sdmass_j1", "sdmass_j2"]
#: columns the evaluation and limits need from a score table
SCORE_REQUIRED = ["event", "logit", "score", "label", "mass", "weight"]
#: jet_scores.parquet of a pretraining run: one row per labelled test jet
JET_SCORE_COLUMNS = ["jet", "score", "label_xbb", "label_class", "fj_doubleb", "fj_pt", "fj_sdmass"]
#: metrics.csv of any training run (pretraining or head): one row per epoch
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_auc", "val_rej50", "val_rej70", "val_rej90", "lr", "time_s"]
#: run.json of a head run: every field, in order
RUN_FIELDS = ["model", "representation", "strategy", "weighted", "fraction", "seed", "n_train_events",
              "n_val_events", "n_test_events", "epochs_run", "best_epoch", "wall_time_s", "device",
              "n_params_trainable", "backbone", "backbone_task", "n_ranks", "train_flops", "pretrain_flops",
              "pretrain_wall_time_s"]
#: columns identifying one head run in every tidy table (a prefix of RUN_FIELDS); `weighted`: trained with
#: physical event weights (a `+weighted` model, hhfm.model_names)
RUN_COLUMNS = RUN_FIELDS[:7]


def write_run(path: str | Path, run: Mapping[str, Any]) -> None:
    """Write run.json (atomically); every field of RUN_FIELDS must be present, no other."""
    from hhfm.io import write_json

    missing, extra = set(RUN_FIELDS) - set(run), set(run) - set(RUN_FIELDS)
    if missing or extra:
        raise ValueError(f"run.json fields: missing {sorted(missing)}, unexpected {sorted(extra)}")
    write_json(path, {k: run[k] for k in RUN_FIELDS})


def read_run(path: str | Path) -> dict:
    """run.json of one head run; checks the fields the tidy tables need."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    try:
        run = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from err
    missing = [k for k in RUN_COLUMNS if k not in run and k != "weighted"]
    if missing:
        raise InputError(f"{path}: missing key(s) {missing}")
    try:
        return {**run, "weighted": _weighted(run)}
    except ConfigError as err:
        raise InputError(f"{path}: {err}") from err


def _weighted(run: Mapping[str, Any]) -> Any:
    """A run's `weighted`: its own, or (run.json files and tables written before the column) from its model name."""
    from hhfm.model_names import parse

    return run["weighted"] if "weighted" in run else parse(run["model"]).weighted


def run_labels(run: Mapping[str, Any]) -> dict:
    """The RUN_COLUMNS of a run.json, to prefix a per-run table with (`weighted` as in read_run)."""
    return {c: _weighted(run) if c == "weighted" else run[c] for c in RUN_COLUMNS}


def with_weighted(frame, path: str | Path):
    """A per-run table (metrics, limits) with the `weighted` run column, filled from the model names in tables
    written before the column existed (without a `model` column the caller's column check reports both)."""
    if "weighted" in frame.columns or "model" not in frame.columns:
        return frame
    from hhfm.model_names import parse

    try:
        weighted = [parse(m).weighted for m in frame["model"]]
    except ConfigError as err:
        raise InputError(f"{path}: {err}") from err
    return frame.assign(weighted=weighted)


def write_table(frame, path: str | Path) -> None:
    """Write a table atomically: parquet or CSV by the file's suffix."""
    from hhfm.io import atomic_path

    with atomic_path(path) as tmp:
        if str(path).endswith(".parquet"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)


def read_parquet(path: str | Path, columns: list[str]):
    """Read a parquet table and check that `columns` exist and hold no NaN."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise InputError(f"{path}: not a readable parquet file ({err})") from err
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    for c in columns:
        if df[c].isna().any() or (pd.api.types.is_float_dtype(df[c].dtype) and not np.isfinite(df[c]).all()):
            raise InputError(f"{path}: column {c!r} contains NaN or infinite values")
    if len(df) == 0:
        raise InputError(f"{path}: table is empty")
    return df


def read_scores(path: str | Path):
    """Test-set event scores of one head run; checks labels and that both classes are present."""
    df = read_parquet(path, SCORE_REQUIRED)
    if not df["label"].isin([0, 1]).all():
        raise InputError(f"{path}: column 'label' must be 0 or 1")
    if not (df["label"] == 1).any() or not (df["label"] == 0).any():
        raise InputError(f"{path}: column 'label' needs both signal (1) and background (0) events")
    if (df["weight"] < 0).any():
        raise InputError(f"{path}: column 'weight' has negative values")
    return df


def read_history(path: str | Path):
    """metrics.csv of a training run (None if absent); needs epoch, train_loss, val_loss."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        return None
    history = pd.read_csv(path)
    if not {"epoch", "train_loss", "val_loss"} <= set(history.columns):
        raise InputError(f"{path}: needs columns epoch, train_loss, val_loss")
    return history


def signal_masses(scores) -> list[float]:
    """Distinct signal masses (GeV) in a score table, ascending."""
    import numpy as np

    return sorted(float(m) for m in np.unique(scores.loc[scores["label"] == 1, "mass"]))


def mass_label(mass: float) -> str:
    """Mass as written in tables and file names: integer GeV when integral."""
    return f"{mass:g}"
