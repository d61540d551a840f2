"""Stage `pretrain`: train the ParT backbone on a jet task and write its checkpoint, metrics and test scores.

    hhfm pretrain --params '<json: pretrain section + seed + "model": model section>' \
        --dataset results/skim/dataset.h5 --outdir results/pretrain/xbb [--threads N]

Tasks: `xbb` (H->bb vs QCD, one logit, BCE), `multiclass` (features.JET_CLASSES, softmax CE),
`multilabel` (the classes plus regression of features.REGRESSION_TARGETS, after Ho et al. 2412.10665).
Class imbalance: inverse-frequency class weights from the train split (pos_weight for xbb).
Optimiser: Ranger = Lookahead(k=6, alpha=0.5) over RAdam(betas=(0.95, 0.999), eps=1e-5) as in the
reference (or plain RAdam / AdamW), lr schedule: linear warm-up, flat to `flat_fraction` of all steps,
then linear decay to 0. Validation every epoch, best (lowest val loss) weights kept, early stopping.
Resumable: `checkpoint_last.pt` (model, optimiser, scheduler, RNG, epoch, history) is written every
epoch and a rerun with the same params and dataset continues from it; same seed -> same weights on CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hhfm.dataset import jet_rows, open_dataset
from hhfm.errors import ConfigError, InputError
from hhfm.features import JET_CLASSES, REGRESSION_TARGETS
from hhfm.io import atomic_path, parse_params, setup_logging

log = logging.getLogger("hhfm.pretrain")

#: pretrain section keys and defaults (documented in workflow/schemas/config.schema.yaml)
DEFAULTS: dict[str, object] = {
    "task": "xbb",
    "epochs": 20,
    "batch_size": 512,
    "eval_batch_size": 1024,
    "optimizer": "ranger",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "warmup_steps": 5,
    "flat_fraction": 0.7,
    "patience": 5,
    "class_weights": True,
    "regression_weight": 1.0,
    "max_train_jets": 0,
    "device": "auto",
    "compile": False,
    "seed": 0,
    "model": {},
}
TASKS = ("xbb", "multiclass", "multilabel")
H_BB = JET_CLASSES.index("H_bb")
SCORE_COLUMNS = ["fj_doubleb", "fj_pt", "fj_sdmass"]


# ----------------------------------------------------------------------------------------- config
def stage_config(params: dict) -> dict:
    """Defaults overlaid with --params; unknown keys and bad values raise ConfigError naming the key."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"pretrain: unknown key(s) {unknown}; known: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **params}
    if cfg["task"] not in TASKS:
        raise ConfigError(f"pretrain.task must be one of {list(TASKS)}, got {cfg['task']!r}")
    if cfg["optimizer"] not in ("ranger", "radam", "adamw"):
        raise ConfigError(f"pretrain.optimizer must be ranger, radam or adamw, got {cfg['optimizer']!r}")
    for key in ("epochs", "batch_size", "eval_batch_size"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ConfigError(f"pretrain.{key} must be a positive integer, got {cfg[key]!r}")
    if not (isinstance(cfg["lr"], (int, float)) and cfg["lr"] > 0):
        raise ConfigError(f"pretrain.lr must be > 0, got {cfg['lr']!r}")
    if not 0 <= cfg["flat_fraction"] <= 1:
        raise ConfigError(f"pretrain.flat_fraction must be in [0, 1], got {cfg['flat_fraction']!r}")
    if cfg["device"] not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"pretrain.device must be auto, cpu or cuda, got {cfg['device']!r}")
    from hhfm.models import model_config

    cfg["model"] = model_config(cfg["model"])  # validates the model section
    return cfg


