"""ParT backbone: faithfulness to weaver-core, masking/padding, permutation invariance, checkpoints."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from hhfm import config
from hhfm.errors import ConfigError, InputError
from hhfm.features import N_PARTICLE_FEATURES
from hhfm.models import (
    TASK_OUTPUTS,
    JetTagger,
    ParticleTransformer,
    build_backbone,
    build_tagger,
    convert_weaver_state_dict,
    load_tagger,
    load_weaver_checkpoint,
    load_weights_by_name,
    model_config,
    pair_features,
    save_tagger,
    trim_to_longest,
)

SMALL = {"embed_dims": [32, 64, 32], "pair_embed_dims": [16, 16], "num_heads": 4, "num_layers": 2,
         "num_cls_layers": 1}
NO_DROPOUT = {"dropout": 0.0, "attn_dropout": 0.0, "activation_dropout": 0.0}


def make_jets(B: int = 6, P: int = 30, seed: int = 0, min_n: int = 1):
    """Random jets, real particles first: x (B, P, 17), v (B, P, 4) realistic GeV four-vectors, mask (B, P)."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(min_n, P + 1, (B,), generator=g)
    n[0] = P
    mask = torch.arange(P)[None] < n[:, None]
    x = torch.randn(B, P, 17, generator=g) * mask[..., None]
    pt = torch.exp(torch.randn(B, P, generator=g) + 2)
    eta, phi = torch.randn(B, P, generator=g) * 0.3, torch.randn(B, P, generator=g) * 0.3
    m = torch.rand(B, P, generator=g) * 0.2
    v = torch.stack([pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta),
                     torch.sqrt((pt * torch.cosh(eta)) ** 2 + m**2)], -1)
    return x, v * mask[..., None], mask


def randomize(model: torch.nn.Module, seed: int = 1) -> None:
    """Perturb every parameter and BatchNorm running statistic (so no default value hides a mismatch)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))


def weaver_part(cfg: dict):
    """weaver-core's ParticleTransformer with the same hyperparameters, returning the embedding (fc_params=None)."""
    weaver = pytest.importorskip("weaver.nn.model.ParticleTransformer")
    logging.getLogger("weaver").setLevel(logging.WARNING)
    c = model_config(cfg)
    return weaver.ParticleTransformer(
        c["input_dim"], num_classes=None, fc_params=None, pair_input_dim=c["pair_input_dim"],
        use_pre_activation_pair=c["use_pre_activation_pair"], embed_dims=c["embed_dims"],
        pair_embed_dims=c["pair_embed_dims"], num_heads=c["num_heads"], num_layers=c["num_layers"],
        num_cls_layers=c["num_cls_layers"], cls_block_params={"dropout": 0, "attn_dropout": 0,
                                                              "activation_dropout": 0},
        weight_init=None, fix_init=False, trim=False)


# ------------------------------------------------------------------------------ faithfulness
def test_paper_size_matches_weaver_parameter_names_and_count():
    ours, weaver = build_backbone({}), weaver_part({})
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_ours == sum(p.numel() for p in weaver.parameters()) == 2_142_196  # paper 2.14 M (w/o 10-class fc)
    assert set(ours.state_dict()) == set(weaver.state_dict())
    assert all(ours.state_dict()[k].shape == t.shape for k, t in weaver.state_dict().items())


@pytest.mark.parametrize("cfg", [SMALL, {}], ids=["small", "paper"])
def test_agrees_numerically_with_weaver_when_weights_copied_by_name(cfg):
    weaver, ours = weaver_part(cfg), build_backbone(cfg)
    randomize(weaver)
    missing, unexpected = load_weights_by_name(ours, convert_weaver_state_dict(weaver.state_dict()))
    assert missing == [] and unexpected == []
    x, v, mask = make_jets(B=5, P=40)
    weaver.eval(), ours.eval()
    with torch.no_grad():
        ref = weaver(x.transpose(1, 2), v.transpose(1, 2), mask[:, None].float())
        out = ours(x, v, mask)
    assert ref.shape == out.shape == (5, ours.embed_dim)
    assert torch.allclose(out, ref, atol=2e-5, rtol=1e-4), (out - ref).abs().max()


