"""ParT attention layout: jets grouped by multiplicity vs the whole batch padded to its longest jet.

    python benchmarks/part_grouping.py [--dataset results/skim/dataset.h5] [--backbone backbone.pt]
                                       [--group-jets 32[,16,64...]] [--threads 1] [--repeats 5]

Prints, measured in the same run on the same jets (in row order, as the event heads see them: the jets of
consecutive events) with the config.yaml `model` size: inference jets/s at batches of 256 and 1024 jets
and a training step (forward + backward + AdamW step, xbb head, BCE) at 256 jets, for the ungrouped
reference (`ParticleTransformer.group_jets = 0`) and the grouped layout, their ratio, the max |delta
output| between the two (eval mode; training mode with the configured dropout draws other random numbers
by design), and the padded attention work sum_g B_g L_g^2 of each layout against B P^2.
Measurements alternate between the two layouts and report medians (shared machines are noisy).
Without --dataset a small dataset is made with the real simulate + skim code (benchmarks/heads_speed.py;
the pipeline's is results/skim/dataset.h5); without --backbone a randomly initialised tagger is timed.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import torch
import torch.nn.functional as F
import yaml

from hhfm.models import JetTagger, build_tagger, load_tagger
from hhfm.models.inputs import plan_groups, trim_to_longest

ROOT = Path(__file__).resolve().parents[1]


def load_jets(path: Path, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first n jets of the dataset in row order: x, v, mask, xbb label (0/1; unlabelled jets -> 0)."""
    with h5py.File(path, "r") as f:
        n = min(n, len(f["jets/mask"]))
        x, v = torch.from_numpy(f["jets/features"][:n]), torch.from_numpy(f["jets/vectors"][:n])
        mask = torch.from_numpy(f["jets/mask"][:n])
        y = torch.from_numpy(f["jets/label_xbb"][:n]).float().clamp(min=0)
    return x, v, mask, y


def batches(n_jets: int, size: int) -> list[slice]:
    return [slice(s, s + size) for s in range(0, n_jets - size + 1, size)]


def attention_work(mask: torch.Tensor, group_jets: int) -> tuple[int, int]:
    """(sum_g B_g L_g^2 of the grouped layout, B P^2 of the batch trimmed to its longest jet)."""
    mask = trim_to_longest(mask[..., None], mask[..., None], mask)[2]
    g = plan_groups(mask, group_jets)
    return sum(b * n * n for b, n in zip(g.sizes, g.lengths)), mask.shape[0] * mask.shape[1] ** 2


def time_inference(tagger: JetTagger, jets, size: int, layouts: dict[str, int], repeats: int):
    """Median jets/s per layout over `repeats` passes through every full batch; max |delta| of the outputs."""
    x, v, mask, _ = jets
    sl = batches(len(mask), size)
    times: dict[str, list[float]] = {k: [] for k in layouts}
    outs: dict[str, torch.Tensor] = {}
    tagger.eval()
    with torch.no_grad():
        for _ in range(repeats):
            for name, g in layouts.items():
                tagger.backbone.group_jets = g
                t0 = time.perf_counter()
                outs[name] = torch.cat([tagger.backbone(x[s], v[s], mask[s]) for s in sl])
                times[name].append(time.perf_counter() - t0)
    n = len(sl) * size
    names = list(layouts)
    delta = (outs[names[0]] - outs[names[1]]).abs().max().item() if len(names) > 1 else 0.0
    return {k: n / statistics.median(t) for k, t in times.items()}, delta


def time_training(tagger: JetTagger, jets, size: int, layouts: dict[str, int], steps: int):
    """Median jets/s of a training step (forward + backward + AdamW step) per layout, each from the same
    initial weights on the same batches."""
    x, v, mask, y = jets
    sl = batches(len(mask), size)
    models = {k: copy.deepcopy(tagger).train() for k in layouts}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    for k, g in layouts.items():
        models[k].backbone.group_jets = g
    times: dict[str, list[float]] = {k: [] for k in layouts}
    for step in range(steps + 1):  # the first step warms up (allocator, AdamW state)
        s = sl[step % len(sl)]
        for k, m in models.items():
            torch.manual_seed(step)
            t0 = time.perf_counter()
            opts[k].zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(m(x[s], v[s], mask[s])[:, 0], y[s])
            loss.backward()
            opts[k].step()
            if step:
                times[k].append(time.perf_counter() - t0)
    return {k: size / statistics.median(t) for k, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None, help="skimmed dataset.h5 (default: make a small one)")
    ap.add_argument("--backbone", default=None, help="tagger checkpoint (default: random, config.yaml model)")
    ap.add_argument("--group-jets", default="32", help="comma-separated group sizes to time (first: reported)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="inference passes per layout (median)")
    ap.add_argument("--steps", type=int, default=6, help="timed training steps per layout (median)")
    ap.add_argument("--events-per-sample", type=int, default=150, help="size of the made dataset")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.dataset:
        dataset = Path(args.dataset)
    else:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from heads_speed import make_dataset

        dataset = make_dataset(Path(tempfile.mkdtemp(prefix="part_grouping_")), args.events_per_sample)
    if args.backbone:
        tagger = JetTagger(load_tagger(args.backbone)[0].backbone, "xbb")
    else:
        torch.manual_seed(0)
        tagger = build_tagger(yaml.safe_load((ROOT / "config.yaml").read_text()).get("model") or {}, "xbb")
    groups = [int(g) for g in args.group_jets.split(",")]
    layouts = {"ungrouped": 0, **{f"group_jets={g}": g for g in groups}}
    jets = load_jets(dataset, 2048)
    n = jets[2].sum(1).double()
    P = jets[2].shape[1]
    print(f"dataset {dataset}: {len(n)} jets (row order), mean multiplicity {n.mean():.1f}, E[n^2] "
          f"{n.square().mean():.0f} vs P^2 = {P * P}; model {tagger.backbone.config['embed_dims']} x "
          f"{len(tagger.backbone.blocks)}+{len(tagger.backbone.cls_blocks)} blocks; "
          f"{torch.get_num_threads()} thread(s)")
    for size in (256, 1024):
        work = [attention_work(jets[2][s], groups[0]) for s in batches(len(n), size)]
        print(f"  batch {size}: padded attention work grouped / ungrouped = "
              f"{sum(w[0] for w in work) / sum(w[1] for w in work):.3f} (group_jets={groups[0]})")
    ref = "ungrouped"
    for size in (256, 1024):
        rates, delta = time_inference(tagger, jets, size, layouts, args.repeats)
        print(f"inference, batch {size:4d}: " + ", ".join(
            f"{k} {r:7.1f} jets/s ({r / rates[ref]:.2f}x)" for k, r in rates.items())
            + f"; max |delta output| {delta:.1e}")
    rates = time_training(tagger, jets, 256, layouts, args.steps)
    print("training step, batch  256: " + ", ".join(
        f"{k} {r:7.1f} jets/s ({r / rates[ref]:.2f}x)" for k, r in rates.items())
        + f" (dropout {tagger.backbone.config['dropout']})")


if __name__ == "__main__":
    main()
