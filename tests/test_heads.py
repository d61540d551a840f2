"""Event heads: architecture invariances, backbone handling per strategy, training, resume, outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from hhfm import backbones, config, layout, model_names
from hhfm.cli import main as hhfm_main
from hhfm.dataset import read_rows
from hhfm.errors import ConfigError, InputError
from hhfm.heads.data import HeadData, training_weights, val_fraction
from hhfm.heads.model import DeepSetsHead, EventClassifier, build_head, load_run_tagger, parse_model
from hhfm.heads.task import HeadTask, build_model
from hhfm.layout import HISTORY_COLUMNS, RUN_FIELDS, SCORE_COLUMNS
from hhfm.metrics import auc
from hhfm.models import load_tagger

#: tiny head and training settings (the `heads` section): seconds per run
PARAMS = {"phi_width": 16, "phi_layers": 2, "rho_width": 16, "rho_layers": 2, "batch_size": 32,
          "max_epochs": 4, "max_epochs_backbone": 2, "min_events_per_epoch": 64, "patience": 10,
          "val_min_events": 30, "lr_head": 3e-3, "lr_backbone_finetuned": 1e-3, "lr_backbone_scratch": 1e-3}
SEED = 7


def heads_section(**over):
    """The validated `heads` section: PARAMS over the schema's defaults."""
    return config.section("heads", {**PARAMS, **over})


@pytest.fixture(scope="module")
def dataset(tiny_dataset) -> Path:
    """The real skim of the simulated fixture files (tests/fixtures_skim.py)."""
    return Path(tiny_dataset)


@pytest.fixture(scope="module")
def backbone(tiny_backbone) -> Path:
    """The pretrain stage's tiny backbone, really pretrained on `tiny_dataset` (tests/fixtures_pretrain.py)."""
    return Path(tiny_backbone)


@pytest.fixture(scope="module")
def embed_dim(backbone) -> int:
    return load_tagger(backbone)[0].backbone.embed_dim


@pytest.fixture(scope="module")
def embeddings(dataset, backbone, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("embed") / "embeddings.h5"
    assert hhfm_main(["embed", "--dataset", str(dataset), "--backbone", str(backbone), "--output", str(out)]) == 0
    return out


def train_head(model: str, outdir: Path, dataset: Path, backbone: Path | None = None, embeddings: Path | None = None,
               fraction: float = 1.0, seed: int = 0, params: dict | None = None, extra: tuple = ()) -> int:
    cfg = {"seed": SEED, "heads": {**PARAMS, **(params or {})}}
    argv = ["train-head", "--config", json.dumps(cfg), "--model", model, "--fraction",
            str(fraction), "--seed", str(seed), "--dataset", str(dataset), "--outdir", str(outdir), *extra]
    argv += ["--backbone", str(backbone)] if backbone else []
    argv += ["--embeddings", str(embeddings)] if embeddings else []
    return hhfm_main(argv)


def tagger_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Tagger weights inside a head run's checkpoint (latest epoch), named as in backbone.pt."""
    state = torch.load(checkpoint, weights_only=True)["model"]
    return {k[len("tagger."):]: t for k, t in state.items() if k.startswith("tagger.")}


# --- architecture -------------------------------------------------------------------------------

@pytest.mark.parametrize("pool", ["sum", "mean"])
def test_head_invariant_to_jet_order_and_padding(pool):
    torch.manual_seed(0)
    head = DeepSetsHead(6, 8, 2, 8, 2, pool)
    jets = torch.randn(5, 3, 6)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 1]], dtype=torch.bool)
    ref = head(jets, mask)
    perm = torch.tensor([2, 0, 1])
    assert torch.allclose(head(jets[:, perm], mask[:, perm]), ref, atol=1e-6)
    padded = torch.cat([jets, torch.full((5, 2, 6), float("nan"))], 1)  # garbage in two padding slots
    padded[:, :3][~mask] = 1e6
    assert torch.allclose(head(padded, torch.cat([mask, torch.zeros(5, 2, dtype=torch.bool)], 1)), ref, atol=1e-6)
    changed = jets.clone()
    changed[0, 0] += 1.0  # a real jet does matter
    assert not torch.allclose(head(changed, mask)[0], ref[0])


