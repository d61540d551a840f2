"""`hhfm record-layout`: per-sample simulated ROOT files -> files laid out as record 12102 serves them.

The record's merge step (shared/hbb_opendata_schema.md section 1.3) interleaves the samples at
random, keeps each sample's own order (so the jets of one event sit a few entries apart and can
straddle a file boundary), writes a fixed number of entries per file (`ntuple_merged_<k>.root`, the
last one shorter), puts the first files in `test/` and the rest in `train/`, and keeps no trace of
the sample beyond `sample_isQCD`: no sidecar, no weights, no mass. Reading such files exercises the
open-data path of the skim on realistic inputs. One difference: the record drew samples in
proportion to their total size and stopped when the first ran out; this draws in proportion to
what is left (a uniformly random interleaving), so every simulated jet is used.
Inputs are held in memory (laptop-scale simulations; one record file is ~1 GB).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from hhfm.errors import InputError
from hhfm.io import atomic_path, setup_logging
from hhfm.opendata import FILE_NAME
from hhfm.simulate.writer import GROUPS, SCALARS, TREE, TreeWriter

log = logging.getLogger("hhfm.opendata")


def read_record_file(path: str | Path) -> ak.Array:
    """Every branch of a record-format file, as the writer takes them (scalars + one record per group)."""
    try:
        tree = uproot.open(path)[TREE]
    except Exception as err:
        raise InputError(f"{path}: not a record-format ROOT file with '{TREE}' ({type(err).__name__}: {err})") from err
    names = [*SCALARS, *(b for g in GROUPS.values() for b in g)]
    missing = [b for b in names if b not in tree.keys()]
    if missing:
        raise InputError(f"{path}: tree '{TREE}' lacks branch(es) {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}")
    arrays = tree.arrays(names, library="ak")
    out = {n: arrays[n] for n in SCALARS}
    for group, branches in GROUPS.items():
        out[group] = ak.zip({b: arrays[b] for b in branches})
    return ak.Array(out)


def interleave(sizes: list[int], seed: int) -> np.ndarray:
    """Row order over the concatenated inputs: samples randomly interleaved, each one's order kept."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(labels)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    order = np.empty(len(labels), dtype=np.int64)
    for s, n in enumerate(sizes):
        order[labels == s] = offsets[s] + np.arange(n)
    return order


def output_paths(outdir: str | Path, n_files: int, test_files: int) -> list[Path]:
    """`test/ntuple_merged_<k>.root` for the first `test_files` files, `train/...` for the rest."""
    outdir = Path(outdir)
    return [outdir / ("test" if k < test_files else "train") / FILE_NAME.format(index=k) for k in range(n_files)]


def record_layout(inputs: list[str | Path], outdir: str | Path, entries_per_file: int, test_files: int,
                  seed: int, basket_entries: int = 1000) -> list[Path]:
    """Write the inputs' jets in the record's layout under `outdir`; return the files written."""
    if entries_per_file < 1:
        raise InputError(f"entries_per_file must be >= 1, got {entries_per_file}")
    parts = [read_record_file(p) for p in inputs]
    jets = ak.concatenate(parts)[interleave([len(p) for p in parts], seed)]
    if len(jets) == 0:
        raise InputError(f"no jets in {', '.join(map(str, inputs))}")
    n_files = -(-len(jets) // entries_per_file)
    paths = output_paths(outdir, n_files, test_files)
    for k, path in enumerate(paths):
        block = jets[k * entries_per_file:(k + 1) * entries_per_file]
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            writer = TreeWriter(tmp)
            for start in range(0, len(block), basket_entries):  # one basket per extend, like ROOT's auto-flush
                b = block[start:start + basket_entries]
                writer.write({**{n: ak.to_numpy(b[n]) for n in SCALARS}, **{g: b[g] for g in GROUPS}})
            writer.close()
        log.info("%s: %d entries", path, len(block))
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", nargs="+", required=True, help="record-format ROOT files (one per sample)")
    parser.add_argument("--outdir", required=True, help="directory that gets test/ and train/")
    parser.add_argument("--entries-per-file", type=int, default=200000, help="entries per file (record: 200000)")
    parser.add_argument("--test-files", type=int, default=9, help="files that go to test/ (record: 9)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the interleaving")


def run(args: argparse.Namespace) -> None:
    setup_logging()
    paths = record_layout(args.inputs, args.outdir, args.entries_per_file, args.test_files, args.seed)
    print(f"{args.outdir}: {len(paths)} files ({sum(p.parent.name == 'test' for p in paths)} in test/)")
