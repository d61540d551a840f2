"""The shared training engine (hhfm.training) and the one metrics module, on small hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hhfm.errors import InputError
from hhfm.metrics import auc, rejection_at, validation_metrics
from hhfm.training import FitSettings, Schedule, fingerprint, fit, lr_factor


def test_lr_schedule_per_step_and_per_epoch():
    step = Schedule("step", warmup=5, flat_fraction=0.7, floor=0.0)
    got = [lr_factor(s, 100, step) for s in (0, 4, 50, 69, 70, 85, 99, 100)]
    assert got == pytest.approx([0.2, 1.0, 1.0, 1.0, 1.0, 0.5, 1 / 30, 0.0])  # warm-up, flat 70 %, linear to 0
    epoch = Schedule("epoch", warmup=0, flat_fraction=0.5, floor=0.01)
    assert [lr_factor(e, 10, epoch) for e in (0, 4, 5, 9, 10)] == pytest.approx([1, 1, 1, 0.2, 0.01])


def test_one_metric_definition_everywhere():
    y = np.array([0, 0, 1, 1])
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), y) == 0.75
    assert auc(np.full(4, 0.5), y) == 0.5
    assert np.isnan(validation_metrics(np.arange(3.0), np.ones(3))["auc"])  # one class: NaN, not an error
    lab = np.r_[np.zeros(100), np.ones(100)]
    separated = np.r_[np.linspace(0, 1, 100), np.linspace(2, 3, 100)]
    assert rejection_at(separated, lab, 0.5) == 100.0  # no background passes: capped at n_bkg
    assert validation_metrics(separated, lab)["rej90"] == rejection_at(separated, lab, 0.9)


def test_fingerprint_tracks_params_and_inputs(tmp_path):
    f = tmp_path / "in.h5"
    f.write_bytes(b"abc")
    a = fingerprint({"lr": 1e-3}, [f])
    assert a == fingerprint({"lr": 1e-3}, [f])
    assert a != fingerprint({"lr": 2e-3}, [f])
    f.write_bytes(b"abcd")
    assert a != fingerprint({"lr": 1e-3}, [f])


class Linear:
    """A 1-d least-squares task: y = 3x, deterministic batches per epoch."""

    def __init__(self, bad: bool = False):
        torch.manual_seed(0)
        self.model = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.x = torch.linspace(-1, 1, 64)[:, None]
        self.bad = bad

    def batches(self, epoch):
        g = torch.Generator().manual_seed(epoch)
        return torch.randperm(64, generator=g).split(16)

    def loss(self, idx):
        err = ((self.model(self.x[idx]) - 3 * self.x[idx]) ** 2).mean()
        return (err * float("nan") if self.bad else err), len(idx)

    def validate(self):
        with torch.no_grad():
            return float(((self.model(self.x) - 3 * self.x) ** 2).mean()), {"auc": 0.5}


def test_fit_learns_keeps_best_and_resumes_bit_identically(tmp_path):
    settings = FitSettings(max_epochs=4, patience=0, schedule=Schedule("epoch", 0, 0.5, 0.01))
    ref = fit(Linear(), settings, tmp_path / "ref", "fp")
    assert ref.done and ref.state["epoch"] == 4
    losses = [h["val_loss"] for h in ref.state["history"]]
    assert losses[-1] < losses[0]
    part = fit(Linear(), settings, tmp_path / "run", "fp", stop_after=2)
    assert not part.done and part.state["epoch"] == 2
    resumed_task = Linear()
    resumed = fit(resumed_task, settings, tmp_path / "run", "fp")
    assert resumed.done and resumed.elapsed_before > 0
    ref_w = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=True)["state"]["best"]
    assert all(torch.equal(ref_w[k], v) for k, v in resumed_task.model.state_dict().items())
    fresh = fit(Linear(), settings, tmp_path / "run", "other-fingerprint", stop_after=1)
    assert fresh.state["epoch"] == 1  # another fingerprint starts afresh


def test_fit_rejects_non_finite_losses(tmp_path):
    with pytest.raises(InputError, match="non-finite training loss"):
        fit(Linear(bad=True), FitSettings(max_epochs=1), tmp_path, "fp")


# --- streaming (hhfm.training.stream) ---------------------------------------------------------------


def test_epoch_windows_are_a_pure_function_of_seed_and_epoch():
    """Every position once per epoch; whole chunks of consecutive jets per window; the short chunk last;
    the same plan for the same (seed, epoch), another for another epoch; a fixed number of batches."""
    import numpy as np

    from hhfm.training.stream import StreamSettings, epoch_windows, n_batches

    s = StreamSettings(chunk_jets=10, window_chunks=3)
    n = 95  # 9 full chunks + a tail of 5
    a, b, c = epoch_windows(n, s, 7, 1), epoch_windows(n, s, 7, 1), epoch_windows(n, s, 7, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    for plan in (a, c):
        assert np.array_equal(np.sort(np.concatenate(plan)), np.arange(n))
        assert [len(w) for w in plan] == [30, 30, 30, 5]
        for w in plan:
            assert all(((w // 10) == k).sum() == (10 if k < 9 else 5) for k in np.unique(w // 10))
        assert set(plan[-1].tolist()) == set(range(90, 95))
        assert not np.array_equal(np.concatenate(plan), np.arange(n))
    ordered = epoch_windows(n, s)
    assert np.array_equal(np.concatenate(ordered), np.arange(n))
    assert n_batches(n, 8, s) == 3 * 4 + 1


def test_streamed_batches_do_not_depend_on_worker_processes(tiny_dataset):
    """The same batches (values and order) read in this process and by 2 DataLoader worker processes,
    and together they are the split, each jet once, equal to a direct read."""
    import h5py
    import numpy as np
    import torch

    from hhfm.pretrain.data import load_split
    from hhfm.training.stream import StreamSettings

    split = load_split(str(tiny_dataset), "train", "xbb")
    runs = []
    for workers in (0, 2):
        s = StreamSettings(chunk_jets=64, window_chunks=2, workers=workers)
        runs.append(list(split.batches(50, s, seed=3, epoch=2)))
    assert len(runs[0]) == len(runs[1]) > 2
    for b0, b1 in zip(*runs):
        assert b0.keys() == b1.keys()
        assert all(torch.equal(b0[k], b1[k]) for k in b0)
    pos = torch.cat([b["pos"] for b in runs[0]]).numpy()
    assert np.array_equal(np.sort(pos), np.arange(len(split))) and not np.array_equal(pos, np.arange(len(split)))
    first = runs[0][0]
    rows = split.rows[first["pos"].numpy()]
    with h5py.File(tiny_dataset) as f:
        want = f["jets/features"][np.sort(rows)][np.argsort(np.argsort(rows))]
    L = first["x"].shape[1]
    assert torch.equal(first["x"], torch.from_numpy(want[:, :L])) and not want[:, L:].any()
    assert torch.equal(first["label_xbb"], split.cols["label_xbb"][first["pos"]])