def test_event_classifier_with_backbone_ignores_padding_jets(dataset, backbone, embed_dim):
    tagger, _ = load_tagger(backbone)
    torch.manual_seed(0)
    model = EventClassifier("embedding", build_head("embedding", embed_dim, heads_section()), tagger,
                            freeze_backbone=True).eval()
    data = HeadData(dataset, 1.0, heads_section(), "embedding", constituents=True)
    idx = np.arange(8)
    batch = data.batch("test", idx, torch.device("cpu"))
    ref = model(batch)
    # reverse the order of the real jets inside every event: the same jets reach the head in another order
    jets = data.splits["test"].jets[idx]
    rev = np.array([np.concatenate([row[row >= 0][::-1], row[row < 0]]) for row in jets])
    data.splits["test"].jets[idx] = rev
    assert torch.allclose(model(data.batch("test", idx, torch.device("cpu"))), ref, atol=1e-5)


def test_parse_model_and_head_shapes():
    assert parse_model("standard") == ("standard", "frozen")
    assert parse_model("embedding_only-scratch") == ("embedding_only", "scratch")
    for bad in ("embedding", "score-partial", "foo-frozen"):
        with pytest.raises(ConfigError):
            parse_model(bad)
    p = heads_section()
    assert build_head("score", 16, p).phi[0].in_features == 6
    assert build_head("embedding", 16, p).phi[0].in_features == 21
    assert build_head("embedding_only", 16, p).phi[0].in_features == 16


# --- backbone handling per strategy --------------------------------------------------------------

def test_frozen_backbone_stays_bit_identical(dataset, backbone, embed_dim, tmp_path):
    """Frozen with the backbone in the loop (no cache): weights and BatchNorm buffers never change."""
    assert train_head("embedding-frozen", tmp_path / "run", dataset, backbone, fraction=0.2, params={"max_epochs": 2}) == 0
    ref, _ = load_tagger(backbone)
    after = tagger_state(tmp_path / "run" / "checkpoint.pt")
    assert after.keys() == ref.state_dict().keys()
    assert all(torch.equal(after[k], t) for k, t in ref.state_dict().items())
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["n_params_trainable"] == sum(p.numel() for p in build_head("embedding", embed_dim, heads_section()).parameters())


def test_cache_matches_backbone_in_the_loop(dataset, backbone, embeddings, embed_dim):
    params = heads_section()
    cached = HeadData(dataset, 1.0, params, "embedding", embeddings=embeddings)
    live = HeadData(dataset, 1.0, params, "embedding", constituents=True)
    tagger, _ = load_tagger(backbone)
    model = EventClassifier("embedding", build_head("embedding", embed_dim, params), tagger, freeze_backbone=True).eval()
    idx = np.arange(16)
    with torch.no_grad():
        rep_live = model.jet_representation(live.batch("val", idx, torch.device("cpu")))
    batch = cached.batch("val", idx, torch.device("cpu"))
    assert torch.allclose(rep_live[batch["jmask"]], batch["rep"][batch["jmask"]], atol=1e-5)
    with h5py.File(embeddings) as f, h5py.File(dataset) as d:
        valid = f["valid"][:]
        used = d["events/jets"][:]
        assert f["embedding"].shape == (len(d["jets/mask"]), embed_dim)
        assert np.array_equal(np.flatnonzero(valid), np.unique(used[used >= 0]))  # every jet an event uses
        assert np.isfinite(f["embedding"][:][valid]).all() and np.isnan(f["score"][:][~valid]).all()
        assert np.all((f["score"][:][valid] >= 0) & (f["score"][:][valid] <= 1))


def test_finetuned_starts_from_checkpoint_and_changes(dataset, backbone, tmp_path):
    ref = load_tagger(backbone)[0].state_dict()
    model = build_model("embedding", "finetuned", heads_section(), [7, 0], backbone=str(backbone))
    assert all(torch.equal(model.tagger.state_dict()[k], t) for k, t in ref.items())
    assert train_head("embedding-finetuned", tmp_path / "run", dataset, backbone, fraction=0.2,
                      params={"max_epochs_backbone": 1}) == 0
    after = tagger_state(tmp_path / "run" / "checkpoint.pt")
    changed = [k for k, t in ref.items() if t.is_floating_point() and not torch.equal(after[k], t)]
    assert len(changed) > len(ref) // 2, f"only {len(changed)} of {len(ref)} tensors changed"


