"""bf16 autocast vs fp32: agreement of a trained backbone's outputs and of its AUC on the same jets.

    python benchmarks/bf16_agreement.py --backbone results/pretrain/xbb/backbone.pt --dataset results/skim/dataset.h5

Runs the tagger over the labelled test jets twice, in fp32 and under bf16 autocast (what training
and inference use on CUDA, hhfm.training.autocast), and prints the largest and mean absolute
difference of the embeddings (relative to their scale) and of the Xbb scores, and the test AUC of
both next to each other. On CPU the bf16 run uses CPU autocast, only to exercise the script.
Reference: the fp32 figures of the same run; a difference in AUC well below its statistical error
(printed) means bf16 changes nothing a user would see.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def outputs(tagger, split, device: torch.device, bf16: bool, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N, D) and scores (N,) of a JetSplit, in row order."""
    from hhfm.heads.model import jet_outputs
    from hhfm.training.stream import StreamSettings

    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    embs, scores = [], []
    with torch.no_grad(), ctx:
        for b in split.batches(batch, StreamSettings()):
            e, s = jet_outputs(tagger, b["x"].to(device), b["v"].to(device), b["mask"].to(device))
            embs.append(e.float().cpu().numpy())
            scores.append(s.float().cpu().numpy())
    return np.concatenate(embs), np.concatenate(scores)


def main(argv: list[str] | None = None) -> int:
    from hhfm.metrics import auc
    from hhfm.models import load_tagger
    from hhfm.pretrain.data import load_split, signal_of
    from hhfm.training import resolve_device

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="results/pretrain/xbb/backbone.pt")
    ap.add_argument("--dataset", default="results/skim/dataset.h5")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    tagger, _ = load_tagger(args.backbone)
    tagger = tagger.to(device).eval()
    split = load_split(args.dataset, "test", tagger.task)
    y = signal_of(split.cols, tagger.task).numpy()
    e32, s32 = outputs(tagger, split, device, False, args.batch)
    e16, s16 = outputs(tagger, split, device, True, args.batch)
    scale = float(np.abs(e32).mean())
    a32, a16 = auc(s32, y), auc(s16, y)
    n_s, n_b = int(y.sum()), int(len(y) - y.sum())
    q1, q2 = a32 / (2 - a32), 2 * a32**2 / (1 + a32)  # Hanley-McNeil standard error of an AUC
    err = float(np.sqrt((a32 * (1 - a32) + (n_s - 1) * (q1 - a32**2) + (n_b - 1) * (q2 - a32**2)) / max(n_s * n_b, 1)))
    print(f"device {device}; {len(y)} test jets ({n_s} signal), embedding dim {e32.shape[1]}")
    print(f"embedding |bf16 - fp32|: max {np.abs(e16 - e32).max() / scale:.4f}, mean {np.abs(e16 - e32).mean() / scale:.5f}"
          f" (relative to the mean |fp32| {scale:.3f})")
    print(f"score     |bf16 - fp32|: max {np.abs(s16 - s32).max():.5f}, mean {np.abs(s16 - s32).mean():.6f}")
    print(f"test AUC: bf16 {a16:.5f}  fp32 (reference) {a32:.5f}  difference {a16 - a32:+.5f}"
          f" (statistical error of one AUC {err:.5f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
