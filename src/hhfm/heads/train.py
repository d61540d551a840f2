"""Train one event head: model x fraction x seed; checkpoint each epoch, resume after a kill.

Outputs in `--outdir` (README "Files exchanged between heads, evaluation and limits"):
`checkpoint.pt` (resumable state and best weights), `metrics.csv` (per epoch), `scores.parquet`
(test events), `run.json` (run summary, wall time, device).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from hhfm.errors import ConfigError, InputError
from hhfm.heads.data import HeadData
from hhfm.heads.model import EventClassifier, build_head, parse_model
from hhfm.io import atomic_path, parse_params, setup_logging, write_json

log = logging.getLogger("hhfm.heads")

#: defaults of the `heads` config section (config.yaml and the schema hold the same values)
DEFAULTS: dict = {
    "backbone_task": None,
    "phi_width": 64,
    "phi_layers": 3,
    "rho_width": 64,
    "rho_layers": 3,
    "pool": "sum",
    "batch_size": 128,
    "eval_batch_size": 512,
    "max_epochs": 20,
    "max_epochs_backbone": 3,
    "min_events_per_epoch": 512,
    "patience": 4,
    "lr_head": 1e-3,
    "lr_backbone_finetuned": 1e-4,
    "lr_backbone_scratch": 1e-3,
    "weight_decay": 0.0,
    "lr_decay_start": 0.7,
    "class_weight": "balanced",
    "val_ratio": 0.25,
    "val_min_events": 200,
    "embed_batch_size": 256,
}

#: config keys that select runs, not how a run trains (excluded from the resume key)
RUN_LIST_KEYS = ("models", "fractions", "seeds")

METRIC_COLUMNS = ["epoch", "train_loss", "val_loss", "val_auc", "lr", "time_s"]
SCORE_COLUMNS = ["event", "score", "label", "mass", "weight", "sdmass_j1", "sdmass_j2"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="{}", help="the `heads` config section as JSON (plus `seed`)")
    parser.add_argument("--model", required=True, help="standard or {score,embedding,embedding_only}-{frozen,finetuned,scratch}")
    parser.add_argument("--fraction", type=float, required=True, help="training-data fraction in (0, 1]")
    parser.add_argument("--seed", type=int, required=True, help="repeat seed of this run")
    parser.add_argument("--dataset", required=True, help="results/skim/dataset.h5")
    parser.add_argument("--backbone", default=None, help="pretrained backbone.pt (finetuned, scratch: its config)")
    parser.add_argument("--embeddings", default=None, help="embeddings.h5 of the frozen backbone (frozen strategies)")
    parser.add_argument("--outdir", required=True, help="results/heads/{model}/f{fraction}_s{seed}")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--max-epochs", type=int, default=None, help="stop after this many epochs (testing resume)")


def resolve_params(raw: dict) -> dict:
    """The `heads` section with defaults filled in; unknown keys and bad values raise ConfigError."""
    unknown = set(raw) - set(DEFAULTS) - set(RUN_LIST_KEYS) - {"seed"}
    if unknown:
        raise ConfigError(f"heads: unknown key(s) {sorted(unknown)}")
    p = {**DEFAULTS, **raw}
    for key in ("phi_width", "rho_width", "batch_size", "eval_batch_size", "max_epochs", "max_epochs_backbone",
                "embed_batch_size"):
        if not isinstance(p[key], int) or p[key] < 1:
            raise ConfigError(f"heads.{key} must be a positive integer, got {p[key]!r}")
    for key in ("phi_layers", "rho_layers", "min_events_per_epoch", "patience", "val_min_events"):
        if not isinstance(p[key], int) or p[key] < 0:
            raise ConfigError(f"heads.{key} must be a non-negative integer, got {p[key]!r}")
    for key in ("lr_head", "lr_backbone_finetuned", "lr_backbone_scratch", "val_ratio"):
        if not isinstance(p[key], (int, float)) or p[key] <= 0:
            raise ConfigError(f"heads.{key} must be positive, got {p[key]!r}")
    if p["pool"] not in ("sum", "mean"):
        raise ConfigError(f"heads.pool must be 'sum' or 'mean', got {p['pool']!r}")
    if p["class_weight"] not in ("balanced", "none"):
        raise ConfigError(f"heads.class_weight must be 'balanced' or 'none', got {p['class_weight']!r}")
    if not 0 <= p["lr_decay_start"] <= 1:
        raise ConfigError(f"heads.lr_decay_start must be in [0, 1], got {p['lr_decay_start']!r}")
    return p


def lr_factor(epoch: int, max_epochs: int, decay_start: float) -> float:
    """Learning-rate multiplier of an epoch: flat, then linear decay to 1 % (a pure function: resume-safe)."""
    start = decay_start * max_epochs
    if epoch < start or max_epochs <= start:
        return 1.0
    return max(0.01, 1.0 - (epoch - start) / (max_epochs - start))


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC by the rank-sum statistic (ties get average ranks); NaN if a class is missing."""
    pos = label > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(representation: str, strategy: str, params: dict, seed_key: list[int], rep_dim: int | None = None,
                backbone: str | None = None) -> EventClassifier:
    """Head (+ tagger for backbone strategies), initialised deterministically from the run's seeds.

    rep_dim given: the representation comes from a cache of that width (standard, frozen).
    Otherwise the tagger is loaded from `backbone` (finetuned, frozen in the loop) or rebuilt with
    the same configuration and fresh random weights (scratch). The head's initial weights depend
    only on the seeds, so frozen, finetuned and scratch runs of a representation start from the same head.
    """
    def seed(*extra: int) -> None:
        torch.manual_seed(int(np.random.SeedSequence(seed_key + list(extra)).generate_state(1)[0]))

    tagger = None
    if rep_dim is None:
        if backbone is None:
            raise ConfigError(f"strategy {strategy!r} needs --backbone (the pretrained checkpoint or, for scratch, "
                              "its configuration)")
        from hhfm.models import JetTagger, build_backbone, load_tagger

        tagger, _ = load_tagger(backbone)
        if strategy == "scratch":  # same config and task, fresh random weights
            seed(1)
            tagger = JetTagger(build_backbone(tagger.backbone.config), tagger.task)
        rep_dim = tagger.backbone.embed_dim
    seed()
    head = build_head(representation, rep_dim, params)
    return EventClassifier(representation, head, tagger, freeze_backbone=strategy == "frozen")


