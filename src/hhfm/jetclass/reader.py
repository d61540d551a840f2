"""Read JetClass-format ROOT files (one tree `tree`, one entry per jet) into per-jet training arrays.

Format and conventions: shared/pretrained/README.md ("JetClass file format"). Per jet the reader
produces exactly what the skim (hhfm.skim.jets) produces for a record jet, so pretraining reads both
alike:

- particles sorted by pT = hypot(part_px, part_py), descending; truncated / zero-padded to `max_particles`;
- the 17 ParT inputs (features.PARTICLE_FEATURE_NAMES) from the JetClass branches, as JetClass' own
  `JetClass_full.yaml` defines them: part_pt_log = log(pT), part_e_log = log(part_energy),
  part_logptrel = log(pT / jet_pt), part_logerel = log(part_energy / jet_energy),
  part_deltaR = hypot(part_deta, part_dphi), charge / PID flags copied, part_d0 = tanh(part_d0val),
  part_d0err = part_d0err, part_dz = tanh(part_dzval), part_dzerr = part_dzerr (JetClass impact
  parameters are already in mm, the unit our features use: no IMPACT_PARAMETER_SCALE), part_deta and
  part_dphi copied as stored; then standardised with features.PARTICLE_FEATURES (the skim's code);
- four-vectors (px, py, pz, E) straight from part_px, part_py, part_pz, part_energy (GeV);
- HLF in features.HLF_NAMES order; the jet mass from the jet four-vector (jet_pt, jet_eta, jet_phi,
  jet_energy), masses floored at features.HLF_MASS_FLOOR_GEV inside the logs, like the skim.

Δη sign convention: a JetClass file stores part_deta = sign(jet_eta) * (part_eta - jet_eta) (JetClass'
dataloader: `np.where(jet_eta > 0, part_eta - jet_eta, -(part_eta - jet_eta))`, i.e. the sign is -1 for
jet_eta <= 0). That is the convention the published JetClass taggers were trained with and the one
/jets/features part_deta uses, so the branch is copied unchanged (no flip); the four-vectors never use it.

Non-finite values are counted per input branch and per derived feature (and HLF column) and handled by
`nan_policy` like the skim: "zero" sets them to 0 (counts logged), "drop_jet" drops the jet, "error"
raises InputError naming the file, the branch and the entry. A jet's particles count only if kept
(not truncated away), as in the skim.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator, Mapping

import awkward as ak
import h5py
import numpy as np

from hhfm.errors import ConfigError, InputError
from hhfm.features import (HLF_MASS_FLOOR_GEV, HLF_NAMES, JETCLASS_CLASSES, N_PARTICLE_FEATURES,
                           PARTICLE_FEATURE_NAMES, SPLITS)
from hhfm.io import atomic_path
from hhfm.skim.events import _GOLDEN, _mix, assign_splits, string_hash, uniform
from hhfm.skim.h5append import append, chunk_rows
from hhfm.skim.jets import _flat, _standardise, _zero_nonfinite, particle_gather

log = logging.getLogger("hhfm.jetclass")

TREE = "tree"
#: per-particle branches read (var * float32 in JetClass)
PARTICLE_BRANCHES = ["part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi", "part_d0val",
                     "part_d0err", "part_dzval", "part_dzerr", "part_charge", "part_isChargedHadron",
                     "part_isNeutralHadron", "part_isPhoton", "part_isElectron", "part_isMuon"]
#: per-jet scalar branches read
JET_BRANCHES = ["jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_sdmass"]
#: one-hot truth labels, in JETCLASS_CLASSES order (index = /jets/label_jetclass)
LABEL_BRANCHES = [f"label_{c}" for c in JETCLASS_CLASSES]
BRANCHES = PARTICLE_BRANCHES + JET_BRANCHES + LABEL_BRANCHES

NAN_POLICIES = ("zero", "drop_jet", "error")
DEFAULT_SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
#: entries read per chunk (memory: about 10 kB per jet at max_particles = 100)
DEFAULT_STEP = 8192

_HBB, _QCD = JETCLASS_CLASSES.index("Hbb"), JETCLASS_CLASSES.index("QCD")
#: float scalars of the analysis layout; NaN where JetClass has no such quantity
FLOAT_SCALARS = ["fj_doubleb", "fj_pt", "fj_eta", "fj_phi", "fj_mass", "fj_sdmass", "fj_gen_pt"]
INT_SCALARS = ["fj_nbHadrons", "fj_ncHadrons"]
#: analysis-layout /events names and dtypes (written with zero rows: JetClass has no events)
EVENT_COLUMNS = {"jets": ((0,), "i8"), "n_jets": ((), "i1"), "label": ((), "i1"), "mass": ((), "f4"),
                 "weight": ((), "f8"), "split": ((), "i1"), "rand": ((), "f8"), "sample": ((), "i2"),
                 "event_no": ((), "u4")}


def column_specs(max_particles: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-jet column -> (row shape, dtype) of what read_jetclass_file returns (build adds split, source_file)."""
    P = max_particles
    spec = {"features": ((P, N_PARTICLE_FEATURES), "f4"), "vectors": ((P, 4), "f4"), "mask": ((P,), "?"),
            "hlf": ((len(HLF_NAMES),), "f4")}
    spec.update({k: ((), "f4") for k in FLOAT_SCALARS})
    spec.update({k: ((), "i4") for k in INT_SCALARS})
    spec.update({"label_jetclass": ((), "i1"), "label_xbb": ((), "i1"), "label_class": ((), "i1"),
                 "in_window": ((), "?"), "event": ((), "i8"), "entry": ((), "i8")})
    return spec