# ------------------------------------------------------------------------------------------- data
def _read_rows(ds, rows: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """ds[rows] for sorted rows, read in contiguous chunks (h5py fancy indexing is slow)."""
    out = np.empty((len(rows),) + ds.shape[1:], dtype=ds.dtype)
    if not len(rows):
        return out
    pos = 0
    while pos < len(rows):
        lo = rows[pos]
        hi = lo + chunk
        end = np.searchsorted(rows, hi, side="left")
        block = ds[lo:min(hi, ds.shape[0])]
        out[pos:end] = block[rows[pos:end] - lo]
        pos = end
    return out


def load_split(path: str, split: str, task: str, limit: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    """Labelled, in-window jets of one split: x, v, mask, label_xbb, label_class, rows, + task targets.

    `limit` > 0 keeps a random subset (fixed by `seed`) of that many jets.
    """
    label = "label_xbb" if task == "xbb" else "label_class"
    with open_dataset(path) as f:
        jets = f["jets"]
        needed = ["features", "vectors", "mask", "label_xbb", "label_class", "in_window", "split", *SCORE_COLUMNS]
        if task == "multilabel":
            needed += REGRESSION_TARGETS
        missing = [n for n in needed if n not in jets]
        if missing:
            raise InputError(f"{path}: missing dataset(s) {['/jets/' + n for n in missing]}")
        rows = jet_rows(f, split, require_label=label)
        if 0 < limit < len(rows):
            rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
        if not len(rows):
            raise InputError(f"{path}: no labelled in-window jets in split {split!r} for task {task!r} ({label} >= 0)")
        data = {name: _read_rows(jets[name], rows) for name in needed if name not in ("in_window", "split")}
    for name in ("features", "vectors"):
        bad = ~np.isfinite(data[name]).all(axis=(1, 2))
        if bad.any():
            raise InputError(f"{path}: /jets/{name} has non-finite values in {int(bad.sum())} jets "
                             f"(first row {int(rows[np.argmax(bad)])})")
    n_max = max(int(data["mask"].sum(1).max()), 1)  # drop particle slots no jet uses
    out = {"x": torch.from_numpy(data["features"][:, :n_max]).float(),
           "v": torch.from_numpy(data["vectors"][:, :n_max]).float(),
           "mask": torch.from_numpy(data["mask"][:, :n_max]).bool(),
           "rows": torch.from_numpy(rows.astype(np.int64))}
    for name in ("label_xbb", "label_class", *SCORE_COLUMNS, *(REGRESSION_TARGETS if task == "multilabel" else [])):
        out[name] = torch.from_numpy(np.asarray(data[name]))
    return out


def regression_transform(data: dict[str, torch.Tensor]) -> torch.Tensor:
    """Regression targets (n, 3): log1p(soft-drop mass), number of b hadrons, log1p(generator pT); NaN = unknown."""
    cols = []
    for name in REGRESSION_TARGETS:
        t = data[name].double()
        t = torch.where(torch.isfinite(t) & (t >= 0), t, torch.full_like(t, float("nan")))
        cols.append(t if name == "fj_nbHadrons" else torch.log1p(t))
    return torch.stack(cols, 1)


def signal_of(data: dict[str, torch.Tensor], task: str) -> torch.Tensor:
    """1 for H->bb jets (the Xbb metric's signal), 0 otherwise."""
    return (data["label_xbb"] == 1) if task == "xbb" else (data["label_class"] == H_BB)


# ---------------------------------------------------------------------------------------- metrics
def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged); NaN if a class is absent."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = np.asarray(scores)[order]
    ranks = np.empty(len(s))
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def background_rejection(labels: np.ndarray, scores: np.ndarray, sig_eff: float) -> float:
    """1 / background efficiency at the cut keeping `sig_eff` of the signal (n_bkg if no background passes)."""
    labels = np.asarray(labels).astype(bool)
    if labels.sum() == 0 or (~labels).sum() == 0:
        return float("nan")
    cut = np.quantile(np.asarray(scores)[labels], 1 - sig_eff)
    eff_b = float((np.asarray(scores)[~labels] >= cut).mean())
    return 1.0 / eff_b if eff_b > 0 else float((~labels).sum())


# -------------------------------------------------------------------------------------- optimiser
class Lookahead:
    """Lookahead (Zhang et al. 2019) around a torch optimiser: every k steps, slow += alpha * (fast - slow)."""

    def __init__(self, base: torch.optim.Optimizer, k: int = 6, alpha: float = 0.5):
        self.base, self.k, self.alpha, self.steps = base, k, alpha, 0
        self.slow = [p.detach().clone() for g in base.param_groups for p in g["params"]]

    @property
    def param_groups(self) -> list[dict]:
        return self.base.param_groups

    def step(self) -> None:
        self.base.step()
        self.steps += 1
        if self.steps % self.k == 0:
            with torch.no_grad():
                for p, s in zip((p for g in self.param_groups for p in g["params"]), self.slow):
                    s.add_(p - s, alpha=self.alpha)
                    p.copy_(s)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"base": self.base.state_dict(), "slow": self.slow, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state["base"])
        self.steps = state["steps"]
        for s, saved in zip(self.slow, state["slow"]):
            s.copy_(saved)


