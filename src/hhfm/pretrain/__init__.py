"""Stage `pretrain`: train a jet backbone (hhfm.backbones) and write its checkpoint, metrics and test scores.

    hhfm pretrain --config '{"seed": N, "pretrain": {...}, "model": {...}}' [--runtime '{"pretrain": {"device": "auto"}}'] \
        --dataset TRAINING.h5 --outdir results/pretrain/{task} [--score-dataset results/skim/dataset.h5] \
        [--init results/pretrain/{init}/backbone.pt] [--threads N] [--stop-after EPOCHS]
    hhfm pretrain --config ... --published pretrained/ParticleNet_JetClass_full.pt --score-dataset ... --outdir ...

pretrain.task names the backbone (hhfm.backbones): its objective is `xbb` (H->bb vs QCD, one logit, BCE),
`multiclass` (features.JET_CLASSES, softmax CE), `multilabel` (the classes plus regression of
features.REGRESSION_TARGETS, after Ho et al.) or `jetclass` (the ten JETCLASS_CLASSES on a JetClass-format
dataset); `--init` starts from another backbone's weights (the JetClass -> Xbb chain), `--published` wraps
published weights without training. The epoch loop, LR schedule (linear warm-up, flat to `flat_fraction`
of all steps, linear decay to 0), early stopping, best weights and resume (`checkpoint.pt`) are the
shared engine's (hhfm.training). Outputs (hhfm.layout): backbone.pt (best weights, loadable with
hhfm.models.load_tagger), metrics.csv (per epoch) and jet_scores.parquet (the labelled test jets of
--score-dataset, the analysis dataset: for a JetClass tagger its zero-shot H->bb score).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hhfm import backbones, config
from hhfm.config import Section
from hhfm.errors import ConfigError
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


def train(cfg: Section, dataset: str, outdir: Path, stop_after: int = 0, init: str | None = None,
          score_dataset: str | None = None) -> bool:
    """Train (or resume) and write the outputs; False if stopped by `stop_after` before the end."""
    p, t_start = cfg.pretrain, time.perf_counter()
    objective = backbones.get(p.task).objective
    device = resolve_device(p.device)
    ranks = distributed.init(device)
    stream = stream_settings(p, device)
    train_d = load_split(dataset, "train", objective, p.max_train_jets, int(cfg.seed))
    val_d = load_split(dataset, "val", objective)
    task = PretrainTask(cfg, train_d, val_d, device, stream, objective, init)
    log.info("backbone %s (objective %s%s): %d train, %d val jets (%d / %d H->bb), device %s, %d rank(s), %d loader "
             "workers; model %d parameters, config %s", p.task, objective, f", from {init}" if init else "",
             len(train_d), len(val_d), int(signal_of(train_d.cols, objective).sum()), int(task.sig_val.sum()), device,
             ranks.world, stream.workers, sum(t.numel() for t in task.model.parameters()), task.model.backbone.config)
    settings = FitSettings(max_epochs=p.epochs, patience=p.patience, desc=f"pretrain {p.task}",
                           schedule=Schedule("step", p.warmup_steps, p.flat_fraction, 0.0),
                           steps_per_epoch=n_batches(len(train_d), p.batch_size, stream, ranks.world))
    fp = fingerprint(config.tracked(cfg.to_dict()), [dataset, init, score_dataset])
    result = fit(task, settings, Path(outdir), fp, stop_after)
    if result.done:
        wall = result.elapsed_before + time.perf_counter() - t_start
        finalise(task, cfg, dataset, score_dataset or dataset, Path(outdir), result.state, wall, init)
    return result.done


def finalise(task: PretrainTask, cfg: Section, dataset: str, score_dataset: str, outdir: Path, state: dict,
             wall: float, init: str | None = None) -> None:
    """Best weights -> backbone.pt; labelled test jets of `score_dataset` -> jet_scores.parquet; metrics.csv.

    `wall`: seconds of every session of this run (resumed ones too), setup and test scoring included.
    The checkpoint's compute record adds the `init` backbone's own (pretraining cost of the whole chain).
    """
    from hhfm.models import load_tagger, save_tagger
    from hhfm.training.compute import backbone_record

    own_test = load_split(dataset, "test", task.task)
    own_loss, own_scores = task.predict(own_test)  # all ranks: they share the windows
    other = score_dataset != dataset
    score_d = load_split(score_dataset, "test", "xbb") if other else own_test
    scores = task.predict(score_d, with_loss=False)[1] if other else own_scores
    if not distributed.current().main:
        return
    write_jet_scores(score_d, scores, outdir / "jet_scores.parquet")
    flops, seconds = state.get("train_flops", 0.0), wall
    if init is not None:
        before = backbone_record(load_tagger(init)[1])
        flops, seconds = flops + (before["train_flops"] or 0.0), seconds + (before["wall_time_s"] or 0.0)
    meta = {"task": task.task, "backbone": cfg.pretrain.task, "init": init, "params": cfg.to_dict(),
            "best_epoch": state["best_epoch"], "best_val_loss": state["best_val"], "epochs_run": state["epoch"],
            "early_stopped": state["early_stopped"], "n_train_jets": len(task.train_d), "n_val_jets": len(task.val_d),
            "n_test_jets": len(score_d), "test_auc": validation_metrics(scores, signal_of(score_d.cols, "xbb"
                                                                                           if other else task.task).numpy())["auc"],
            "own_test_auc": validation_metrics(own_scores, signal_of(own_test.cols, task.task).numpy())["auc"],
            "own_test_loss": own_loss, "device": str(task.device), "dataset": str(dataset),
            "score_dataset": str(score_dataset), **task.loss_fn.meta,
            "compute": record(flops, seconds, distributed.current().world, device_name(task.device))}
    save_tagger(outdir / "backbone.pt", task.model.cpu(), meta)
    write_history(outdir / "metrics.csv", state["history"])
    log.info("wrote %s (best epoch %d, test AUC %.4f on %s, %.0f s)", outdir / "backbone.pt", state["best_epoch"],
             meta["test_auc"], score_dataset, wall)


def write_jet_scores(data, scores: np.ndarray, path: Path) -> None:
    """jet_scores.parquet (layout.JET_SCORE_COLUMNS) of a split's jets and their H->bb scores."""
    cols = data.cols
    frame = pd.DataFrame({"jet": data.rows, "score": scores.astype(np.float32),
                          "label_xbb": cols["label_xbb"].numpy().astype(np.int8),
                          "label_class": cols["label_class"].numpy().astype(np.int8),
                          **{c: cols[c].numpy().astype(np.float32) for c in JET_INFO}})[JET_SCORE_COLUMNS]
    write_table(frame, path)


