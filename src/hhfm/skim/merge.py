"""`hhfm merge-skim`: per-file skims -> results/skim/dataset.h5 (+ cutflow.csv, counts.csv).

Groups jets into events by the hashed record key over ALL inputs (so events straddling adjacent
files are joined), orders each event's jets by fj_pt through the /events/jets row index (every per-jet
field moves with its row), keeps events with min_jets..max_jets eligible jets, assigns splits and a
per-event random number from the key hash, normalises weights within each split, and copies the
needed jets' arrays file by file in blocks (memory bounded by the block size, not the dataset).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hhfm.config import Section
from hhfm.errors import InputError
from hhfm.features import HLF_NAMES, PARTICLE_FEATURE_NAMES, SPLITS
from hhfm.io import setup_logging
from hhfm.skim import cutflow as cf
from hhfm.skim.events import assign_splits, event_hash, string_hash, uniform
from hhfm.skim.inputs import MergeInputs, read_inputs
from hhfm.skim.output import write_counts, write_cutflow, write_dataset
from hhfm.skim.params import (add_config_arguments, h5_compression, recorded_params, stage_config, window_for_events,
                              window_for_pretraining)

log = logging.getLogger("hhfm.skim.merge")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--inputs", nargs="+", required=True, help="per-file skims (results/skim/files/*.h5)")
    parser.add_argument("--output", required=True, help="results/skim/dataset.h5")
    parser.add_argument("--cutflow", required=True, help="results/skim/cutflow.csv")
    parser.add_argument("--counts", required=True, help="results/skim/counts.csv")


def run(args: argparse.Namespace) -> None:
    setup_logging()
    merge(args.inputs, args.output, args.cutflow, args.counts, stage_config(args.config, args.runtime))


@dataclass(frozen=True)
class EventKeys:
    """Jets grouped by the 64-bit hash of their event key (a group = one candidate event)."""

    jet_hash: np.ndarray  # per jet
    unique: np.ndarray  # sorted distinct hashes, one per group
    group: np.ndarray  # per jet: index into `unique`

    @property
    def n_groups(self) -> int:
        return len(self.unique)

    @functools.cached_property
    def first_jet(self) -> np.ndarray:
        """Lowest jet row of each group (its representative, and its position in input order)."""
        rep = np.zeros(self.n_groups, dtype=np.int64)
        rep[self.group[::-1]] = np.arange(len(self.group))[::-1]
        return rep


def merge(inputs: list[str], output: str | Path, cutflow: str | Path, counts: str | Path, cfg: Section) -> None:
    """Build dataset.h5, cutflow.csv and counts.csv from per-file skims; outputs written atomically.

    `cfg` is the validated config (hhfm.config Section) with sections `seed` and `skim`.
    """
    src = read_inputs(list(inputs))
    skim = cfg.skim
    merged: dict = {}
    cf.add(merged, "jets_in", src.n_jets)
    keys = group_events(src)
    cf.add(merged, "events_found", keys.n_groups)
    eligible = src.cols["in_window"] if window_for_events(skim) else np.ones(src.n_jets, dtype=bool)
    kept = _kept_events(keys, eligible, src, skim, merged)
    jet_event, keep_jet = _kept_jets(keys, kept, eligible, src, skim, merged)
    rows, n_jets = _event_jet_rows(src.cols["fj_pt"], jet_event, keep_jet, len(kept), skim.max_jets)
    events = {"jets": rows, "n_jets": n_jets, **_event_columns(src, keys, kept, cfg)}
    for name, code in SPLITS.items():
        cf.add(merged, f"events_{name}", int((events["split"] == code).sum()))
    jets = {"event": jet_event[keep_jet],
            "split": assign_splits(uniform(keys.jet_hash[keep_jet], cfg.seed, "split"), skim.split_fractions)}
    write_dataset(output, files=src.files, keep_jet=keep_jet, jets=jets, events=events,
                  attrs=_dataset_attrs(src.samples, cfg), compression=h5_compression(skim))
    write_cutflow(cutflow, src.files, merged)
    write_counts(counts, src.samples, events,
                 {**jets, **{k: src.cols[k][keep_jet] for k in ("label_class", "sample", "in_window")}})
    log.info("dataset %s: %d events, %d jets (%s)", output, len(kept), int(keep_jet.sum()),
             ", ".join(f"{k}={merged[f'events_{k}']}" for k in SPLITS))


def group_events(src: MergeInputs) -> EventKeys:
    """Group all jets by the hash of (sample name, sample_isQCD, event_no, rho, npv, ntrueInt)."""
    c = src.cols
    sample_hash = np.array([string_hash(s["name"]) for s in src.samples], dtype=np.uint64)
    h = event_hash(sample_hash[c["sample"]], c["sample_isQCD"], c["event_no"], c["rho"], c["npv"], c["ntrueInt"])
    unique, group = np.unique(h, return_inverse=True)
    return EventKeys(h, unique, group)


def _key_collisions(keys: EventKeys, jet_no: np.ndarray) -> np.ndarray:
    """Per group: two jets with the same jet_no, i.e. two events sharing one key (dropped, counted)."""
    n_jets = len(jet_no)
    jet_no = jet_no.astype(np.int64)
    span = int(jet_no.max()) + 1 if n_jets else 1
    if keys.n_groups * span < 2**62:  # one int64 per (group, jet_no): much faster than a 2-column unique
        _, first = np.unique(keys.group.astype(np.int64) * span + jet_no, return_index=True)
    else:
        _, first = np.unique(np.stack([keys.group, jet_no], axis=1), axis=0, return_index=True)
    dup = np.ones(n_jets, dtype=bool)
    dup[first] = False
    collision = np.zeros(keys.n_groups, dtype=bool)
    collision[keys.group[dup]] = True
    return collision


def _kept_events(keys: EventKeys, eligible: np.ndarray, src: MergeInputs, skim: Section, merged: dict) -> np.ndarray:
    """Group ids of the dataset's events in input order: no key collision, min_jets..max_jets eligible jets."""
    n_elig = np.bincount(keys.group, weights=eligible, minlength=keys.n_groups).astype(np.int64)
    collision = _key_collisions(keys, src.cols["jet_no"])
    too_few, too_many = n_elig < skim.min_jets, n_elig > skim.max_jets
    kept_group = ~collision & ~too_few & ~too_many
    cf.add(merged, "events_key_collision_dropped", int(collision.sum()))
    cf.add(merged, f"events_fewer_than_{skim.min_jets}_jets", int((~collision & too_few).sum()))
    cf.add(merged, f"events_more_than_{skim.max_jets}_jets", int((~collision & too_many).sum()))
    cf.add(merged, "events_kept", int(kept_group.sum()))
    if not kept_group.any():
        paths = [f["path"] for f in src.files]
        raise InputError(f"empty selection: no event with {skim.min_jets}..{skim.max_jets} jets "
                         f"(window_applies_to={skim.window_applies_to}) in {len(paths)} input file(s) "
                         f"({', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''})")
    kept = np.flatnonzero(kept_group)
    return kept[np.argsort(keys.first_jet[kept], kind="stable")]


