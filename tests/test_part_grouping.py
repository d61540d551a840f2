"""ParT attention layout: jets grouped by multiplicity (ParticleTransformer.group_jets) vs the padded batch."""

from __future__ import annotations

import pytest
import torch

from hhfm.models import build_backbone, build_tagger, load_tagger, save_tagger
from hhfm.models.inputs import GROUP_JETS, group_layout, plan_groups, real_pairs
from test_models import NO_DROPOUT, SMALL, make_jets, randomize

CONFIGS = {
    "pair+cls": SMALL,
    "nopair+cls": {**SMALL, "pair_input_dim": 0},
    "pair+mean": {**SMALL, "num_cls_layers": 0},
}
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _masks(kind: str, B: int = 40, P: int = 30) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Jets (x, v, mask) with masks of the given kind; the padded slots hold garbage."""
    x, v, mask = make_jets(B=B, P=P, seed=7)
    g = torch.Generator().manual_seed(8)
    if kind == "non-prefix":  # real particles anywhere, a few empty jets
        mask = torch.rand(B, P, generator=g) < torch.rand(B, 1, generator=g)
        mask[3] = False
    elif kind == "empty-but-one":
        mask = torch.zeros(B, P, dtype=torch.bool)
        mask[B // 2, 2:9] = True
    elif kind == "single":
        x, v, mask = x[4:5], v[4:5], mask[4:5]
    elif kind == "equal":
        mask = torch.arange(P)[None].expand(B, P) < 17
    x = torch.where(mask[..., None], x, torch.full_like(x, 5.0))
    v = torch.where(mask[..., None], v, torch.full_like(v, 3.0))
    return x, v, mask


def _run(model, x, v, mask, group_jets):
    model.group_jets = group_jets
    taps: list = []
    out = model(x, v, mask, taps=taps)
    return out, taps


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("kind", ["prefix", "non-prefix", "empty-but-one", "single", "equal"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_grouped_eval_outputs_and_taps_equal_the_padded_layout(name, kind, dtype):
    torch.manual_seed(0)
    model = build_backbone(CONFIGS[name]).to(dtype).eval()
    randomize(model)
    x, v, mask = _masks(kind)
    x, v = x.to(dtype), v.to(dtype)
    with torch.no_grad():
        ref, ref_taps = _run(model, x, v, mask, 0)
        for g in (1, 3, 8):
            out, taps = _run(model, x, v, mask, g)
            assert out.shape == ref.shape and out.dtype == dtype
            assert (out - ref).abs().max() < TOL[dtype], (g, (out - ref).abs().max())
            assert [n for n, _ in taps] == [n for n, _ in ref_taps]
            for (n, a), (_, b) in zip(taps, ref_taps):
                assert (a - b).abs().max() < TOL[dtype], (g, n)
    assert torch.isfinite(ref).all()
    assert not torch.equal(ref[0], ref[-1]) or kind in ("single", "empty-but-one")  # not constant


def test_default_groups_and_ungrouped_is_reachable():
    model = build_backbone(SMALL)
    assert model.group_jets == GROUP_JETS > 0
    assert "group_jets" not in model.config  # a speed setting, not a hyperparameter of the checkpoint
    x, v, mask = make_jets(B=2 * GROUP_JETS + 5, P=30)
    assert len(plan_groups(mask, model.group_jets).sizes) > 1
    assert len(plan_groups(mask, None).sizes) == len(plan_groups(mask, 0).sizes) == 1
    model.eval()
    with torch.no_grad():
        grouped = model(x, v, mask)
        model.group_jets = None
        assert torch.allclose(model(x, v, mask), grouped, atol=1e-5)


def test_checkpoint_without_the_setting_loads_with_the_default(tmp_path):
    tagger = build_tagger(SMALL, "xbb")
    randomize(tagger)
    tagger.backbone.group_jets = 0  # runtime setting: not saved
    save_tagger(tmp_path / "t.pt", tagger)
    blob = torch.load(tmp_path / "t.pt", weights_only=True)
    assert "group_jets" not in blob["model_config"]
    loaded, _ = load_tagger(tmp_path / "t.pt")
    assert loaded.backbone.group_jets == GROUP_JETS
    x, v, mask = make_jets(B=50, P=30)
    with torch.no_grad():
        assert torch.allclose(loaded(x, v, mask), tagger.eval()(x, v, mask), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_grouped_training_without_dropout_matches_loss_gradients_and_batchnorm_stats(name, dtype):
    """Training mode, dropout 0: the BatchNorms see the same tokens and pairs, so batch statistics, outputs,
    loss and every parameter gradient agree with the padded layout."""
    torch.manual_seed(0)
    ref_model = build_tagger({**CONFIGS[name], **NO_DROPOUT}, "xbb").to(dtype).train()
    randomize(ref_model)
    model = build_tagger({**CONFIGS[name], **NO_DROPOUT}, "xbb").to(dtype).train()
    model.load_state_dict(ref_model.state_dict())
    ref_model.backbone.group_jets, model.backbone.group_jets = 0, 4
    x, v, mask = _masks("non-prefix")
    x, v = x.to(dtype), v.to(dtype)
    y = (torch.arange(len(mask)) % 2).to(dtype)
    losses = []
    for m in (ref_model, model):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(m(x, v, mask)[:, 0], y)
        loss.backward()
        losses.append(loss)
    tol = TOL[dtype]
    assert abs(losses[0].item() - losses[1].item()) < tol
    for (n, a), b in zip(ref_model.named_parameters(), model.parameters()):
        assert a.grad is not None and b.grad is not None, n
        scale = max(a.grad.abs().max().item(), 1.0)
        assert (a.grad - b.grad).abs().max() < 10 * tol * scale, n
    for (n, a), b in zip(ref_model.named_buffers(), model.buffers()):
        assert torch.allclose(a.double(), b.double(), atol=tol, rtol=0), n  # running statistics


def test_grouped_training_with_dropout_is_deterministic():
    """Dropout draws follow the grouped layout (not those of the padded batch), reproducibly for a seed."""
    model = build_backbone({**SMALL, "attn_dropout": 0.1}).train()
    x, v, mask = make_jets(B=40, P=30)
    outs = []
    for g in (4, 4, 0):
        model.group_jets = g
        torch.manual_seed(3)
        outs.append(model(x, v, mask))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2], atol=1e-4)  # other random numbers than the padded layout


def test_group_layout():
    assert group_layout([1, 2, 3, 4, 5, 9, 9, 9], 2) == ([2, 2, 4], [2, 4, 9])  # equal runs merge
    assert group_layout([0, 0, 0, 1, 12, 13], 2, multiple_of=8) == ([4, 2], [8, 16])
    assert group_layout([0, 0, 3], 0) == ([3], [3]) and group_layout([0, 0], None) == ([2], [1])
    assert group_layout([2, 5], 8) == ([2], [5])


def test_plan_groups_compacts_each_jet_and_keeps_every_real_token_and_pair():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(11, 9, generator=g) < 0.5
    mask[2] = False
    groups = plan_groups(mask, 3)
    n = mask.sum(1)
    assert sum(groups.sizes) == 11 and len(groups.sizes) > 1
    assert torch.equal(n[groups.order], n.sort(stable=True).values)
    assert groups.lengths == sorted(groups.lengths)
    for k, length, n_g in zip(groups.keys, groups.lengths, n[groups.order].split(groups.sizes)):
        assert k.shape[1] == length == max(int(n_g.max()), 1)
        assert torch.equal(k.sum(1), n_g) and torch.equal(k, torch.arange(length)[None] < n_g[:, None])
    # every real token at a distinct real slot of the flat layout, in its jet's row, in its order
    t = torch.arange(len(groups.idx), dtype=torch.float64)[:, None] + 1
    parts = groups.scatter(t)
    assert sum(int((p > 0).sum()) for p in parts) == int(mask.sum())
    assert all(torch.equal(p[..., 0] > 0, k) for p, k in zip(parts, groups.keys))
    assert torch.equal(groups.gather(parts), t)
    rows = torch.cat([torch.nn.functional.pad(p[..., 0], (0, 9 - p.shape[1])) for p in parts])  # (B, 9)
    jets = groups.unsort(rows)  # back in batch order: jet b holds its own tokens, ascending
    for b in range(11):
        own = t[groups.idx // 9 == b, 0]
        assert torch.equal(jets[b][: len(own)], own)
    # the pair bias: every real pair (i, j) and (j, i) of a jet at its compacted slots
    b, i, j = real_pairs(mask)
    u = torch.randn(len(b), 2, generator=g)
    biases = groups.pair_bias(u, b, i, j)
    jets_bias = [None] * 11
    for bias, rows_g in zip(biases, groups.order.split(groups.sizes)):
        for r, jet in enumerate(rows_g.tolist()):
            jets_bias[jet] = bias[r]
    for m in range(len(b)):
        jet, pos = int(b[m]), mask[int(b[m])].long().cumsum(0) - 1
        ci, cj = int(pos[i[m]]), int(pos[j[m]])
        assert torch.equal(jets_bias[jet][:, ci, cj], u[m]) and torch.equal(jets_bias[jet][:, cj, ci], u[m])
    for jet in range(11):
        k = int(n[jet])
        assert (jets_bias[jet][:, :, k:] == -1e4).all()  # padded keys
    assert len(plan_groups(mask, 20).sizes) == 1 and plan_groups(mask, 20).order is None


def test_grouped_cuda_lengths_are_multiples_of_8():
    mask = torch.arange(30)[None] < torch.tensor([3, 5, 9, 13, 21, 30, 2, 17])[:, None]
    groups = plan_groups(mask, 2, multiple_of=8)
    assert all(n % 8 == 0 for n in groups.lengths) and groups.lengths == [8, 16, 24, 32]
