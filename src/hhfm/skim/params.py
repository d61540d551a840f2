"""The skim's configuration: loaded and validated by hhfm.config (schema `skim` + `seed`), plus derived flags.

Every key, default and check lives in config.schema.yaml; this module only reads the validated
Section, so the skim and merge stages agree on what they record and how they decide.
"""

from __future__ import annotations

import argparse
from typing import Mapping

from hhfm import config

#: the config sections the skim and merge stages read
SECTIONS = ["seed", "skim"]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--config` (tracked keys) and `--runtime` (x-runtime keys) options of `hhfm skim` / `merge-skim`."""
    parser.add_argument("--config", default="{}", help='JSON {"seed": N, "skim": {...}}: keys that change results')
    parser.add_argument("--runtime", default=None,
                        help='JSON {"skim": {"chunk_size": .., "reader": .., "file_compression": ..}}: '
                             "keys that only change how the stage runs")


def stage_config(config_json: str | Mapping | None, runtime_json: str | Mapping | None = None) -> config.Section:
    """The validated `seed` + `skim` config (defaults filled); ConfigError names any bad key."""
    return config.load(config_json, runtime_json, sections=SECTIONS)


def recorded_params(cfg: config.Section) -> dict:
    """What `skim_params` attributes hold: the tracked skim keys plus `seed`, flat.

    Runtime keys (chunk_size, reader, file_compression) are left out, so outputs do not depend on them.
    """
    return {**config.tracked({"skim": cfg.skim.to_dict()})["skim"], "seed": cfg.seed}


def window_for_pretraining(skim: Mapping) -> bool:
    """Whether pretraining jets must pass the (pT, soft-drop mass) window."""
    return skim["window_applies_to"] in ("pretraining", "both")


def window_for_events(skim: Mapping) -> bool:
    """Whether only jets in the window count (and are kept) in events."""
    return skim["window_applies_to"] in ("events", "both")


def h5_compression(skim: Mapping, key: str = "compression") -> str | None:
    """HDF5 filter name for dataset.h5 (`compression`) or the per-file skims (`file_compression`)."""
    return None if skim[key] == "none" else skim[key]