def test_strategies_share_the_head_architecture_and_init(backbone, embed_dim):
    params = heads_section()
    heads = [build_model("embedding", "frozen", params, [7, 0], rep_dim=embed_dim).head.state_dict()]
    heads += [build_model("embedding", s, params, [7, 0], backbone=str(backbone)).head.state_dict()
              for s in ("finetuned", "scratch")]
    for other in heads[1:]:
        assert other.keys() == heads[0].keys() and all(torch.equal(other[k], heads[0][k]) for k in other)


def test_scratch_starts_from_fresh_init(backbone):
    ref = load_tagger(backbone)[0].state_dict()
    params = heads_section()
    a = build_model("embedding", "scratch", params, [7, 0], backbone=str(backbone)).tagger.state_dict()
    b = build_model("embedding", "scratch", params, [7, 0], backbone=str(backbone)).tagger.state_dict()
    c = build_model("embedding", "scratch", params, [7, 1], backbone=str(backbone)).tagger.state_dict()
    assert a.keys() == ref.keys() and all(a[k].shape == ref[k].shape for k in ref)
    weights = [k for k in ref if k.endswith("weight") and ref[k].dim() == 2]
    assert weights and not any(torch.equal(a[k], ref[k]) for k in weights)
    assert all(torch.equal(a[k], b[k]) for k in ref)  # deterministic for a seed
    assert not any(torch.equal(a[k], c[k]) for k in weights)  # another seed, another init


# --- end-to-end runs ------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["standard", "score-frozen", "embedding_only-frozen", "embedding-finetuned",
                                   "score-scratch"])
def test_end_to_end_run_lowers_loss(model, dataset, backbone, embeddings, tmp_path):
    out = tmp_path / "run"
    frozen = model.endswith("frozen")
    assert train_head(model, out, dataset, None if model == "standard" else backbone,
                      embeddings if frozen else None, fraction=0.5 if frozen else 0.2, seed=1) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == HISTORY_COLUMNS
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns) == SCORE_COLUMNS
    with h5py.File(dataset) as f:
        test_rows = np.flatnonzero(f["events/split"][:] == 2)
        assert np.array_equal(scores["event"], test_rows)
        assert np.array_equal(scores["label"], f["events/label"][:][test_rows])
        assert np.allclose(scores["weight"], f["events/weight"][:][test_rows])
        lead = f["events/jets"][:][test_rows, 0]
        assert np.allclose(scores["sdmass_j1"], f["jets/fj_sdmass"][:][lead])
    assert scores["score"].between(0, 1).all()
    assert np.allclose(scores["score"], 1 / (1 + np.exp(-scores["logit"])), atol=1e-6)  # score = sigmoid(logit)
    val = pd.read_parquet(out / "val_scores.parquet")
    assert list(val.columns) == SCORE_COLUMNS and len(val) == json.loads((out / "run.json").read_text())["n_val_events"]
    with h5py.File(dataset) as f:
        assert (f["events/split"][:][val["event"]] == 1).all()  # validation events only, never test ones
    if frozen:  # 4 epochs on fixed inputs: the head separates signal from background
        assert auc(scores["score"].to_numpy(), scores["label"].to_numpy()) > 0.6
    run = json.loads((out / "run.json").read_text())
    assert set(run) == set(RUN_FIELDS)
    assert run["model"] == model and run["fraction"] == (0.5 if frozen else 0.2) and run["seed"] == 1
    assert run["n_test_events"] == len(scores) and run["epochs_run"] == len(metrics)
    assert run["wall_time_s"] > 0 and run["device"].startswith("cpu")
    assert run["backbone"] == (None if model == "standard" else str(backbone))
    assert run["backbone_task"] == (None if model == "standard" else "xbb")
    # compute accounting: this run's FLOPs; the pretraining's own record for a pretrained backbone
    assert run["n_ranks"] == 1 and run["train_flops"] > 0
    pre = None if model == "standard" or model.endswith("scratch") else load_tagger(backbone)[1]["compute"]
    assert run["pretrain_flops"] == (pre and pre["train_flops"]) and run["pretrain_wall_time_s"] == (pre and pre["wall_time_s"])
    # model.pt: the run's own tagger for backbones trained in the loop, nothing for heads on a cache
    tagger = load_run_tagger(out / "model.pt")
    assert (tagger is None) == (model == "standard" or frozen)
    if tagger is not None and run["best_epoch"] == run["epochs_run"]:
        latest = tagger_state(out / "checkpoint.pt")
        assert all(torch.equal(t, latest[k]) for k, t in tagger.state_dict().items())


