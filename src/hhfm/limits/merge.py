"""`hhfm merge-limits`: concatenate per-run limit tables into results/summary/limits.csv."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from hhfm.errors import InputError
from hhfm.io import setup_logging
from hhfm.layout import RUN_COLUMNS, with_weighted, write_table

log = logging.getLogger("hhfm.limits")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", nargs="+", required=True, help="per-run limit CSVs from `hhfm limits`")
    parser.add_argument("--output", required=True, help="merged table (results/summary/limits.csv)")


def run(args: argparse.Namespace) -> None:
    setup_logging()
    frames = []
    for path in args.inputs:
        if not Path(path).exists():
            raise InputError(f"{path}: file does not exist")
        df = with_weighted(pd.read_csv(path), path)
        missing = [c for c in RUN_COLUMNS + ["mass", "mu_exp", "xsec_exp_pb"] if c not in df.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing}")
        frames.append(df)
    merged = pd.concat(frames, ignore_index=True).sort_values(["model", "fraction", "seed", "mass"])
    write_table(merged, args.output)
    log.info("%d limit rows from %d runs -> %s", len(merged), len(frames), args.output)