def test_pair_features_match_weaver_and_stay_fp32_under_autocast():
    from weaver.nn.model.ParticleTransformer import pairwise_lv_fts_pp

    _, v, mask = make_jets(B=2, P=12)
    # a realistic hard pair (pT ~ 500 GeV): bf16 would cancel ln m^2 to the clamp, fp16 overflows E^2
    v[0, 0] = torch.tensor([480.0, 30.0, 250.0, 542.3])
    v[0, 1] = torch.tensor([20.0, 2.0, 9.0, 22.1])
    b, i, j = (mask[:, :, None] & mask[:, None, :]).tril().nonzero(as_tuple=True)
    ours = pair_features(v, b, i, j)
    ref = pairwise_lv_fts_pp(v[b, i][..., None], v[b, j][..., None])[..., 0]  # weaver, same fp32 precision
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4)
    exact = pairwise_lv_fts_pp(v[b, i][..., None].double(), v[b, j][..., None].double())[..., 0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = pair_features(v.bfloat16().float(), b, i, j)
        lowp = pair_features(v, b, i, j)
    assert lowp.dtype == torch.float32 and torch.equal(lowp, ours)
    assert torch.isfinite(under_autocast).all()
    pair = ((b == 0) & (i == 1) & (j == 0)).nonzero().item()
    assert ours[pair, 3] > 5.0  # ln m^2 of the hard pair is physical, not the ln(1e-8) clamp
    assert torch.allclose(ours[pair], exact[pair].float(), atol=1e-3)


def test_weaver_04_checkpoint_conversion_reproduces_the_04_head_scaling():
    """0.4.x applied c_attn as einsum('tbhd,h->tbdh') (permuting channels); the converted out_proj with c=1
    must give exactly that."""
    H, hd = 4, 8
    D = H * hd
    g = torch.Generator().manual_seed(0)
    w, bias, c = torch.randn(D, D, generator=g), torch.randn(D, generator=g), torch.rand(H, generator=g) + 0.5
    sd04 = {"mod.blocks.0.attn.in_proj_weight": torch.randn(3 * D, D, generator=g),
            "mod.blocks.0.attn.in_proj_bias": torch.randn(3 * D, generator=g),
            "mod.blocks.0.attn.out_proj.weight": w, "mod.blocks.0.attn.out_proj.bias": bias,
            "mod.blocks.0.c_attn": c}
    conv = convert_weaver_state_dict(sd04, num_heads=H)
    assert "blocks.0.attn.in_proj.weight" in conv and torch.equal(conv["blocks.0.c_attn"], torch.ones(H))
    a = torch.randn(3, 5, D, generator=g)  # (batch, tokens, D) attention output before out_proj
    y = (a @ w.T + bias).view(3, 5, H, hd)
    y04 = torch.einsum("bthd,h->btdh", y, c).reshape(3, 5, D)
    y05 = (a @ conv["blocks.0.attn.out_proj.weight"].T + conv["blocks.0.attn.out_proj.bias"]) * 1.0
    assert torch.allclose(y04, y05, atol=1e-5)
    # 0.5-format dicts pass through unchanged
    sd05 = {"blocks.0.attn.in_proj.weight": w, "blocks.0.c_attn": c}
    assert all(torch.equal(convert_weaver_state_dict(sd05)[k], t) for k, t in sd05.items())


def test_load_weaver_checkpoint_file_by_name(tmp_path):
    weaver = weaver_part(SMALL)
    randomize(weaver)
    path = tmp_path / "ParT_like.pt"
    torch.save({"mod." + k: t for k, t in weaver.state_dict().items()} | {"mod.fc.0.weight": torch.ones(10, 32)},
               path)
    ours = build_backbone(SMALL)
    missing, unexpected = load_weaver_checkpoint(ours, path)
    assert missing == [] and unexpected == ["fc.0.weight"]  # the JetClass classifier is reported, not loaded
    x, v, mask = make_jets()
    weaver.eval(), ours.eval()
    with torch.no_grad():
        assert torch.allclose(ours(x, v, mask), weaver(x.transpose(1, 2), v.transpose(1, 2), mask[:, None].float()),
                              atol=2e-5)


# ------------------------------------------------------------------------------ masking
@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "train-no-dropout"])
def test_output_unchanged_when_padding_is_added(train_mode):
    torch.manual_seed(0)
    model = build_backbone({**SMALL, **NO_DROPOUT, "trim": False})
    randomize(model)
    model.train(train_mode)
    x, v, mask = make_jets(B=4, P=20)
    pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, 15) if t.ndim == 3 else (0, 15))  # noqa: E731
    with torch.no_grad():
        a = model(x, v, mask)
        b = model(pad(x), pad(v), pad(mask))
    assert torch.allclose(a, b, atol=1e-5)
    # garbage in padded slots must not leak either
    xg, vg = pad(x).clone(), pad(v).clone()
    xg[:, 20:] = 7.0
    vg[:, 20:] = 3.0
    with torch.no_grad():
        c = model(xg, vg, pad(mask))
    assert torch.allclose(a, c, atol=1e-5)