# --- opening -------------------------------------------------------------------------------------------------


def open_jetclass_tree(path: str | os.PathLike):
    """The checked `tree` of a JetClass file: InputError (naming the file) if missing, not ROOT, truncated,
    without `tree`, lacking a branch, or empty."""
    from hhfm.skim.reader import _open_file, checked_tree  # same checks as the skim: missing / truncated / not ROOT

    source = str(path)
    if "://" not in source and not Path(source).exists():
        raise InputError(f"{source}: input file does not exist")
    tree = checked_tree(_open_file(source), source, TREE, BRANCHES, " (JetClass format)")
    if tree.num_entries == 0:
        raise InputError(f"{source}: tree '{TREE}' has no entries (empty file)")
    return tree


# --- reading ---------------------------------------------------------------------------------------------------


def iter_jetclass_chunks(path: str | os.PathLike, max_particles: int = 100, nan_policy: str = "zero",
                         max_jets: int = 0, step_size: int = DEFAULT_STEP,
                         stats: dict | None = None) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """Yield (first entry, entries read, per-jet arrays) of `path`, `step_size` entries at a time.

    `max_jets` > 0 reads only the first `max_jets` entries. `stats` (if given) accumulates counters:
    entries_read, jets_written, jets_nonfinite, jets_dropped_nonfinite, jets_particles_truncated,
    nonfinite:<branch or feature> (non-finite values per input branch / derived feature / hlf column).
    """
    _check_policy(nan_policy)
    if max_particles < 1:
        raise ConfigError(f"max_particles must be >= 1, got {max_particles}")
    source = str(path)
    tree = open_jetclass_tree(source)
    n = tree.num_entries if max_jets <= 0 else min(tree.num_entries, int(max_jets))
    stats = {} if stats is None else stats
    for start in range(0, n, step_size):
        stop = min(n, start + step_size)
        try:
            chunk = tree.arrays(BRANCHES, entry_start=start, entry_stop=stop, library="ak")
        except Exception as err:  # decompression / basket errors of a corrupt file
            raise InputError(f"{source}: cannot read entries {start}-{stop} of '{TREE}' "
                             f"({type(err).__name__}: {err})") from err
        yield start, stop - start, _chunk_columns(source, chunk, start, max_particles, nan_policy, stats)


