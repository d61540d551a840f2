"""Distributed data parallel (hhfm.training.distributed, hhfm.training.launch) with real gloo ranks on CPU.

Two ranks started by the launcher (torchrun on this machine) must train like one process on the same
global batch: same per-epoch losses, same weights and scores within float32 round-off of the summed
gradients and BatchNorm statistics (tolerances below), and a 2-rank run killed mid-training resumes
to the same result. Dropout is off in these runs: with dropout, ranks draw their own masks, so
N ranks and one process agree statistically, not number for number.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fixtures_pretrain import TINY_SEED, tiny_model_section
from hhfm.training.distributed import Dist, ranks_from_env
from hhfm.training.launch import command, parse_ranks

#: weights and BatchNorm running statistics: float32 sums in another order (measured: <= 2e-5 relative)
RTOL, ATOL = 1e-4, 1e-5
CONFIG = {"seed": TINY_SEED,
          "pretrain": {"task": "xbb", "epochs": 2, "batch_size": 64, "patience": 0,
                       "stream": {"chunk_jets": 64, "window_chunks": 2}},
          "model": {**tiny_model_section(), "dropout": 0.0, "attn_dropout": 0.0, "activation_dropout": 0.0}}


def launch(ranks: str, *cmd: str, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    """`python -m hhfm.training.launch --ranks <ranks> -- <cmd>` outside any SLURM allocation (torchrun)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "HHFM_RUNTIME"}
    argv = [sys.executable, "-m", "hhfm.training.launch", "--ranks", ranks, "--", *cmd, "--threads", "1"]
    if not wait:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (torchrun starts each rank in a session of its own, so not its group)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    out, todo = [], [pid]
    while todo:
        top = todo.pop()
        kids = [p for p, pp in parent.items() if pp == top]
        out += kids
        todo += kids
    return out


def pretrain(ranks: str, dataset: Path, outdir: Path, wait: bool = True):
    return launch(ranks, "pretrain", "--config", json.dumps(CONFIG), "--dataset", str(dataset), "--outdir",
                  str(outdir), wait=wait)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k].double(), a[k].double(), rtol=RTOL, atol=ATOL, msg=k)


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """The same pretraining as one process and as two gloo ranks."""
    base = tmp_path_factory.mktemp("ddp")
    out = {"one": base / "one", "two": base / "two"}
    pretrain("1x1x0", tiny_dataset, out["one"])
    proc = pretrain("1x2x0", tiny_dataset, out["two"])
    out["log_two"] = proc.stdout + proc.stderr
    return out


def test_two_ranks_train_like_one_process(runs):
    assert "2 rank(s)" in runs["log_two"]
    one, two = (pd.read_csv(runs[k] / "metrics.csv") for k in ("one", "two"))
    assert len(one) == len(two) == CONFIG["pretrain"]["epochs"]
    for col in ("train_loss", "val_loss", "val_auc", "lr"):
        np.testing.assert_allclose(two[col], one[col], rtol=1e-5, err_msg=col)
    assert_same_weights(weights(runs["one"] / "backbone.pt"), weights(runs["two"] / "backbone.pt"))
    s1, s2 = (pd.read_parquet(runs[k] / "jet_scores.parquet") for k in ("one", "two"))
    assert (s1["jet"].to_numpy() == s2["jet"].to_numpy()).all()  # rank 0 wrote every test jet, in order
    np.testing.assert_allclose(s2["score"], s1["score"], atol=1e-4)


def test_killed_two_rank_run_resumes_to_the_same_weights(runs, tiny_dataset, tmp_path):
    out = tmp_path / "killed"
    proc = pretrain("1x2x0", tiny_dataset, out, wait=False)
    deadline = time.time() + 300
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.stdout.read()[-4000:]
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.05)
    for pid in [proc.pid, *descendants(proc.pid)]:  # the launcher, torchrun and both ranks, mid-training
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "backbone.pt").exists()
    done = int(torch.load(out / "checkpoint.pt", weights_only=True)["state"]["epoch"])
    assert done < CONFIG["pretrain"]["epochs"]
    rerun = pretrain("1x2x0", tiny_dataset, out)
    assert f"after epoch {done}" in rerun.stdout + rerun.stderr
    assert_same_weights(weights(runs["two"] / "backbone.pt"), weights(out / "backbone.pt"))
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv").drop(columns="time_s"),
                                  pd.read_csv(runs["two"] / "metrics.csv").drop(columns="time_s"), rtol=1e-6)


def test_two_rank_finetuned_head_matches_one_process(runs, tiny_dataset, tmp_path):
    """train-head with the backbone in the loop (BatchNorm synced, events sharded, scores gathered)."""
    heads = {"seed": TINY_SEED, "heads": {"batch_size": 32, "max_epochs_backbone": 1, "min_events_per_epoch": 64,
                                          "phi_width": 16, "phi_layers": 2, "rho_width": 16, "rho_layers": 2,
                                          "val_min_events": 20, "stream": {"chunk_events": 16, "window_chunks": 2}}}
    scores, records = {}, {}
    for ranks in ("1x1x0", "1x2x0"):
        out = tmp_path / ranks
        launch(ranks, "train-head", "--config", json.dumps(heads), "--model", "embedding-finetuned", "--fraction",
               "1.0", "--seed", "0", "--dataset", str(tiny_dataset), "--backbone", str(runs["one"] / "backbone.pt"),
               "--outdir", str(out))
        scores[ranks] = pd.read_parquet(out / "scores.parquet")
        records[ranks] = json.loads((out / "run.json").read_text())
        assert records[ranks]["n_test_events"] == len(scores[ranks])
    a, b = scores["1x1x0"], scores["1x2x0"]
    # compute accounting: the ranks' shares add up to the one process's FLOPs; the record names the ranks
    assert [records[r]["n_ranks"] for r in ("1x1x0", "1x2x0")] == [1, 2]
    assert records["1x2x0"]["train_flops"] == pytest.approx(records["1x1x0"]["train_flops"], rel=1e-9)
    assert (a["event"].to_numpy() == b["event"].to_numpy()).all()
    np.testing.assert_allclose(b["logit"], a["logit"], rtol=1e-4, atol=1e-4)


def test_ranks_from_the_launchers_environment():
    assert ranks_from_env({}) == Dist()
    assert ranks_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Dist(3, 4, 1)
    srun = {"HHFM_DIST": "srun", "SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"}
    assert ranks_from_env(srun) == Dist(5, 8, 1)
    # a plain job inside a multi-task allocation is not a rank (no HHFM_DIST from the launcher)
    assert ranks_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}) == Dist()


def test_launcher_commands():
    import argparse

    def args(ranks: str) -> argparse.Namespace:
        m, r, g = parse_ranks(ranks)
        return argparse.Namespace(nodes=m, tasks_per_node=r, gpus_per_task=g, cpus_per_task=2, cmd=["pretrain", "-x"])

    assert command(args("1x1x1"), {}) == [sys.executable, "-m", "hhfm.cli", "pretrain", "-x"]
    local = command(args("1x4x0"), {})
    assert "torch.distributed.run" in local and "--nproc-per-node=4" in local and local[-2:] == ["pretrain", "-x"]
    from hhfm.errors import ConfigError

    with pytest.raises(ConfigError, match="distributed.nodes = 2 needs a SLURM allocation"):
        command(args("2x4x1"), {})
    for bad in ("2x4", "0x1x0", "1x1x-1", "ax1x1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_ranks(bad)