def _kept_jets(keys: EventKeys, kept: np.ndarray, eligible: np.ndarray, src: MergeInputs, skim: Section,
               merged: dict) -> tuple[np.ndarray, np.ndarray]:
    """(event row of each input jet, -1 if none; whether it is written): event jets plus pretraining jets."""
    event_of_group = np.full(keys.n_groups, -1, dtype=np.int64)
    event_of_group[kept] = np.arange(len(kept))
    jet_event = np.where(eligible, event_of_group[keys.group], -1)
    pretrain_ok = (src.cols["label_xbb"] >= 0) & (src.cols["in_window"] if window_for_pretraining(skim) else True)
    keep_jet = (jet_event >= 0) | pretrain_ok
    cf.add(merged, "jets_written", int(keep_jet.sum()))
    cf.add(merged, "jets_in_events", int((jet_event >= 0).sum()))
    cf.add(merged, "jets_pretraining", int(pretrain_ok.sum()))
    if not pretrain_ok.any():
        raise InputError(f"empty selection: no labelled jet passes the pretraining selection "
                         f"in {len(src.files)} file(s)")
    return jet_event, keep_jet


def _event_jet_rows(fj_pt: np.ndarray, jet_event: np.ndarray, keep_jet: np.ndarray, n_events: int,
                    max_jets: int) -> tuple[np.ndarray, np.ndarray]:
    """/events/jets (dataset rows of each event's jets by fj_pt descending, -1 padded) and /events/n_jets."""
    out_row = np.cumsum(keep_jet) - 1
    ev_jets = np.flatnonzero(jet_event >= 0)
    order = np.lexsort((-fj_pt[ev_jets].astype(np.float64), jet_event[ev_jets]))
    ev_jets = ev_jets[order]
    ev_of = jet_event[ev_jets]
    starts = np.searchsorted(ev_of, np.arange(n_events))
    slot = np.arange(len(ev_jets)) - starts[ev_of]
    rows = np.full((n_events, max_jets), -1, dtype=np.int64)
    rows[ev_of, slot] = out_row[ev_jets]
    return rows, np.bincount(ev_of, minlength=n_events).astype(np.int8)


