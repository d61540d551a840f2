"""The one training engine: epoch loop, LR schedule, early stopping, best weights, checkpoint/resume.

Pretraining (hhfm.pretrain) and the event heads (hhfm.heads) are thin tasks on it: they supply the
model, optimiser, training batches, loss and validation; `fit` does everything else the same way for
both. Streaming data and distributed data parallel belong here too (one place to add them).

    result = fit(task, FitSettings(max_epochs=20, patience=4, schedule=Schedule(...)), outdir, fp)
"""

from hhfm.training.checkpoint import fingerprint
from hhfm.training.device import autocast, device_name, resolve_device
from hhfm.training.engine import FitResult, FitSettings, Schedule, TrainTask, fit, lr_factor
from hhfm.training.optim import Lookahead, build_optimizer

__all__ = ["FitResult", "FitSettings", "Lookahead", "Schedule", "TrainTask", "autocast", "build_optimizer",
           "device_name", "fingerprint", "fit", "lr_factor", "resolve_device"]
