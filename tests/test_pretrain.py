"""Pretrain stage on the real tiny dataset: outputs, learning, tasks, resume after a real kill, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from fixtures_pretrain import TINY_PRETRAIN_PARAMS, TINY_SEED, pretrain_config, tiny_model_section
from hhfm.dataset import jet_rows
from hhfm.errors import ConfigError, InputError
from hhfm.features import JET_CLASSES, SPLITS
from hhfm.layout import HISTORY_COLUMNS, JET_SCORE_COLUMNS
from hhfm.models import TASK_OUTPUTS, load_tagger
from hhfm.pretrain import train

#: small and fast: a subset of the train split, one or two epochs
QUICK = {**TINY_PRETRAIN_PARAMS, "max_train_jets": 160, "batch_size": 32}


def quick_cfg(**kw):
    return pretrain_config(**{**QUICK, **kw})


def test_outputs_follow_the_contract(tiny_pretrain_dir, tiny_dataset):
    metrics = pd.read_csv(tiny_pretrain_dir / "metrics.csv")
    assert list(metrics.columns) == HISTORY_COLUMNS
    assert metrics["epoch"].tolist() == [1] and np.isfinite(metrics[["train_loss", "val_loss"]]).all().all()
    scores = pd.read_parquet(tiny_pretrain_dir / "jet_scores.parquet")
    assert list(scores.columns) == JET_SCORE_COLUMNS
    assert scores["score"].between(0, 1).all()
    with h5py.File(tiny_dataset) as f:
        jets = f["jets"]
        rows = scores["jet"].to_numpy()
        assert (jets["split"][:][rows] == SPLITS["test"]).all() and (jets["label_xbb"][:][rows] >= 0).all()
        assert np.allclose(jets["fj_pt"][:][rows], scores["fj_pt"])
        expected = np.flatnonzero((jets["split"][:] == SPLITS["test"]) & (jets["label_xbb"][:] >= 0)
                                  & jets["in_window"][:])
    assert np.array_equal(np.sort(rows), expected)
    tagger, meta = load_tagger(tiny_pretrain_dir / "backbone.pt")
    assert tagger.task == "xbb" and meta["best_epoch"] == 1 and meta["n_test_jets"] == len(scores)
    # the saved scores are what the saved model gives
    with h5py.File(tiny_dataset) as f:
        j = f["jets"]
        sel = np.sort(rows[:8])
        x, v, m = (torch.from_numpy(j[k][sel]) for k in ("features", "vectors", "mask"))
    with torch.no_grad():
        again = tagger.xbb_score(tagger(x.float(), v.float(), m.bool())).numpy()
    saved = scores.set_index("jet").loc[sel, "score"].to_numpy()
    assert np.allclose(again, saved, atol=1e-5)


def test_compute_record_counts_every_jet_pass(tiny_pretrain_dir, tiny_dataset):
    """train_flops = per epoch, 3 x forward FLOPs of every training jet + the forward of every validation jet,
    from the jets' multiplicities in the dataset (hhfm.models.flops, itself checked against torch's counter)."""
    from hhfm.models.flops import linear_flops_per_row, part_forward_flops

    tagger, meta = load_tagger(tiny_pretrain_dir / "backbone.pt")
    with h5py.File(tiny_dataset) as f:
        def forward(split):
            n = f["jets/mask"][:][jet_rows(f, split)].sum(1)
            return part_forward_flops(tagger.backbone.config, n).sum() + len(n) * linear_flops_per_row(tagger.head)

        per_epoch = 3 * forward("train") + forward("val")
    rec = meta["compute"]
    assert rec["train_flops"] == pytest.approx(meta["epochs_run"] * per_epoch, rel=1e-9)
    assert rec["n_ranks"] == 1 and rec["device"].startswith("cpu") and rec["wall_time_s"] > 0


def test_tiny_run_reduces_the_loss(tiny_dataset, tmp_path):
    cfg = quick_cfg(epochs=4, optimizer="adamw", lr=3e-3, warmup_steps=0, flat_fraction=1.0, max_train_jets=256)
    assert train(cfg, str(tiny_dataset), tmp_path)
    loss = pd.read_csv(tmp_path / "metrics.csv")["train_loss"].to_numpy()
    assert len(loss) == 4 and loss[-1] < loss[0], loss


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_each_task_runs(task, tiny_dataset, tmp_path):
    assert train(quick_cfg(task=task), str(tiny_dataset), tmp_path)
    tagger, meta = load_tagger(tmp_path / "backbone.pt")
    assert tagger.task == task and tagger.head.out_features == TASK_OUTPUTS[task]
    assert set(meta["class_weight"]) == set(JET_CLASSES)
    if task == "multilabel":
        assert set(meta["regression"]) == {"fj_sdmass", "fj_nbHadrons", "fj_gen_pt"}
    scores = pd.read_parquet(tmp_path / "jet_scores.parquet")
    assert len(scores) and scores["score"].between(0, 1).all() and (scores["label_class"] >= 0).all()


def _cli(params: dict, dataset: Path, outdir: Path, *extra: str) -> subprocess.Popen:
    cfg = {"seed": TINY_SEED, "pretrain": params, "model": tiny_model_section()}
    cmd = [sys.executable, "-m", "hhfm.cli", "pretrain", "--config", json.dumps(cfg), "--dataset", str(dataset),
           "--outdir", str(outdir), "--threads", "1", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_resume_after_kill_gives_the_same_weights(tiny_dataset, tmp_path):
    """Uninterrupted 3 epochs == killed (SIGKILL during epoch 2 or later) and rerun, bit for bit.

    The two runs are separate processes with the same seed, so this is also the same-seed-same-result check."""
    params = {**QUICK, "epochs": 3}
    ref = _cli(params, tiny_dataset, tmp_path / "ref")
    assert ref.wait(timeout=600) == 0, ref.stderr.read()

    killed = _cli(params, tiny_dataset, tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.pt"
    deadline = time.time() + 600
    while not ckpt.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert killed.poll() is None, "run finished before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "run" / "backbone.pt").exists()  # nothing final written by the killed run
    done_epochs = torch.load(ckpt, weights_only=True)["state"]["epoch"]
    assert 1 <= done_epochs < 3

    resumed = _cli(params, tiny_dataset, tmp_path / "run")
    assert resumed.wait(timeout=600) == 0
    assert "resuming" in resumed.stderr.read()
    a = torch.load(tmp_path / "ref" / "backbone.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "run" / "backbone.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("ref", "run"))
    assert ma.drop(columns="time_s").equals(mb.drop(columns="time_s"))
    ca = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=True)["model"]
    cb = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(ca[k], cb[k]) for k in ca)  # final (not only best) weights identical too


def test_stop_after_and_changed_params_start_afresh(tiny_dataset, tmp_path):
    assert not train(quick_cfg(epochs=2), str(tiny_dataset), tmp_path, stop_after=1)
    assert not (tmp_path / "backbone.pt").exists()
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 1
    # a different lr is another run: the old checkpoint is not resumed
    assert train(quick_cfg(epochs=2, lr=5e-4), str(tiny_dataset), tmp_path)
    assert pd.read_csv(tmp_path / "metrics.csv")["epoch"].tolist() == [1, 2]


def test_bad_inputs_raise_clear_errors(tiny_dataset, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        train(quick_cfg(), str(tmp_path / "missing.h5"), tmp_path / "out")
    with pytest.raises(ConfigError, match=r"'pretrain.epoch': unknown key"):
        pretrain_config(epoch=3)
    with pytest.raises(ConfigError, match=r"'pretrain.task'"):
        pretrain_config(task="top")
    with pytest.raises(ConfigError, match=r"'pretrain.batch_size'"):
        pretrain_config(batch_size=0)
    with pytest.raises(ConfigError, match=r"'model.layers': unknown key"):
        pretrain_config(model={"layers": 3})
    bad = tmp_path / "nan.h5"
    shutil.copy(tiny_dataset, bad)
    with h5py.File(bad, "r+") as f:
        rows = jet_rows(f, "train")
        feats = f["jets/features"][:]
        feats[rows[0], 0, 0] = np.nan
        f["jets/features"][...] = feats
    with pytest.raises(InputError, match="features"):
        train(quick_cfg(), str(bad), tmp_path / "out2")
    with h5py.File(bad, "r+") as f:
        del f["jets/label_class"]
    with pytest.raises(InputError, match="label_class"):
        train(quick_cfg(), str(bad), tmp_path / "out3")
    assert not any((tmp_path / d / "backbone.pt").exists() for d in ("out", "out2", "out3"))


def test_cli_reports_errors_as_one_line(tiny_dataset, tmp_path, capsys):
    from hhfm.cli import main

    assert main(["pretrain", "--config", '{"pretrain": {"task": "nope"}}', "--dataset", str(tiny_dataset), "--outdir",
                 str(tmp_path)]) == 1
    assert "pretrain.task" in capsys.readouterr().err


def test_runtime_options_do_not_change_the_run(tiny_dataset, tmp_path, caplog):
    """device is runtime-only (x-runtime): a checkpoint written with device=cpu resumes under device=auto."""
    from hhfm import config

    cfg = {"seed": TINY_SEED, "pretrain": {**QUICK, "epochs": 2}, "model": tiny_model_section()}
    sections = ["seed", "pretrain", "model"]
    assert not train(config.load(cfg, {"pretrain": {"device": "cpu"}}, sections), str(tiny_dataset), tmp_path, 1)
    caplog.clear()
    with caplog.at_level("INFO", logger="hhfm"):
        assert train(config.load(cfg, {"pretrain": {"device": "auto"}}, sections), str(tiny_dataset), tmp_path)
    assert "resuming" in caplog.text and "another run" not in caplog.text
    assert pd.read_csv(tmp_path / "metrics.csv")["epoch"].tolist() == [1, 2]


def test_loader_workers_do_not_change_the_weights(tiny_dataset, tmp_path):
    """Jets read by 2 DataLoader worker processes train the same weights, bit for bit, as read in-process."""
    from hhfm import config

    cfg = {"seed": TINY_SEED, "pretrain": {**QUICK, "epochs": 2, "stream": {"chunk_jets": 32, "window_chunks": 2}},
           "model": tiny_model_section()}
    sections = ["seed", "pretrain", "model"]
    weights = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        assert train(config.load(cfg, {"pretrain": {"loader_workers": workers}}, sections), str(tiny_dataset), out)
        weights.append(torch.load(out / "backbone.pt", weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


# ------------------------------------------------------------------ chains (hhfm.backbones: init)


def test_chain_starts_from_the_init_backbone(tiny_backbone, tiny_dataset, tmp_path):
    """jetclass_xbb with --init: the backbone starts from the init checkpoint's weights (a learning rate of
    ~0 keeps them), the head is new, and the compute record adds the init backbone's own."""
    cfg = quick_cfg(task="jetclass_xbb", optimizer="adamw", lr=1e-12, warmup_steps=0)
    assert train(cfg, str(tiny_dataset), tmp_path, init=str(tiny_backbone))
    chained, meta = load_tagger(tmp_path / "backbone.pt")
    init, init_meta = load_tagger(tiny_backbone)
    fresh = tmp_path / "fresh"
    assert train(quick_cfg(task="xbb", optimizer="adamw", lr=1e-12, warmup_steps=0), str(tiny_dataset), fresh)
    random_start, _ = load_tagger(fresh / "backbone.pt")
    params = dict(chained.backbone.named_parameters())  # weights; BatchNorm running statistics still move
    for name, t in init.backbone.named_parameters():
        assert torch.allclose(params[name], t, atol=1e-6), name
    random_params = dict(random_start.backbone.named_parameters())
    differs = [n for n, t in init.backbone.named_parameters() if not torch.allclose(random_params[n], t, atol=1e-4)]
    assert differs, "the init checkpoint equals a random start: the test cannot tell them apart"
    assert meta["init"] == str(tiny_backbone) and meta["backbone"] == "jetclass_xbb" and chained.task == "xbb"
    own = json.loads(json.dumps(meta["compute"]))["train_flops"]
    _, fresh_meta = load_tagger(fresh / "backbone.pt")
    assert own == pytest.approx(fresh_meta["compute"]["train_flops"] + init_meta["compute"]["train_flops"], rel=1e-9)


def test_cli_checks_init_against_the_backbone(tiny_backbone, tiny_dataset, tmp_path):
    """A chained backbone needs --init; one trained from random weights refuses it (one clear line each)."""
    for params, extra, needle in ((dict(TINY_PRETRAIN_PARAMS, task="jetclass_xbb"), (), "pass --init"),
                                  (TINY_PRETRAIN_PARAMS, ("--init", str(tiny_backbone)), "--init is not allowed")):
        proc = _cli(params, tiny_dataset, tmp_path / "out", *extra)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1 and needle in err, err