def read_jetclass_file(path: str | os.PathLike, max_particles: int = 100, nan_policy: str = "zero",
                       max_jets: int = 0, step_size: int = DEFAULT_STEP,
                       stats: dict | None = None) -> dict[str, np.ndarray]:
    """All jets of one JetClass file as per-jet numpy arrays (column_specs: features, vectors, mask, hlf,
    fj_* scalars, label_jetclass, label_xbb, label_class, in_window, event, entry). For large files use
    build_jetclass_dataset (bounded memory)."""
    parts = [cols for _, _, cols in iter_jetclass_chunks(path, max_particles, nan_policy, max_jets, step_size, stats)]
    spec = column_specs(max_particles)
    return {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros((0,) + shape, dtype)
            for k, (shape, dtype) in spec.items()}


def _check_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise ConfigError(f"nan_policy must be one of {list(NAN_POLICIES)}, got {nan_policy!r}")


def _add(stats: dict, name: str, value: int) -> None:
    stats[name] = int(stats.get(name, 0)) + int(value)


def _chunk_columns(source: str, chunk: ak.Array, start: int, max_particles: int, nan_policy: str,
                   stats: dict) -> dict[str, np.ndarray]:
    """Per-jet output arrays of one chunk after label checks and the NaN policy; updates `stats`."""
    n = len(chunk)
    _add(stats, "entries_read", n)
    label = _labels(source, chunk, start)
    offsets, pf = _particles(source, chunk, start)
    jet = {b: ak.to_numpy(chunk[b]).astype(np.float64) for b in JET_BRANCHES}
    # --- non-finite inputs: counted per branch over all particles read ---------------------------------------
    counts = {b: int(v.size - np.count_nonzero(np.isfinite(v))) for b, v in pf.items()}
    counts.update({b: int(v.size - np.count_nonzero(np.isfinite(v))) for b, v in jet.items()})
    raw, vec, pt = _raw_particle_columns(offsets, pf, jet)
    derived: dict[str, int] = {}
    row_bad = _zero_nonfinite(raw, vec, derived)
    _standardise(raw)
    index, mask = particle_gather(offsets, pt, max_particles)
    features = np.take(np.ascontiguousarray(raw.T), index, axis=0)
    vectors = np.take(np.ascontiguousarray(vec.T), index, axis=0)
    _add(stats, "jets_particles_truncated", int((np.diff(offsets) > max_particles).sum()))
    cols = _jet_columns(jet)
    hlf_bad = ~np.isfinite(cols["hlf"])
    derived.update({f"hlf:{name}": int(hlf_bad[:, i].sum()) for i, name in enumerate(HLF_NAMES)})
    bad = row_bad[index].any(axis=1) | hlf_bad.any(axis=1)
    for b in JET_BRANCHES:
        bad |= ~np.isfinite(jet[b])
    for name, count in counts.items():
        _add(stats, f"nonfinite:{name}", count)
    for name, count in derived.items():
        _add(stats, f"nonfinite:{name if name.startswith('hlf:') else 'feature:' + name}", count)
    _add(stats, "jets_nonfinite", int(bad.sum()))
    if bad.any():
        if nan_policy == "error":
            raise InputError(_nonfinite_message(source, start, int(np.flatnonzero(bad)[0]), offsets, pf, jet,
                                                derived))
        for name in ("fj_pt", "fj_eta", "fj_phi", "fj_mass", "fj_sdmass", "hlf"):  # particles: zeroed already
            cols[name] = np.nan_to_num(cols[name], nan=0.0, posinf=0.0, neginf=0.0)
    keep = ~bad if nan_policy == "drop_jet" else np.ones(n, dtype=bool)
    _add(stats, "jets_dropped_nonfinite", int((~keep).sum()))
    _add(stats, "jets_written", int(keep.sum()))
    out = {"features": features, "vectors": vectors, "mask": mask, "hlf": cols.pop("hlf").astype(np.float32)}
    out.update(cols)
    out["label_jetclass"] = label
    out["label_xbb"] = np.where(label == _HBB, 1, np.where(label == _QCD, 0, -1)).astype(np.int8)
    out["label_class"] = np.full(n, -1, np.int8)
    out["in_window"] = np.ones(n, dtype=bool)
    out["event"] = np.full(n, -1, np.int64)
    out["entry"] = np.arange(start, start + n, dtype=np.int64)
    if keep.all():
        return out
    return {k: v[keep] for k, v in out.items()}


