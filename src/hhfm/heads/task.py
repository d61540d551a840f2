"""An event head as a task of the training engine: model construction, batches, loss and validation.

The head trains with AdamW (head at `lr_head`, a trained backbone at its own rate), BCE with
pos_weight = n_background / n_signal of the training events (`class_weight: balanced`), and a
per-epoch LR schedule (flat, then linear decay to 1 % from `lr_decay_start` of the epoch cap).
A `+weighted` model (its HeadData built with weighted=True) trains and validates on the mean of
w_i * BCE_i instead, w_i the events' hhfm.heads.data.training_weights, without pos_weight.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch

from hhfm.errors import ConfigError
from hhfm.heads.data import EventWindows, HeadData
from hhfm.heads.model import EventClassifier, build_head
from hhfm.metrics import validation_metrics
from hhfm.models.flops import TRAIN_FACTOR
from hhfm.training import distributed
from hhfm.training.compute import deepsets_forward_flops, jets_forward_flops
from hhfm.training.stream import StreamSettings, epoch_windows, stream


def build_model(representation: str, strategy: str, params: Mapping, seed_key: list[int], rep_dim: int | None = None,
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


def param_groups(model: EventClassifier, strategy: str, params: Mapping) -> list[dict]:
    """Head at lr_head; a trained backbone at its own learning rate."""
    groups = [{"params": list(model.head.parameters()), "lr": params["lr_head"]}]
    if model.tagger is not None and not model.freeze_backbone:
        groups.append({"params": list(model.tagger.parameters()), "lr": params[f"lr_backbone_{strategy}"]})
    return groups


def epoch_order(n_train: int, min_events: int, key: list[int]) -> np.ndarray:
    """Event order of one epoch: whole permutations of the training set, at least `min_events` long."""
    rng = np.random.default_rng(key)
    n_perm = max(1, math.ceil(min_events / n_train))
    return np.concatenate([rng.permutation(n_train) for _ in range(n_perm)])


def train_windows(n_train: int, params: Mapping, stream: StreamSettings, key: list[int], constituents: bool
                  ) -> list[np.ndarray]:
    """One epoch's training events in windows (a pure function of `key` = run seeds + epoch).

    Cached inputs (in memory): `epoch_order` cut into windows of whole batches. Constituents (read from
    disk): per pass over the training set, permuted chunks of consecutive events shuffled within windows
    (hhfm.training.stream.epoch_windows), so a window reads few, nearby rows of /jets.
    """
    bs, min_events = params["batch_size"], params["min_events_per_epoch"]
    if not constituents:
        order = epoch_order(n_train, min_events, key)
        size = bs * max(1, stream.chunk_jets * stream.window_chunks // bs)
        return [order[a:a + size] for a in range(0, len(order), size)]
    n_perm = max(1, math.ceil(min_events / n_train))
    return [w for k in range(n_perm)
            for w in epoch_windows(n_train, stream, int(np.random.SeedSequence(key + [k]).generate_state(1)[0]))]


def weighted_bce(logits: torch.Tensor, label: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over the events of weight_i * BCE_i (logits, label, weight (B,)): the loss of a `+weighted` head; no
    pos_weight, the weights carry the class balance."""
    return (weight * torch.nn.functional.binary_cross_entropy_with_logits(logits, label, reduction="none")).mean()


def bce(logits: np.ndarray, label: np.ndarray, pos_weight: float | None, weight: np.ndarray | None = None) -> float:
    """Mean BCE of logits, in float64 (the validation loss early stopping compares): with `pos_weight`, or, given
    per-event `weight`s, `weighted_bce` (pos_weight ignored)."""
    x, y = torch.from_numpy(logits).double(), torch.from_numpy(label).double()
    if weight is not None:
        return float(weighted_bce(x, y, torch.from_numpy(np.asarray(weight, np.float64))))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        x, y, pos_weight=torch.tensor(pos_weight, dtype=torch.float64))
    return float(loss)


