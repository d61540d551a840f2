"""`hhfm publish`: copy a finished run's summary tables and figures into a results directory (docs/results/...)
with what it takes to reproduce them: the command, the merged config, package versions, the git revision, the
measured wall time and compute per rule, and a sha256 of every copied file (the published figures are the run's
own outputs, byte for byte).

    hhfm publish --workdir <run directory> --config configs/study.yaml --command "snakemake ..." \
        --wall-time-s 9876 --outdir docs/results/study
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import logging
import platform
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from hhfm.errors import InputError
from hhfm.io import atomic_path, setup_logging, write_json
from hhfm.layout import SUMMARY_DIR

log = logging.getLogger("hhfm.publish")
#: packages whose versions a result depends on
PACKAGES = ("torch", "numpy", "pandas", "scikit-learn", "pyhf", "uproot", "awkward", "fastjet", "pythia8mc",
            "snakemake", "h5py", "matplotlib")
PLOTS_DIR = "results/plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default=".", help="the run's directory (holds results/ and logs/)")
    parser.add_argument("--config", required=True, help="the overlay the run used (copied as config.yaml)")
    parser.add_argument("--command", required=True, help="the exact command that made the run")
    parser.add_argument("--wall-time-s", type=float, required=True, help="measured wall time of the whole run")
    parser.add_argument("--outdir", required=True, help="where to publish (e.g. docs/results/study)")


def versions() -> dict[str, str | None]:
    """Python and the installed versions of PACKAGES (None if absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(workdir: Path) -> str | None:
    """HEAD of the run's checkout, with '-dirty' if tracked files changed; None outside git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workdir, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=workdir,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty else "")


def config_dict(workdir: Path, overlay: Path) -> dict:
    """The run's merged, validated config: the checkout's config.yaml with `overlay` on top (defaults filled)."""
    import yaml

    from hhfm import config as hhfm_config

    def merge(a: dict, b: dict) -> dict:  # b on top of a, nested sections merged key by key (as Snakemake)
        return {**a, **{k: merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
                        for k, v in b.items()}}  # fmt: skip

    base = yaml.safe_load((workdir / "config.yaml").read_text()) if (workdir / "config.yaml").exists() else {}
    return hhfm_config.validate(merge(base or {}, yaml.safe_load(overlay.read_text()) or {}))


def rule_times(workdir: Path) -> pd.DataFrame:
    """Per rule: jobs, summed job wall seconds and CPU seconds, from logs/benchmark/<rule>/**/*.tsv."""
    rows = []
    for tsv in sorted((workdir / "logs" / "benchmark").glob("*/**/*.tsv")):
        rule = tsv.relative_to(workdir / "logs" / "benchmark").parts[0]
        bench = pd.read_csv(tsv, sep="\t")
        if len(bench):
            rows.append({"rule": rule, "job_s": float(bench["s"].iloc[-1]), "cpu_s": float(bench["cpu_time"].iloc[-1])})
    if not rows:
        raise InputError(f"{workdir / 'logs' / 'benchmark'}: no benchmark files (not a finished run?)")
    df = pd.DataFrame(rows).groupby("rule", as_index=False).agg(jobs=("job_s", "size"), job_s=("job_s", "sum"),
                                                                cpu_s=("cpu_s", "sum"))  # fmt: skip
    return df.sort_values("job_s", ascending=False, ignore_index=True)


def convergence(workdir: Path, config: dict) -> pd.DataFrame:
    """Per head run: epochs run, best epoch, the epoch cap of its strategy, and `still_improving` (the best
    epoch is the last one and the cap stopped it: the run may be undertrained)."""
    import json

    heads = config.get("heads", {})
    rows = []
    for path in sorted((workdir / "results" / "heads").glob("*/f*_s*/run.json")):
        run = json.loads(path.read_text())
        in_loop = run["strategy"] in ("finetuned", "scratch") and run["representation"] != "fj_doubleb"
        cap = int(heads.get("max_epochs_backbone" if in_loop else "max_epochs", 0))
        rows.append({k: run[k] for k in ("model", "fraction", "seed", "n_train_events", "epochs_run", "best_epoch")}
                    | {"cap": cap, "still_improving": run["best_epoch"] == run["epochs_run"] == cap})
    return pd.DataFrame(rows)


def _copy(src: Path, dst: Path) -> str:
    """Copy src to dst atomically; its sha256."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return hashlib.sha256(dst.read_bytes()).hexdigest()


def publish(workdir: Path, config: Path, command: str, wall_time_s: float, outdir: Path) -> dict:
    """Copy the summary CSVs and the PNG figures of `workdir` into `outdir` (tables/, figures/) with run.json."""
    summary, plots = workdir / SUMMARY_DIR, workdir / PLOTS_DIR
    tables = sorted(summary.glob("*.csv"))
    figures = sorted(plots.glob("*.png"))
    if not tables:
        raise InputError(f"{summary}: no summary tables (*.csv)")
    if not figures:
        raise InputError(f"{plots}: no figures (*.png)")
    if not config.exists():
        raise InputError(f"{config}: config file does not exist")
    files = {f"tables/{p.name}": _copy(p, outdir / "tables" / p.name) for p in tables}
    files |= {f"figures/{p.name}": _copy(p, outdir / "figures" / p.name) for p in figures}
    files["config.yaml"] = _copy(config, outdir / "config.yaml")
    claims_log = workdir / "logs" / "claims" / "claims.log"  # `hhfm claims` as printed (unweighted, then weighted)
    if claims_log.exists():
        files["claims.txt"] = _copy(claims_log, outdir / "claims.txt")
    times = rule_times(workdir)
    with atomic_path(outdir / "rule_times.csv") as tmp:
        times.to_csv(tmp, index=False)
    merged = config_dict(workdir, config)
    with atomic_path(outdir / "convergence.csv") as tmp:
        convergence(workdir, merged).to_csv(tmp, index=False)
    info = {"command": command, "wall_time_s": wall_time_s, "git_revision": git_revision(workdir),
            "versions": versions(), "machine": {"system": platform.platform(), "processor": platform.processor()},
            "job_time_s": float(times["job_s"].sum()), "cpu_time_s": float(times["cpu_s"].sum()),
            "files_sha256": files}  # fmt: skip
    write_json(outdir / "run.json", info)
    return info


def run(args: argparse.Namespace) -> None:
    setup_logging()
    info = publish(Path(args.workdir), Path(args.config), args.command, args.wall_time_s, Path(args.outdir))
    log.info("published %d files to %s (git %s, wall time %.0f s)", len(info["files_sha256"]), args.outdir,
             info["git_revision"], info["wall_time_s"])