def param_groups(model: EventClassifier, strategy: str, params: dict) -> list[dict]:
    """Head at lr_head; a trained backbone at its own learning rate."""
    groups = [{"params": list(model.head.parameters()), "lr": params["lr_head"], "base_lr": params["lr_head"]}]
    if model.tagger is not None and not model.freeze_backbone:
        lr = params[f"lr_backbone_{strategy}"]
        groups.append({"params": list(model.tagger.parameters()), "lr": lr, "base_lr": lr})
    return groups


def epoch_order(n_train: int, min_events: int, key: list[int]) -> np.ndarray:
    """Event order of one epoch: whole permutations of the training set, at least `min_events` long."""
    rng = np.random.default_rng(key)
    n_perm = max(1, math.ceil(min_events / n_train))
    return np.concatenate([rng.permutation(n_train) for _ in range(n_perm)])


def train_epoch(model: EventClassifier, data: HeadData, optimizer: torch.optim.Optimizer, loss_fn: torch.nn.Module,
                order: np.ndarray, batch_size: int, device: torch.device, desc: str = "train") -> float:
    """One pass over training events `order` in batches -> mean training loss."""
    model.train()
    total, count = 0.0, 0
    for i in tqdm(range(0, len(order), batch_size), desc=desc, leave=False, mininterval=5):
        batch = data.batch("train", order[i : i + batch_size], device)
        loss = loss_fn(model(batch).float(), batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch["label"])
        count += len(batch["label"])
    return total / count


@torch.no_grad()
def predict(model: EventClassifier, data: HeadData, split: str, batch_size: int, device: torch.device) -> np.ndarray:
    """Logits of all events of a split (eval mode)."""
    model.eval()
    n = len(data.splits[split])
    out = [model(data.batch(split, np.arange(i, min(i + batch_size, n)), device)).float().cpu() for i in range(0, n, batch_size)]
    return torch.cat(out).numpy()


def bce(logits: np.ndarray, label: np.ndarray, pos_weight: float) -> float:
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(logits).double(), torch.from_numpy(label).double(), pos_weight=torch.tensor(pos_weight, dtype=torch.float64))
    return float(loss)


