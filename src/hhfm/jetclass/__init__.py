"""`hhfm skim-jetclass`: JetClass-format ROOT files -> one jet-level training dataset (HDF5).

The output has the analysis dataset's /jets layout (hhfm.dataset) for everything pretraining reads,
plus /jets/label_jetclass (index into features.JETCLASS_CLASSES), /jets/source_file (index into
attrs["files"]) and /jets/entry; /events is present with zero rows. Conventions: hhfm.jetclass.reader.
"""

from __future__ import annotations

import argparse
import json
import logging

from hhfm.errors import ConfigError
from hhfm.jetclass.reader import (DEFAULT_SPLIT_FRACTIONS, NAN_POLICIES, build_jetclass_dataset, column_specs,
                                  iter_jetclass_chunks, jet_splits, open_jetclass_tree, read_jetclass_file)

__all__ = ["build_jetclass_dataset", "column_specs", "iter_jetclass_chunks", "jet_splits", "open_jetclass_tree",
           "read_jetclass_file", "add_arguments", "run"]

log = logging.getLogger("hhfm.jetclass")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, nargs="+", metavar="F.root", help="JetClass-format ROOT file(s)")
    parser.add_argument("--output", required=True, help="output dataset (HDF5), written atomically")
    parser.add_argument("--max-particles", type=int, default=100, help="particles kept per jet (pT-leading)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the (file name, entry) split hash")
    parser.add_argument("--split-fractions", default=json.dumps(DEFAULT_SPLIT_FRACTIONS),
                        help='JSON {"train": f, "val": f, "test": f} summing to 1')
    parser.add_argument("--nan-policy", choices=NAN_POLICIES, default="zero",
                        help="non-finite inputs: set to 0 (counts logged), drop the jet, or stop with an error")
    parser.add_argument("--max-jets-per-file", type=int, default=0,
                        help="read at most this many jets per file (0: all)")


def run(args: argparse.Namespace) -> None:
    from hhfm.features import JETCLASS_CLASSES, SPLITS
    from hhfm.io import setup_logging

    setup_logging()
    try:
        fractions = json.loads(args.split_fractions)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--split-fractions: not JSON ({err})") from err
    if not isinstance(fractions, dict):
        raise ConfigError(f"--split-fractions: expected a JSON object, got {args.split_fractions!r}")
    summary = build_jetclass_dataset(args.input, args.output, max_particles=args.max_particles,
                                     split_fractions=fractions, seed=args.seed,
                                     max_jets_per_file=args.max_jets_per_file, nan_policy=args.nan_policy,
                                     progress=True)
    width = max(len(c) for c in JETCLASS_CLASSES)
    lines = [f"{'class':<{width}} " + " ".join(f"{s:>9}" for s in SPLITS)]
    for c in JETCLASS_CLASSES:
        lines.append(f"{c:<{width}} " + " ".join(f"{summary['counts'][c][s]:>9d}" for s in SPLITS))
    lines.append(f"{'total':<{width}} " + " ".join(
        f"{sum(summary['counts'][c][s] for c in JETCLASS_CLASSES):>9d}" for s in SPLITS))
    log.info("%s: %d jets from %d file(s); jets per class and split:\n%s", args.output, summary["jets"],
             len(args.input), "\n".join(lines))
    stats = summary["stats"]
    if stats.get("jets_nonfinite"):
        log.warning("%d jets had non-finite values (nan_policy %s, %d dropped)", stats["jets_nonfinite"],
                    args.nan_policy, stats.get("jets_dropped_nonfinite", 0))
