"""Stage `simulate`: Pythia 8 + FastJet + a parametric detector, writing CMS open-data record
12102 format ROOT files (one entry per AK8 jet) and a JSON sidecar with what the record lacks.

Python API: `simulate_file(params, sample, index, output) -> sidecar dict`.
CLI: `hhfm simulate --params '<json>' --sample NAME --index K --output dir/ntuple_K.root`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from hhfm.errors import ConfigError
from hhfm.io import atomic_path, parse_params, setup_logging, write_json

log = logging.getLogger("hhfm.simulate")

#: defaults of the `simulate` config section (config.yaml / schema document the same values)
DEFAULTS: dict = {
    "seed": 12345,
    "events_per_file": 400,
    "batch_size": 200,
    "jet_min_pt": 200.0,
    "jet_max_eta": 2.4,
    "tune": None,  # Pythia Tune:pp number; None = Pythia's default (Monash 2013)
    "pythia_settings": [],  # extra readString lines appended to every sample
    "pileup": {},
    "detector": {},
}
MAX_BATCH = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="{}", help="the `simulate` config section as JSON (+ global seed)")
    parser.add_argument("--sample", required=True, help="GravitonHH_M<mass> or QCD_Pt_<lo>to<hi> (hi may be Inf)")
    parser.add_argument("--index", type=int, required=True, help="file index within the sample (>= 0)")
    parser.add_argument("--output", required=True, help="output ROOT file; the sidecar is written next to it (.json)")
    parser.add_argument("--no-progress", action="store_true", help="disable the progress bar")


def run(args: argparse.Namespace) -> None:
    setup_logging()
    params = parse_params(args.params)
    simulate_file(params, args.sample, args.index, Path(args.output), progress=not args.no_progress)


def sidecar_path(output: Path) -> Path:
    return Path(output).with_suffix(".json")


def _config(params: dict) -> dict:
    from hhfm.simulate import detector

    cfg = {**DEFAULTS, **params}
    for key in ("events_per_file", "batch_size"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] <= 0:
            raise ConfigError(f"simulate.{key} must be a positive integer, got {cfg[key]!r}")
    if cfg["batch_size"] > MAX_BATCH:
        raise ConfigError(f"simulate.batch_size must be <= {MAX_BATCH} (bounded memory), got {cfg['batch_size']}")
    if cfg["jet_min_pt"] <= 0 or not 0 < cfg["jet_max_eta"] <= 5:
        raise ConfigError("simulate.jet_min_pt must be > 0 and simulate.jet_max_eta in (0, 5]")
    for section, defaults in (("detector", detector.DEFAULTS), ("pileup", detector.PILEUP_DEFAULTS)):
        unknown = set(cfg[section] or {}) - set(defaults)
        if unknown:
            raise ConfigError(f"simulate.{section}: unknown key(s) {sorted(unknown)}; known: {sorted(defaults)}")
        cfg[section] = detector.merged(cfg[section], defaults)
    if cfg["pileup"]["mean"] <= 0:
        raise ConfigError("simulate.pileup.mean must be > 0")
    return cfg


def simulate_file(params: dict, sample: str, index: int, output: Path, progress: bool = True) -> dict:
    """Generate one record-format ROOT file and its sidecar (both written atomically); return the sidecar."""
    from tqdm import tqdm

    from hhfm.simulate import detector, generate, jets, labels, ntuple, samples, writer

    cfg = _config(params)
    smp = samples.parse_sample(sample)
    if index < 0:
        raise ConfigError(f"--index must be >= 0, got {index}")
    seed = samples.file_seed(int(cfg["seed"]), sample, index)
    settings = samples.pythia_settings(smp, seed, cfg["tune"], list(cfg["pythia_settings"]))
    n_events = int(cfg["events_per_file"])
    first_event = index * n_events + 1
    if first_event + n_events > 2**32:
        raise ConfigError(f"event numbers of file {index} overflow uint32 (events_per_file={n_events})")
    log.info("simulating %s file %d: %d events, seed %d", sample, index, n_events, seed)
    pythia = generate.make_pythia(settings)
    rng = np.random.default_rng(seed)
    output = Path(output)
    n_jets, weights = 0, []
    with atomic_path(output) as tmp:
        out = writer.TreeWriter(tmp)
        bar = tqdm(total=n_events, desc=f"simulate {sample}[{index}]", unit="ev", disable=not progress,
                   mininterval=0.5 if sys.stderr.isatty() else 15.0)  # fmt: skip
        done = 0
        while done < n_events:
            n = min(int(cfg["batch_size"]), n_events - done)
            batch = generate.next_batch(pythia, n)
            if batch.n_events != n:
                raise RuntimeError(f"Pythia returned {batch.n_events} events instead of {n}")
            info = detector.pileup_profile(rng, n, cfg["pileup"])
            info["event_no"] = np.arange(first_event + done, first_event + done + n, dtype=np.uint64)
            reco = detector.reconstruct(batch, rng, cfg["detector"], cfg["pileup"], info["ntrueInt"])
            truth = labels.truth_tables(batch)
            svs = detector.reconstruct_svs(batch, reco, truth.hf_ancestor, truth.last_b, rng, cfg["detector"])
            fj = jets.cluster(reco, cfg["jet_min_pt"], cfg["jet_max_eta"])
            jet, pf, trk, sv, offsets = ntuple.build(batch, reco, truth, svs, fj, info, smp.process == "qcd",
                                                     rng, cfg["detector"])  # fmt: skip
            out.write(writer.to_arrays(jet, {"pfcands": pf, "tracks": trk, "sv": sv}, offsets))
            n_jets += len(fj)
            weights.append(batch.weights)
            done += n
            bar.update(n)
        bar.close()
        out.close()
    xs, xs_err = generate.cross_section_pb(pythia)
    w = np.concatenate(weights) if weights else np.zeros(0)
    biased = bool(np.any(w != 1.0))
    side = {
        "sample": sample,
        "index": int(index),
        "process": smp.process,
        "mass": smp.mass,
        "pthat_min": smp.pthat_min,
        "pthat_max": smp.pthat_max,
        "n_generated": n_events,
        "n_jets": int(n_jets),
        "cross_section_pb": float(xs),
        "cross_section_err_pb": float(xs_err),
        "sum_weights": float(w.sum()),
        "seed": int(seed),
        "event_no_range": [first_event, first_event + n_events - 1],
        "event_weights": w.tolist() if biased else None,
        "pythia_settings": settings,
    }
    write_json(sidecar_path(output), side)
    log.info("wrote %s (%d jets) and its sidecar; sigma = %.4g pb", output, n_jets, xs)
    return side