def test_jet_output_independent_of_batch_in_eval():
    model = build_backbone(SMALL).eval()
    randomize(model)
    x, v, mask = make_jets(B=5, P=25)
    with torch.no_grad():
        batch = model(x, v, mask)
        alone = model(x[3:4], v[3:4], mask[3:4])  # trimmed to its own length
    assert torch.allclose(batch[3:4], alone, atol=1e-5)


def test_permutation_invariance_of_constituents():
    model = build_backbone(SMALL).eval()
    randomize(model)
    x, v, mask = make_jets(B=4, P=25)
    perm = torch.randperm(25, generator=torch.Generator().manual_seed(5))  # mixes real and padded slots
    with torch.no_grad():
        a = model(x, v, mask)
        b = model(x[:, perm], v[:, perm], mask[:, perm])
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a[0], a[1], atol=1e-3)  # and it is not constant


@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "train"])
def test_fully_padded_rows_give_no_nan(train_mode):
    tagger = build_tagger(SMALL, "multilabel").train(train_mode)
    x, v, mask = make_jets(B=4, P=10)
    mask[1] = False  # an empty jet inside a batch
    x[1], v[1] = 0, 0
    out = tagger(x, v, mask)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in tagger.parameters() if p.grad is not None)
    empty = tagger(torch.zeros(3, 10, 17), torch.zeros(3, 10, 4), torch.zeros(3, 10, dtype=torch.bool))
    assert torch.isfinite(empty).all()


def test_cpu_attention_with_dropout_is_sdpa_math():
    from hhfm.models.attention import attention_with_dropout, dropout_keep_mask

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8, generator=g) for _ in range(3))
    bias = torch.randn(2, 4, 9, 9, generator=g)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    assert torch.allclose(attention_with_dropout(q, k, v, bias, 0.0), ref, atol=1e-5)
    keep = dropout_keep_mask((400, 1000), 0.1)
    assert keep.dtype == torch.bool and abs(keep.float().mean().item() - 0.9) < 0.005
    torch.manual_seed(1)
    dropped = attention_with_dropout(q, k, v, bias, 0.5)  # unbiased: mean over many draws -> no-dropout value
    mean = torch.stack([attention_with_dropout(q, k, v, bias, 0.5) for _ in range(400)]).mean(0)
    assert not torch.allclose(dropped, ref, atol=1e-3) and torch.allclose(mean, ref, atol=0.15)


def test_trim_to_longest():
    x, v, mask = make_jets(B=3, P=30, seed=2)
    mask[0, 12:] = False
    mask[1:, 9:] = False
    tx, tv, tm = trim_to_longest(x, v, mask)
    assert tx.shape == (3, 12, 17) and tv.shape == (3, 12, 4) and tm.shape == (3, 12)
    assert trim_to_longest(x, v, mask, multiple_of=8)[2].shape == (3, 16)
    assert trim_to_longest(x[:, :5], v[:, :5], mask[:, :5], multiple_of=8)[0].shape == (3, 8, 17)  # zero-padded
    none = torch.zeros(2, 30, dtype=torch.bool)
    assert trim_to_longest(x[:2], v[:2], none)[2].shape == (2, 1)


