"""`fit`: the epoch loop every training stage shares.

A task (pretraining, an event head) supplies what differs: model, optimiser, the batches of an
epoch (a pure function of the seed and the epoch, so a resumed run sees the same order), the loss
of a batch and the validation. `fit` owns the rest: LR schedule, early stopping on the validation
loss, best weights, progress, per-epoch history (metrics.csv), RNG state and an atomic checkpoint
after every epoch from which a killed run resumes bit-identically on CPU.

Distributed data parallel (hhfm.training.distributed) lives here too: with more than one rank, each
rank's `batches` are its slices of the global batches, `fit` sums gradients and example counts
over ranks every step, and only rank 0 writes the checkpoint and metrics.csv.

Compute accounting: a task that has `flops(batch)` (estimated FLOPs of one training step on the
batch) and `validation_flops()` (one validation pass) gets its run's total in `state["train_flops"]`,
summed over ranks and over resumed sessions (hhfm.models.flops has the estimates).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol

import torch
from tqdm import tqdm

from hhfm.errors import InputError
from hhfm.layout import CHECKPOINT, HISTORY_COLUMNS
from hhfm.training import checkpoint as ckpt
from hhfm.training import distributed
from hhfm.training.optim import set_base_lrs

log = logging.getLogger("hhfm.training")


class TrainTask(Protocol):
    """What a training stage gives the engine."""

    model: torch.nn.Module  # the module whose weights are trained, checkpointed and kept at their best
    optimizer: Any  # torch optimiser (or Lookahead): step, zero_grad, state_dict, param_groups

    def batches(self, epoch: int) -> Iterable[Any]:
        """Training batches of `epoch` (1-based), in an order fixed by the seed and the epoch."""

    def loss(self, batch: Any) -> tuple[torch.Tensor, int]:
        """Forward pass of one training batch -> (mean loss, number of examples)."""

    def validate(self) -> tuple[float, dict[str, float]]:
        """Validation loss and metrics (auc, rej50, rej70, rej90) with the current weights."""

    # optional: flops(batch) -> float and validation_flops() -> float (compute accounting, module docstring)


@dataclass(frozen=True)
class Schedule:
    """Learning-rate multiplier: linear warm-up, flat until `flat_fraction` of the run, linear decay to `floor`.

    `unit` is `step` (updated every optimiser step) or `epoch` (updated at the start of every epoch).
    """

    unit: str = "step"
    warmup: int = 0
    flat_fraction: float = 0.7
    floor: float = 0.0


def lr_factor(t: int, total: int, schedule: Schedule) -> float:
    """Multiplier of the base learning rates at step/epoch `t` (0-based) of `total` (a pure function)."""
    if t < schedule.warmup:
        return (t + 1) / schedule.warmup
    flat_end = max(int(schedule.flat_fraction * total), schedule.warmup)
    if t < flat_end or total <= flat_end:
        return 1.0
    return max(schedule.floor, (total - t) / (total - flat_end))


@dataclass(frozen=True)
class FitSettings:
    """How long and how a task trains."""

    max_epochs: int
    patience: int = 0  # epochs without a lower validation loss before stopping (0 = never early)
    schedule: Schedule = field(default_factory=Schedule)
    steps_per_epoch: int = 0  # needed for a per-step schedule
    desc: str = "train"


@dataclass
class FitResult:
    """Outcome of `fit`: finished (or stopped by `stop_after`), the run's history and best epoch."""

    done: bool
    state: dict
    elapsed_before: float = 0.0  # training time of earlier sessions of this run (resumed checkpoints)


def _fresh_state() -> dict:
    return {"epoch": 0, "step": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "history": [],
            "done": False, "early_stopped": False, "elapsed_s": 0.0, "best": None, "train_flops": 0.0}