def build_optimizer(model: torch.nn.Module, cfg: dict):
    """(optimiser with .step/.zero_grad/.state_dict, the torch optimiser the LR scheduler drives)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith("cls_token") else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg["optimizer"] == "adamw":
        base = torch.optim.AdamW(groups, lr=cfg["lr"])
        return base, base
    base = torch.optim.RAdam(groups, lr=cfg["lr"], betas=(0.95, 0.999), eps=1e-5, decoupled_weight_decay=True)
    return (Lookahead(base) if cfg["optimizer"] == "ranger" else base), base


def lr_factor(step: int, total: int, warmup: int, flat_fraction: float) -> float:
    """Linear warm-up over `warmup` steps, flat until flat_fraction * total, then linear decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    flat_end = max(int(flat_fraction * total), warmup)
    if step < flat_end or total <= flat_end:
        return 1.0
    return max(0.0, (total - step) / (total - flat_end))


# ------------------------------------------------------------------------------------------- loss
class TaskLoss:
    """Loss of a task with train-split class weights (and regression standardisation for multilabel)."""

    def __init__(self, task: str, train: dict[str, torch.Tensor], cfg: dict, device: torch.device):
        self.task, self.reg_weight = task, float(cfg["regression_weight"])
        self.meta: dict[str, object] = {}
        if task == "xbb":
            y = train["label_xbb"].float()
            n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
            pw = n_neg / n_pos if cfg["class_weights"] and n_pos > 0 and n_neg > 0 else 1.0
            self.pos_weight = torch.tensor(pw, device=device)
            self.meta["pos_weight"] = pw
        else:
            counts = torch.bincount(train["label_class"].long(), minlength=len(JET_CLASSES)).double()
            w = torch.where(counts > 0, counts.sum() / (len(JET_CLASSES) * counts.clamp(min=1)), torch.ones_like(counts))
            self.class_weight = (w if cfg["class_weights"] else torch.ones_like(w)).float().to(device)
            self.meta["class_weight"] = dict(zip(JET_CLASSES, self.class_weight.tolist()))
        if task == "multilabel":
            reg = regression_transform(train)
            mean = torch.nanmean(reg, 0)
            std = torch.sqrt(torch.nanmean((reg - mean) ** 2, 0)).clamp(min=1e-6)
            self.reg_mean, self.reg_std = mean.float().to(device), std.float().to(device)
            self.meta["regression"] = {n: {"mean": float(m), "std": float(s)}
                                       for n, m, s in zip(REGRESSION_TARGETS, mean, std)}

    def targets(self, data: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-jet target tensor: (n,) for xbb / multiclass, (n, 1 + 3) [class, standardised regressions]."""
        if self.task == "xbb":
            return data["label_xbb"].float()
        if self.task == "multiclass":
            return data["label_class"].long()
        reg = regression_transform(data).float()
        reg = (reg - self.reg_mean.cpu()) / self.reg_std.cpu()
        return torch.cat((data["label_class"].float()[:, None], reg), 1)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.task == "xbb":
            return F.binary_cross_entropy_with_logits(logits[:, 0], y, pos_weight=self.pos_weight)
        if self.task == "multiclass":
            return F.cross_entropy(logits, y, weight=self.class_weight)
        k = len(JET_CLASSES)
        loss = F.cross_entropy(logits[:, :k], y[:, 0].long(), weight=self.class_weight)
        known = torch.isfinite(y[:, 1:])
        if known.any():
            pred, tgt = logits[:, k:][known], y[:, 1:][known]
            loss = loss + self.reg_weight * F.smooth_l1_loss(pred, tgt)
        return loss


# ------------------------------------------------------------------------------------------- loop
def _batches(n: int, size: int, generator: torch.Generator | None = None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.split(size)


def predict(model, data, targets, loss_fn, cfg, device, autocast) -> tuple[float, np.ndarray]:
    """(mean loss, Xbb scores) over a split, eval mode, no grad."""
    from hhfm.models import trim_to_longest

    model.eval()
    total, scores = 0.0, []
    mult = 8 if device.type == "cuda" else 1
    with torch.no_grad():
        for idx in _batches(len(targets), cfg["eval_batch_size"]):
            x, v, m = trim_to_longest(data["x"][idx], data["v"][idx], data["mask"][idx], mult)
            with autocast():
                logits = model(x.to(device), v.to(device), m.to(device))
            y = targets[idx].to(device)
            total += float(loss_fn(logits, y)) * len(idx)
            scores.append(_xbb_score(model, logits).float().cpu())
    return total / len(targets), torch.cat(scores).numpy()


def _xbb_score(model, logits):
    return getattr(model, "_orig_mod", model).xbb_score(logits)


def _fingerprint(cfg: dict, dataset: str) -> str:
    """Identifies a run: params + dataset identity; a checkpoint with another fingerprint is not resumed."""
    st = os.stat(dataset)
    text = json.dumps({"cfg": cfg, "dataset": [os.path.abspath(dataset), st.st_size, st.st_mtime_ns]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_metrics(path: Path, history: list[dict]) -> None:
    import pandas as pd

    cols = ["epoch", "train_loss", "val_loss", "val_auc", "val_rej50", "val_rej90", "lr", "time_s"]
    with atomic_path(path) as tmp:
        pd.DataFrame(history, columns=cols).to_csv(tmp, index=False)


def _save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(cfg: dict, dataset: str, outdir: Path, stop_after: int = 0) -> bool:
    """Train (or resume) and finalise outputs; returns False if stopped by `stop_after` before the end."""
    from hhfm.models import build_tagger, save_tagger, trim_to_longest

    outdir.mkdir(parents=True, exist_ok=True)
    want = cfg["device"]
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("pretrain.device is 'cuda' but no CUDA device is available")
    device = torch.device("cuda" if want in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext)
    task = cfg["task"]
    t_start = time.perf_counter()

    train_d = load_split(dataset, "train", task, cfg["max_train_jets"], cfg["seed"])
    val_d = load_split(dataset, "val", task)
    loss_fn = TaskLoss(task, train_d, cfg, device)
    y_train, y_val = loss_fn.targets(train_d), loss_fn.targets(val_d)
    sig_val = signal_of(val_d, task).numpy()
    log.info("task %s: %d train, %d val jets (%d / %d H->bb), device %s", task, len(y_train), len(y_val),
             int(signal_of(train_d, task).sum()), int(sig_val.sum()), device)

    torch.manual_seed(cfg["seed"])
    model = build_tagger(cfg["model"], task).to(device)
    log.info("model: %d parameters, config %s", sum(p.numel() for p in model.parameters()), cfg["model"])
    opt, base_opt = build_optimizer(model, cfg)
    steps_per_epoch = math.ceil(len(y_train) / cfg["batch_size"])
    total = steps_per_epoch * cfg["epochs"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        base_opt, lambda s: lr_factor(s, total, cfg["warmup_steps"], cfg["flat_fraction"]))
    mult = 32 if cfg["compile"] else (8 if device.type == "cuda" else 1)
    model.backbone.trim_multiple = mult  # the model's own trim must not undo the bucketing
    run_model = torch.compile(model, dynamic=True) if cfg["compile"] else model

    last_path, best_path = outdir / "checkpoint_last.pt", outdir / "checkpoint_best.pt"
    fingerprint = _fingerprint(cfg, dataset)
    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "history": [], "done": False}
    if last_path.exists():
        ck = torch.load(last_path, map_location="cpu", weights_only=True)
        if ck.get("fingerprint") == fingerprint:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["rng_cpu"])
            if device.type == "cuda" and ck.get("rng_cuda") is not None:
                torch.cuda.set_rng_state_all(ck["rng_cuda"])
            state = ck["state"]
            log.info("resuming from %s after epoch %d", last_path, state["epoch"])
        else:
            log.warning("%s belongs to another run (params or dataset changed); starting afresh", last_path)

    epochs_this_run = 0
    while not state["done"] and state["epoch"] < cfg["epochs"]:
        if stop_after and epochs_this_run >= stop_after:
            log.info("stopping after %d epoch(s) as asked; rerun to resume", epochs_this_run)
            return False
        epoch = state["epoch"] + 1
        t0 = time.perf_counter()
        run_model.train()
        g = torch.Generator().manual_seed(cfg["seed"] * 100003 + epoch)  # data order depends on (seed, epoch) only
        total_loss, n_seen = 0.0, 0
        bar = tqdm(_batches(len(y_train), cfg["batch_size"], g), desc=f"epoch {epoch}/{cfg['epochs']}",
                   mininterval=5.0, leave=False)
        for idx in bar:
            x, v, m = trim_to_longest(train_d["x"][idx], train_d["v"][idx], train_d["mask"][idx], mult)
            with autocast():
                logits = run_model(x.to(device), v.to(device), m.to(device))
            loss = loss_fn(logits, y_train[idx].to(device))
            if not torch.isfinite(loss):
                raise InputError(f"{dataset}: non-finite training loss at epoch {epoch} (check inputs / lr)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
            n_seen += len(idx)
            bar.set_postfix(loss=f"{total_loss / n_seen:.4f}")
        val_loss, val_scores = predict(run_model, val_d, y_val, loss_fn, cfg, device, autocast)
        if not math.isfinite(val_loss):
            raise InputError(f"{dataset}: non-finite validation loss at epoch {epoch}")
        row = {"epoch": epoch, "train_loss": total_loss / n_seen, "val_loss": val_loss,
               "val_auc": roc_auc(sig_val, val_scores), "val_rej50": background_rejection(sig_val, val_scores, 0.5),
               "val_rej90": background_rejection(sig_val, val_scores, 0.9),
               "lr": base_opt.param_groups[0]["lr"], "time_s": time.perf_counter() - t0}
        state["history"].append(row)
        log.info("epoch %d: train %.4f val %.4f auc %.4f rej50 %.1f rej90 %.1f (%.0f s)", epoch, row["train_loss"],
                 val_loss, row["val_auc"], row["val_rej50"], row["val_rej90"], row["time_s"])
        state["epoch"] = epoch
        if val_loss < state["best_val"]:
            state.update(best_val=val_loss, best_epoch=epoch, bad_epochs=0)
            _save({k: t.detach().cpu() for k, t in model.state_dict().items()}, best_path)
        else:
            state["bad_epochs"] += 1
            if cfg["patience"] and state["bad_epochs"] >= cfg["patience"]:
                log.info("early stopping: no val-loss improvement for %d epochs", state["bad_epochs"])
                state["done"] = True
        _write_metrics(outdir / "metrics.csv", state["history"])
        _save({"fingerprint": fingerprint, "model": model.state_dict(), "optimizer": opt.state_dict(),
               "scheduler": sched.state_dict(), "rng_cpu": torch.get_rng_state(),
               "rng_cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
               "state": state}, last_path)
        epochs_this_run += 1

    finalise(cfg, dataset, outdir, model, loss_fn, state, device, autocast, len(y_train), len(y_val),
             time.perf_counter() - t_start)
    return True


def finalise(cfg, dataset, outdir, model, loss_fn, state, device, autocast, n_train, n_val, wall) -> None:
    """Best weights -> backbone.pt; test-split scores -> jet_scores.parquet; metrics.csv."""
    import pandas as pd

    from hhfm.models import save_tagger

    task = cfg["task"]
    model.load_state_dict(torch.load(outdir / "checkpoint_best.pt", map_location=device, weights_only=True))
    test_d = load_split(dataset, "test", task)
    _, scores = predict(model, test_d, loss_fn.targets(test_d), loss_fn, cfg, device, autocast)
    sig = signal_of(test_d, task).numpy()
    frame = pd.DataFrame({"jet": test_d["rows"].numpy(), "score": scores.astype(np.float32),
                          "label_xbb": test_d["label_xbb"].numpy().astype(np.int8),
                          "label_class": test_d["label_class"].numpy().astype(np.int8),
                          **{c: test_d[c].numpy().astype(np.float32) for c in SCORE_COLUMNS}})
    with atomic_path(outdir / "jet_scores.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    meta = {"task": task, "params": cfg, "best_epoch": state["best_epoch"], "best_val_loss": state["best_val"],
            "epochs_run": state["epoch"], "early_stopped": bool(state["done"]), "n_train_jets": n_train,
            "n_val_jets": n_val, "n_test_jets": len(frame), "test_auc": roc_auc(sig, scores),
            "device": str(device), "dataset": str(dataset), **loss_fn.meta}
    save_tagger(outdir / "backbone.pt", model.cpu(), meta)
    _write_metrics(outdir / "metrics.csv", state["history"])
    log.info("wrote %s (best epoch %d, test AUC %.4f, %.0f s)", outdir / "backbone.pt", state["best_epoch"],
             meta["test_auc"], wall)


# -------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", required=True, help="JSON: the pretrain config section + seed + 'model' section")
    parser.add_argument("--dataset", required=True, help="skimmed dataset (results/skim/dataset.h5)")
    parser.add_argument("--outdir", required=True, help="output directory (results/pretrain/{task})")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--stop-after", type=int, default=0, metavar="EPOCHS",
                        help="leave after this many epochs in this invocation (resumable; job chaining / tests)")
    parser.add_argument("--log", default=None, help="also log to this file")


def run(args: argparse.Namespace) -> None:
    setup_logging(args.log)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = stage_config(parse_params(args.params))
    train(cfg, args.dataset, Path(args.outdir), stop_after=args.stop_after)
