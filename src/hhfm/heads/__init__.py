"""Event-level heads: `hhfm train-head` trains one DeepSets head (representation x strategy x fraction x seed)."""

from hhfm.heads.train import add_arguments, run

__all__ = ["add_arguments", "run"]