def test_resume_after_interruption_gives_same_result(dataset, backbone, tmp_path):
    """An uninterrupted run and one stopped after epoch 1 then resumed end bit-identical (dropout included)."""
    args = dict(dataset=dataset, backbone=backbone, fraction=0.2)
    assert train_head("embedding-scratch", tmp_path / "full", **args) == 0
    assert train_head("embedding-scratch", tmp_path / "cut", **args, extra=("--stop-after", "1")) == 0
    assert not (tmp_path / "cut" / "scores.parquet").exists()
    assert len(pd.read_csv(tmp_path / "cut" / "metrics.csv")) == 1
    assert train_head("embedding-scratch", tmp_path / "cut", **args) == 0
    full, cut = (pd.read_parquet(tmp_path / d / "scores.parquet") for d in ("full", "cut"))
    assert full.equals(cut)
    cols = ["epoch", "train_loss", "val_loss", "val_auc", "lr"]
    assert pd.read_csv(tmp_path / "full" / "metrics.csv")[cols].equals(pd.read_csv(tmp_path / "cut" / "metrics.csv")[cols])


def test_smaller_fraction_trains_on_a_nested_subset(dataset):
    params = heads_section()
    small, large = (HeadData(dataset, f, params, "standard") for f in (0.2, 0.6))
    assert set(small.splits["train"].rows) < set(large.splits["train"].rows)
    assert np.array_equal(small.splits["test"].rows, large.splits["test"].rows)
    assert len(small.splits["val"]) <= len(large.splits["val"])


# --- helpers and bad input -------------------------------------------------------------------------

def test_validation_size_policy():
    assert val_fraction(10, 1000, 0.25, 200) == pytest.approx(0.2)  # floor
    assert val_fraction(2000, 1000, 0.25, 200) == pytest.approx(0.5)  # proportional
    assert val_fraction(10000, 1000, 0.25, 200) == 1.0  # capped at the split


def test_read_rows_matches_fancy_indexing(tmp_path):
    data = np.arange(50_000, dtype=np.int64).reshape(-1, 2)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = data
        rows = np.unique(np.random.default_rng(0).integers(0, len(data), 3000))
        assert np.array_equal(read_rows(f["x"], rows, block=1000), data[rows])