def _set_lr(optimizer: Any, factor: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor


def _train_epoch(task: TrainTask, settings: FitSettings, state: dict, epoch: int) -> float:
    """One pass over the task's training batches -> mean training loss; adds the pass's FLOPs to the state."""
    sched, total_steps = settings.schedule, settings.steps_per_epoch * settings.max_epochs
    if sched.unit == "epoch":
        _set_lr(task.optimizer, lr_factor(epoch - 1, settings.max_epochs, sched))
    task.model.train()
    ranks = distributed.current()
    params = [p for g in task.optimizer.param_groups for p in g["params"]]
    total, count, flops = 0.0, 0, 0.0
    batch_flops = getattr(task, "flops", None)
    bar = tqdm(task.batches(epoch), desc=f"{settings.desc} epoch {epoch}/{settings.max_epochs}",
               mininterval=5.0, leave=False, disable=not ranks.main)
    for batch in bar:
        if sched.unit == "step":
            _set_lr(task.optimizer, lr_factor(state["step"], total_steps, sched))
        loss, n = task.loss(batch)
        flops += batch_flops(batch) if batch_flops is not None else 0.0
        if not torch.isfinite(loss):
            raise InputError(f"non-finite training loss at epoch {epoch} (check the inputs and the learning rate)")
        task.optimizer.zero_grad(set_to_none=True)
        if ranks.enabled:  # gradient of the local loss sum; summed over ranks and divided by the global count
            (loss * n).backward()
            distributed.all_reduce_gradients(params, n)
        else:
            loss.backward()
        task.optimizer.step()
        state["step"] += 1
        total += float(loss.detach()) * n
        count += n
        bar.set_postfix(loss=f"{total / count:.4f}")
    total, count, flops = distributed.all_reduce_sum([total, float(count), flops])
    state["train_flops"] = state.get("train_flops", 0.0) + flops  # .get: checkpoints written before accounting
    return total / max(count, 1)


def _end_epoch(task: TrainTask, settings: FitSettings, state: dict, epoch: int, train_loss: float, t0: float) -> None:
    """Validate, log, keep the best weights, decide on early stopping."""
    val_loss, metrics = task.validate()
    if hasattr(task, "validation_flops"):  # the whole validation set (its ranks' shares together)
        state["train_flops"] = state.get("train_flops", 0.0) + task.validation_flops()
    if not math.isfinite(val_loss):
        raise InputError(f"non-finite validation loss at epoch {epoch} (check the inputs)")
    row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
           **{f"val_{k}": v for k, v in metrics.items()},
           "lr": task.optimizer.param_groups[0]["lr"], "time_s": time.perf_counter() - t0}
    state["history"].append(row)
    log.info("epoch %d: train %.4f val %.4f auc %.4f rej90 %.1f (%.1f s)", epoch, train_loss, val_loss,
             row.get("val_auc", float("nan")), row.get("val_rej90", float("nan")), row["time_s"])
    state["epoch"] = epoch
    if val_loss < state["best_val"]:
        state.update(best_val=val_loss, best_epoch=epoch, bad_epochs=0, best=ckpt.cpu_state_dict(task.model))
    else:
        state["bad_epochs"] += 1
        if settings.patience and state["bad_epochs"] >= settings.patience:
            log.info("early stopping: no lower validation loss for %d epochs", state["bad_epochs"])
            state["done"] = state["early_stopped"] = True
    state["done"] = state["done"] or epoch >= settings.max_epochs


def write_history(path: Path, history: list[dict]) -> None:
    """metrics.csv of a training run (layout.HISTORY_COLUMNS; metrics a task lacks are empty)."""
    import pandas as pd

    from hhfm.layout import write_table

    write_table(pd.DataFrame(history, columns=HISTORY_COLUMNS), path)


def fit(task: TrainTask, settings: FitSettings, outdir: Path, fp: str, stop_after: int = 0) -> FitResult:
    """Train `task` (resuming `outdir`/checkpoint.pt when its fingerprint is `fp`) until done or `stop_after` epochs.

    On return with done=True the task's model holds the best weights (lowest validation loss).
    """
    ranks = distributed.current()
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / CHECKPOINT
    set_base_lrs(task.optimizer)
    state = _fresh_state()
    blob = ckpt.load_matching(path, fp)
    if blob is not None:
        task.model.load_state_dict(blob["model"])
        task.optimizer.load_state_dict(blob["optimizer"])
        rng = blob["rng"]  # one state per rank of the run that wrote it
        rng = rng if isinstance(rng, dict) else rng[ranks.rank if len(rng) == ranks.world else 0]
        ckpt.set_rng_state(rng)
        state = blob["state"]
        log.info("resuming %s after epoch %d", path, state["epoch"])
    distributed.broadcast_parameters(task.model)
    t_start, elapsed_before, epochs_this_run = time.perf_counter(), state["elapsed_s"], 0
    while not state["done"]:
        if stop_after and epochs_this_run >= stop_after:
            log.info("stopping after %d epoch(s) as asked; rerun to resume", epochs_this_run)
            return FitResult(False, state, elapsed_before)
        epoch, t0 = state["epoch"] + 1, time.perf_counter()
        train_loss = _train_epoch(task, settings, state, epoch)
        _end_epoch(task, settings, state, epoch, train_loss, t0)
        state["elapsed_s"] = elapsed_before + time.perf_counter() - t_start
        rng = distributed.all_gather_objects(ckpt.rng_state())
        if ranks.main:
            ckpt.save(path, {"fingerprint": fp, "model": task.model.state_dict(),
                             "optimizer": task.optimizer.state_dict(), "rng": rng[0] if len(rng) == 1 else rng,
                             "state": state})
            write_history(outdir / "metrics.csv", state["history"])
        epochs_this_run += 1
    task.model.load_state_dict(state["best"])
    return FitResult(True, state, elapsed_before)