class HeadTask:
    """The engine's view of one head run (hhfm.training.TrainTask). `weighted` (a +weighted model) when the
    data carry event weights (HeadData(weighted=True)): then the losses are `weighted_bce`, pos_weight None."""

    def __init__(self, model: EventClassifier, data: HeadData, strategy: str, params: Mapping, seed_key: list[int],
                 device: torch.device, stream: StreamSettings = StreamSettings()):
        self.model, self.data, self.params, self.seed_key, self.device = model, data, params, seed_key, device
        self.stream = stream
        self.optimizer = torch.optim.AdamW(param_groups(model, strategy, params), weight_decay=params["weight_decay"])
        train = data.splits["train"]
        self.weighted = train.loss_weight is not None
        if self.weighted:  # the event weights balance the classes
            self.pos_weight, self.loss_fn = None, None
        else:
            n_sig = float(train.label.sum())
            self.pos_weight = (len(train) - n_sig) / n_sig if params["class_weight"] == "balanced" else 1.0
            self.loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(self.pos_weight, device=device))

    @property
    def trains_backbone(self) -> bool:
        return self.model.tagger is not None and not self.model.freeze_backbone

    @property
    def n_trainable(self) -> int:
        return sum(p.numel() for g in self.optimizer.param_groups for p in g["params"])

    def flops(self, batch: dict[str, torch.Tensor]) -> float:
        """Estimated FLOPs of one training step on `batch` (hhfm.training.compute): forward + backward of the
        head, and of the backbone when it trains (forward only when frozen in the loop)."""
        jmask = batch["jmask"]
        total = TRAIN_FACTOR * deepsets_forward_flops(self.model.head, int(jmask.sum()), len(jmask))
        if self.model.tagger is not None:
            factor = TRAIN_FACTOR if self.trains_backbone else 1
            total += factor * jets_forward_flops(self.model.tagger, batch["pmask"].sum(1).numpy())
        return total

    def tagger_flops(self, split: str, tagger: torch.nn.Module) -> float:
        """Estimated FLOPs of `tagger`'s forward pass over the real jets of a split's events."""
        jets = self.data.splits[split].jets  # (B, J) compact jet rows, -1 = none
        return jets_forward_flops(tagger, self.data.n_particles[jets[jets >= 0]])

    def validation_flops(self) -> float:
        """Estimated FLOPs of one validation pass: the head, and the backbone when it runs in the loop."""
        jets = self.data.splits["val"].jets
        head = deepsets_forward_flops(self.model.head, int((jets >= 0).sum()), len(jets))
        return head + (self.tagger_flops("val", self.model.tagger) if self.model.tagger is not None else 0.0)

    def _stream(self, split: str, windows: list[np.ndarray], batch_size: int, shard: tuple[int, int]):
        ds = EventWindows(self.data, split, windows, batch_size, shard)
        return stream(ds, self.stream.workers if self.data.constituents else 0, self.device.type == "cuda")

    def batches(self, epoch: int):
        """This rank's slices of the epoch's batches (CPU tensors, read ahead by the loader workers)."""
        ranks = distributed.current()
        windows = train_windows(len(self.data.splits["train"]), self.params, self.stream, self.seed_key + [epoch],
                                self.data.constituents)
        return self._stream("train", windows, self.params["batch_size"], (ranks.rank, ranks.world))

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        batch = {k: t.to(self.device, non_blocking=True) for k, t in batch.items()}
        if self.weighted:
            return weighted_bce(self.model(batch).float(), batch["label"], batch["weight"]), len(batch["label"])
        return self.loss_fn(self.model(batch).float(), batch["label"]), len(batch["label"])

    def validate(self) -> tuple[float, dict[str, float]]:
        logits = self.predict("val")
        val = self.data.splits["val"]
        return bce(logits, val.label, self.pos_weight, val.loss_weight), validation_metrics(logits, val.label)

    @torch.no_grad()
    def predict(self, split: str) -> np.ndarray:
        """Logits of all events of a split in event order (eval mode); DDP ranks share the windows."""
        self.model.eval()
        ranks = distributed.current()
        n, bs = len(self.data.splits[split]), self.params["eval_batch_size"]
        size = bs * max(1, self.stream.chunk_jets * self.stream.window_chunks // bs)
        windows = [np.arange(a, min(a + size, n)) for a in range(0, n, size)][ranks.rank::ranks.world]
        logits, pos = [np.empty(0, np.float32)], [np.empty(0, np.int64)]
        for batch in self._stream(split, windows, bs, (0, 1)):
            pos.append(batch["pos"].numpy())
            batch = {k: t.to(self.device, non_blocking=True) for k, t in batch.items()}
            logits.append(self.model(batch).float().cpu().numpy())
        if not ranks.enabled:
            return np.concatenate(logits)
        return distributed.gather_by_position(np.concatenate(pos), np.concatenate(logits))[1]
