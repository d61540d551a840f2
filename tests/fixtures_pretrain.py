"""Session fixtures of the pretrain stage (see tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def tiny_model_section() -> dict:
    """The `model` section of tests/config/tiny.yaml (one source for the tiny backbone's sizes)."""
    return yaml.safe_load((ROOT / "tests/config/tiny.yaml").read_text())["model"]


#: one quick epoch of the xbb task on the tiny dataset (the `pretrain` section; seed TINY_SEED)
TINY_PRETRAIN_PARAMS = {"task": "xbb", "epochs": 1, "batch_size": 64, "patience": 0}
TINY_SEED = 3


def pretrain_config(seed: int = TINY_SEED, model: dict | None = None, **pretrain):
    """A validated pretraining config (hhfm.config.Section): seed, `pretrain` section, tiny `model` section."""
    from hhfm import config

    cfg = {"seed": seed, "pretrain": pretrain, "model": tiny_model_section() if model is None else model}
    return config.load(cfg, {}, sections=["seed", "pretrain", "model"])


@pytest.fixture(scope="session")
def tiny_pretrain_dir(tiny_dataset, tmp_path_factory) -> Path:
    """Output directory of a real 1-epoch xbb pretraining on `tiny_dataset` (backbone.pt, metrics.csv, ...)."""
    from hhfm.pretrain import train

    out = tmp_path_factory.mktemp("pretrain") / "xbb"
    train(pretrain_config(**TINY_PRETRAIN_PARAMS), str(tiny_dataset), out)
    return out


@pytest.fixture(scope="session")
def tiny_backbone(tiny_pretrain_dir) -> Path:
    """Path of a backbone.pt (hhfm.models.load_tagger format) pretrained for 1 epoch on `tiny_dataset`."""
    return tiny_pretrain_dir / "backbone.pt"
