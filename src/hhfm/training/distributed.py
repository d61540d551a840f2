"""Distributed data parallel for the training engine: ranks, gradient all-reduce, synced BatchNorm, gathers.

A training process is one rank of `world`. The ranks come from the environment of the launcher
(hhfm.training.launch): torchrun's (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) or, under
`srun`, SLURM's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; the launcher sets HHFM_DIST=srun and
MASTER_ADDR/PORT). Without either, world = 1 and nothing here does anything (today's behaviour).

Every rank sees the same global batch plan and takes its slice of each batch; gradients are summed
over ranks (one all-reduce of all gradients and the example count per step) and divided by the
global count, so for losses that are means over examples N ranks step exactly like one process on
the global batch. BatchNorm in training mode uses the statistics of the global batch (two
all-reduces per layer, differentiable), so ParT's particle BatchNorms also match one process.
Backend: NCCL when the ranks use CUDA, gloo on CPU.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

log = logging.getLogger("hhfm.training")


@dataclass(frozen=True)
class Dist:
    """This process's place among the ranks of a run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """The rank that writes checkpoints, outputs and logs."""
        return self.rank == 0


_current = Dist()


def current() -> Dist:
    """The ranks of this process (world 1 unless `init` joined a process group)."""
    return _current


def ranks_from_env(env: Mapping[str, str] = os.environ) -> Dist:
    """Rank, world size and local rank from torchrun's or (HHFM_DIST=srun) SLURM's variables."""
    if env.get("HHFM_DIST") == "srun":
        return Dist(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)))
    if "WORLD_SIZE" in env and "RANK" in env:
        return Dist(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    return Dist()


def init(device: torch.device) -> Dist:
    """Join the run's process group when launched with more than one rank; returns this rank's `Dist`.

    `device` is what the run resolved (hhfm.training.resolve_device): CUDA ranks use NCCL and the GPU
    of their local rank, CPU ranks gloo.
    """
    global _current
    d = ranks_from_env()
    if not d.enabled:
        return _current
    if dist.is_initialized():  # joined already (a second stage in the same process)
        _current = d
        return d
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(d.local_rank % torch.cuda.device_count())
    dist.init_process_group(backend, init_method="env://", rank=d.rank, world_size=d.world,
                            timeout=datetime.timedelta(minutes=30))
    _current = d
    log.info("rank %d of %d (local %d), backend %s", d.rank, d.world, d.local_rank, backend)
    return d


def shutdown() -> None:
    """Leave the process group (at the end of a run)."""
    global _current
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _current = Dist()


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    if _current.enabled:
        for t in module.state_dict().values():
            dist.broadcast(t, 0)


def all_reduce_gradients(params: Iterable[torch.nn.Parameter], n_local: int) -> float:
    """Sum the gradients (of local *sums* of the loss) and the example counts over ranks, divide by the
    global count: afterwards every rank holds the gradient of the global batch's mean loss.

    Returns the global number of examples. One collective per step.
    """
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1).float() for g in grads] + [grads[0].new_tensor([float(n_local)]).float()])
    dist.all_reduce(flat)
    n_global = float(flat[-1])
    flat = flat[:-1] / n_global
    offset = 0
    for p, g in zip(params, grads):
        k = g.numel()
        p.grad = flat[offset:offset + k].view_as(g).to(g.dtype)
        offset += k
    return n_global


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum of a few numbers over ranks (epoch loss totals)."""
    if not _current.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (pickled; for per-rank predictions and RNG states)."""
    if not _current.enabled:
        return [obj]
    out: list[Any] = [None] * _current.world
    dist.all_gather_object(out, obj)
    return out


def gather_by_position(pos: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-rank predictions (positions `pos` and aligned `values`) -> all ranks', sorted by position."""
    parts = all_gather_objects((pos, *values))
    pos = np.concatenate([p[0] for p in parts])
    order = np.argsort(pos, kind="stable")
    return (pos[order], *(np.concatenate([p[i] for p in parts])[order] for i in range(1, len(values) + 1)))


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiable: the gradient of every rank's input is the sum of the output gradients."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        g = g.clone()
        dist.all_reduce(g)
        return g


def synced_batch_norm(bn: torch.nn.BatchNorm1d, u: torch.Tensor) -> torch.Tensor:
    """Training-mode BatchNorm1d of rows u (n, C) with the mean and variance of all ranks' rows.

    Two-pass (mean, then the mean squared deviation) like torch's own BatchNorm, differentiable through
    the all-reduces; running statistics updated as torch does (unbiased variance, `momentum`).
    """
    all_reduce = _AllReduceSum.apply
    x = u.float()
    stats = all_reduce(torch.cat([x.sum(0), x.new_tensor([float(x.shape[0])])]))
    n = stats[-1]
    mean = stats[:-1] / n
    var = all_reduce(((x - mean) ** 2).sum(0)) / n
    if n.item() < 2:  # too few rows for batch statistics: running ones (as hhfm.models does)
        return F.batch_norm(u, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    with torch.no_grad():
        m = bn.momentum if bn.momentum is not None else 0.1
        bn.running_mean.mul_(1 - m).add_(m * mean.detach().to(bn.running_mean.dtype))
        bn.running_var.mul_(1 - m).add_(m * (var.detach() * n / (n - 1)).to(bn.running_var.dtype))
        bn.num_batches_tracked.add_(1)
    out = (x - mean) * torch.rsqrt(var + bn.eps)
    if bn.affine:
        out = out * bn.weight + bn.bias
    return out.to(u.dtype)
