"""Frozen heads from the embedding cache vs recomputing the backbone every step; fine-tuning throughput.

    python benchmarks/heads_speed.py [--dataset results/skim/dataset.h5] [--backbone backbone.pt]
                                     [--events-per-sample 150] [--epochs 3] [--threads N]

Prints, measured in the same run on the same events and the same head (config.yaml `heads` sizes):
the one-off cost of the cache (`hhfm embed`, jets/s), the per-epoch time (training + validation, on the
shared training engine) of a frozen head trained on
cached embeddings and of the same frozen head recomputing the backbone each step, their ratio
(target >= 20 on CPU), and the event-level training throughput (events/s, jets/s) of a fine-tuned run.
Without --dataset a small dataset is made with the real simulate + skim code (4 samples); without
--backbone a randomly initialised tagger with the config.yaml `model` section is used (timing only).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml

from hhfm import config as hhfm_config
from hhfm.heads.data import HeadData
from hhfm.heads.task import HeadTask, build_model
from hhfm.training import FitSettings, fit

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ["GravitonHH_M1000", "GravitonHH_M2500", "QCD_Pt_300to470", "QCD_Pt_800to1000"]


def make_dataset(base: Path, events_per_sample: int) -> Path:
    """Simulate and skim a few samples with the pipeline's own code."""
    from hhfm.simulate import simulate_file
    from hhfm.skim import skim_file
    from hhfm.skim.merge import merge

    sim = hhfm_config.load({"seed": 3, "simulate": {"events_per_file": events_per_sample, "batch_size": 100}}, {},
                           ["seed", "simulate"])
    params = hhfm_config.load({"seed": 3, "skim": {}}, {}, ["seed", "skim"])
    per_file = []
    for sample in SAMPLES:
        root = base / "sim" / sample / "ntuple_0.root"
        simulate_file(sim, sample, 0, root, progress=False)
        out = base / "skim" / sample / "ntuple_0.h5"
        skim_file(str(root), str(root.with_suffix(".json")), out, params)
        per_file.append(str(out))
    merge(per_file, str(base / "dataset.h5"), str(base / "cutflow.csv"), str(base / "counts.csv"), params)
    return base / "dataset.h5"


def time_epochs(model, data: HeadData, strategy: str, params, epochs: int, outdir: Path) -> float:
    """Median wall time of an epoch (training + validation) of the shared engine on the run's events."""
    task = HeadTask(model, data, strategy, params, [0, 0], torch.device("cpu"))
    result = fit(task, FitSettings(max_epochs=epochs, desc="bench"), outdir, fp=str(time.time()))
    return statistics.median(row["time_s"] for row in result.state["history"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--events-per-sample", type=int, default=150)
    ap.add_argument("--epochs", type=int, default=3, help="epochs timed for the cached head (median)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for every measurement (default 1)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    params = hhfm_config.section("heads", config["heads"])
    tmp = Path(tempfile.mkdtemp(prefix="heads_speed_"))
    dataset = Path(args.dataset) if args.dataset else make_dataset(tmp, args.events_per_sample)
    if args.backbone:
        backbone = Path(args.backbone)
    else:
        from hhfm.models import build_tagger, save_tagger

        torch.manual_seed(0)
        backbone = tmp / "backbone.pt"
        save_tagger(backbone, build_tagger(config.get("model") or {}, "xbb"), {"note": "random, timing only"})

    from hhfm.cli import main as hhfm_main

    embeddings = tmp / "embeddings.h5"
    t0 = time.perf_counter()
    assert hhfm_main(["embed", "--dataset", str(dataset), "--backbone", str(backbone), "--output", str(embeddings)]) == 0
    t_embed = time.perf_counter() - t0

    cached = HeadData(dataset, 1.0, params, "embedding", embeddings=embeddings)
    live = HeadData(dataset, 1.0, params, "embedding", constituents=True)
    n_events = len(cached.splits["train"])
    n_jets = int((cached.splits["train"].jets >= 0).sum())
    n_embedded = len(cached.jet_rows)

    head_cached = build_model("embedding", "frozen", params, [0, 0], rep_dim=cached.rep.shape[1])
    t_cached = time_epochs(head_cached, cached, "frozen", params, args.epochs, tmp / "cached")
    head_live = build_model("embedding", "frozen", params, [0, 0], backbone=str(backbone))
    t_live = time_epochs(head_live, live, "frozen", params, 1, tmp / "live")
    finetuned = build_model("embedding", "finetuned", params, [0, 0], backbone=str(backbone))
    t_ft = time_epochs(finetuned, live, "finetuned", params, 1, tmp / "finetuned")

    print(f"dataset {dataset}: {n_events} training events, {n_jets} jets; backbone {backbone}; "
          f"{torch.get_num_threads()} CPU threads; head {params['phi_layers']}x{params['phi_width']} / "
          f"{params['rho_layers']}x{params['rho_width']}, batch {params['batch_size']}")
    print(f"embed (one-off cache of {n_embedded} jets, incl. startup): {t_embed:8.2f} s  ({n_embedded / t_embed:8.1f} jets/s)")
    print(f"frozen head, cached embeddings:  {t_cached:8.3f} s/epoch  ({n_events / t_cached:10.1f} events/s)")
    print(f"frozen head, backbone each step: {t_live:8.3f} s/epoch  ({n_events / t_live:10.1f} events/s)")
    print(f"ratio backbone-each-step / cached: {t_live / t_cached:8.1f}x  (target >= 20x)")
    print(f"fine-tuned run: {t_ft:8.3f} s/epoch  = {n_events / t_ft:8.1f} events/s  = {n_jets / t_ft:8.1f} jets/s "
          f"(vs frozen-in-loop {t_ft / t_live:.2f}x slower: backward through the backbone)")


if __name__ == "__main__":
    main()
