"""`hhfm skim`: one record-format ROOT file -> per-file jet table (HDF5) + cutflow JSON.

Reads `deepntuplizer/tree` in chunks of `chunk_size` entries (memory independent of file size),
computes per jet the 17 standardised ParT inputs, four-vectors, HLF, scalars, labels, the window
flag and the record's event key; events are built later by `hhfm merge-skim` (hhfm.skim.merge),
which groups jets across entries and across files.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from hhfm.config import Section
from hhfm.errors import InputError
from hhfm.io import atomic_path, setup_logging, write_json
from hhfm.remote import RetryPolicy
from hhfm.skim import cutflow as cf
from hhfm.skim.h5append import append
from hhfm.skim.jets import FLOAT_SCALARS, jet_columns, particle_arrays
from hhfm.skim.params import add_config_arguments, h5_compression, recorded_params, stage_config
from hhfm.skim.reader import BRANCHES, iterate_chunks, num_entries
from hhfm.skim.sidecar import file_samples, jet_sample_and_weight, read_sidecar

log = logging.getLogger("hhfm.skim")

#: columns of /keys in a per-file skim (the event key, the jet's index in its event, bookkeeping)
KEY_COLUMNS = ["sample_isQCD", "event_no", "rho", "npv", "ntrueInt", "jet_no", "sample", "gen_weight", "entry"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--input", required=True, help="record-format ROOT file: local path or root:// URL")
    parser.add_argument("--sidecar", default=None, help="simulation sidecar JSON (absent for open data)")
    parser.add_argument("--output", required=True, help="per-file skim, results/skim/files/{name}.h5")
    parser.add_argument("--cutflow", default=None, help="cutflow JSON (default: {output stem}.cutflow.json)")


def run(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = stage_config(args.config, args.runtime)
    out = Path(args.output)
    cutflow_path = Path(args.cutflow) if args.cutflow else out.with_name(out.name.removesuffix(".h5") + ".cutflow.json")
    cutflow = skim_file(args.input, args.sidecar, out, cfg)
    write_json(cutflow_path, {"source": args.input, "cutflow": cutflow})


def skim_file(source: str, sidecar: str | None, output: str | Path, cfg: Section) -> dict:
    """Skim one file into `output` (written atomically); return its cutflow.

    `cfg` is the validated config (hhfm.config Section) with sections `seed` and `skim`.
    """
    skim = cfg.skim
    side = read_sidecar(sidecar) if sidecar else None
    policy = RetryPolicy(**dict(skim["remote"]))
    n_total = num_entries(source, policy)
    if n_total == 0:
        raise InputError(f"{source}: tree 'deepntuplizer/tree' has no entries")
    cutflow: dict = {}
    comp = h5_compression(skim, "file_compression")
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as h5:
        jets_g, keys_g = h5.create_group("jets"), h5.create_group("keys")
        bar = tqdm(total=n_total, unit="jet", desc=Path(source).name, disable=None)
        for start, chunk in iterate_chunks(source, skim.chunk_size, skim.reader, policy):
            jets, keys = _skim_chunk(chunk, start, side, source, skim, cutflow)
            append(jets_g, jets, comp)
            append(keys_g, keys, comp)
            bar.update(len(chunk))
        bar.close()
        if "features" not in jets_g:  # every jet dropped: a documented empty table, the merge decides
            _empty(jets_g, keys_g, skim)
        h5.attrs["source"] = str(source)
        h5.attrs["samples"] = json.dumps(file_samples(side, skim))
        h5.attrs["cutflow"] = json.dumps(cutflow)
        h5.attrs["skim_params"] = json.dumps(recorded_params(cfg), sort_keys=True)
    log.info("%s: %d entries -> %d jets written to %s", source, n_total, cutflow.get("jets_written", 0), output)
    return cutflow


def _skim_chunk(chunk, start: int, side: dict | None, source: str, skim: Section, cutflow: dict):
    """Per-jet output arrays of one chunk after the NaN policy; updates `cutflow`."""
    n = len(chunk)
    cf.add(cutflow, "entries_read", n)
    features, vectors, mask, bad, nonfinite = particle_arrays(chunk, skim.max_particles)
    col = jet_columns(chunk, skim)
    cf.add(cutflow, "jets_particles_truncated", int((_counts(chunk) > skim.max_particles).sum()))
    # --- NaN / inf: counted per input branch and per derived feature, then the policy --------------
    for b in BRANCHES:
        if not b.startswith("pfcand_") and np.asarray(chunk[b]).dtype.kind == "f":
            v = np.asarray(chunk[b])
            nonfinite[b] = int(v.size - np.isfinite(v).sum())
    for name, count in nonfinite.items():
        cf.add(cutflow, f"nonfinite_values:{name}", count)
    bad = bad | ~np.isfinite(col["hlf"]).all(axis=1)
    for name in FLOAT_SCALARS + ["key_rho", "key_npv", "key_ntrueInt"]:
        bad |= ~np.isfinite(col[name])
    cf.add(cutflow, "jets_nonfinite", int(bad.sum()))
    if bad.any():
        if skim.nan_policy == "error":
            names = sorted({k.split(":", 1)[1] for k, v in cutflow.items() if k.startswith("nonfinite_values:") and v})
            raise InputError(f"{source}: non-finite values in {', '.join(names)} ({int(bad.sum())} jets in entries "
                             f"{start}-{start + n}); skim.nan_policy is 'error'")
        for name in FLOAT_SCALARS + ["hlf", "key_rho", "key_npv", "key_ntrueInt"]:  # particles: zeroed already
            col[name] = np.nan_to_num(col[name], nan=0.0, posinf=0.0, neginf=0.0)
    keep = ~bad if skim.nan_policy == "drop_jet" else np.ones(n, dtype=bool)
    cf.add(cutflow, "jets_dropped_nonfinite", int((~keep).sum()))
    sample, gen_weight = jet_sample_and_weight(side, col["key_sample_isQCD"], col["key_event_no"], source)
    _count_kept(cutflow, col, keep)
    jets = {"features": features, "vectors": vectors, "mask": mask, "hlf": col["hlf"].astype(np.float32)}
    jets.update({k: col[k] for k in FLOAT_SCALARS + ["fj_nbHadrons", "fj_ncHadrons", "label_xbb", "label_class",
                                                    "in_window"]})
    keys = {k: col[f"key_{k}"] for k in ("sample_isQCD", "event_no", "rho", "npv", "ntrueInt", "jet_no")}
    keys.update(sample=sample, gen_weight=gen_weight, entry=np.arange(start, start + n, dtype=np.int64))
    if keep.all():  # no copy of the big arrays
        return jets, keys
    return {k: v[keep] for k, v in jets.items()}, {k: np.asarray(v)[keep] for k, v in keys.items()}


def _count_kept(cutflow: dict, col: dict, keep: np.ndarray) -> None:
    """Cutflow counters of labels and window, over the jets kept by the NaN policy."""
    lx = col["label_xbb"][keep]
    cf.add(cutflow, "jets_label_hbb", int((lx == 1).sum()))
    cf.add(cutflow, "jets_label_qcd", int((lx == 0).sum()))
    cf.add(cutflow, "jets_unlabelled", int((lx < 0).sum()))
    cf.add(cutflow, "jets_both_labels_dropped", int(col["both_labels"][keep].sum()))
    cf.add(cutflow, "jets_in_window", int(col["in_window"][keep].sum()))
    cf.add(cutflow, "jets_labelled_in_window", int((col["in_window"][keep] & (lx >= 0)).sum()))
    cf.add(cutflow, "jets_written", int(keep.sum()))


def _counts(chunk) -> np.ndarray:
    import awkward as ak

    return ak.to_numpy(ak.num(chunk["pfcand_ptrel"], axis=1))


def _empty(jets_g: h5py.Group, keys_g: h5py.Group, skim: Section) -> None:
    """Zero-row datasets with the right shapes and dtypes."""
    from hhfm.features import N_PARTICLE_FEATURES

    P = skim.max_particles
    shapes = {"features": ((0, P, N_PARTICLE_FEATURES), "f4"), "vectors": ((0, P, 4), "f4"), "mask": ((0, P), "?"),
              "hlf": ((0, 5), "f4"), "fj_nbHadrons": ((0,), "i4"), "fj_ncHadrons": ((0,), "i4"),
              "label_xbb": ((0,), "i1"), "label_class": ((0,), "i1"), "in_window": ((0,), "?")}
    shapes.update({k: ((0,), "f4") for k in FLOAT_SCALARS})
    for k, (shape, dt) in shapes.items():
        jets_g.create_dataset(k, shape=shape, maxshape=(None,) + shape[1:], dtype=dt)
    for k, dt in zip(KEY_COLUMNS, ["i4", "u4", "f4", "f4", "f4", "u4", "i2", "f8", "i8"]):
        keys_g.create_dataset(k, shape=(0,), maxshape=(None,), dtype=dt)
