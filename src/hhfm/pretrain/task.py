"""Pretraining as a task of the training engine: the tagger, its loss, its batches and its validation.

Loss: BCE with pos_weight (xbb), class-weighted softmax CE (multiclass, jetclass), and for multilabel CE plus
smooth-L1 on the standardised REGRESSION_TARGETS (Ho et al. 2412.10665). Class weights are the
inverse train-split frequencies.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from hhfm.config import Section
from hhfm.features import JET_CLASSES, JETCLASS_CLASSES, REGRESSION_TARGETS
from hhfm.metrics import validation_metrics
from hhfm.pretrain.data import LABEL, JetSplit, regression_transform, signal_of
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
            classes = JETCLASS_CLASSES if task == "jetclass" else JET_CLASSES
            counts = torch.bincount(train[LABEL[task]].long(), minlength=len(classes)).double()
            w = torch.where(counts > 0, counts.sum() / (len(classes) * counts.clamp(min=1)), torch.ones_like(counts))
            self.class_weight = (w if cfg.class_weights else torch.ones_like(w)).float().to(device)
            self.meta["class_weight"] = dict(zip(classes, self.class_weight.tolist()))
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
        if self.task in ("multiclass", "jetclass"):
            return data[LABEL[self.task]].long()
        reg = regression_transform(data).float()
        reg = (reg - self.reg_mean.cpu()) / self.reg_std.cpu()
        return torch.cat((data["label_class"].float()[:, None], reg), 1)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.task == "xbb":
            return F.binary_cross_entropy_with_logits(logits[:, 0], y, pos_weight=self.pos_weight)
        if self.task in ("multiclass", "jetclass"):
            return F.cross_entropy(logits, y, weight=self.class_weight)
        k = len(JET_CLASSES)
        loss = F.cross_entropy(logits[:, :k], y[:, 0].long(), weight=self.class_weight)
        known = torch.isfinite(y[:, 1:])
        if known.any():
            loss = loss + self.reg_weight * F.smooth_l1_loss(logits[:, k:][known], y[:, 1:][known])
        return loss


class PretrainTask:
    """The engine's view of pretraining (hhfm.training.TrainTask); jets streamed from the dataset."""

    def __init__(self, cfg: Section, train: JetSplit, val: JetSplit, device: torch.device, stream: StreamSettings,
                 objective: str, init: str | None = None):
        """`objective`: hhfm.backbones.OBJECTIVES; `init`: a tagger checkpoint whose backbone (architecture and
        weights) the training starts from, with a new task head (None: a ParT from cfg.model, random)."""
        from hhfm.models import JetTagger, build_tagger, load_tagger

        p = cfg.pretrain
        self.p, self.task, self.device, self.seed, self.stream = p, objective, device, int(cfg.seed), stream
        self.train_d, self.val_d = train, val
        self.loss_fn = TaskLoss(objective, train.cols, p, device)
        self.sig_val = signal_of(val.cols, objective).numpy()
        torch.manual_seed(self.seed)
        if init is None:
            self.model = build_tagger(cfg.model.to_dict(), objective).to(device)
        else:
            self.model = JetTagger(load_tagger(init)[0].backbone, objective).to(device)
            self.model.train()
        self.optimizer = build_optimizer(self.model, p.optimizer, p.lr, p.weight_decay)
        self.mult = 32 if p.compile else (8 if device.type == "cuda" else 1)
        self.model.backbone.trim_multiple = self.mult  # the model's own trim must not undo the bucketing
        if p.compile and hasattr(self.model.backbone, "group_jets"):
            self.model.backbone.group_jets = 0  # a data-dependent number of groups would recompile the graph
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

    def predict(self, data: JetSplit, with_loss: bool = True) -> tuple[float, np.ndarray]:
        """(mean loss, Xbb scores in row order) over a split, eval mode; DDP ranks share the windows.
        `with_loss=False` (loss NaN) scores jets without this objective's labels (a JetClass tagger on analysis jets)."""
        return predict_scores(self.run_model, self.model, data, self.device, int(self.p.eval_batch_size), self.stream,
                              self.loss_fn if with_loss else None)


@torch.no_grad()
def predict_scores(run_model: torch.nn.Module, tagger: torch.nn.Module, data: JetSplit, device: torch.device,
                   batch_size: int, stream: StreamSettings, loss_fn: TaskLoss | None = None) -> tuple[float, np.ndarray]:
    """(mean loss or NaN without `loss_fn`, tagger.xbb_score per jet in row order) over a split, eval mode.
    DDP ranks score their share of the windows and gather by position (every rank gets every score)."""
    run_model.eval()
    total, scores, pos = 0.0, [], []
    mult = 8 if device.type == "cuda" else 1
    ranks = distributed.current()
    for batch in data.batches(batch_size, stream, multiple_of=mult, pin_memory=device.type == "cuda",
                              shard=(ranks.rank, ranks.world), by_window=True):
        with autocast(device):
            logits = run_model(batch["x"].to(device), batch["v"].to(device), batch["mask"].to(device))
        if loss_fn is not None:
            total += float(loss_fn(logits, loss_fn.targets(batch).to(device))) * len(batch["pos"])
        scores.append(tagger.xbb_score(logits).float().cpu().numpy())
        pos.append(batch["pos"].numpy())
    if ranks.enabled:
        (total,) = distributed.all_reduce_sum([total])
        _, all_scores = distributed.gather_by_position(np.concatenate(pos or [np.empty(0, np.int64)]),
                                                       np.concatenate(scores or [np.empty(0, np.float32)]))
    else:
        all_scores = np.concatenate(scores)
    return (total / len(data) if loss_fn is not None else float("nan")), all_scores
