"""`hhfm publish`: the published tables and figures are the run's own files (sha256), with the run's record."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from hhfm.errors import InputError
from hhfm.evaluate.publish import publish

BENCH = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n{s}\t0:00:01\t1\t1\t1\t1\t0\t0\t1\t{c}\n"


@pytest.fixture
def run_dir(tmp_path):
    work = tmp_path / "run"
    (work / "results/summary").mkdir(parents=True)
    (work / "results/plots").mkdir(parents=True)
    (work / "results/summary/aggregated.csv").write_text("model,metric,mean\nstandard,rej90,12.5\n")
    (work / "results/summary/claims.csv").write_text("id,verdict\nC1,holds\n")
    (work / "results/plots/rejection.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (work / "results/plots/rejection.pdf").write_bytes(b"%PDF-1.4 not published")
    for rule, name, s, c in [("train_head", "a/f1_s0.tsv", 10.0, 18.0), ("train_head", "b/f1_s0.tsv", 5.0, 4.0),
                             ("simulate", "Q_0.tsv", 3.0, 2.5)]:
        path = work / "logs/benchmark" / rule / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BENCH.format(s=s, c=c))
    for model, strategy, rep, epochs, best in [("embedding-finetuned", "finetuned", "embedding", 6, 6),
                                                ("standard", "frozen", "fj_doubleb", 9, 5)]:
        run = work / "results/heads" / model / "f0.2_s0"
        run.mkdir(parents=True)
        run.joinpath("run.json").write_text(json.dumps({
            "model": model, "strategy": strategy, "representation": rep, "fraction": 0.2, "seed": 0,
            "n_train_events": 3000, "epochs_run": epochs, "best_epoch": best}))
    (work / "config.yaml").write_text("heads:\n  max_epochs: 20\n  seeds: [0]\n")
    (work / "logs/claims").mkdir(parents=True)
    (work / "logs/claims/claims.log").write_text("id  claim  verdict\nC1  ...  holds\n")
    config = tmp_path / "study.yaml"
    config.write_text("heads:\n  seeds: [0, 1]\n  max_epochs_backbone: 6\n")
    return work, config


def test_publish_copies_the_runs_files_with_their_record(run_dir, tmp_path):
    work, config = run_dir
    out = tmp_path / "docs/results/study"
    info = publish(work, config, "snakemake -c2 all", 1234.5, out)
    for name in ("tables/aggregated.csv", "tables/claims.csv", "figures/rejection.png", "config.yaml", "claims.txt"):
        assert info["files_sha256"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    assert (out / "figures/rejection.png").read_bytes() == (work / "results/plots/rejection.png").read_bytes()
    assert not (out / "figures/rejection.pdf").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == "snakemake -c2 all" and record["wall_time_s"] == 1234.5
    assert record["job_time_s"] == pytest.approx(18.0) and record["cpu_time_s"] == pytest.approx(24.5)
    assert record["versions"]["python"] and "torch" in record["versions"]
    conv = {r.split(",")[0]: r.split(",") for r in (out / "convergence.csv").read_text().splitlines()[1:]}
    assert conv["embedding-finetuned"][-2:] == ["6", "True"]  # best = last = the overlay's cap: still improving
    assert conv["standard"][-2:] == ["20", "False"]  # config.yaml's max_epochs, stopped early
    times = (out / "rule_times.csv").read_text().splitlines()
    assert times[0] == "rule,jobs,job_s,cpu_s" and times[1].startswith("train_head,2,15.0,22.0")


def test_publish_errors_name_what_is_missing(run_dir, tmp_path):
    work, config = run_dir
    with pytest.raises(InputError, match="study_missing.yaml"):
        publish(work, tmp_path / "study_missing.yaml", "x", 1.0, tmp_path / "out")
    for png in (work / "results/plots").glob("*.png"):
        png.unlink()
    with pytest.raises(InputError, match="no figures"):
        publish(work, config, "x", 1.0, tmp_path / "out")
    proc = subprocess.run([sys.executable, "-m", "hhfm.cli", "publish", "--workdir", str(tmp_path / "nowhere"),
                           "--config", str(config), "--command", "x", "--wall-time-s", "1", "--outdir",
                           str(tmp_path / "out2")], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and "no summary tables" in proc.stderr and "Traceback" not in proc.stderr
