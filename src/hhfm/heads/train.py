"""`hhfm train-head`: train one event head (model x fraction x seed) on the shared training engine.

Outputs in `--outdir` (hhfm.layout: HEAD_SCORES, HEAD_VAL_SCORES, HEAD_HISTORY, HEAD_RUN_JSON):
`scores.parquet` (test events), `val_scores.parquet` (the run's validation events, for choices that
must not see the test events, e.g. limit binning), `metrics.csv` (per epoch), `run.json` (run
summary, wall time, device), and the resumable `checkpoint.pt`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hhfm import config, layout, model_names
from hhfm.config import Section
from hhfm.errors import ConfigError
from hhfm.heads.data import HeadData
from hhfm.heads.model import STANDARD, save_event_model
from hhfm.heads.task import HeadTask, build_model
from hhfm.metrics import validation_metrics
from hhfm.training import FitSettings, Schedule, device_name, distributed, fingerprint, fit, resolve_device
from hhfm.training.stream import StreamSettings, resolve_workers

log = logging.getLogger("hhfm.heads")
SECTIONS = ["seed", "heads"]
#: keys of the `heads` section that select runs or inputs, not how one run trains (never in a fingerprint)
RUN_LIST_KEYS = ("models", "fractions", "seeds", "backbone_task")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help="JSON {'seed': N, 'heads': {...}}: the tracked config")
    parser.add_argument("--runtime", default=None, help="JSON of runtime-only keys, e.g. {'heads': {'device': 'cpu'}}")
    parser.add_argument("--model", required=True,
                        help="standard or {score,embedding,embedding_only}-{frozen,finetuned,scratch}[@backbone], "
                             "either with an optional +weighted (physical event weights; hhfm.model_names)")
    parser.add_argument("--fraction", type=float, required=True, help="training-data fraction in (0, 1]")
    parser.add_argument("--seed", type=int, required=True, help="repeat seed of this run")
    parser.add_argument("--dataset", required=True, help="results/skim/dataset.h5")
    parser.add_argument("--backbone", default=None, help="pretrained backbone.pt (finetuned, scratch: its config)")
    parser.add_argument("--embeddings", default=None, help="embeddings.h5 of the frozen backbone (frozen strategies)")
    parser.add_argument("--outdir", required=True, help="the run directory (hhfm.layout.HEAD_RUN)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--stop-after", type=int, default=0, metavar="EPOCHS",
                        help="leave after this many epochs in this invocation (resumable; tests)")


def _check_args(args: argparse.Namespace, representation: str, strategy: str) -> bool:
    """Validate the run's arguments; True when the head trains on cached inputs (standard, frozen + cache)."""
    if not 0 < args.fraction <= 1:
        raise ConfigError(f"--fraction must be in (0, 1], got {args.fraction}")
    if strategy == "frozen" and representation != STANDARD and args.embeddings is None and args.backbone is None:
        raise ConfigError(f"model {args.model}: frozen strategy needs --embeddings (or --backbone to run it in the loop)")
    return representation == STANDARD or (strategy == "frozen" and args.embeddings is not None)


def run_fingerprint(cfg: Section, args: argparse.Namespace, use_cache: bool) -> str:
    """One run's identity: tracked heads params (without the run lists), the run's coordinates, its inputs."""
    tracked = config.tracked(cfg.to_dict())
    tracked["heads"] = {k: v for k, v in tracked["heads"].items() if k not in RUN_LIST_KEYS}
    params = {**tracked, "model": args.model, "fraction": args.fraction, "run_seed": args.seed}
    return fingerprint(params, [args.dataset, args.backbone, args.embeddings if use_cache else None])