def test_bad_inputs_raise_clear_errors(dataset, backbone, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        HeadData(tmp_path / "missing.h5", 1.0, heads_section(), "standard")
    with pytest.raises(ConfigError, match=r"'heads.phi_widht': unknown key"):
        heads_section(phi_widht=3)
    with pytest.raises(ConfigError, match="heads.pool"):
        heads_section(pool="max")
    assert train_head("embedding-frozen", tmp_path / "r", dataset) == 1  # neither cache nor backbone
    assert train_head("score-frozen", tmp_path / "r", dataset, backbone, tmp_path / "nope.h5") == 1
    assert not (tmp_path / "r" / "scores.parquet").exists()
    assert hhfm_main(["embed", "--dataset", str(dataset), "--backbone", str(tmp_path / "none.pt"),
                      "--output", str(tmp_path / "e.h5")]) == 1
    assert hhfm_main(["embed", "--dataset", str(tmp_path / "none.h5"), "--backbone", str(backbone),
                      "--output", str(tmp_path / "e.h5")]) == 1
    assert not (tmp_path / "e.h5").exists()


# --- +weighted models: event weights, names, loss ---------------------------------------------------

def test_training_weights_per_mass_balance_mean_one():
    label = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    mass = np.array([0, 0, 0, 1000, 1000, 1000, 2500, 2500], dtype=np.float32)
    weight = np.array([10.0, 1.0, 0.1, 0.5, 0.25, 0.25, 0.2, 0.8])
    before = weight.copy()
    w = training_weights(label, mass, weight, "d.h5 (train events)")
    # by hand: background 11.1 pb; each mass to 11.1 / 2 = 5.55 (same shape inside a mass); then mean 1 over 8 events
    k = 8 / 22.2
    expected = k * np.array([10.0, 1.0, 0.1, 2.775, 1.3875, 1.3875, 1.11, 4.44])
    assert np.allclose(w, expected, rtol=1e-12)
    assert w.dtype == np.float64 and np.array_equal(weight, before)  # the input is not modified
    sig = label == 1
    assert w.mean() == pytest.approx(1.0)
    assert w[sig].sum() == pytest.approx(w[~sig].sum())  # class balance
    assert w[mass == 1000].sum() == pytest.approx(w[mass == 2500].sum())  # every mass counts equally
    assert np.allclose(w[~sig] / weight[~sig], w[0] / weight[0])  # background keeps its cross-section shape


@pytest.mark.parametrize("weight,label,message", [
    ([1.0, np.nan, 1.0], [0, 0, 1], r"d\.h5 \(train events\): field 'weight' .* 1 non-finite"),
    ([1.0, np.inf, 1.0], [0, 1, 1], "field 'weight' .* non-finite"),
    ([1.0, -0.5, 1.0], [0, 0, 1], "field 'weight' .* 1 negative"),
    ([1.0, 2.0, 1.0], [0, 0, 0], "need signal and background events, got 0 signal and 3 background"),
    ([1.0, 2.0, 1.0], [1, 1, 1], "got 3 signal and 0 background"),
    ([0.0, 0.0, 1.0], [0, 0, 1], "sums to zero over the background"),
    ([1.0, 0.0, 1.0], [0, 1, 1], "sums to zero over the signal events of mass 1000 GeV"),
])
def test_training_weights_bad_input(weight, label, message):
    mass = np.array([0.0, 1000.0, 2500.0]) * np.array(label)
    with pytest.raises(InputError, match=message):
        training_weights(np.array(label), mass, np.array(weight), "d.h5 (train events)")


GOOD_NAMES = ["standard", "standard+weighted", "score-frozen", "embedding-finetuned+weighted",
              "embedding_only-scratch@xbb", "embedding-frozen@particlenet_jetclass+weighted",
              "embedding-frozen@jetclass+weighted", "score-scratch@particlenet_jetclass_xbb+weighted"]
BAD_NAMES = ["weighted", "+weighted", "standard+", "standard@xbb", "standard+weighted+weighted",
             "embedding-frozen+weighted@jetclass", "embedding-frozen@nope+weighted", "embedding-frozen@+weighted",
             "embedding-frozen+Weighted", "embedding-frozen-weighted", "score-partial+weighted",
             "embedding-frozen+unweighted", "embedding-frozen@jetclass+weighted "]


def test_every_consumer_parses_a_weighted_name_alike():
    name, twin = "embedding-frozen@jetclass+weighted", "embedding-frozen@jetclass"
    assert model_names.parse(name) == ("embedding", "frozen", "jetclass", True)
    assert model_names.parse(twin) == ("embedding", "frozen", "jetclass", False)
    assert model_names.parse("standard+weighted") == ("standard", "frozen", None, True)
    assert parse_model(name) == ("embedding", "frozen")
    assert backbones.of_head_model(name, "xbb") == "jetclass" and backbones.of_head_model("standard+weighted", "xbb") is None
    assert backbones.of_head_model("embedding-finetuned+weighted", "multiclass") == "multiclass"
    assert re.fullmatch(model_names.pattern(), name)  # the Snakefile's {model} constraint
    assert config.validate({"heads": {"models": [name]}})["heads"]["models"] == [name]
    # tables: the `weighted` run column, also for run.json files written before it existed
    assert layout.run_labels({"model": name, "representation": "embedding", "strategy": "frozen", "fraction": 1.0,
                              "seed": 0, "n_train_events": 10})["weighted"] is True
    # figures: the same colour as the unweighted twin, another line style
    from hhfm.plots.common import model_colors, model_linestyle

    colors = model_colors([name, twin, "standard"])
    assert colors[name] == colors[twin] != colors["standard"]
    assert model_linestyle(name) == "--" and model_linestyle(twin) == "-"


@pytest.mark.parametrize("name", GOOD_NAMES + BAD_NAMES)
def test_schema_pattern_and_parser_accept_the_same_names(name):
    def schema_ok() -> bool:
        try:
            config.validate({"heads": {"models": [name]}})
        except ConfigError:
            return False
        return True

    def parser_ok() -> bool:
        try:
            model_names.parse(name)
        except ConfigError:
            return False
        return True

    expected = name in GOOD_NAMES
    assert schema_ok() == parser_ok() == bool(re.fullmatch(model_names.pattern(), name)) == expected


def _task(dataset: Path, weighted: bool) -> HeadTask:
    params = heads_section()
    data = HeadData(dataset, 1.0, params, "standard", weighted=weighted)
    model = build_model("standard", "frozen", params, [SEED, 0], rep_dim=1)
    return HeadTask(model, data, "frozen", params, [SEED, 0], torch.device("cpu"))


def _bce_terms(logit: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))] per event, by hand."""
    logit = logit.astype(np.float64)
    return np.logaddexp(0, -logit) * y + np.logaddexp(0, logit) * (1 - y)


def test_weighted_loss_is_the_mean_of_weight_times_bce(dataset):
    task = _task(dataset, weighted=True)
    train, val = task.data.splits["train"], task.data.splits["val"]
    assert task.weighted and task.pos_weight is None
    for ev in (train, val):  # the split's own weights, a pure function of its events
        assert np.array_equal(ev.loss_weight, training_weights(ev.label, ev.mass, ev.weight, "x"))
        assert ev.loss_weight.mean() == pytest.approx(1.0)
    assert task.data.splits["test"].loss_weight is None
    idx = np.arange(0, len(train), 3)
    batch = task.data.batch("train", idx, torch.device("cpu"))
    assert np.allclose(batch["weight"].numpy(), train.loss_weight[idx])
    loss, n = task.loss(batch)
    loss = loss.detach()
    with torch.no_grad():
        logit = task.model(batch).numpy()
    y, w = train.label[idx], train.loss_weight[idx]
    assert n == len(idx)
    assert float(loss) == pytest.approx(float(np.mean(w * _bce_terms(logit, y))), rel=1e-5)
    assert float(loss) != pytest.approx(float(np.mean(_bce_terms(logit, y))), rel=1e-3)  # the weights matter
    val_loss, _ = task.validate()  # early stopping's loss: same formula on the validation events and weights
    assert val_loss == pytest.approx(float(np.mean(val.loss_weight * _bce_terms(task.predict("val"), val.label))),
                                     rel=1e-9)


def test_unweighted_loss_keeps_pos_weight_and_its_batches(dataset):
    task, weighted = _task(dataset, weighted=False), _task(dataset, weighted=True)
    train = task.data.splits["train"]
    n_sig = train.label.sum()
    assert not task.weighted and task.pos_weight == pytest.approx((len(train) - n_sig) / n_sig)
    assert all(ev.loss_weight is None for ev in task.data.splits.values())
    idx = np.arange(0, len(train), 3)
    batch, wbatch = (t.data.batch("train", idx, torch.device("cpu")) for t in (task, weighted))
    assert "weight" not in batch and set(wbatch) == set(batch) | {"weight"}
    assert all(torch.equal(batch[k], wbatch[k]) for k in batch)  # same events, same inputs
    loss = task.loss(batch)[0].detach()
    with torch.no_grad():
        logit = task.model(batch).numpy()
    y = train.label[idx]
    by_hand = np.mean(_bce_terms(logit, y) * np.where(y == 1, task.pos_weight, 1.0))
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-5)


def test_weighted_run_differs_from_its_twin_and_resumes(dataset, tmp_path):
    """standard+weighted trains on other losses than standard (same seed, same events); run.json says which;
    the unweighted run is the same whether or not its twin exists; a weighted run resumes bit-identically."""
    args = dict(dataset=dataset, fraction=0.5, seed=1)
    assert train_head("standard", tmp_path / "plain", **args) == 0
    assert train_head("standard+weighted", tmp_path / "weighted", **args) == 0
    runs = {d: json.loads((tmp_path / d / "run.json").read_text()) for d in ("plain", "weighted")}
    assert runs["plain"]["weighted"] is False and runs["weighted"]["weighted"] is True
    assert runs["weighted"]["model"] == "standard+weighted" and runs["weighted"]["representation"] == "fj_doubleb"
    assert set(runs["weighted"]) == set(RUN_FIELDS)
    for key in ("n_train_events", "n_val_events", "n_test_events"):
        assert runs["plain"][key] == runs["weighted"][key]
    plain, weighted = (pd.read_parquet(tmp_path / d / "scores.parquet") for d in ("plain", "weighted"))
    assert np.array_equal(plain["event"], weighted["event"]) and not np.allclose(plain["logit"], weighted["logit"])
    hist = {d: pd.read_csv(tmp_path / d / "metrics.csv") for d in ("plain", "weighted")}
    assert not np.allclose(hist["plain"]["train_loss"], hist["weighted"]["train_loss"])
    # the unweighted run through the same code path, in another directory: bit-identical (determinism)
    assert train_head("standard", tmp_path / "again", **args) == 0
    assert plain.equals(pd.read_parquet(tmp_path / "again" / "scores.parquet"))
    # a weighted run stopped after one epoch and resumed ends as the uninterrupted one
    assert train_head("standard+weighted", tmp_path / "cut", **args, extra=("--stop-after", "1")) == 0
    assert not (tmp_path / "cut" / "scores.parquet").exists()
    assert train_head("standard+weighted", tmp_path / "cut", **args) == 0
    assert weighted.equals(pd.read_parquet(tmp_path / "cut" / "scores.parquet"))
    cols = ["epoch", "train_loss", "val_loss", "val_auc", "lr"]
    assert hist["weighted"][cols].equals(pd.read_csv(tmp_path / "cut" / "metrics.csv")[cols])


def test_figures_draw_a_weighted_model_dashed_in_its_twins_colour():
    from hhfm.plots.domain import domain_adaptation
    from hhfm.plots.performance import metric_vs_events

    models = [("standard", "fj_doubleb", 5.0), ("standard+weighted", "fj_doubleb", 4.0),
              ("embedding-frozen", "embedding", 10.0), ("embedding-frozen+weighted", "embedding", 8.0),
              ("embedding-frozen@particlenet_jetclass", "embedding", 30.0),
              ("embedding-frozen@particlenet_jetclass+weighted", "embedding", 16.0)]
    agg = pd.DataFrame([{"model": m, "representation": r, "strategy": "frozen", "fraction": f, "mass": "all",
                         "metric": "rej90", "n_train_events": 1000 * f, "mean": v * f, "std": 0.0, "n": 1,
                         "err_lo": 1.0, "err_hi": 1.0, "capped": False} for m, r, v in models for f in (0.1, 1.0)])
    fig = metric_vs_events(agg, "rej90", "standard", "rej90")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {m for m, _, _ in models}
    for name in ("standard", "embedding-frozen", "embedding-frozen@particlenet_jetclass"):
        weighted, twin = lines[name + "+weighted"], lines[name]
        assert weighted.get_color() == twin.get_color() and (weighted.get_linestyle(), twin.get_linestyle()) == ("--", "-")
    # domain adaptation: weighted heads are their own lines, their ratio taken to the weighted head on the default source
    fig = domain_adaptation(agg, "xbb")
    assert sorted(line.get_label() for line in fig.axes[0].get_lines()) == [
        "embedding @ particlenet_jetclass", "embedding @ particlenet_jetclass (+weighted)", "embedding @ xbb",
        "embedding @ xbb (+weighted)"]
    ratios = sorted(tuple(np.round(line.get_ydata(), 6)) for line in fig.axes[2].get_lines() if len(line.get_ydata()) == 2)
    assert (2.0, 2.0) in ratios and (3.0, 3.0) in ratios
