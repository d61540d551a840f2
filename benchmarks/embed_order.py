"""Embedding pass of the published ParticleNet (and the config's ParT) over dataset jets: batches in row order
vs batches of similar multiplicity (hhfm.heads.embed.embed_jets), at two batch sizes.

    python benchmarks/embed_order.py --dataset results/skim/dataset.h5 [--jets 400] [--threads 2]

Prints jets/s of each variant and the ratios to row order at batch 256 (the reference, measured in the same run),
and checks that every variant gives the same embeddings (max |difference|).
"""

from __future__ import annotations

import argparse
import time

import h5py
import numpy as np
import torch

from hhfm.heads.embed import embed_jets
from hhfm.heads.model import jet_outputs
from hhfm.models import build_tagger, load_published_particlenet


@torch.no_grad()
def row_order(tagger, x, v, m, batch_size: int) -> np.ndarray:
    """The reference: consecutive rows per batch (what embed did before sorting by multiplicity)."""
    out = [jet_outputs(tagger, *(torch.from_numpy(a[i:i + batch_size]) for a in (x, v, m)))[0].numpy()
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--jets", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with h5py.File(args.dataset) as f:
        x, v, m = (f["jets"][k][: args.jets] for k in ("features", "vectors", "mask"))
    import yaml

    part_cfg = yaml.safe_load(open("config.yaml"))["model"]
    for name, tagger in (("ParticleNet (published)", load_published_particlenet()),
                         ("ParT (config.yaml model)", build_tagger(part_cfg, "xbb"))):
        tagger.eval().requires_grad_(False)
        t0 = time.perf_counter()
        ref = row_order(tagger, x, v, m, 256)
        base = len(x) / (time.perf_counter() - t0)
        print(f"{name}: row order, batch 256 (reference): {base:.1f} jets/s")
        for bs in (256, 64):
            t0 = time.perf_counter()
            emb, _ = embed_jets(tagger, x, v, m, bs, torch.device("cpu"))
            rate = len(x) / (time.perf_counter() - t0)
            print(f"{name}: by multiplicity, batch {bs}: {rate:.1f} jets/s, {rate / base:.2f}x the reference, "
                  f"max |emb - reference| {np.abs(emb - ref).max():.2e}")


if __name__ == "__main__":
    main()