def run(args: argparse.Namespace) -> None:
    setup_logging()
    t_start = time.perf_counter()
    raw = parse_params(args.params)
    params = resolve_params(raw)
    representation, strategy = parse_model(args.model)
    if not 0 < args.fraction <= 1:
        raise ConfigError(f"--fraction must be in (0, 1], got {args.fraction}")
    use_cache = representation == "standard" or (strategy == "frozen" and args.embeddings is not None)
    if use_cache:  # a small MLP on fixed inputs: intra-op threads only add synchronisation (60x slower measured)
        torch.set_num_threads(1)
    elif args.threads:
        torch.set_num_threads(args.threads)
    if strategy == "frozen" and representation != "standard" and args.embeddings is None and args.backbone is None:
        raise ConfigError(f"model {args.model}: frozen strategy needs --embeddings (or --backbone to run it in the loop)")
    device = pick_device()
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    data = HeadData(args.dataset, args.fraction, params, representation,
                    embeddings=args.embeddings if use_cache else None, constituents=not use_cache)
    seed_key = [int(params.get("seed", 0)), int(args.seed)]
    model = build_model(representation, strategy, params, seed_key, data.rep.shape[1] if use_cache else None,
                        args.backbone)
    model.to(device)
    groups = param_groups(model, strategy, params)
    optimizer = torch.optim.AdamW(groups, weight_decay=params["weight_decay"])
    n_trainable = sum(p.numel() for g in groups for p in g["params"])

    train = data.splits["train"]
    n_sig = float(train.label.sum())
    pos_weight = (len(train) - n_sig) / n_sig if params["class_weight"] == "balanced" else 1.0
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))
    run_key = json.dumps({"params": {k: v for k, v in raw.items() if k not in RUN_LIST_KEYS}, "model": args.model,
                          "fraction": args.fraction, "seed": args.seed, "backbone": args.backbone,
                          "embeddings": args.embeddings if use_cache else None}, sort_keys=True)

    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "metrics": [], "elapsed_s": 0.0,
             "done": False, "best": None}
    ckpt_path = outdir / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if ckpt.get("run_key") == run_key:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["torch_rng"])
            if torch.cuda.is_available() and ckpt.get("cuda_rng"):
                torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
            state = {k: ckpt[k] for k in state}
            log.info("resuming %s from epoch %d", ckpt_path, state["epoch"])
        else:
            log.warning("%s belongs to another configuration; starting afresh", ckpt_path)
    elapsed_before = state["elapsed_s"]
    trains_backbone = model.tagger is not None and not model.freeze_backbone
    n_epochs = params["max_epochs_backbone" if trains_backbone else "max_epochs"]
    max_epochs = n_epochs if args.max_epochs is None else min(args.max_epochs, n_epochs)
    log.info("%s f=%g s=%d on %s: %d trainable parameters, pos_weight %.3f", args.model, args.fraction, args.seed,
             device, n_trainable, pos_weight)

    bs = params["batch_size"]
    while not state["done"] and state["epoch"] < max_epochs:
        epoch = state["epoch"] + 1
        t0 = time.perf_counter()
        factor = lr_factor(epoch - 1, n_epochs, params["lr_decay_start"])
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * factor
        order = epoch_order(len(train), params["min_events_per_epoch"], seed_key + [epoch])
        train_loss = train_epoch(model, data, optimizer, loss_fn, order, bs, device, desc=f"epoch {epoch}")
        val_logits = predict(model, data, "val", params["eval_batch_size"], device)
        val_label = data.splits["val"].label
        val_loss = bce(val_logits, val_label, pos_weight)
        if not math.isfinite(val_loss):
            raise InputError(f"{args.dataset}: validation loss is not finite at epoch {epoch} (bad inputs?)")
        dt = time.perf_counter() - t0
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
               "val_auc": auc(val_logits, val_label), "lr": params["lr_head"] * factor, "time_s": dt}
        state["metrics"].append(row)
        log.info("epoch %d: train %.4f val %.4f auc %.4f (%.1fs)", epoch, row["train_loss"], val_loss, row["val_auc"], dt)
        if val_loss < state["best_val"]:
            state.update(best_val=val_loss, best_epoch=epoch, bad_epochs=0,
                         best={k: t.detach().cpu().clone() for k, t in model.state_dict().items()})
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["done"] = state["bad_epochs"] >= params["patience"] > 0 or epoch >= n_epochs
        state["elapsed_s"] = elapsed_before + time.perf_counter() - t_start
        save_checkpoint(ckpt_path, model, optimizer, state, run_key)
        write_metrics(outdir / "metrics.csv", state["metrics"])
    if not state["done"]:
        log.info("stopped after epoch %d (--max-epochs); rerun to resume", state["epoch"])
        return

    model.load_state_dict(state["best"])
    test = data.splits["test"]
    score = 1.0 / (1.0 + np.exp(-predict(model, data, "test", params["eval_batch_size"], device).astype(np.float64)))
    scores = pd.DataFrame({"event": test.rows.astype(np.int64), "score": score.astype(np.float32),
                           "label": test.label.astype(np.int8), "mass": test.mass, "weight": test.weight,
                           "sdmass_j1": test.sdmass[:, 0], "sdmass_j2": test.sdmass[:, 1]})[SCORE_COLUMNS]
    with atomic_path(outdir / "scores.parquet") as tmp:
        scores.to_parquet(tmp, index=False)
    write_metrics(outdir / "metrics.csv", state["metrics"])
    wall = elapsed_before + time.perf_counter() - t_start  # all sessions of this run, setup and test scoring included
    write_json(outdir / "run.json", {
        "model": args.model, "representation": "fj_doubleb" if representation == "standard" else representation,
        "strategy": strategy, "fraction": args.fraction, "seed": args.seed,
        "n_train_events": len(train), "n_val_events": len(data.splits["val"]), "n_test_events": len(test),
        "epochs_run": state["epoch"], "best_epoch": state["best_epoch"], "wall_time_s": round(wall, 3),
        "device": device_name(device), "n_params_trainable": n_trainable,
        "backbone": None if representation == "standard" else args.backbone,
    })
    log.info("done: best epoch %d, val loss %.4f, test AUC %.4f", state["best_epoch"], state["best_val"],
             auc(score, test.label))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()} threads"


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict, run_key: str) -> None:
    """Everything needed to resume bit-identically on CPU (weights_only-loadable)."""
    with atomic_path(path) as tmp:
        torch.save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "torch_rng": torch.get_rng_state(), "run_key": run_key,
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}, tmp)


def write_metrics(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=METRIC_COLUMNS).to_csv(tmp, index=False)