def import_published(cfg: Section, weights: str, score_dataset: str, outdir: Path) -> None:
    """A published backbone (no training here): backbone.pt in our format with its provenance, its zero-shot
    H->bb scores of the analysis test jets (jet_scores.parquet) and an empty metrics.csv."""
    import hashlib

    from hhfm.models import load_published_particlenet, save_tagger
    from hhfm.pretrain.task import predict_scores

    p = cfg.pretrain
    device = resolve_device(p.device)
    tagger = load_published_particlenet(weights).to(device)
    test = load_split(score_dataset, "test", "xbb")
    _, scores = predict_scores(tagger, tagger, test, device, int(p.eval_batch_size), stream_settings(p, device))
    test_auc = validation_metrics(scores, signal_of(test.cols, "xbb").numpy())["auc"]
    write_jet_scores(test, scores, outdir / "jet_scores.parquet")
    meta = {"task": tagger.task, "backbone": p.task, "published": str(weights),
            "sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest(), "n_test_jets": len(test),
            "test_auc": test_auc, "score_dataset": str(score_dataset), "device": str(device),
            "compute": {"train_flops": None, "wall_time_s": None, "n_ranks": None, "device": None}}
    save_tagger(outdir / "backbone.pt", tagger.cpu(), meta)
    write_history(outdir / "metrics.csv", [])
    log.info("wrote %s (published %s, zero-shot test AUC %.4f on %d jets of %s)", outdir / "backbone.pt", weights,
             test_auc, len(test), score_dataset)


def stream_settings(p: Section, device: torch.device) -> StreamSettings:
    """How pretraining reads its jets: `stream` (chunking and shuffle window), `loader_workers` (runtime)."""
    return StreamSettings(int(p.stream.chunk_jets), int(p.stream.window_chunks),
                          resolve_workers(int(p.loader_workers), device))


# -------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="JSON: {'seed', 'pretrain': {...}, 'model': {...}} (tracked)")
    parser.add_argument("--runtime", default=None, help="JSON: runtime-only keys, e.g. {'pretrain': {'device': 'cpu'}}")
    parser.add_argument("--dataset", default=None, help="training dataset (results/skim/dataset.h5 or the JetClass one)")
    parser.add_argument("--score-dataset", default=None,
                        help="dataset whose labelled test jets are scored into jet_scores.parquet (default: --dataset)")
    parser.add_argument("--init", default=None, help="backbone.pt whose backbone the training starts from (a chain)")
    parser.add_argument("--published", default=None, help="published weights to wrap instead of training")
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
    b = backbones.get(cfg.pretrain.task)
    if b.published is not None:
        if not (args.published and args.score_dataset):
            raise ConfigError(f"backbone {b.name!r} is published: pass --published WEIGHTS and --score-dataset")
        import_published(cfg, args.published, args.score_dataset, Path(args.outdir))
        return
    if not args.dataset:
        raise ConfigError(f"backbone {b.name!r} trains: pass --dataset")
    if (args.init is None) != (b.init is None):
        raise ConfigError(f"backbone {b.name!r} " + (f"starts from {b.init!r}: pass --init" if b.init else
                                                     "starts from random weights: --init is not allowed"))
    train(cfg, args.dataset, Path(args.outdir), stop_after=args.stop_after, init=args.init,
          score_dataset=args.score_dataset)
    distributed.shutdown()  # not on errors: the failing rank exits, and the launcher stops the others
