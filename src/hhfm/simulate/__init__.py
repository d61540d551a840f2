"""Stage `simulate`: Pythia 8 + FastJet + a parametric detector, writing CMS open-data record
12102 format ROOT files (one entry per AK8 jet) and a JSON sidecar with what the record lacks.

Python API: `simulate_file(cfg, sample, index, output) -> sidecar dict`, with `cfg` the validated
`seed` + `simulate` config (`hhfm.config.load`; every default is in config.schema.yaml).
CLI: `hhfm simulate --config '{"seed": N, "simulate": {...}}' [--runtime '<json>'] --sample NAME
--index K --output dir/ntuple_K.root`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hhfm import config
from hhfm.errors import ConfigError
from hhfm.io import atomic_path, setup_logging, write_json
from hhfm.simulate import samples

if TYPE_CHECKING:
    from hhfm.simulate.generate import Batch

log = logging.getLogger("hhfm.simulate")

SECTIONS = ["seed", "simulate"]  # the config sections this stage reads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help='tracked config as JSON: {"seed": N, "simulate": {...}}')
    parser.add_argument("--runtime", default=None, help="runtime-only (x-runtime) config keys as JSON (default: $HHFM_RUNTIME)")
    parser.add_argument("--sample", required=True, help="GravitonHH_M<mass> or QCD_Pt_<lo>to<hi>[_biased] (hi may be Inf)")
    parser.add_argument("--index", type=int, required=True, help="file index within the sample (>= 0)")
    parser.add_argument("--output", required=True, help="output ROOT file; the sidecar is written next to it (.json)")
    parser.add_argument("--no-progress", action="store_true", help="disable the progress bar")


def run(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = config.load(args.config, args.runtime, sections=SECTIONS)
    simulate_file(cfg, args.sample, args.index, Path(args.output), progress=not args.no_progress)


def sidecar_path(output: Path) -> Path:
    """The JSON sidecar next to a simulated ROOT file."""
    return Path(output).with_suffix(".json")


@dataclass(frozen=True)
class FilePlan:
    """What one output file holds: its sample, Pythia seed and settings, and its event numbers."""

    sample: samples.Sample
    index: int
    seed: int
    settings: list[str]
    bias: tuple[float, float] | None  # (power, ref_pt) of a biased QCD sample
    n_events: int
    first_event: int


def plan_file(cfg: config.Section, sample: str, index: int) -> FilePlan:
    """The FilePlan of file `index` of `sample`; ConfigError for a bad sample, index or event range."""
    smp = samples.parse_sample(sample)
    if index < 0:
        raise ConfigError(f"--index must be >= 0, got {index}")
    sim = cfg.simulate
    seed = samples.file_seed(int(cfg.seed), sample, index)
    bias = (float(sim.qcd_biased.power), float(sim.qcd_biased.ref_pt)) if smp.biased else None
    settings = samples.pythia_settings(smp, seed, sim.tune, list(sim.pythia_settings), bias=bias)
    n_events = int(sim.events_per_file)
    first_event = index * n_events + 1
    if first_event + n_events > 2**32:
        raise ConfigError(f"event numbers of file {index} overflow uint32 (events_per_file={n_events})")
    return FilePlan(smp, int(index), seed, settings, bias, n_events, first_event)


def _simulate_batch(pythia, rng: np.random.Generator, sim: config.Section, plan: FilePlan, done: int,
                    n: int) -> tuple[dict, Batch, int]:  # fmt: skip
    """Generate, reconstruct and convert events done+1 .. done+n of the file: (writer arrays, batch, n_jets)."""
    from hhfm.simulate import detector, generate, jets, labels, ntuple, pileup, writer

    batch = generate.next_batch(pythia, n)
    if batch.n_events != n:
        raise RuntimeError(f"Pythia returned {batch.n_events} events instead of {n}")
    info = pileup.profile(rng, n, sim.pileup)
    first = plan.first_event + done
    info["event_no"] = np.arange(first, first + n, dtype=np.uint64)
    pu = pileup.particles(rng, info["ntrueInt"], sim.pileup, sim.detector.tracker_eta) if sim.pileup.particles else None
    reco = detector.reconstruct(batch, rng, sim.detector, pu)
    truth = labels.truth_tables(batch)
    svs = detector.reconstruct_svs(batch, reco, truth.hf_ancestor, truth.last_b, rng, sim.detector)
    fj = jets.cluster(reco, sim.jet_min_pt, sim.jet_max_eta)
    is_qcd = plan.sample.process == "qcd"
    jet, pf, trk, sv, offsets = ntuple.build(batch, reco, truth, svs, fj, event_info=info, is_qcd=is_qcd, rng=rng,
                                             det=sim.detector)  # fmt: skip
    return writer.to_arrays(jet, {"pfcands": pf, "tracks": trk, "sv": sv}, offsets), batch, len(fj)


def _write_events(pythia, rng: np.random.Generator, sim: config.Section, plan: FilePlan, path: Path,
                  progress: bool) -> tuple[int, np.ndarray]:  # fmt: skip
    """Simulate every event of the file in batches into the ROOT file `path`: (n_jets, event weights)."""
    from tqdm import tqdm

    from hhfm.simulate import writer

    out = writer.TreeWriter(path)
    bar = tqdm(total=plan.n_events, desc=f"simulate {plan.sample.name}[{plan.index}]", unit="ev",
               disable=not progress, mininterval=0.5 if sys.stderr.isatty() else 15.0)  # fmt: skip
    n_jets, weights, done = 0, [], 0
    while done < plan.n_events:
        n = min(int(sim.batch_size), plan.n_events - done)
        arrays, batch, batch_jets = _simulate_batch(pythia, rng, sim, plan, done, n)
        out.write(arrays)
        n_jets += batch_jets
        weights.append(batch.weights)
        done += n
        bar.update(n)
    bar.close()
    out.close()
    return n_jets, np.concatenate(weights) if weights else np.zeros(0)


def _sidecar(plan: FilePlan, n_jets: int, weights: np.ndarray, xs: float, xs_err: float) -> dict:
    """The sidecar: what the record format lacks (cross-section, weights, seeds, event numbers)."""
    smp = plan.sample
    return {
        "sample": smp.name,
        "index": plan.index,
        "process": smp.process,
        "mass": smp.mass,
        "pthat_min": smp.pthat_min,
        "pthat_max": smp.pthat_max,
        "bias": None if plan.bias is None else {"power": plan.bias[0], "ref_pt": plan.bias[1]},
        "n_generated": plan.n_events,
        "n_jets": int(n_jets),
        "cross_section_pb": float(xs),
        "cross_section_err_pb": float(xs_err),
        "sum_weights": float(weights.sum()),
        "seed": int(plan.seed),
        "event_no_range": [plan.first_event, plan.first_event + plan.n_events - 1],
        "event_weights": weights.tolist() if bool(np.any(weights != 1.0)) else None,
        "pythia_settings": plan.settings,
    }


def simulate_file(cfg: config.Section, sample: str, index: int, output: Path, progress: bool = True) -> dict:
    """Generate one record-format ROOT file and its sidecar (both written atomically); return the sidecar.

    `cfg` is the validated `seed` + `simulate` config: `config.load({...}, sections=["seed", "simulate"])`.
    """
    from hhfm.simulate import generate

    plan = plan_file(cfg, sample, index)
    log.info("simulating %s file %d: %d events, seed %d", sample, index, plan.n_events, plan.seed)
    pythia = generate.make_pythia(plan.settings)
    rng = np.random.default_rng(plan.seed)
    output = Path(output)
    with atomic_path(output) as tmp:
        n_jets, weights = _write_events(pythia, rng, cfg.simulate, plan, tmp, progress)
    side = _sidecar(plan, n_jets, weights, *generate.cross_section_pb(pythia))
    write_json(sidecar_path(output), side)
    log.info("wrote %s (%d jets) and its sidecar; sigma = %.4g pb", output, n_jets, side["cross_section_pb"])
    return side
