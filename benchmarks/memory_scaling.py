"""Peak memory of pretraining vs dataset size, and streaming vs in-memory loading throughput.

    python benchmarks/memory_scaling.py [--jets 16000] [--steps 40] [--batch 64] [--model laptop|full]

Writes a dataset.h5 of `--jets` synthetic jets (100 particle slots, 10-100 real) and one 4x larger
(the same jets four times), then runs, each in a fresh process, `--steps` pretraining steps of the
laptop-scale (--model full: the paper's) ParT (hhfm.pretrain.task.PretrainTask: same model, loss, optimiser) with
  - stream: the jets read window by window from the file (hhfm.training.stream, what pretraining does),
  - memory: the whole train split read into tensors first, then random batches (the loading before
    streaming existed),
and prints peak RSS (VmHWM) and jets/s (steps only, and including the load) side by side.
Targets: streaming peak RSS on the 4x dataset at most 1.2x that on 1x; streaming throughput at least
0.9x in-memory loading's on the same data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
import numpy as np, torch
sys.path.insert(0, {src!r})
from hhfm import config
from hhfm.dataset import open_dataset, read_rows
from hhfm.models import trim_to_longest
from hhfm.pretrain.data import load_split
from hhfm.pretrain.task import PretrainTask
from hhfm.training.stream import StreamSettings

def peak_mb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024

mode, path, steps, bs, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
torch.set_num_threads(1)
cfg = config.load({{"seed": 1, "pretrain": {{"batch_size": bs}}, "model": model}}, {{}}, ["seed", "pretrain", "model"])
stream = StreamSettings(1024, 16, 0)
t0 = time.perf_counter()
train, val = load_split(path, "train", "xbb"), load_split(path, "val", "xbb")
task = PretrainTask(cfg, train, val, torch.device("cpu"), stream)
if mode == "stream":
    batches = task.batches(1)
else:  # the whole split in memory, as before streaming
    with open_dataset(path) as f:
        big = {{k: torch.from_numpy(read_rows(f["jets"][k], train.rows)) for k in ("features", "vectors", "mask")}}
    def in_memory():
        for idx in torch.randperm(len(train), generator=torch.Generator().manual_seed(1)).split(bs):
            x, v, m = trim_to_longest(big["features"][idx], big["vectors"][idx], big["mask"][idx])
            yield {{"x": x, "v": v, "mask": m, "pos": idx, **{{k: c[idx] for k, c in train.cols.items()}}}}
    batches = in_memory()
t_load = time.perf_counter() - t0
task.model.train()
t1, n = time.perf_counter(), 0
for i, batch in enumerate(batches):
    if i == steps:
        break
    loss, k = task.loss(batch)
    task.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    task.optimizer.step()
    n += k
t_steps = time.perf_counter() - t1
print(json.dumps({{"peak_mb": peak_mb(), "jets": n, "t_steps": t_steps, "t_load": t_load}}))
"""


def write(path: Path, jets: int, copies: int, seed: int = 0) -> None:
    """A dataset.h5 with `copies` x `jets` synthetic labelled jets (80/10/10 % train/val/test), block by block."""
    import h5py

    rng = np.random.default_rng(seed)
    P = 100
    n_real = rng.integers(10, P + 1, jets)
    mask = np.arange(P)[None, :] < n_real[:, None]
    features = (rng.normal(size=(jets, P, 17)) * mask[..., None]).astype(np.float32)
    vectors = (np.abs(rng.normal(size=(jets, P, 4))) * mask[..., None]).astype(np.float32)
    small = {"label_xbb": rng.integers(0, 2, jets).astype(np.int8), "in_window": np.ones(jets, bool),
             "split": rng.choice([0, 1, 2], jets, p=[0.8, 0.1, 0.1]).astype(np.int8),
             "fj_doubleb": rng.uniform(-1, 1, jets).astype(np.float32),
             "fj_pt": rng.uniform(300, 2000, jets).astype(np.float32),
             "fj_sdmass": rng.uniform(40, 200, jets).astype(np.float32)}
    small["label_class"] = np.where(small["label_xbb"] == 1, 0, 7).astype(np.int8)
    arrays = {"features": features, "vectors": vectors, "mask": mask, **small}
    with h5py.File(path, "w") as f:
        g = f.create_group("jets")
        for name, a in arrays.items():
            d = g.create_dataset(name, shape=(jets * copies,) + a.shape[1:], dtype=a.dtype,
                                 chunks=(1024,) + a.shape[1:], compression="lzf")
            for c in range(copies):
                d[c * jets:(c + 1) * jets] = a
        f.create_group("events").create_dataset("split", data=np.zeros(0, np.int8))
        f.attrs["skim_params"] = json.dumps({"window_applies_to": "pretraining"})


#: --model: the laptop-scale ParT (config.yaml) or the full-size one (schema defaults, configs/paper.yaml)
MODELS = {"laptop": {"embed_dims": [64, 128, 64], "pair_embed_dims": [32, 32], "num_heads": 4, "num_layers": 3,
                     "num_cls_layers": 1},
          "full": {}}


def measure(mode: str, path: Path, steps: int, batch: int, model: str = "laptop") -> dict:
    code = WORKER.format(src=str(ROOT / "src"))
    argv = [sys.executable, "-c", code, mode, str(path), str(steps), str(batch), json.dumps(MODELS[model])]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jets", type=int, default=16000, help="jets of the 1x dataset")
    ap.add_argument("--steps", type=int, default=40, help="training steps measured")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--model", choices=sorted(MODELS), default="laptop", help="ParT size (full = the paper's)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memory_scaling_"))
    paths = {1: tmp / "x1.h5", 4: tmp / "x4.h5"}
    for copies, p in paths.items():
        write(p, args.jets, copies)
    res = {(mode, k): measure(mode, p, args.steps, args.batch, args.model) for k, p in paths.items() for mode in ("stream", "memory")}
    print(f"{args.steps} steps of {args.batch} jets, {args.model} ParT, 1 thread; datasets {args.jets} and "
          f"{4 * args.jets} jets ({paths[1].stat().st_size / 1e6:.0f} / {paths[4].stat().st_size / 1e6:.0f} MB)")
    print(f"{'mode':8} {'dataset':>8} {'peak RSS MB':>12} {'jets/s (steps)':>15} {'jets/s (with load)':>19}")
    for (mode, k), r in res.items():
        print(f"{mode:8} {k:>7}x {r['peak_mb']:12.0f} {r['jets'] / r['t_steps']:15.0f} "
              f"{r['jets'] / (r['t_steps'] + r['t_load']):19.0f}")
    ratio = res["stream", 4]["peak_mb"] / res["stream", 1]["peak_mb"]
    ref = res["memory", 4]["peak_mb"] / res["memory", 1]["peak_mb"]
    print(f"peak RSS 4x / 1x, streaming: {ratio:.2f}  (target <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'}); "
          f"in-memory loading: {ref:.2f}")
    s, m = res["stream", 1], res["memory", 1]
    tp = (s["jets"] / s["t_steps"]) / (m["jets"] / m["t_steps"])
    tp_load = (s["jets"] / (s["t_steps"] + s["t_load"])) / (m["jets"] / (m["t_steps"] + m["t_load"]))
    print(f"throughput streaming / in-memory (1x): {tp:.2f} steps only, {tp_load:.2f} with loading "
          f"(target >= 0.9: {'met' if tp >= 0.9 else 'NOT met'})")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
