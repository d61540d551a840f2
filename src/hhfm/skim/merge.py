"""`hhfm merge-skim`: per-file skims -> results/skim/dataset.h5 (+ cutflow.csv, counts.csv).

Groups jets into events by the hashed record key over ALL inputs (so events straddling adjacent
files are joined), orders each event's jets by fj_pt through the /events/jets row index (every per-jet
field moves with its row), keeps events with min_jets..max_jets eligible jets, assigns splits and a
per-event random number from the key hash, normalises weights within each split, and copies the
needed jets' arrays file by file in blocks (memory bounded by the block size, not the dataset).
"""

from __future__ import annotations

import argparse
import json
import logging

import h5py
import numpy as np
import pandas as pd
from tqdm import tqdm

from hhfm.errors import InputError
from hhfm.features import HLF_NAMES, JET_CLASSES, PARTICLE_FEATURE_NAMES, SPLITS
from hhfm.io import atomic_path, parse_params, setup_logging
from hhfm.skim import cutflow as cf
from hhfm.skim.events import assign_splits, event_hash, string_hash, uniform
from hhfm.skim.h5append import create
from hhfm.skim.params import h5_compression, skim_params, window_for_events, window_for_pretraining

log = logging.getLogger("hhfm.skim.merge")
COPY_BLOCK = 2048  # jets per copy block


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="{}", help="config section `skim` as JSON (plus `seed`)")
    parser.add_argument("--inputs", nargs="+", required=True, help="per-file skims (results/skim/files/*.h5)")
    parser.add_argument("--output", required=True, help="results/skim/dataset.h5")
    parser.add_argument("--cutflow", required=True, help="results/skim/cutflow.csv")
    parser.add_argument("--counts", required=True, help="results/skim/counts.csv")


def run(args: argparse.Namespace) -> None:
    setup_logging()
    merge(args.inputs, args.output, args.cutflow, args.counts, skim_params(parse_params(args.params)))


def _read_inputs(paths: list[str]) -> tuple[list[dict], list[dict], dict]:
    """Per-file metadata, the global sample table, and concatenated small per-jet columns."""
    files, samples, cols = [], {}, {}
    for path in paths:
        try:
            h5 = h5py.File(path, "r")
        except (OSError, FileNotFoundError) as err:
            raise InputError(f"{path}: not a readable per-file skim ({err})") from err
        with h5:
            for group in ("jets", "keys"):
                if group not in h5:
                    raise InputError(f"{path}: missing group /{group} (not a per-file skim)")
            fs = json.loads(h5.attrs["samples"])
            local_to_global = []
            for s in fs:
                g = samples.setdefault(s["name"], {**s, "n_generated": 0, "sum_weights": 0.0, "files": 0})
                if (g["process"], g["mass"]) != (s["process"], s["mass"]):
                    raise InputError(f"{path}: sample {s['name']} has process/mass {s['process']}/{s['mass']}, "
                                     f"other files say {g['process']}/{g['mass']}")
                if s["n_generated"] is not None:  # several files of one sample: sums, xsec weighted mean
                    g["n_generated"] += s["n_generated"]
                    g["sum_weights"] += s["sum_weights"]
                    g["files"] += 1
                    g["cross_section_pb"] = s["cross_section_pb"] if g["files"] == 1 else (
                        (g["cross_section_pb"] * (g["sum_weights"] - s["sum_weights"])
                         + s["cross_section_pb"] * s["sum_weights"]) / g["sum_weights"])
                local_to_global.append(list(samples).index(s["name"]))
            n = h5["keys/entry"].shape[0]
            files.append({"path": path, "n": n, "cutflow": json.loads(h5.attrs["cutflow"]),
                          "source": h5.attrs["source"]})
            local = h5["keys/sample"][:]
            cols.setdefault("sample", []).append(np.asarray(local_to_global, dtype=np.int16)[local] if n else local)
            for k in ("sample_isQCD", "event_no", "rho", "npv", "ntrueInt", "jet_no", "gen_weight"):
                cols.setdefault(k, []).append(h5[f"keys/{k}"][:])
            for k in ("fj_pt", "label_xbb", "label_class", "in_window"):
                cols.setdefault(k, []).append(h5[f"jets/{k}"][:])
    return files, list(samples.values()), {k: np.concatenate(v) for k, v in cols.items()}