# ------------------------------------------------------------------------------ taggers and checkpoints
@pytest.mark.parametrize("task", sorted(TASK_OUTPUTS))
def test_tagger_outputs_and_xbb_score(task):
    tagger = build_tagger(SMALL, task).eval()
    x, v, mask = make_jets()
    logits = tagger(x, v, mask)
    assert logits.shape == (6, TASK_OUTPUTS[task])
    score = tagger.xbb_score(logits)
    assert score.shape == (6,) and ((score >= 0) & (score <= 1)).all()
    if task not in ("xbb", "jetclass"):  # H_bb is class 0 of the softmax over the class part only
        assert torch.allclose(score, torch.softmax(logits[:, :6], 1)[:, 0])


def test_save_and_load_tagger_roundtrip(tmp_path):
    tagger = build_tagger(SMALL, "multiclass")
    randomize(tagger)
    save_tagger(tmp_path / "t.pt", tagger, {"note": "x", "auc": 0.5})
    blob = torch.load(tmp_path / "t.pt", weights_only=True)
    assert blob["task"] == "multiclass" and blob["model_config"]["embed_dims"] == [32, 64, 32]
    loaded, meta = load_tagger(tmp_path / "t.pt")
    assert meta == {"note": "x", "auc": 0.5} and not loaded.training
    x, v, mask = make_jets()
    with torch.no_grad():
        assert torch.equal(loaded(x, v, mask), tagger.eval()(x, v, mask))


def test_load_weights_by_name_reports_mismatches(tmp_path):
    src = build_tagger(SMALL, "xbb")
    dst = JetTagger(build_backbone({**SMALL, "num_layers": 3, "embed_dims": [32, 64, 32]}), "multiclass")
    missing, unexpected = load_weights_by_name(dst, src.state_dict())
    assert any(k.startswith("backbone.blocks.2.") for k in missing)  # layer the source lacks
    assert "head.weight" in missing and "head.weight" in unexpected  # shape (1, 32) vs (6, 32): not copied
    assert torch.equal(dst.backbone.blocks[0].fc1.weight, src.backbone.blocks[0].fc1.weight)  # the rest is copied
    with pytest.raises(InputError, match="missing"):
        load_weights_by_name(dst, src.state_dict(), strict=True)


def test_bad_checkpoints_and_configs_raise_clear_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_tagger(tmp_path / "nope.pt")
    torch.save({"x": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not an hhfm tagger"):
        load_tagger(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="junk.pt"):
        load_tagger(tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match="model.embed_dim': unknown key"):
        build_backbone({"embed_dim": 64})
    with pytest.raises(ConfigError, match="model.num_heads"):
        build_backbone({"embed_dims": [30], "num_heads": 4})
    with pytest.raises(ConfigError, match="model.dropout"):
        build_backbone({"dropout": 1.5})
    with pytest.raises(ConfigError, match="task"):
        build_tagger(SMALL, "top")


def test_paper_defaults_are_the_paper_model():
    m = build_backbone({})
    assert m.embed_dim == 128 and len(m.blocks) == 8 and len(m.cls_blocks) == 2 and m.num_heads == 8
    assert math.isclose(m.blocks[0].dropout.p, 0.1) and m.cls_blocks[0].dropout.p == 0.0
    assert m.config == config.defaults("model")  # the schema is the one source of the defaults
    assert m.config["input_dim"] == N_PARTICLE_FEATURES


def test_model_config_fills_from_the_schema_and_gives_ints():
    cfg = model_config({"embed_dims": [32.0, 64.0], "num_heads": 4.0})  # JSON numbers that are integers
    assert cfg == {**config.defaults("model"), "embed_dims": [32, 64], "num_heads": 4}
    assert all(type(d) is int for d in cfg["embed_dims"]) and type(cfg["num_heads"]) is int
    with pytest.raises(TypeError):
        ParticleTransformer(17, [32])  # hyperparameters are keyword-only, without defaults
