"""Domain adaptation (issue 14): the backbone registry, JetClass pretraining scored on the analysis jets,
the published ParticleNet imported as a backbone, heads on it, and the domain-adaptation figure."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fixtures_pretrain import TINY_SEED, pretrain_config
from hhfm import backbones
from hhfm.dataset import jet_rows
from hhfm.errors import ConfigError
from hhfm.features import JETCLASS_CLASSES, SPLITS
from hhfm.layout import HISTORY_COLUMNS, JET_SCORE_COLUMNS
from hhfm.models import load_published_particlenet, load_tagger

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "src/hhfm/config.schema.yaml").read_text())["properties"]


# ---------------------------------------------------------------------------------------- registry


def test_schema_lists_exactly_the_registered_backbones():
    names = set(backbones.BACKBONES)
    assert set(SCHEMA["pretrain"]["properties"]["task"]["enum"]) == names
    assert set(SCHEMA["pretrain"]["properties"]["report_backbones"]["items"]["enum"]) == names
    assert set(SCHEMA["heads"]["properties"]["backbone_task"]["enum"]) == names | {None}
    pattern = SCHEMA["heads"]["properties"]["models"]["items"]["pattern"]
    assert set(pattern.split("@(")[1].split(")")[0].split("|")) == names


def test_lineage_and_head_model_backbones():
    assert backbones.lineage("xbb") == ["xbb"]
    assert backbones.lineage("jetclass_xbb") == ["jetclass_xbb", "jetclass"]
    assert backbones.lineage("particlenet_jetclass_xbb") == ["particlenet_jetclass_xbb", "particlenet_jetclass"]
    assert backbones.of_head_model("standard", "xbb") is None
    assert backbones.of_head_model("embedding-frozen", "multiclass") == "multiclass"
    assert backbones.of_head_model("score-finetuned@jetclass_xbb", "xbb") == "jetclass_xbb"
    with pytest.raises(ConfigError, match="unknown backbone 'nope'"):
        backbones.of_head_model("score-frozen@nope", "xbb")
    from hhfm.heads.model import parse_model

    assert parse_model("embedding_only-scratch@particlenet_jetclass") == ("embedding_only", "scratch")
    for b in backbones.BACKBONES.values():  # every chain starts from a known backbone; published ones do not train
        assert (b.init is None or b.init in backbones.BACKBONES) and (b.published is None) == (b.data is not None)


def test_config_accepts_head_models_on_other_backbones():
    from hhfm import config

    cfg = config.validate({"heads": {"models": ["embedding-frozen@particlenet_jetclass", "score-scratch@jetclass"]}})
    assert cfg["heads"]["models"][0] == "embedding-frozen@particlenet_jetclass"
    with pytest.raises(ConfigError, match="heads.models"):
        config.validate({"heads": {"models": ["embedding-frozen@imagenet"]}})
    with pytest.raises(ConfigError, match="jetclass.split_fractions"):
        config.validate({"jetclass": {"split_fractions": {"train": 0.5, "val": 0.1, "test": 0.1}}})


# --------------------------------------------------------------- JetClass pretraining and import


def _scores_are_the_test_jets(scores: pd.DataFrame, dataset: Path) -> None:
    assert list(scores.columns) == JET_SCORE_COLUMNS and scores["score"].between(0, 1).all()
    with h5py.File(dataset) as f:
        expected = jet_rows(f, "test")
        assert (f["jets/split"][:][scores["jet"]] == SPLITS["test"]).all()
    assert np.array_equal(np.sort(scores["jet"].to_numpy()), expected)


def _rescore(tagger, dataset: Path, rows: np.ndarray) -> np.ndarray:
    with h5py.File(dataset) as f:
        x, v, m = (torch.from_numpy(f["jets"][k][np.sort(rows)]) for k in ("features", "vectors", "mask"))
    with torch.no_grad():
        return tagger.xbb_score(tagger(x.float(), v.float(), m.bool())).numpy()


def test_jetclass_pretraining_scores_the_analysis_jets(tiny_dataset, tmp_path):
    """The jetclass objective trains 10 classes on a JetClass-format dataset and writes the zero-shot H->bb
    score of the ANALYSIS test jets (p(Hbb) / (p(Hbb) + p(QCD))), what the saved model gives for them."""
    from hhfm.jetclass import build_jetclass_dataset
    from hhfm.pretrain import train
    from test_jetclass_reader import _random_file

    files = [str(_random_file(tmp_path / f"part{i}.root", 150, JETCLASS_CLASSES, seed=i)) for i in range(2)]
    jc = tmp_path / "jetclass.h5"
    build_jetclass_dataset(files, jc, max_particles=16, seed=TINY_SEED)
    cfg = pretrain_config(task="jetclass", epochs=1, batch_size=64, patience=0)
    out = tmp_path / "jetclass"
    assert train(cfg, str(jc), out, score_dataset=str(tiny_dataset))
    tagger, meta = load_tagger(out / "backbone.pt")
    assert tagger.task == "jetclass" and tagger.head.out_features == len(JETCLASS_CLASSES)
    assert set(meta["class_weight"]) == set(JETCLASS_CLASSES) and meta["backbone"] == "jetclass"
    assert meta["dataset"] == str(jc) and meta["score_dataset"] == str(tiny_dataset) and 0 <= meta["own_test_auc"] <= 1
    scores = pd.read_parquet(out / "jet_scores.parquet")
    _scores_are_the_test_jets(scores, tiny_dataset)
    rows = np.sort(scores["jet"].to_numpy()[:8])
    logits = None
    with h5py.File(tiny_dataset) as f:
        x, v, m = (torch.from_numpy(f["jets"][k][rows]) for k in ("features", "vectors", "mask"))
    with torch.no_grad():
        logits = tagger(x.float(), v.float(), m.bool())
    p = torch.softmax(logits, 1)
    hbb, qcd = JETCLASS_CLASSES.index("Hbb"), JETCLASS_CLASSES.index("QCD")
    by_hand = (p[:, hbb] / (p[:, hbb] + p[:, qcd])).numpy()
    assert np.allclose(scores.set_index("jet").loc[rows, "score"].to_numpy(), by_hand, atol=1e-5)


def test_import_published_particlenet(tiny_dataset, tmp_path):
    """import_published: backbone.pt is the published ParticleNet in our checkpoint format (same outputs), with
    provenance; jet_scores.parquet is its zero-shot score of the analysis test jets; metrics.csv is empty."""
    from hhfm.pretrain import import_published

    weights = ROOT / backbones.PUBLISHED_PARTICLENET
    cfg = pretrain_config(task="particlenet_jetclass")
    import_published(cfg, str(weights), str(tiny_dataset), tmp_path)
    tagger, meta = load_tagger(tmp_path / "backbone.pt")
    assert tagger.backbone.config["architecture"] == "particlenet" and tagger.task == "jetclass"
    assert meta["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest() and meta["backbone"] == "particlenet_jetclass"
    published = load_published_particlenet(weights)
    for name, t in published.state_dict().items():
        assert torch.equal(tagger.state_dict()[name], t), name
    scores = pd.read_parquet(tmp_path / "jet_scores.parquet")
    _scores_are_the_test_jets(scores, tiny_dataset)
    rows = np.sort(scores["jet"].to_numpy()[:6])
    assert np.allclose(_rescore(published, tiny_dataset, rows), scores.set_index("jet").loc[rows, "score"], atol=1e-5)
    assert list(pd.read_csv(tmp_path / "metrics.csv").columns) == HISTORY_COLUMNS
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 0


def test_finetuned_head_on_the_published_particlenet(tiny_dataset, tmp_path):
    """embedding-finetuned@particlenet_jetclass: the head's tagger starts as the published ParticleNet and its
    weights move; run.json names the backbone and counts ParticleNet FLOPs."""
    from hhfm.cli import main as hhfm_main
    from hhfm.pretrain import import_published

    import_published(pretrain_config(task="particlenet_jetclass"), str(ROOT / backbones.PUBLISHED_PARTICLENET),
                     str(tiny_dataset), tmp_path / "pn")
    cfg = {"seed": 7, "heads": {"phi_width": 8, "phi_layers": 1, "rho_width": 8, "rho_layers": 1, "batch_size": 16,
                                "max_epochs_backbone": 1, "min_events_per_epoch": 16, "val_min_events": 10}}
    out = tmp_path / "run"
    argv = ["train-head", "--config", json.dumps(cfg), "--model", "embedding-finetuned@particlenet_jetclass",
            "--fraction", "0.05", "--seed", "0", "--dataset", str(tiny_dataset), "--backbone",
            str(tmp_path / "pn/backbone.pt"), "--outdir", str(out), "--threads", "2"]
    assert hhfm_main(argv) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "embedding-finetuned@particlenet_jetclass" and run["strategy"] == "finetuned"
    assert run["backbone_task"] == "particlenet_jetclass" and run["train_flops"] > 0
    assert run["pretrain_flops"] is None  # published: its training cost is not known here
    from hhfm.heads.model import load_run_tagger

    tuned = load_run_tagger(out / "model.pt").state_dict()
    start = load_published_particlenet(ROOT / backbones.PUBLISHED_PARTICLENET).state_dict()
    changed = [k for k, t in start.items() if t.is_floating_point() and not torch.equal(tuned[k], t)]
    assert len(changed) > len(start) // 2, f"only {len(changed)} of {len(start)} tensors changed"


# ------------------------------------------------------------------------------------- figure


def _agg(rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": m, "representation": r, "strategy": s, "fraction": f, "mass": "all",
                          "metric": "rej90", "n_train_events": 1000 * f, "mean": v, "std": 0.0, "n": 1,
                          "err_lo": 1.0, "err_hi": 1.0, "capped": False} for m, r, s, f, v in rows])


def test_domain_adaptation_figure_lines_and_ratios():
    """One line per (representation, source) in each strategy's panel; ratios divide by the default source."""
    from hhfm.plots.domain import domain_adaptation

    agg = _agg([("standard", "fj_doubleb", "frozen", f, 5.0) for f in (0.1, 1.0)]
               + [("embedding-frozen", "embedding", "frozen", f, 10.0 * f) for f in (0.1, 1.0)]
               + [("embedding-frozen@particlenet_jetclass", "embedding", "frozen", f, 30.0 * f) for f in (0.1, 1.0)]
               + [("embedding-finetuned", "embedding", "finetuned", f, 20.0 * f) for f in (0.1, 1.0)])
    fig = domain_adaptation(agg, "xbb")
    top_frozen, top_tuned, ratio_frozen = fig.axes[0], fig.axes[1], fig.axes[2]
    labels = sorted(line.get_label() for line in top_frozen.get_lines())
    assert labels == ["embedding @ particlenet_jetclass", "embedding @ xbb"]
    assert [line.get_label() for line in top_tuned.get_lines()] == ["embedding @ xbb"]
    ratios = sorted(tuple(np.round(line.get_ydata(), 6)) for line in ratio_frozen.get_lines() if len(line.get_ydata()) == 2)
    assert (3.0, 3.0) in ratios and (1.0, 1.0) in ratios
    single = domain_adaptation(agg[~agg["model"].str.contains("@")], "xbb")
    assert any("at least two pretraining sources" in t.get_text() for t in single.axes[0].texts)
