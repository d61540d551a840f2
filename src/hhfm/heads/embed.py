"""Cache a frozen backbone's jet embeddings and Xbb scores, so frozen heads never rerun the backbone.

Output (`embeddings.h5`, rows = rows of /jets in the dataset):

    /embedding float32 (Nj, D)  backbone output (class-token embedding) per jet
    /score     float32 (Nj,)    the tagger's Xbb score in [0, 1]
    /valid     bool    (Nj,)    True for computed jets: every jet an event references (others are NaN)
    attrs: backbone (path), task, embed_dim, dataset (path), n_valid
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

from hhfm import config
from hhfm.dataset import open_dataset
from hhfm.errors import InputError
from hhfm.io import atomic_path, setup_logging
from hhfm.training import autocast, resolve_device

log = logging.getLogger("hhfm.embed")

#: rows of /jets read from the dataset at a time
BLOCK = 8192


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", default=None,
                        help="JSON {'heads': {'embed_batch_size': N, 'device': ...}}: runtime-only keys (nothing here changes results)")
    parser.add_argument("--dataset", required=True, help="results/skim/dataset.h5")
    parser.add_argument("--backbone", required=True, help="results/pretrain/{task}/backbone.pt")
    parser.add_argument("--output", required=True, help="results/embed/{task}/embeddings.h5")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def load_frozen_tagger(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The pretrained tagger in eval mode without gradients; a missing file raises InputError."""
    from hhfm.models import load_tagger

    if not Path(path).exists():
        raise InputError(f"{path}: backbone checkpoint does not exist (run the pretrain rule first)")
    tagger, meta = load_tagger(path)
    return tagger.to(device).eval().requires_grad_(False), meta


@torch.no_grad()
def embed_jets(tagger: torch.nn.Module, x: np.ndarray, v: np.ndarray, mask: np.ndarray, batch_size: int,
               device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N, D) and scores (N,) of jets x (N, P, F), v (N, P, 4), mask (N, P), in batches.

    Batches hold jets of similar multiplicity (sorted, then put back in row order): the backbone trims each
    batch to its longest jet, and padding does not change a jet's output, so this only saves time (2x for
    ParticleNet on CPU, whose k-NN and edge convolutions scale with the padded length)."""
    from hhfm.heads.model import jet_outputs

    order = np.argsort(np.asarray(mask).sum(1), kind="stable")
    embs, scores = [], []
    for i in range(0, len(x), batch_size):
        rows = np.sort(order[i : i + batch_size])  # sorted rows: h5py-friendly if x is a dataset
        xb, vb, mb = (torch.from_numpy(np.asarray(a[rows])).to(device) for a in (x, v, mask))
        with autocast(device):
            emb, score = jet_outputs(tagger, xb, vb, mb)
        embs.append(emb.float().cpu().numpy())
        scores.append(score.float().cpu().numpy())
    d = tagger.backbone.embed_dim
    if not embs:
        return np.empty((0, d), np.float32), np.empty(0, np.float32)
    back = np.empty(len(order), np.int64)
    back[np.concatenate([np.sort(order[i : i + batch_size]) for i in range(0, len(x), batch_size)])] = np.arange(len(order))
    return np.concatenate(embs)[back], np.concatenate(scores)[back]


def run(args: argparse.Namespace) -> None:
    setup_logging()
    heads = config.load({}, args.runtime, sections=["heads"]).heads
    batch_size = int(heads.embed_batch_size)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(heads.device)
    tagger, meta = load_frozen_tagger(args.backbone, device)
    d = tagger.backbone.embed_dim
    with open_dataset(args.dataset) as f:
        for name in ("features", "vectors", "mask"):
            if name not in f["jets"]:
                raise InputError(f"{args.dataset}: missing dataset /jets/{name}")
        n_jets = f["jets/mask"].shape[0]
        used = f["events/jets"][:].ravel()
        valid = np.zeros(n_jets, dtype=bool)
        valid[used[used >= 0]] = True
        log.info("embedding %d of %d jets on %s (D=%d)", valid.sum(), n_jets, device, d)
        with atomic_path(args.output) as tmp, h5py.File(tmp, "w") as out:
            chunk = (min(max(n_jets, 1), 1024),)
            emb_ds = out.create_dataset("embedding", (n_jets, d), np.float32, chunks=chunk + (d,), fillvalue=np.nan)
            score_ds = out.create_dataset("score", (n_jets,), np.float32, chunks=chunk, fillvalue=np.nan)
            out.create_dataset("valid", data=valid)
            for start in tqdm(range(0, n_jets, BLOCK), desc="embed", mininterval=5):
                stop = min(start + BLOCK, n_jets)
                sel = valid[start:stop]
                if not sel.any():
                    continue
                block = {k: f[f"jets/{k}"][start:stop][sel] for k in ("features", "vectors", "mask")}
                emb, score = embed_jets(tagger, block["features"], block["vectors"], block["mask"], batch_size, device)
                if not (np.isfinite(emb).all() and np.isfinite(score).all()):
                    raise InputError(f"{args.dataset}: backbone output is not finite for jets in rows {start}-{stop}")
                emb_block = np.full((stop - start, d), np.nan, np.float32)
                score_block = np.full(stop - start, np.nan, np.float32)
                emb_block[sel], score_block[sel] = emb, score
                emb_ds[start:stop], score_ds[start:stop] = emb_block, score_block
            out.attrs.update(backbone=str(args.backbone), dataset=str(args.dataset), embed_dim=d,
                             task=tagger.task, n_valid=int(valid.sum()), meta=json.dumps(meta, default=str))
    log.info("wrote %s", args.output)
