"""The configuration, defined once: `config.schema.yaml` (next to this file) holds every key, its type,
default, documentation and whether it changes results; this module validates against it.

    cfg = validate(raw)                         # whole config: defaults filled, every bad key named at once
    cfg = load('{"seed": 1, "heads": {...}}')   # a stage's `--config` JSON: only the sections it names
    cfg.heads.lr_head, cfg.seed                 # read-only attribute access (Section)
    tracked(cfg_dict) / runtime(cfg_dict)       # split by the schema's `x-runtime` marker

Keys marked `x-runtime: true` choose how a stage runs (chunk sizes, readers, devices), never what it
computes. The workflow passes them outside the tracked rule params and the training engine leaves them
out of checkpoint fingerprints, so changing one reruns nothing and keeps checkpoints resumable.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from hhfm.errors import ConfigError

SCHEMA_FILE = Path(__file__).with_name("config.schema.yaml")
#: environment variable with the runtime-only keys (JSON), set by the workflow for every job
RUNTIME_ENV = "HHFM_RUNTIME"


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    import yaml

    return yaml.safe_load(SCHEMA_FILE.read_text())


def schema() -> dict:
    """The JSON schema (a copy: callers may not change the source of truth)."""
    return copy.deepcopy(_schema())


def section_schema(name: str) -> dict:
    """The schema of one top-level key (`skim`, `heads`, ..., or `seed`)."""
    props = _schema()["properties"]
    if name not in props:
        raise ConfigError(f"unknown config section {name!r}; known: {sorted(props)}")
    return props[name]


def defaults(name: str | None = None) -> Any:
    """Defaults of one section (or of the whole config), as the schema states them."""
    sub = _schema() if name is None else section_schema(name)
    return fill_defaults({} if sub.get("type") == "object" else sub.get("default"), sub)


def fill_defaults(value: Any, sub: Mapping) -> Any:
    """`value` with every missing key of `sub` (an object schema) set to its default, recursively."""
    if sub.get("type") != "object" or not isinstance(value, dict):
        return copy.deepcopy(value)
    out = copy.deepcopy(value)
    for key, prop in sub.get("properties", {}).items():
        if key not in out and "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
        if key in out:
            out[key] = fill_defaults(out[key], prop)
    return out


def _schema_errors(cfg: Mapping, sub: Mapping, where: str) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(sub)
    problems = []
    for err in sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path))):
        key = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
            known = set(err.schema.get("properties", {}))
            for extra in sorted(set(err.instance) - known):
                name = f"{key}.{extra}" if key else extra
                problems.append(f"config key '{name}': unknown key (known: {sorted(known)})")
            continue
        problems.append(f"config key '{key or where}': {err.message}")
    return problems


def _semantic_errors(cfg: Mapping) -> list[str]:
    """Checks across keys that a JSON schema cannot state."""
    problems = []
    skim = cfg.get("skim")
    if isinstance(skim, Mapping):
        for lo, hi in (("pt_min", "pt_max"), ("sdmass_min", "sdmass_max")):
            if skim.get(lo, 0) >= skim.get(hi, float("inf")):
                problems.append(f"config key 'skim.{lo}': {skim[lo]} must be below skim.{hi} ({skim[hi]})")
        if skim.get("min_jets", 0) > skim.get("max_jets", float("inf")):
            problems.append(f"config key 'skim.min_jets': {skim['min_jets']} exceeds skim.max_jets ({skim['max_jets']})")
    for section in ("skim", "jetclass"):
        fr = cfg.get(section, {}).get("split_fractions", {}) if isinstance(cfg.get(section), Mapping) else {}
        if isinstance(fr, Mapping) and fr and abs(sum(fr.values()) - 1) > 1e-9:
            problems.append(f"config key '{section}.split_fractions': must sum to 1, got {sum(fr.values())}")
    model = cfg.get("model")
    if isinstance(model, Mapping) and model.get("embed_dims") and model.get("num_heads"):
        if model["embed_dims"][-1] % model["num_heads"]:
            problems.append(f"config key 'model.num_heads': {model['num_heads']} must divide "
                            f"model.embed_dims[-1] ({model['embed_dims'][-1]})")
    return problems


def check(cfg: Mapping, sections: list[str] | None = None, origin: str = "configuration") -> dict:
    """Fill defaults and validate `cfg` (whole, or only `sections`); ConfigError lists every bad key."""
    full = _schema()
    if sections is None:
        sub = full
    else:
        unknown = sorted(set(cfg) - set(sections))
        if unknown:
            raise ConfigError(f"{origin}: unexpected section(s) {unknown}; this stage reads {sections}")
        sub = {**full, "properties": {k: full["properties"][k] for k in sections}, "required": []}
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{origin}: expected a mapping of config sections, got {type(cfg).__name__}")
    filled = fill_defaults(dict(cfg), sub)
    problems = _schema_errors(filled, sub, "(top level)")
    if not problems:
        problems = _semantic_errors(filled)
    if problems:
        raise ConfigError(f"invalid {origin} (checked against {SCHEMA_FILE.name}):\n  " + "\n  ".join(problems))
    return filled


def validate(cfg: Mapping) -> dict:
    """The one validation entry point of the workflow: the whole merged config, defaults filled."""
    return check(cfg, None, "configuration (config.yaml + --configfile/--config overlays)")


def _is_runtime(prop: Mapping) -> bool:
    return bool(prop.get("x-runtime", False))


def _split(value: Any, sub: Mapping, keep_runtime: bool) -> Any:
    if sub.get("type") != "object" or not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        prop = sub.get("properties", {}).get(key, {})
        if _is_runtime(prop):
            if keep_runtime:
                out[key] = v
            continue
        part = _split(v, prop, keep_runtime)
        if keep_runtime and not (isinstance(part, dict) and part):
            continue  # a runtime view keeps only runtime keys
        out[key] = part
    return out


def tracked(cfg: Mapping) -> dict:
    """The keys of `cfg` that change results (everything not marked `x-runtime`)."""
    return _split(dict(cfg), _schema(), keep_runtime=False)


def runtime(cfg: Mapping) -> dict:
    """Only the `x-runtime` keys of `cfg` (how a stage runs), nested as in the config."""
    return _split(dict(cfg), _schema(), keep_runtime=True)


def export_job_environment(src: str, cfg: Mapping) -> None:
    """Set the environment every workflow job inherits (local jobs, and SLURM jobs, whose Snakemake parses
    the Snakefile again): PYTHONPATH with `src` first, so rules run `python -m hhfm.cli` from the
    workflow's own source in whatever software environment the job has (`--sdm conda` included), and
    HHFM_RUNTIME with the runtime-only keys of `cfg`, so changing one reruns nothing."""
    import os

    paths = [src] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ[RUNTIME_ENV] = json.dumps(runtime(cfg), sort_keys=True)


def merge(base: Mapping, over: Mapping) -> dict:
    """`over` merged into `base` recursively (mappings merge, other values replace)."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _leaves(value: Any, prefix: str = "") -> list[str]:
    """Dotted names of the non-mapping values in a nested mapping."""
    if not isinstance(value, Mapping):
        return [prefix]
    return [leaf for k, v in value.items() for leaf in _leaves(v, f"{prefix}.{k}" if prefix else k)]


