"""Throughput of the simulate stage: events/s of the whole chain (Pythia + detector + jets +
features + ROOT writing) next to Pythia generation alone, measured in the same run on the same
sample and seed, and the simulator's own overhead on top of generation (target <= 30 %).

    python benchmarks/simulate_throughput.py [--events 400] [--repeats 2] [--samples ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hhfm.simulate import generate, samples, simulate_file


def generation_only(sample: str, params: dict) -> float:
    """Seconds to initialise Pythia and generate the file's events (batched), nothing else."""
    t0 = time.perf_counter()
    smp = samples.parse_sample(sample)
    seed = samples.file_seed(params["seed"], sample, 0)
    pythia = generate.make_pythia(samples.pythia_settings(smp, seed))
    done = 0
    while done < params["events_per_file"]:
        n = min(params["batch_size"], params["events_per_file"] - done)
        generate.next_batch(pythia, n)
        done += n
    return time.perf_counter() - t0


def whole_chain(sample: str, params: dict, tmp: Path) -> float:
    """Seconds for `simulate_file` (generation + simulator + writing) of the same events."""
    t0 = time.perf_counter()
    simulate_file(params, sample, 0, tmp / sample / "ntuple_0.root", progress=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2, help="alternating repeats; the fastest of each is kept")
    ap.add_argument("--samples", nargs="+", default=["GravitonHH_M1000", "QCD_Pt_300to470"])
    args = ap.parse_args()
    params = {"seed": 1, "events_per_file": args.events, "batch_size": args.batch_size}
    print(f"{'sample':<20} {'gen ev/s':>9} {'chain ev/s':>11} {'overhead':>9}")
    total_gen = total_chain = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for sample in args.samples:
            gen, chain = [], []
            for _ in range(args.repeats):  # alternate so that load changes hit both alike
                gen.append(generation_only(sample, params))
                chain.append(whole_chain(sample, params, Path(tmp)))
            g, c = min(gen), min(chain)
            total_gen += g
            total_chain += c
            print(f"{sample:<20} {args.events / g:9.1f} {args.events / c:11.1f} {100 * (c - g) / g:8.1f}%")
    n = args.events * len(args.samples)
    print(f"{'all':<20} {n / total_gen:9.1f} {n / total_chain:11.1f} {100 * (total_chain - total_gen) / total_gen:8.1f}%")
    print("overhead = (chain time - generation time) / generation time; target <= 30 %")


if __name__ == "__main__":
    main()
