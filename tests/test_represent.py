"""Representation studies: CKA properties and its minibatch estimator, layer taps of the backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hhfm.represent.cka import linear_cka, minibatch_cka


def _rep(n: int = 600, p: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)) @ rng.normal(size=(6, p)) + 0.3 * rng.normal(size=(n, p))  # low-rank + noise


def test_cka_of_identical_representations_is_one():
    x = _rep()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert minibatch_cka(x, x, 100) == pytest.approx(1.0, abs=1e-12)


def test_cka_of_independent_representations_is_about_zero():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4000, 16)), rng.normal(size=(4000, 16))
    assert linear_cka(x, y) < 0.02  # biased estimator: ~ p q / n
    assert abs(minibatch_cka(x, y, 500)) < 0.01  # unbiased: ~ 0


def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling():
    x = _rep(seed=2)
    y = x @ np.random.default_rng(3).normal(size=(24, 10)) + 2.0 * _rep(p=10, seed=3)  # partly related
    q, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(24, 24)))
    base = linear_cka(x, y)
    assert 0.05 < base < 0.95  # a non-trivial value, so invariance is not 0 == 0 or 1 == 1
    assert linear_cka(x @ q, y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(7.5 * x, 0.01 * y) == pytest.approx(base, rel=1e-10)
    assert minibatch_cka(x @ q * 3.0, y, 100) == pytest.approx(minibatch_cka(x, y, 100), rel=1e-10)
    # ... but not to a general linear map (CKA would be useless otherwise)
    a = np.diag(np.linspace(0.1, 10, 24))
    assert abs(linear_cka(x @ a, y) - base) > 1e-3


def test_minibatch_estimator_agrees_with_full_on_a_sample():
    rng = np.random.default_rng(5)
    x = _rep(n=3000, seed=6)
    y = np.tanh(x @ rng.normal(size=(24, 12))) + 0.5 * rng.normal(size=(3000, 12))  # related, non-linear
    full, mini = linear_cka(x, y), minibatch_cka(x, y, 500, seed=1)
    assert 0.2 < full < 0.9
    assert mini == pytest.approx(full, abs=0.03)


def test_cka_rejects_mismatched_examples():
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(np.zeros((5, 2)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="batch_size >= 4"):
        minibatch_cka(np.zeros((5, 2)), np.zeros((5, 2)), 3)


# --- the stage on the tiny dataset ------------------------------------------------------------------

def _run_dir(path, tagger, model: str, fraction: float, n_train: int):
    """A head-run directory whose model.pt holds `tagger` (and a head), with its run.json."""
    from hhfm import layout
    from hhfm.heads.model import EventClassifier, build_head, save_event_model

    path.mkdir(parents=True)
    head = build_head("embedding", tagger.backbone.embed_dim,
                      {"phi_width": 8, "phi_layers": 1, "rho_width": 8, "rho_layers": 1, "pool": "sum"})
    save_event_model(path / "model.pt", EventClassifier("embedding", head, tagger), model)
    run = {k: None for k in layout.RUN_FIELDS}
    run.update(model=model, representation="embedding", strategy=model.split("-")[1], fraction=fraction, seed=0,
               n_train_events=n_train)
    layout.write_run(path / "run.json", run)
    return str(path)


def test_taps_do_not_change_the_output(tiny_backbone, tiny_dataset):
    from hhfm.models import load_tagger
    from hhfm.represent.jets import layer_representations, sample_test_jets

    tagger = load_tagger(tiny_backbone)[0]
    jets = sample_test_jets(tiny_dataset, 40, seed=1)
    reps = layer_representations(tagger, jets, batch_size=16)
    n_blocks, n_cls = len(tagger.backbone.blocks), len(tagger.backbone.cls_blocks)
    assert list(reps) == ["embed", *[f"block{i + 1}" for i in range(n_blocks)], *[f"cls{i + 1}" for i in range(n_cls)],
                          "output"]
    with torch.no_grad():
        plain = tagger.backbone(torch.from_numpy(jets.x).float(), torch.from_numpy(jets.v).float(),
                                torch.from_numpy(jets.mask))
    assert np.allclose(reps["output"], plain.numpy(), atol=1e-5)
    assert all(r.shape == (len(jets), tagger.backbone.embed_dim) for r in reps.values())
    # the same jets for the same seed; the event labels are those of the jets' events
    again = sample_test_jets(tiny_dataset, 40, seed=1)
    assert np.array_equal(again.rows, jets.rows)
    import h5py

    with h5py.File(tiny_dataset) as f:
        events = f["jets/event"][:][jets.rows]
        assert (f["events/split"][:][events] == 2).all()
        assert np.array_equal(f["events/label"][:][events], jets.event_label)


def test_stage_tables(tiny_backbone, tiny_dataset, tmp_path):
    """A run holding the pretrained weights has CKA 1 at every layer pair on the diagonal; a perturbed one
    less at the output; latent maps and per-dimension AUCs for the pretrained and the chosen run."""
    import json

    import pandas as pd

    from hhfm.cli import main as hhfm_main
    from hhfm.models import load_tagger

    same = _run_dir(tmp_path / "same", load_tagger(tiny_backbone)[0], "embedding-finetuned", 1.0, 100)
    moved = load_tagger(tiny_backbone)[0]
    with torch.no_grad():
        for name, p in moved.named_parameters():
            if name.startswith("backbone.cls_blocks"):
                p.add_(0.5 * torch.randn_like(p))
    other = _run_dir(tmp_path / "moved", moved, "embedding-finetuned", 0.1, 10)
    cfg = {"seed": 1, "represent": {"n_jets": 120, "cka_batch_size": 0, "latent_jets": 60, "perplexity": 10}}
    out = tmp_path / "summary"
    assert hhfm_main(["represent", "--config", json.dumps(cfg), "--dataset", str(tiny_dataset), "--pretrained",
                      str(tiny_backbone), "--runs", same, other, "--outdir", str(out)]) == 0
    cka = pd.read_csv(out / "cka.csv")
    diag = cka[(cka["layer_a"] == cka["layer_b"]) & (cka["fraction"] == 1.0)]
    assert len(diag) == cka["layer_a"].nunique() and np.allclose(diag["cka"], 1.0, atol=1e-6)
    off = cka[(cka["fraction"] == 1.0) & (cka["layer_a"] != cka["layer_b"])]
    assert (off["cka"] < 1 - 1e-3).all()  # different layers are different representations
    moved_out = cka[(cka["fraction"] == 0.1) & (cka["layer_a"] == "output") & (cka["layer_b"] == "output")]["cka"]
    assert 0 < float(moved_out.iloc[0]) < 0.999
    moved_embed = cka[(cka["fraction"] == 0.1) & (cka["layer_a"] == "embed") & (cka["layer_b"] == "embed")]["cka"]
    assert float(moved_embed.iloc[0]) == pytest.approx(1.0, abs=1e-6)  # particle layers were not touched
    latent = pd.read_parquet(out / "latent.parquet")
    assert list(latent["embedding"].unique()) == ["pretrained", "embedding-finetuned f=1 s=0"]
    assert (latent.groupby("embedding").size() == 60).all() and np.isfinite(latent[["x", "y"]]).all().all()
    aucs = pd.read_csv(out / "embedding_auc.csv")
    d = load_tagger(tiny_backbone)[0].backbone.embed_dim
    assert aucs.groupby("embedding", dropna=False).size().to_dict() == {"pretrained": d, "embedding-finetuned": 2 * d}
    assert aucs["auc"].between(0, 1).all()