def _labels(source: str, chunk: ak.Array, start: int) -> np.ndarray:
    """Index into JETCLASS_CLASSES per jet from the one-hot label_* branches; InputError unless exactly one is 1."""
    lab = np.stack([ak.to_numpy(chunk[b]).astype(np.float64) for b in LABEL_BRANCHES], axis=1)
    invalid = ~((lab == 0) | (lab == 1))
    if invalid.any():
        row, col = (int(i[0]) for i in np.nonzero(invalid))
        raise InputError(f"{source}: branch {LABEL_BRANCHES[col]} has value {lab[row, col]} at entry {start + row} "
                         f"(a JetClass label is 0 or 1)")
    n_set = lab.sum(axis=1)
    wrong = np.flatnonzero(n_set != 1)
    if len(wrong):
        row = int(wrong[0])
        names = [LABEL_BRANCHES[i] for i in np.flatnonzero(lab[row] == 1)]
        raise InputError(f"{source}: entry {start + row} (row {start + row} of '{TREE}') has "
                         f"{int(n_set[row])} labels set ({', '.join(names) or 'none'}); exactly one of "
                         f"{LABEL_BRANCHES[0]}..{LABEL_BRANCHES[-1]} must be 1")
    return np.argmax(lab, axis=1).astype(np.int8)


