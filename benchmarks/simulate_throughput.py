"""Throughput of the simulate stage: events/s of the whole chain (Pythia + detector + jets +
features + ROOT writing) next to Pythia generation alone, measured in the same run on the same
sample and seed, and the simulator's own overhead on top of generation (target <= 30 %).

Two generation references: a separate generation-only run (alternating with the chain runs), and
the Pythia time (init + nextBatch) inside the chain run itself, which is robust to machine load
changing between runs; the overhead ratio is reported for both. Times are CPU seconds of this
process (`time.process_time`), so other jobs on a shared machine do not distort the ratio.

    python benchmarks/simulate_throughput.py [--events 400] [--repeats 2] [--samples ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hhfm import config
from hhfm.simulate import SECTIONS, generate, samples, simulate_file


def generation_only(sample: str, cfg: config.Section) -> float:
    """Seconds to initialise Pythia and generate the file's events (batched), nothing else."""
    t0 = time.process_time()
    smp = samples.parse_sample(sample)
    seed = samples.file_seed(cfg.seed, sample, 0)
    pythia = generate.make_pythia(samples.pythia_settings(smp, seed))
    sim, done = cfg.simulate, 0
    while done < sim.events_per_file:
        n = min(sim.batch_size, sim.events_per_file - done)
        generate.next_batch(pythia, n)
        done += n
    return time.process_time() - t0


def whole_chain(sample: str, cfg: config.Section, tmp: Path) -> tuple[float, float]:
    """Seconds for `simulate_file` of the same events, and the Pythia share of them."""
    spent = [0.0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - t

        return wrapper

    orig = generate.make_pythia, generate.next_batch
    generate.make_pythia, generate.next_batch = timed(orig[0]), timed(orig[1])
    try:
        t0 = time.process_time()
        simulate_file(cfg, sample, 0, tmp / sample / "ntuple_0.root", progress=False)
        return time.process_time() - t0, spent[0]
    finally:
        generate.make_pythia, generate.next_batch = orig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2, help="alternating repeats; the fastest of each is kept")
    ap.add_argument("--samples", nargs="+", default=["GravitonHH_M1000", "QCD_Pt_300to470"])
    args = ap.parse_args()
    cfg = config.load({"seed": 1, "simulate": {"events_per_file": args.events, "batch_size": args.batch_size}},
                      sections=SECTIONS)  # fmt: skip
    print(f"{'sample':<20} {'gen ev/s':>9} {'chain ev/s':>11} {'overhead':>9} {'in-chain gen ev/s':>18} {'in-chain overhead':>18}")
    tot = {"gen": 0.0, "chain": 0.0, "inner": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for sample in args.samples:
            gen, chain = [], []
            for _ in range(args.repeats):  # alternate so that load changes hit both alike
                gen.append(generation_only(sample, cfg))
                chain.append(whole_chain(sample, cfg, Path(tmp)))
            g = min(gen)
            c, inner = min(chain)
            tot["gen"] += g
            tot["chain"] += c
            tot["inner"] += inner
            print(f"{sample:<20} {args.events / g:9.1f} {args.events / c:11.1f} {100 * (c - g) / g:8.1f}% "
                  f"{args.events / inner:18.1f} {100 * (c - inner) / inner:17.1f}%")  # fmt: skip
    n = args.events * len(args.samples)
    g, c, inner = tot["gen"], tot["chain"], tot["inner"]
    print(f"{'all':<20} {n / g:9.1f} {n / c:11.1f} {100 * (c - g) / g:8.1f}% {n / inner:18.1f} "
          f"{100 * (c - inner) / inner:17.1f}%")  # fmt: skip
    print("events per CPU second; overhead = (chain time - generation time) / generation time; target <= 30 %")

if __name__ == "__main__":
    main()
