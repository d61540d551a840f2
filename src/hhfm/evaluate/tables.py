"""Readers for the files the heads stage hands to evaluation, limits and plots (README contract)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hhfm.errors import InputError

SCORE_COLUMNS = ["event", "score", "label", "mass", "weight"]
RUN_KEYS = ["model", "representation", "strategy", "fraction", "seed", "n_train_events"]
#: columns identifying one head run in every tidy table
RUN_COLUMNS = ["model", "representation", "strategy", "fraction", "seed", "n_train_events"]


def read_parquet(path: str | Path, columns: list[str]) -> pd.DataFrame:
    """Read a parquet table and check that `columns` exist and hold no NaN."""
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
        if df[c].isna().any() or (np.issubdtype(df[c].dtype, np.floating) and not np.isfinite(df[c]).all()):
            raise InputError(f"{path}: column {c!r} contains NaN or infinite values")
    if len(df) == 0:
        raise InputError(f"{path}: table is empty")
    return df


def read_scores(path: str | Path, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Test-set event scores of one head run; checks labels and that both classes are present."""
    df = read_parquet(path, SCORE_COLUMNS + list(extra))
    if not df["label"].isin([0, 1]).all():
        raise InputError(f"{path}: column 'label' must be 0 or 1")
    if not (df["label"] == 1).any() or not (df["label"] == 0).any():
        raise InputError(f"{path}: column 'label' needs both signal (1) and background (0) events")
    if (df["weight"] < 0).any():
        raise InputError(f"{path}: column 'weight' has negative values")
    return df


def read_run(path: str | Path) -> dict:
    """run.json of one head run; checks the keys the tidy tables need."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    try:
        run = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from err
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise InputError(f"{path}: missing key(s) {missing}")
    return run


def signal_masses(scores: pd.DataFrame) -> list[float]:
    """Distinct signal masses (GeV) in a score table, ascending."""
    return sorted(float(m) for m in np.unique(scores.loc[scores["label"] == 1, "mass"]))


def mass_label(mass: float) -> str:
    """Mass as written in tables and file names: integer GeV when integral."""
    return f"{mass:g}"