def parse_json(text: str | None, what: str) -> dict:
    """A JSON object given on the command line (`--config`, `--runtime`)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{what} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object")
    return value


def _runtime_from_env(sections: list[str] | None) -> dict:
    """Runtime-only keys the workflow exported in HHFM_RUNTIME, restricted to `sections`."""
    import os

    value = parse_json(os.environ.get(RUNTIME_ENV), f"${RUNTIME_ENV}")
    return {k: v for k, v in value.items() if sections is None or k in sections}


def load(config_json: str | Mapping | None, runtime_json: str | Mapping | None = None,
         sections: list[str] | None = None) -> "Section":
    """A stage's config from its `--config` (tracked) and `--runtime` JSON: validated, defaults filled.

    Without `runtime_json` the runtime-only keys come from $HHFM_RUNTIME (set by the workflow), if set.
    `sections` limits what may appear (default: the sections present, plus `seed`).
    """
    cfg = config_json if isinstance(config_json, Mapping) else parse_json(config_json, "--config")
    if runtime_json is None:
        extra = _runtime_from_env(sections)
    else:
        extra = runtime_json if isinstance(runtime_json, Mapping) else parse_json(runtime_json, "--runtime")
    misplaced = _leaves(tracked(extra))
    if misplaced:
        raise ConfigError(f"--runtime may hold only runtime-only (x-runtime) keys; these change results and belong "
                          f"in --config: {misplaced}")
    merged = merge(cfg, extra)
    names = sections if sections is not None else sorted(set(merged) | {"seed"})
    return Section(check(merged, list(names), "stage configuration"))


def section(name: str, values: Mapping | None = None) -> "Section":
    """One section (`values` over its defaults), validated: for Python callers of a single stage."""
    return Section(check({name: dict(values or {})}, [name], f"'{name}' section")[name])


class Section(Mapping):
    """A validated, read-only config (section): `s.key` or `s["key"]`; nested mappings are Sections too."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping) -> None:
        object.__setattr__(self, "_data", dict(data))

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}; known: {sorted(self._data)}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("a validated config is read-only")

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return Section(value) if isinstance(value, dict) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Section({self._data!r})"

    def to_dict(self) -> dict:
        """A plain (deep-copied) dict, e.g. for JSON or a fingerprint."""
        return copy.deepcopy(self._data)