def merge(inputs: list[str], output: str, cutflow_csv: str, counts_csv: str, p: dict) -> None:
    """Build the dataset from per-file skims; outputs written atomically."""
    files, samples, c = _read_inputs(list(inputs))
    n_jets = len(c["fj_pt"])
    merged: dict = {}
    cf.add(merged, "jets_in", n_jets)
    # --- events: group by key hash ------------------------------------------------------------------
    sample_hash = np.array([string_hash(s["name"]) for s in samples], dtype=np.uint64)
    h = event_hash(sample_hash[c["sample"]], c["sample_isQCD"], c["event_no"], c["rho"], c["npv"], c["ntrueInt"])
    uniq, group = np.unique(h, return_inverse=True)
    n_groups = len(uniq)
    cf.add(merged, "events_found", n_groups)
    eligible = c["in_window"] if window_for_events(p) else np.ones(n_jets, dtype=bool)
    n_elig = np.bincount(group, weights=eligible, minlength=n_groups).astype(np.int64)
    # two jets with the same jet_no in one group = two events sharing a key: drop (counted)
    jet_no = c["jet_no"].astype(np.int64)
    span = int(jet_no.max()) + 1 if n_jets else 1
    if n_groups * span < 2**62:  # one int64 per (group, jet_no): much faster than a 2-column unique
        _, first = np.unique(group.astype(np.int64) * span + jet_no, return_index=True)
    else:
        _, first = np.unique(np.stack([group, jet_no], axis=1), axis=0, return_index=True)
    dup = np.ones(n_jets, dtype=bool)
    dup[first] = False
    collision = np.zeros(n_groups, dtype=bool)
    collision[group[dup]] = True
    too_few = n_elig < p["min_jets"]
    too_many = n_elig > p["max_jets"]
    kept_group = ~collision & ~too_few & ~too_many
    cf.add(merged, "events_key_collision_dropped", int(collision.sum()))
    cf.add(merged, f"events_fewer_than_{p['min_jets']}_jets", int((~collision & too_few).sum()))
    cf.add(merged, f"events_more_than_{p['max_jets']}_jets", int((~collision & too_many).sum()))
    cf.add(merged, "events_kept", int(kept_group.sum()))
    if not kept_group.any():
        raise InputError(f"empty selection: no event with {p['min_jets']}..{p['max_jets']} jets "
                         f"(window_applies_to={p['window_applies_to']}) in {len(files)} input file(s) "
                         f"({', '.join(f['path'] for f in files[:3])}{' ...' if len(files) > 3 else ''})")
    # event order: by first jet row (input order), deterministic
    first_row = np.full(n_groups, n_jets, dtype=np.int64)
    np.minimum.at(first_row, group, np.arange(n_jets))
    kept_ids = np.flatnonzero(kept_group)
    kept_ids = kept_ids[np.argsort(first_row[kept_ids], kind="stable")]
    event_of_group = np.full(n_groups, -1, dtype=np.int64)
    event_of_group[kept_ids] = np.arange(len(kept_ids))
    n_events = len(kept_ids)
    # --- which jets go to the dataset: event jets and pretraining jets --------------------------------
    jet_event = np.where(eligible, event_of_group[group], -1)
    pretrain_ok = (c["label_xbb"] >= 0) & (c["in_window"] if window_for_pretraining(p) else True)
    keep_jet = (jet_event >= 0) | pretrain_ok
    out_row = np.cumsum(keep_jet) - 1
    n_out = int(keep_jet.sum())
    cf.add(merged, "jets_written", n_out)
    cf.add(merged, "jets_in_events", int((jet_event >= 0).sum()))
    cf.add(merged, "jets_pretraining", int(pretrain_ok.sum()))
    if not pretrain_ok.any():
        raise InputError(f"empty selection: no labelled jet passes the pretraining selection in {len(files)} file(s)")
    # --- /events/jets: rows ordered by fj_pt descending ----------------------------------------------
    ev_jets = np.flatnonzero(jet_event >= 0)
    order = np.lexsort((-c["fj_pt"][ev_jets].astype(np.float64), jet_event[ev_jets]))
    ev_jets = ev_jets[order]
    ev_of = jet_event[ev_jets]
    starts = np.searchsorted(ev_of, np.arange(n_events))
    slot = np.arange(len(ev_jets)) - starts[ev_of]
    events_jets = np.full((n_events, p["max_jets"]), -1, dtype=np.int64)
    events_jets[ev_of, slot] = out_row[ev_jets]
    n_jets_ev = np.bincount(ev_of, minlength=n_events).astype(np.int8)
    # --- per-event columns ----------------------------------------------------------------------------
    rep = np.zeros(n_groups, dtype=np.int64)  # one representative jet per group
    rep[group[::-1]] = np.arange(n_jets)[::-1]
    ev_rep = rep[kept_ids]
    ev_sample = c["sample"][ev_rep].astype(np.int16)
    proc = np.array([s["process"] == "signal" for s in samples])
    masses = np.array([float(s["mass"] or 0.0) for s in samples], dtype=np.float32)
    ev_label = proc[ev_sample].astype(np.int8)
    ev_mass = np.where(ev_label == 1, masses[ev_sample], 0.0).astype(np.float32)
    ev_split = assign_splits(uniform(uniq[kept_ids], p["seed"], "split"), p["split_fractions"])
    ev_rand = uniform(uniq[kept_ids], p["seed"], "fraction")
    jet_split = assign_splits(uniform(h, p["seed"], "split"), p["split_fractions"])
    ev_weight = _weights(samples, group, c, ev_rep, ev_sample, ev_split, kept_ids, n_groups)
    for name, code in SPLITS.items():
        cf.add(merged, f"events_{name}", int((ev_split == code).sum()))
    events = {"jets": events_jets, "n_jets": n_jets_ev, "label": ev_label, "mass": ev_mass, "weight": ev_weight,
              "split": ev_split, "rand": ev_rand, "sample": ev_sample,
              "event_no": c["event_no"][ev_rep].astype(np.uint32)}
    jet_small = {"event": np.where(keep_jet, jet_event, -1)[keep_jet], "split": jet_split[keep_jet]}
    attrs = {"samples": [{k: s[k] for k in ("name", "process", "mass", "n_generated", "cross_section_pb")}
                         for s in samples],
             "particle_features": PARTICLE_FEATURE_NAMES, "hlf_names": HLF_NAMES,
             "max_particles": p["max_particles"], "max_jets": p["max_jets"], "skim_params": p}
    _write(output, files, keep_jet, jet_small, events, attrs, p)
    _write_tables(files, merged, cutflow_csv, counts_csv, events, c, keep_jet, jet_split, jet_event, samples)
    log.info("dataset %s: %d events, %d jets (%s)", output, n_events, n_out,
             ", ".join(f"{k}={merged[f'events_{k}']}" for k in SPLITS))