def _event_columns(src: MergeInputs, keys: EventKeys, kept: np.ndarray, cfg: Section) -> dict[str, np.ndarray]:
    """Per-event label, mass, weight, split, random number, sample and event_no (from its first jet)."""
    ev_rep = keys.first_jet[kept]
    ev_sample = src.cols["sample"][ev_rep].astype(np.int16)
    proc = np.array([s["process"] == "signal" for s in src.samples])
    masses = np.array([float(s["mass"] or 0.0) for s in src.samples], dtype=np.float32)
    label = proc[ev_sample].astype(np.int8)
    split = assign_splits(uniform(keys.unique[kept], cfg.seed, "split"), cfg.skim.split_fractions)
    return {"label": label, "mass": np.where(label == 1, masses[ev_sample], 0.0).astype(np.float32),
            "weight": _weights(src, keys, ev_rep, split), "split": split,
            "rand": uniform(keys.unique[kept], cfg.seed, "fraction"), "sample": ev_sample,
            "event_no": src.cols["event_no"][ev_rep].astype(np.uint32)}


def _weights(src: MergeInputs, keys: EventKeys, ev_rep: np.ndarray, ev_split: np.ndarray) -> np.ndarray:
    """Cross-section (pb) per event, normalised within each (sample, split) (README "Files exchanged").

    Open-data samples get n_generated (set in `src.samples`) = their distinct events in the inputs.
    """
    c = src.cols
    w = c["gen_weight"][ev_rep].astype(np.float64)
    ev_sample = c["sample"][ev_rep]
    out = np.zeros(len(w))
    for si, s in enumerate(src.samples):
        in_s = ev_sample == si
        if not in_s.any():
            continue
        if s["n_generated"]:  # simulation: generated sum of weights from the sidecars
            w_gen = s["sum_weights"]
        else:  # open data: every distinct event found in the inputs counts as one generated event
            w_gen = float((c["sample"][keys.first_jet] == si).sum())
            s["n_generated"] = int(w_gen)
        w_sel = w[in_s].sum()
        for code in SPLITS.values():
            m = in_s & (ev_split == code)
            if m.any():
                out[m] = s["cross_section_pb"] * w[m] * w_sel / (w_gen * w[m].sum())
    return out


def _dataset_attrs(samples: list[dict], cfg: Section) -> dict:
    """dataset.h5 attributes; `skim_params` holds only result-affecting keys (hhfm.skim.params.recorded_params)."""
    return {"samples": [{k: s[k] for k in ("name", "process", "mass", "n_generated", "cross_section_pb")}
                        for s in samples],
            "particle_features": PARTICLE_FEATURE_NAMES, "hlf_names": HLF_NAMES,
            "max_particles": cfg.skim.max_particles, "max_jets": cfg.skim.max_jets,
            "skim_params": json.dumps(recorded_params(cfg), sort_keys=True)}
