"""Compute accounting: estimated FLOPs of the models' passes (hhfm.models.flops) and the record a run keeps.

Every training run records `train_flops` (forward + backward of every training step, plus the forward
passes of every validation), `wall_time_s`, `n_ranks` and `device`: pretraining in its checkpoint's
meta (`compute`), each head run in run.json. Estimates count matrix multiplications only (2 FLOPs per
multiply-add, the convention of torch.utils.flop_counter) on the real particles, not the padding.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch.nn as nn

#: keys of the compute record (backbone.pt meta["compute"]; the same numbers are run.json fields of a head run)
RECORD_KEYS = ("train_flops", "wall_time_s", "n_ranks", "device")


def jets_forward_flops(tagger: nn.Module, n_particles: np.ndarray) -> float:
    """FLOPs of a JetTagger's forward pass (backbone + task head) over jets with these multiplicities."""
    from hhfm.models.flops import tagger_forward_flops

    n = np.asarray(n_particles, dtype=np.float64)
    return float(np.sum(tagger_forward_flops(tagger.backbone.config, tagger.head.out_features, n)))


def deepsets_forward_flops(head: nn.Module, n_jets: int, n_events: int) -> float:
    """FLOPs of a DeepSets head's forward pass: phi on every real jet, rho and the output layer per event."""
    from hhfm.models.flops import linear_flops_per_row

    return float(n_jets * linear_flops_per_row(head.phi)
                 + n_events * (linear_flops_per_row(head.rho) + linear_flops_per_row(head.out)))


def record(train_flops: float, wall_time_s: float, n_ranks: int, device: str) -> dict:
    """The compute record of one training run (RECORD_KEYS)."""
    return {"train_flops": float(train_flops), "wall_time_s": round(float(wall_time_s), 3), "n_ranks": int(n_ranks),
            "device": str(device)}


def backbone_record(meta: Mapping) -> dict:
    """The compute record a pretrained checkpoint's meta holds (every value None for checkpoints without one)."""
    rec = meta.get("compute") or {}
    return {k: rec.get(k) for k in RECORD_KEYS}