def _weights(samples, group, c, ev_rep, ev_sample, ev_split, kept_ids, n_groups) -> np.ndarray:
    """Cross-section (pb) per event, normalised within each (sample, split) (README "Files exchanged")."""
    w = c["gen_weight"][ev_rep].astype(np.float64)
    out = np.zeros(len(w))
    for si, s in enumerate(samples):
        in_s = ev_sample == si
        if not in_s.any():
            continue
        if s["n_generated"]:  # simulation: generated sum of weights from the sidecars
            w_gen = s["sum_weights"]
        else:  # open data: every distinct event found in the inputs counts as one generated event
            rep_all = np.zeros(n_groups, dtype=np.int64)
            rep_all[group[::-1]] = np.arange(len(group))[::-1]
            w_gen = float((c["sample"][rep_all] == si).sum())
            s["n_generated"] = int(w_gen)
        w_sel = w[in_s].sum()
        for code in SPLITS.values():
            m = in_s & (ev_split == code)
            if m.any():
                out[m] = s["cross_section_pb"] * w[m] * w_sel / (w_gen * w[m].sum())
    return out


def _write(output, files, keep_jet, jet_small, events, attrs, p) -> None:
    """Write dataset.h5: big per-jet arrays copied block by block from each per-file skim."""
    comp = h5_compression(p)
    n_out = int(keep_jet.sum())
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        jg, eg = out.create_group("jets"), out.create_group("events")
        with h5py.File(files[0]["path"], "r") as f0:
            names = list(f0["jets"].keys())
            dsets = {k: create(jg, k, (n_out,) + f0["jets"][k].shape[1:], f0["jets"][k].dtype, comp) for k in names}
        ofs, start = 0, 0
        bar = tqdm(total=len(keep_jet), unit="jet", desc="merge", disable=None)
        for f in files:
            sel = keep_jet[start:start + f["n"]]
            with h5py.File(f["path"], "r") as src:
                for a in range(0, f["n"], COPY_BLOCK):
                    b = min(f["n"], a + COPY_BLOCK)
                    m = sel[a:b]
                    k = int(m.sum())
                    if k:
                        for name in names:
                            dsets[name][ofs:ofs + k] = src["jets"][name][a:b][m]
                    ofs += k
                    bar.update(b - a)
            start += f["n"]
        bar.close()
        for name, arr in jet_small.items():
            create(jg, name, arr.shape, arr.dtype, comp)[...] = arr
        for name, arr in events.items():
            create(eg, name, arr.shape, arr.dtype, comp)[...] = arr
        for key, value in attrs.items():
            out.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)