def _particles(source: str, chunk: ak.Array, start: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(offsets (N+1,), flat float32 array per PARTICLE_BRANCHES); all branches must have the same counts."""
    offsets, _ = _flat(chunk["part_px"])
    pf = {}
    for b in PARTICLE_BRANCHES:
        off_b, values = _flat(chunk[b])
        if not np.array_equal(off_b, offsets):
            row = int(np.flatnonzero(np.diff(off_b) != np.diff(offsets))[0])
            raise InputError(f"{source}: branch {b} has {int(off_b[row + 1] - off_b[row])} particles at entry "
                             f"{start + row}, part_px has {int(offsets[row + 1] - offsets[row])}")
        pf[b] = values.astype(np.float32, copy=False)
    return offsets, pf


def _raw_particle_columns(offsets: np.ndarray, pf: Mapping[str, np.ndarray],
                          jet: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw features (17, M+1), four-vectors (4, M+1) per flat particle (last column: padding), and pT (M,)."""
    j = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    m = len(j)
    jet_pt, jet_e = jet["jet_pt"].astype(np.float32), jet["jet_energy"].astype(np.float32)
    raw = np.zeros((N_PARTICLE_FEATURES, m + 1), dtype=np.float32)
    col = {name: raw[i, :m] for i, name in enumerate(PARTICLE_FEATURE_NAMES)}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pt = np.hypot(pf["part_px"], pf["part_py"])
        e = pf["part_energy"]
        for name, x in (("part_pt_log", pt), ("part_e_log", e), ("part_logptrel", pt / jet_pt[j]),
                        ("part_logerel", e / jet_e[j])):
            np.log(x, out=col[name])
        np.hypot(pf["part_deta"], pf["part_dphi"], out=col["part_deltaR"])
        for name in ("part_charge", "part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
                     "part_isElectron", "part_isMuon", "part_d0err", "part_dzerr", "part_deta", "part_dphi"):
            col[name][...] = pf[name]
        np.tanh(pf["part_d0val"], out=col["part_d0"])
        np.tanh(pf["part_dzval"], out=col["part_dz"])
    vec = np.zeros((4, m + 1), dtype=np.float32)
    for i, b in enumerate(("part_px", "part_py", "part_pz", "part_energy")):
        vec[i, :m] = pf[b]
    return raw, vec, pt


def _jet_columns(jet: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """fj_* scalars and HLF (float64, non-finite kept) from the jet branches; mass from the jet four-vector."""
    pt, eta, e = jet["jet_pt"], jet["jet_eta"], jet["jet_energy"]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        mass = np.sqrt(np.maximum(e**2 - (pt * np.cosh(eta)) ** 2, 0.0))  # NaN stays NaN
        hlf = np.stack([np.log(pt), eta, jet["jet_phi"], np.log(np.maximum(mass, HLF_MASS_FLOOR_GEV)),
                        np.log(np.maximum(jet["jet_sdmass"], HLF_MASS_FLOOR_GEV))], axis=1)
    n = len(pt)
    cols: dict[str, np.ndarray] = {"hlf": hlf, "fj_pt": pt.astype(np.float32), "fj_eta": eta.astype(np.float32),
                                   "fj_phi": jet["jet_phi"].astype(np.float32), "fj_mass": mass.astype(np.float32),
                                   "fj_sdmass": jet["jet_sdmass"].astype(np.float32),
                                   "fj_doubleb": np.full(n, np.nan, np.float32),
                                   "fj_gen_pt": np.full(n, np.nan, np.float32)}
    cols.update({k: np.full(n, -1, np.int32) for k in INT_SCALARS})
    return {k: cols[k] for k in ["hlf"] + FLOAT_SCALARS + INT_SCALARS}


def _nonfinite_message(source: str, start: int, row: int, offsets: np.ndarray, pf: Mapping[str, np.ndarray],
                       jet: Mapping[str, np.ndarray], derived: Mapping[str, int]) -> str:
    """InputError text for nan_policy 'error': the file, the first bad entry and the branch(es) responsible."""
    lo, hi = int(offsets[row]), int(offsets[row + 1])
    branches = [b for b in PARTICLE_BRANCHES if not np.isfinite(pf[b][lo:hi]).all()]
    branches += [b for b in JET_BRANCHES if not np.isfinite(jet[b][row])]
    what = (f"branch(es) {', '.join(branches)}" if branches else
            f"derived feature(s) {', '.join(k for k, v in derived.items() if v)}")
    return (f"{source}: non-finite value in {what} at entry {start + row} of '{TREE}'; "
            f"nan_policy is 'error' (use 'zero' or 'drop_jet')")


# --- splits ----------------------------------------------------------------------------------------------------


def check_split_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """{train, val, test} fractions, each >= 0, summing to 1 (ConfigError naming the problem otherwise)."""
    if set(fractions) != set(SPLITS):
        raise ConfigError(f"split_fractions needs exactly the keys {list(SPLITS)}, got {sorted(fractions)}")
    out = {k: float(fractions[k]) for k in SPLITS}
    if any(not np.isfinite(v) or v < 0 for v in out.values()) or abs(sum(out.values()) - 1) > 1e-6:
        raise ConfigError(f"split_fractions must be >= 0 and sum to 1, got {out}")
    return out


def jet_splits(file_name: str, entries: np.ndarray, fractions: Mapping[str, float], seed: int = 0) -> np.ndarray:
    """features.SPLITS code per jet from a hash of (file base name, entry): independent of the file's
    directory, of the order and number of the other files, and of chunking."""
    fh = np.uint64(string_hash(Path(file_name).name))
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(entries).astype(np.uint64) + _GOLDEN) ^ fh
    return assign_splits(uniform(_mix(h), seed, "jetclass-split"), fractions)


# --- the dataset -----------------------------------------------------------------------------------------------


def build_jetclass_dataset(files: list[str], output: str | os.PathLike, max_particles: int = 100,
                           split_fractions: Mapping[str, float] | None = None, seed: int = 0,
                           max_jets_per_file: int = 0, nan_policy: str = "zero", step_size: int = DEFAULT_STEP,
                           progress: bool = False) -> dict:
    """Read JetClass files into one jet-level dataset at `output` (analysis /jets layout; hhfm.dataset),
    written atomically, chunk by chunk (memory bounded by `step_size` whatever the file sizes).

    Returns a summary: {"jets": n, "counts": {class: {split: n}}, "stats": counters (iter_jetclass_chunks)}.
    """
    from tqdm import tqdm

    _check_policy(nan_policy)
    fractions = check_split_fractions(split_fractions or DEFAULT_SPLIT_FRACTIONS)
    files = [str(f) for f in files]
    if not files:
        raise InputError("no JetClass input files given")
    if len(files) > np.iinfo(np.int16).max:
        raise InputError(f"{len(files)} input files: at most {np.iinfo(np.int16).max} (source_file is int16)")
    names = [Path(f).name for f in files]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise InputError(f"input file name(s) given twice: {', '.join(dup)} (splits hash the file name)")
    n_entries = [open_jetclass_tree(f).num_entries for f in files]  # every file checked before writing
    total = sum(n if max_jets_per_file <= 0 else min(n, max_jets_per_file) for n in n_entries)
    counts = np.zeros((len(JETCLASS_CLASSES), len(SPLITS)), dtype=np.int64)
    stats: dict = {}
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as h5:
        jg = h5.create_group("jets")
        spec = column_specs(max_particles)
        spec.update({"split": ((), "i1"), "source_file": ((), "i2")})
        for name, (shape, dtype) in spec.items():
            jg.create_dataset(name, shape=(0,) + shape, maxshape=(None,) + shape, dtype=dtype,
                              chunks=(chunk_rows(shape, np.dtype(dtype).itemsize),) + shape, compression="lzf")
        bar = tqdm(total=total, unit="jet", desc="skim-jetclass", disable=None if progress else True)
        for i, source in enumerate(files):
            file_stats: dict = {}
            for _, n_read, cols in iter_jetclass_chunks(source, max_particles, nan_policy, max_jets_per_file,
                                                        step_size, file_stats):
                cols["split"] = jet_splits(source, cols["entry"], fractions, seed)
                cols["source_file"] = np.full(len(cols["entry"]), i, np.int16)
                append(jg, cols, "lzf")
                np.add.at(counts, (cols["label_jetclass"].astype(np.intp), cols["split"].astype(np.intp)), 1)
                bar.update(n_read)
            _log_file(source, file_stats, nan_policy)
            for k, v in file_stats.items():
                _add(stats, k, v)
        bar.close()
        eg = h5.create_group("events")
        for name, (shape, dtype) in EVENT_COLUMNS.items():
            eg.create_dataset(name, shape=(0,) + shape, dtype=dtype)
        summary = {"jets": int(jg["features"].shape[0]),
                   "counts": {c: {s: int(counts[ci, si]) for s, si in SPLITS.items()}
                              for ci, c in enumerate(JETCLASS_CLASSES)},
                   "stats": stats}
        params = {"format": "jetclass", "max_particles": max_particles, "split_fractions": fractions, "seed": seed,
                  "max_jets_per_file": max_jets_per_file, "nan_policy": nan_policy, "window_applies_to": "both"}
        h5.attrs.update({"format": "jetclass", "files": json.dumps(files),
                         "particle_features": json.dumps(PARTICLE_FEATURE_NAMES), "hlf_names": json.dumps(HLF_NAMES),
                         "jetclass_classes": json.dumps(JETCLASS_CLASSES), "samples": json.dumps([]),
                         "max_particles": int(max_particles), "max_jets": 0,
                         "skim_params": json.dumps(params, sort_keys=True),
                         "cutflow": json.dumps({"counts": summary["counts"], "stats": stats})})
    if summary["jets"] == 0:
        log.warning("%s: no jets written (all dropped by nan_policy %r)", output, nan_policy)
    return summary


def _log_file(source: str, stats: Mapping[str, int], nan_policy: str) -> None:
    bad = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("nonfinite:") and v}
    log.info("%s: %d entries -> %d jets (%d with more than max_particles particles)", source,
             stats.get("entries_read", 0), stats.get("jets_written", 0), stats.get("jets_particles_truncated", 0))
    if bad:
        action = "set to 0" if nan_policy == "zero" else "jets dropped"
        log.warning("%s: non-finite values (%s) in %d jets: %s", source, action, stats.get("jets_nonfinite", 0),
                    ", ".join(f"{k}={v}" for k, v in bad.items()))
