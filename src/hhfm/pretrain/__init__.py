"""Stage `pretrain`: train the ParT backbone on a jet task and write its checkpoint, metrics and test scores.

    hhfm pretrain --config '{"seed": N, "pretrain": {...}, "model": {...}}' [--runtime '{"pretrain": {"device": "auto"}}'] \
        --dataset results/skim/dataset.h5 --outdir results/pretrain/{task} [--threads N] [--stop-after EPOCHS]

Tasks (pretrain.task): `xbb` (H->bb vs QCD, one logit, BCE), `multiclass` (features.JET_CLASSES, softmax
CE), `multilabel` (the classes plus regression of features.REGRESSION_TARGETS, after Ho et al.). The
epoch loop, LR schedule (linear warm-up, flat to `flat_fraction` of all steps, linear decay to 0),
early stopping, best weights and resume (`checkpoint.pt`) are the shared engine's (hhfm.training).
Outputs (hhfm.layout): backbone.pt (best weights, loadable with hhfm.models.load_tagger),
metrics.csv (per epoch) and jet_scores.parquet (labelled test jets).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hhfm import config
from hhfm.config import Section
from hhfm.layout import JET_SCORE_COLUMNS, write_table
from hhfm.metrics import validation_metrics
from hhfm.pretrain.data import JET_INFO, load_split, signal_of
from hhfm.pretrain.task import PretrainTask
from hhfm.training import FitSettings, Schedule, device_name, distributed, fingerprint, fit, resolve_device
from hhfm.training.compute import record
from hhfm.training.engine import write_history
from hhfm.training.stream import StreamSettings, n_batches, resolve_workers

log = logging.getLogger("hhfm.pretrain")
SECTIONS = ["seed", "pretrain", "model"]


def train(cfg: Section, dataset: str, outdir: Path, stop_after: int = 0) -> bool:
    """Train (or resume) and write the outputs; False if stopped by `stop_after` before the end."""
    p, t_start = cfg.pretrain, time.perf_counter()
    device = resolve_device(p.device)
    ranks = distributed.init(device)
    stream = stream_settings(p, device)
    train_d = load_split(dataset, "train", p.task, p.max_train_jets, int(cfg.seed))
    val_d = load_split(dataset, "val", p.task)
    task = PretrainTask(cfg, train_d, val_d, device, stream)
    log.info("task %s: %d train, %d val jets (%d / %d H->bb), device %s, %d rank(s), %d loader workers; model %d "
             "parameters, config %s", p.task, len(train_d), len(val_d), int(signal_of(train_d.cols, p.task).sum()),
             int(task.sig_val.sum()), device, ranks.world, stream.workers,
             sum(t.numel() for t in task.model.parameters()), cfg.model.to_dict())
    settings = FitSettings(max_epochs=p.epochs, patience=p.patience, desc=f"pretrain {p.task}",
                           schedule=Schedule("step", p.warmup_steps, p.flat_fraction, 0.0),
                           steps_per_epoch=n_batches(len(train_d), p.batch_size, stream, ranks.world))
    fp = fingerprint(config.tracked(cfg.to_dict()), [dataset])
    result = fit(task, settings, Path(outdir), fp, stop_after)
    if result.done:
        finalise(task, cfg, dataset, Path(outdir), result.state, result.elapsed_before + time.perf_counter() - t_start)
    return result.done


def finalise(task: PretrainTask, cfg: Section, dataset: str, outdir: Path, state: dict, wall: float) -> None:
    """Best weights -> backbone.pt; test-split scores -> jet_scores.parquet; metrics.csv (written by rank 0).

    `wall`: seconds of every session of this run (resumed ones too), setup and test scoring included.
    """
    from hhfm.models import save_tagger

    name = task.task
    test_d = load_split(dataset, "test", name)
    _, scores = task.predict(test_d)  # all ranks: they share the windows
    if not distributed.current().main:
        return
    cols = test_d.cols
    frame = pd.DataFrame({"jet": test_d.rows, "score": scores.astype(np.float32),
                          "label_xbb": cols["label_xbb"].numpy().astype(np.int8),
                          "label_class": cols["label_class"].numpy().astype(np.int8),
                          **{c: cols[c].numpy().astype(np.float32) for c in JET_INFO}})[JET_SCORE_COLUMNS]
    write_table(frame, outdir / "jet_scores.parquet")
    test_auc = validation_metrics(scores, signal_of(cols, name).numpy())["auc"]
    meta = {"task": name, "params": cfg.to_dict(), "best_epoch": state["best_epoch"],
            "best_val_loss": state["best_val"], "epochs_run": state["epoch"], "early_stopped": state["early_stopped"],
            "n_train_jets": len(task.train_d), "n_val_jets": len(task.val_d), "n_test_jets": len(frame),
            "test_auc": test_auc, "device": str(task.device), "dataset": str(dataset), **task.loss_fn.meta,
            "compute": record(state.get("train_flops", 0.0), wall, distributed.current().world, device_name(task.device))}
    save_tagger(outdir / "backbone.pt", task.model.cpu(), meta)
    write_history(outdir / "metrics.csv", state["history"])
    log.info("wrote %s (best epoch %d, test AUC %.4f, %.0f s)", outdir / "backbone.pt", state["best_epoch"], test_auc, wall)


def stream_settings(p: Section, device: torch.device) -> StreamSettings:
    """How pretraining reads its jets: `stream` (chunking and shuffle window), `loader_workers` (runtime)."""
    return StreamSettings(int(p.stream.chunk_jets), int(p.stream.window_chunks),
                          resolve_workers(int(p.loader_workers), device))


# -------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="JSON: {'seed', 'pretrain': {...}, 'model': {...}} (tracked)")
    parser.add_argument("--runtime", default=None, help="JSON: runtime-only keys, e.g. {'pretrain': {'device': 'cpu'}}")
    parser.add_argument("--dataset", required=True, help="skimmed dataset (results/skim/dataset.h5)")
    parser.add_argument("--outdir", required=True, help="output directory (results/pretrain/{task})")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--stop-after", type=int, default=0, metavar="EPOCHS",
                        help="leave after this many epochs in this invocation (resumable; job chaining / tests)")


def run(args: argparse.Namespace) -> None:
    from hhfm.io import setup_logging

    setup_logging(level=logging.INFO if distributed.ranks_from_env().main else logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config.load(args.config, args.runtime, sections=SECTIONS)
    train(cfg, args.dataset, Path(args.outdir), stop_after=args.stop_after)
    distributed.shutdown()  # not on errors: the failing rank exits, and the launcher stops the others
