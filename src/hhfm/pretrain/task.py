"""Pretraining as a task of the training engine: the tagger, its loss, its batches and its validation.

Loss: BCE with pos_weight (xbb), class-weighted softmax CE (multiclass), and for multilabel CE plus
smooth-L1 on the standardised REGRESSION_TARGETS (Ho et al. 2412.10665). Class weights are the
inverse train-split frequencies.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from hhfm.config import Section
from hhfm.features import JET_CLASSES, REGRESSION_TARGETS
from hhfm.metrics import validation_metrics
from hhfm.pretrain.data import JetSplit, regression_transform, signal_of
from hhfm.training import autocast, build_optimizer, distributed
from hhfm.models.flops import TRAIN_FACTOR
from hhfm.training.compute import jets_forward_flops
from hhfm.training.stream import Batch, StreamSettings


class TaskLoss:
    """Loss of a task with train-split class weights (and regression standardisation for multilabel)."""

    def __init__(self, task: str, train: dict[str, torch.Tensor], cfg: Section, device: torch.device):
        self.task, self.reg_weight = task, float(cfg.regression_weight)
        self.meta: dict[str, object] = {}
        if task == "xbb":
            y = train["label_xbb"].float()
            n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
            pw = n_neg / n_pos if cfg.class_weights and n_pos > 0 and n_neg > 0 else 1.0
            self.pos_weight = torch.tensor(pw, device=device)
            self.meta["pos_weight"] = pw
        else:
            counts = torch.bincount(train["label_class"].long(), minlength=len(JET_CLASSES)).double()
            w = torch.where(counts > 0, counts.sum() / (len(JET_CLASSES) * counts.clamp(min=1)), torch.ones_like(counts))
            self.class_weight = (w if cfg.class_weights else torch.ones_like(w)).float().to(device)
            self.meta["class_weight"] = dict(zip(JET_CLASSES, self.class_weight.tolist()))
        if task == "multilabel":
            self._fit_regression(train, device)

    def _fit_regression(self, train: dict[str, torch.Tensor], device: torch.device) -> None:
        reg = regression_transform(train)
        mean = torch.nanmean(reg, 0)
        std = torch.sqrt(torch.nanmean((reg - mean) ** 2, 0)).clamp(min=1e-6)
        self.reg_mean, self.reg_std = mean.float().to(device), std.float().to(device)
        self.meta["regression"] = {n: {"mean": float(m), "std": float(s)} for n, m, s in zip(REGRESSION_TARGETS, mean, std)}

    def targets(self, data: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-jet targets: (n,) for xbb / multiclass, (n, 1 + 3) [class, standardised regressions] for multilabel."""
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
            loss = loss + self.reg_weight * F.smooth_l1_loss(logits[:, k:][known], y[:, 1:][known])
        return loss


class PretrainTask:
    """The engine's view of pretraining (hhfm.training.TrainTask); jets streamed from the dataset."""

    def __init__(self, cfg: Section, train: JetSplit, val: JetSplit, device: torch.device, stream: StreamSettings):
        from hhfm.models import build_tagger

        p = cfg.pretrain
        self.p, self.task, self.device, self.seed, self.stream = p, p.task, device, int(cfg.seed), stream
        self.train_d, self.val_d = train, val
        self.loss_fn = TaskLoss(p.task, train.cols, p, device)
        self.sig_val = signal_of(val.cols, p.task).numpy()
        torch.manual_seed(self.seed)
        self.model = build_tagger(cfg.model.to_dict(), p.task).to(device)
        self.optimizer = build_optimizer(self.model, p.optimizer, p.lr, p.weight_decay)
        self.mult = 32 if p.compile else (8 if device.type == "cuda" else 1)
        self.model.backbone.trim_multiple = self.mult  # the model's own trim must not undo the bucketing
        self.run_model = torch.compile(self.model, dynamic=True) if p.compile else self.model
        self._val_flops = jets_forward_flops(self.model, val.multiplicities())

    def flops(self, batch: Batch) -> float:
        """Estimated FLOPs of one training step on `batch` (this rank's jets; hhfm.training.compute)."""
        return TRAIN_FACTOR * jets_forward_flops(self.model, batch["mask"].sum(1).numpy())

    def validation_flops(self) -> float:
        """Estimated FLOPs of one validation pass (forward over every validation jet)."""
        return self._val_flops

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Training batches; their order depends on (seed, epoch) only (hhfm.training.stream)."""
        ranks = distributed.current()
        return self.train_d.batches(self.p.batch_size, self.stream, seed=self.seed * 100003, epoch=epoch,
                                    multiple_of=self.mult, pin_memory=self.device.type == "cuda",
                                    shard=(ranks.rank, ranks.world))

    def loss(self, batch: Batch) -> tuple[torch.Tensor, int]:
        dev = self.device
        with autocast(dev):
            logits = self.run_model(batch["x"].to(dev), batch["v"].to(dev), batch["mask"].to(dev))
        return self.loss_fn(logits, self.loss_fn.targets(batch).to(dev)), len(batch["pos"])

    def validate(self) -> tuple[float, dict[str, float]]:
        val_loss, scores = self.predict(self.val_d)
        return val_loss, validation_metrics(scores, self.sig_val)

    @torch.no_grad()
    def predict(self, data: JetSplit) -> tuple[float, np.ndarray]:
        """(mean loss, Xbb scores in row order) over a split, eval mode; DDP ranks share the windows."""
        model, total, scores, pos = self.run_model, 0.0, [], []
        model.eval()
        mult = 8 if self.device.type == "cuda" else 1
        ranks = distributed.current()
        for batch in data.batches(self.p.eval_batch_size, self.stream, multiple_of=mult,
                                  pin_memory=self.device.type == "cuda", shard=(ranks.rank, ranks.world),
                                  by_window=True):
            dev = self.device
            with autocast(dev):
                logits = model(batch["x"].to(dev), batch["v"].to(dev), batch["mask"].to(dev))
            total += float(self.loss_fn(logits, self.loss_fn.targets(batch).to(dev))) * len(batch["pos"])
            scores.append(self.model.xbb_score(logits).float().cpu().numpy())
            pos.append(batch["pos"].numpy())
        if not ranks.enabled:
            return total / len(data), np.concatenate(scores)
        (total,) = distributed.all_reduce_sum([total])
        _, scores_all = distributed.gather_by_position(np.concatenate(pos or [np.empty(0, np.int64)]),
                                                      np.concatenate(scores or [np.empty(0, np.float32)]))
        return total / len(data), scores_all
