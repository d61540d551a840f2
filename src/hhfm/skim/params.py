"""Skim configuration: defaults (mirroring config.yaml `skim`) and validation into one dict."""

from __future__ import annotations

import copy

from hhfm.errors import ConfigError

DEFAULTS: dict = {
    "pt_min": 300.0,
    "pt_max": 2000.0,
    "sdmass_min": 40.0,
    "sdmass_max": 200.0,
    "window_applies_to": "pretraining",
    "max_particles": 100,
    "max_jets": 5,
    "min_jets": 2,
    "split_fractions": {"train": 0.8, "val": 0.1, "test": 0.1},
    "nan_policy": "zero",
    "chunk_size": 20000,
    "reader": "uproot",
    "compression": "lzf",
    "file_compression": "none",
    "opendata": {"signal_cross_section_pb": 1.0, "qcd_cross_section_pb": 8700.0},
}
WINDOW_MODES = ("pretraining", "events", "both")
NAN_POLICIES = ("zero", "drop_jet", "error")
READERS = ("uproot", "coffea")
COMPRESSIONS = ("lzf", "gzip", "none")


def skim_params(raw: dict) -> dict:
    """Merge `raw` (the --params JSON) over DEFAULTS and check every value; ConfigError names the key."""
    p = copy.deepcopy(DEFAULTS)
    p["seed"] = 0
    for key, value in raw.items():
        if key not in p:
            raise ConfigError(f"skim.{key}: unknown key (known: {sorted(p)})")
        p[key] = {**p[key], **value} if isinstance(p[key], dict) and isinstance(value, dict) else value
    for key in ("pt_min", "pt_max", "sdmass_min", "sdmass_max"):
        if not isinstance(p[key], (int, float)) or p[key] < 0:
            raise ConfigError(f"skim.{key}: expected a number >= 0, got {p[key]!r}")
    for lo, hi in (("pt_min", "pt_max"), ("sdmass_min", "sdmass_max")):
        if p[lo] >= p[hi]:
            raise ConfigError(f"skim.{lo} ({p[lo]}) must be below skim.{hi} ({p[hi]})")
    for key in ("max_particles", "max_jets", "min_jets", "chunk_size", "seed"):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < (0 if key == "seed" else 1):
            raise ConfigError(f"skim.{key}: expected a positive integer, got {p[key]!r}")
    if p["min_jets"] > p["max_jets"]:
        raise ConfigError(f"skim.min_jets ({p['min_jets']}) exceeds skim.max_jets ({p['max_jets']})")
    for key, allowed in (("window_applies_to", WINDOW_MODES), ("nan_policy", NAN_POLICIES),
                         ("reader", READERS), ("compression", COMPRESSIONS),
                         ("file_compression", COMPRESSIONS)):
        if p[key] not in allowed:
            raise ConfigError(f"skim.{key}: expected one of {list(allowed)}, got {p[key]!r}")
    fr = p["split_fractions"]
    if set(fr) != {"train", "val", "test"} or any(not isinstance(v, (int, float)) or v < 0 for v in fr.values()):
        raise ConfigError(f"skim.split_fractions: expected non-negative train/val/test, got {fr!r}")
    if abs(sum(fr.values()) - 1) > 1e-9:
        raise ConfigError(f"skim.split_fractions: must sum to 1, got {sum(fr.values())}")
    for key in ("signal_cross_section_pb", "qcd_cross_section_pb"):
        v = p["opendata"].get(key)
        if set(p["opendata"]) - {"signal_cross_section_pb", "qcd_cross_section_pb"}:
            raise ConfigError(f"skim.opendata: unknown keys {sorted(p['opendata'])}")
        if not isinstance(v, (int, float)) or v <= 0:
            raise ConfigError(f"skim.opendata.{key}: expected a positive number, got {v!r}")
    return p


def window_for_pretraining(p: dict) -> bool:
    return p["window_applies_to"] in ("pretraining", "both")


def window_for_events(p: dict) -> bool:
    return p["window_applies_to"] in ("events", "both")


def h5_compression(p: dict, key: str = "compression") -> str | None:
    """HDF5 filter name for dataset.h5 (`compression`) or the per-file skims (`file_compression`)."""
    return None if p[key] == "none" else p[key]