def run(args: argparse.Namespace) -> None:
    from hhfm.io import setup_logging

    setup_logging(level=logging.INFO if distributed.ranks_from_env().main else logging.WARNING)
    t_start = time.perf_counter()
    cfg = config.load(args.config, args.runtime, sections=SECTIONS)
    params = cfg.heads
    representation, strategy, _, weighted = model_names.parse(args.model)
    use_cache = _check_args(args, representation, strategy)
    if use_cache:  # a small MLP on fixed inputs: intra-op threads only add synchronisation (60x slower measured)
        torch.set_num_threads(1)
    elif args.threads:
        torch.set_num_threads(args.threads)
    device, outdir = resolve_device(params.device), Path(args.outdir)
    ranks = distributed.init(device)
    stream = StreamSettings(int(params.stream.chunk_events), int(params.stream.window_chunks),
                            resolve_workers(int(params.loader_workers), device))
    data = HeadData(args.dataset, args.fraction, params, representation,
                    embeddings=args.embeddings if use_cache else None, constituents=not use_cache, weighted=weighted)
    seed_key = [int(cfg.seed), int(args.seed)]
    model = build_model(representation, strategy, params, seed_key, data.rep.shape[1] if use_cache else None,
                        args.backbone).to(device)
    task = HeadTask(model, data, strategy, params, seed_key, device, stream)
    max_epochs = params.max_epochs_backbone if task.trains_backbone else params.max_epochs
    log.info("%s f=%g s=%d on %s, %d rank(s): %d trainable parameters, %s", args.model, args.fraction, args.seed,
             device, ranks.world, task.n_trainable,
             "event weights (+weighted)" if task.weighted else f"pos_weight {task.pos_weight:.3f}")
    settings = FitSettings(max_epochs=max_epochs, patience=params.patience, desc=args.model,
                           schedule=Schedule("epoch", 0, params.lr_decay_start, 0.01))
    result = fit(task, settings, outdir, run_fingerprint(cfg, args, use_cache), args.stop_after)
    if result.done:
        write_outputs(task, args, representation, strategy, result.state, result.elapsed_before,
                      time.perf_counter() - t_start)
    distributed.shutdown()  # not on errors: the failing rank exits, and the launcher stops the others


def score_table(task: HeadTask, split: str) -> pd.DataFrame:
    """The events of a split with the best model's logit (float64, no saturation) and sigmoid score."""
    events = task.data.splits[split]
    logit = task.predict(split).astype(np.float64)
    return pd.DataFrame({"event": events.rows.astype(np.int64), "logit": logit,
                         "score": (1.0 / (1.0 + np.exp(-logit))).astype(np.float32),
                         "label": events.label.astype(np.int8), "mass": events.mass, "weight": events.weight,
                         "sdmass_j1": events.sdmass[:, 0], "sdmass_j2": events.sdmass[:, 1]})[layout.SCORE_COLUMNS]


def _compute(task: HeadTask, args: argparse.Namespace, strategy: str, state: dict) -> dict:
    """run.json's compute fields: this run's FLOPs (for a head on a cache, plus the embedding pass over its
    training and validation jets) and, for a pretrained backbone, the pretraining run's own record."""
    from hhfm.models import load_tagger
    from hhfm.training.compute import backbone_record

    flops, pre, backbone_task = float(state.get("train_flops", 0.0)), backbone_record({}), None
    if args.backbone is not None:
        tagger, meta = load_tagger(args.backbone)
        backbone_task = meta.get("backbone", tagger.task)  # hhfm.backbones name (older checkpoints: objective)
        if task.model.tagger is None:  # frozen on a cache: the embed rule's forward pass over this run's jets
            flops += task.tagger_flops("train", tagger) + task.tagger_flops("val", tagger)
        if strategy != "scratch":
            pre = backbone_record(meta)
    return {"backbone_task": backbone_task, "n_ranks": distributed.current().world, "train_flops": flops,
            "pretrain_flops": pre["train_flops"], "pretrain_wall_time_s": pre["wall_time_s"]}


def write_outputs(task: HeadTask, args: argparse.Namespace, representation: str, strategy: str, state: dict,
                  elapsed_before: float, session_s: float) -> None:
    """Test scores (scores.parquet), model.pt, run.json; the model holds the best weights."""
    outdir, test = Path(args.outdir), task.data.splits["test"]
    frames = {split: score_table(task, split) for split in ("test", "val")}  # all ranks: they share the events
    if not distributed.current().main:
        return
    layout.write_table(frames["test"], outdir / "scores.parquet")
    layout.write_table(frames["val"], outdir / "val_scores.parquet")
    save_event_model(outdir / "model.pt", task.model, args.model)
    score = frames["test"]["score"].to_numpy()
    layout.write_run(outdir / "run.json", {
        "model": args.model, "representation": "fj_doubleb" if representation == STANDARD else representation,
        "strategy": strategy, "weighted": task.weighted, "fraction": args.fraction, "seed": args.seed,
        "n_train_events": len(task.data.splits["train"]), "n_val_events": len(task.data.splits["val"]),
        "n_test_events": len(test), "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
        "wall_time_s": round(elapsed_before + session_s, 3),  # every session of this run, setup and scoring included
        "device": device_name(task.device), "n_params_trainable": task.n_trainable,
        "backbone": None if representation == STANDARD else args.backbone,
        **_compute(task, args, strategy, state),
    })
    log.info("done: best epoch %d, val loss %.4f, test AUC %.4f", state["best_epoch"], state["best_val"],
             validation_metrics(score, test.label)["auc"])