def _write_tables(files, merged, cutflow_csv, counts_csv, events, c, keep_jet, jet_split, jet_event,
                  samples) -> None:
    """cutflow.csv (per file, total, merge steps) and counts.csv (per level, split, class, mass)."""
    rows = [{"file": f["source"], "step": k, "count": v} for f in files for k, v in f["cutflow"].items()]
    rows += [{"file": "all", "step": k, "count": v} for k, v in cf.total(f["cutflow"] for f in files).items()]
    rows += [{"file": "merged", "step": k, "count": v} for k, v in merged.items()]
    with atomic_path(cutflow_csv) as tmp:
        pd.DataFrame(rows, columns=["file", "step", "count"]).to_csv(tmp, index=False)
    split_name = {v: k for k, v in SPLITS.items()}
    ev = pd.DataFrame({"split": [split_name[s] for s in events["split"]],
                       "class": np.where(events["label"] == 1, "signal", "background"),
                       "mass": events["mass"], "sample": [samples[i]["name"] for i in events["sample"]],
                       "weight": events["weight"]})
    evc = ev.groupby(["split", "class", "mass", "sample"], as_index=False).agg(n=("weight", "size"),
                                                                           sum_weight_pb=("weight", "sum"))
    evc.insert(0, "level", "event")
    names = np.array(JET_CLASSES + ["unlabelled"])
    jets = pd.DataFrame({"split": [split_name[s] for s in jet_split[keep_jet]],
                         "class": names[c["label_class"][keep_jet]],
                         "mass": [float(samples[i]["mass"] or 0) if samples[i]["process"] == "signal" else 0.0
                                  for i in c["sample"][keep_jet]],
                         "sample": [samples[i]["name"] for i in c["sample"][keep_jet]],
                         "in_window": c["in_window"][keep_jet], "in_event": jet_event[keep_jet] >= 0})
    jc = jets.groupby(["split", "class", "mass", "sample"], as_index=False).agg(
        n=("in_window", "size"), n_in_window=("in_window", "sum"), n_in_events=("in_event", "sum"))
    jc.insert(0, "level", "jet")
    with atomic_path(counts_csv) as tmp:
        pd.concat([evc, jc], ignore_index=True).to_csv(tmp, index=False)
