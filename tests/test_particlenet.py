"""ParticleNet backbone (hhfm.models.particlenet) against weaver-core's ParticleNet with the published JetClass
weights; loading, padding invariance, checkpoints, the jetclass score, FLOPs and taps."""

from __future__ import annotations

import copy
import hashlib

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hhfm.errors import ConfigError, InputError
from hhfm.features import JETCLASS_CLASSES, PARTICLE_FEATURE_NAMES
from hhfm.models.flops import particlenet_forward_flops, tagger_forward_flops
from hhfm.models.particlenet import PUBLISHED_CONFIG, PUBLISHED_PARTICLENET, ParticleNetBackbone
from hhfm.models.tagger import (
    TASK_OUTPUTS,
    JetTagger,
    build_backbone,
    convert_particlenet_state_dict,
    load_published_particlenet,
    load_tagger,
    save_tagger,
)

weaver_pn = pytest.importorskip("weaver.nn.model.ParticleNet")

SHA256 = "375b81543769f4a0bd2de9818c5885a04c735b5462a64dcadc2a088edaf3d1d2"
#: small config exercising the other branches: fusion, no count pooling, shortcut-free block, 2 fc layers
SMALL = {"architecture": "particlenet", "input_dim": 17, "conv_params": [[4, [8, 8]], [3, [16, 16]], [5, [16]]],
         "fc_params": [[12, 0.0], [10, 0.0]], "use_fusion": True, "use_fts_bn": True, "use_counts": False}
DETA, DPHI = PARTICLE_FEATURE_NAMES.index("part_deta"), PARTICLE_FEATURE_NAMES.index("part_dphi")


@pytest.fixture(scope="module")
def published(repo_root):
    return load_published_particlenet(repo_root / PUBLISHED_PARTICLENET)


def jets(ns: list[int], P: int, seed: int = 0, garbage: bool = True):
    """Plausible standardised JetClass inputs x (B, P, 17), v (B, P, 4), mask (B, P), real particles first;
    padded slots hold garbage (the model must ignore it) unless garbage=False (zeros)."""
    g = torch.Generator().manual_seed(seed)
    B = len(ns)
    x = torch.randn(B, P, 17, generator=g).clamp(-3, 3)  # log pt/E, ptrel, erel, deltaR: standardised
    x[..., 5] = torch.randint(-1, 2, (B, P), generator=g)  # charge
    pid = torch.randint(0, 5, (B, P), generator=g)
    x[..., 6:11] = torch.nn.functional.one_hot(pid, 5).float()
    x[..., 11], x[..., 13] = torch.tanh(0.1 * x[..., 11]), torch.tanh(0.1 * x[..., 13])  # d0, dz
    x[..., 12], x[..., 14] = torch.rand(B, P, generator=g), torch.rand(B, P, generator=g)  # errors in [0, 1]
    x[..., DETA], x[..., DPHI] = 0.2 * torch.randn(B, P, generator=g), 0.2 * torch.randn(B, P, generator=g)
    mask = torch.arange(P)[None] < torch.tensor(ns)[:, None]
    if not garbage:
        x = x * mask[..., None]
    v = torch.randn(B, P, 4, generator=g)
    return x, v, mask


def weaver_model(cfg: dict, state_dict: dict) -> torch.nn.Module:
    """weaver's ParticleNet (for_inference=False: logits) with the given weights, eval mode, no trimming."""
    model = weaver_pn.ParticleNet(input_dims=cfg["input_dim"], num_classes=10, conv_params=cfg["conv_params"],
                                  fc_params=cfg["fc_params"], use_fusion=cfg["use_fusion"],
                                  use_fts_bn=cfg["use_fts_bn"], use_counts=cfg["use_counts"], for_inference=False)
    model.trimmer.enabled = False  # its eval-mode trim (after 5 warm-up calls) would cut below k+1
    model.load_state_dict({k.removeprefix("mod."): t for k, t in state_dict.items()})
    return model.eval()


def weaver_logits(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """weaver inputs: points (N, 2, P), features (N, 17, P), mask (N, 1, P)."""
    with torch.no_grad():
        return model(x[..., [DETA, DPHI]].transpose(1, 2), x.transpose(1, 2), mask.unsqueeze(1))


# ------------------------------------------------------------------------------ (a) equal to weaver
@pytest.mark.parametrize("ns, P", [([1, 2, 5, 16, 17, 23, 40], 48), ([1, 3, 9, 16], 17), ([100, 10], 100)])
def test_published_model_equals_weaver(published, repo_root, ns, P):
    sd = torch.load(repo_root / PUBLISHED_PARTICLENET, map_location="cpu", weights_only=True)
    weaver = weaver_model(PUBLISHED_CONFIG, sd)
    x, v, mask = jets(ns, P, seed=len(ns))
    expected = weaver_logits(weaver, x, mask)
    with torch.no_grad():
        ours = published(x, v, mask)  # trimmed to max(longest jet, 17) slots
        published.backbone.trim = False  # the same P slots as weaver
        try:
            same_p = published(x, v, mask)
        finally:
            published.backbone.trim = True
    assert ours.shape == (len(ns), 10)
    assert expected.abs().max() > 1  # non-trivial logits
    diff, diff_same_p = (ours - expected).abs(), (same_p - expected).abs()
    print(f"max |ours - weaver| = {diff.max():.2e} trimmed, {diff_same_p.max():.2e} same P "
          f"(max |logit| {expected.abs().max():.1f})")
    assert diff_same_p.max() < 1e-5
    # trimming changes float32 summation order only: a few ulp of the logit (|logit| up to ~100 here)
    assert (diff <= 1e-5 * expected.abs().clamp(min=1)).all()
    assert (torch.softmax(ours, 1) - torch.softmax(expected, 1)).abs().max() < 1e-5


def test_other_branches_equal_weaver():
    """Fusion block, plain mean pooling, two fc layers, a block without shortcut conv, random weights."""
    torch.manual_seed(0)
    ours = JetTagger(build_backbone(SMALL), "jetclass").eval()
    with torch.no_grad():  # non-default BatchNorm statistics, so no identity hides a mismatch
        for name, buf in ours.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.3 * torch.randn_like(buf))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand_like(buf))
    assert ours.backbone.edge_convs[2].sc is None and ours.backbone.embed_dim == 10
    weaver = weaver_model(SMALL, {k.removeprefix("backbone.").replace("head.", "fc.2."): t
                                  for k, t in ours.state_dict().items()})
    x, v, mask = jets([1, 4, 7, 12], 12)  # P = longest jet: use_counts=False pools over P, no trimming here
    with torch.no_grad():
        torch.testing.assert_close(ours(x, v, mask), weaver_logits(weaver, x, mask), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------ (b) loading
def test_published_weights_load_completely(published, repo_root):
    path = repo_root / PUBLISHED_PARTICLENET
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256
    sd = torch.load(path, map_location="cpu", weights_only=True)
    converted = convert_particlenet_state_dict(sd, n_hidden_fc=1)
    own = published.state_dict()
    assert set(converted) == set(own) and len(own) == 81
    assert all(torch.equal(own[k], t) for k, t in converted.items())
    assert converted["head.weight"].shape == (10, 256) and "backbone.fc.0.0.weight" in converted
    assert published.task == "jetclass" and not published.training
    assert published.backbone.config == {**PUBLISHED_CONFIG}


def test_bad_published_files_raise_input_error(repo_root, tmp_path):
    sd = torch.load(repo_root / PUBLISHED_PARTICLENET, map_location="cpu", weights_only=True)
    cases = {"missing.pt": {k: t for k, t in sd.items() if k != "mod.edge_convs.1.sc.weight"},
             "unexpected.pt": {**sd, "mod.extra.weight": torch.zeros(3)},
             "shape.pt": {**sd, "mod.fc.1.weight": torch.zeros(6, 256)}}
    for name, bad in cases.items():
        torch.save(bad, tmp_path / name)
    (tmp_path / "corrupt.pt").write_bytes((repo_root / PUBLISHED_PARTICLENET).read_bytes()[:5000])
    for name in [*cases, "corrupt.pt", "absent.pt"]:
        with pytest.raises(InputError, match=name):
            load_published_particlenet(tmp_path / name)


# ------------------------------------------------------------------------------ (c) padding / trimming
def test_padding_and_trim_invariance(published):
    """In float64 (so summation order cannot hide a real dependence) the output is independent of the padding."""
    ns = [1, 5, 12]
    x, v, mask = jets(ns, 12, garbage=False)
    x = x.double()
    bb = copy.deepcopy(published.backbone).double()
    with torch.no_grad():
        ref = bb(x, v, mask)  # P = 12 < k + 1: zero-padded to 17 inside
        for P in (17, 30, 64):
            xp, vp, mp = jets(ns, P, seed=5)  # garbage in padded slots
            xp = xp.double()
            xp[:, :12] = x  # same real particles
            torch.testing.assert_close(bb(xp, vp, mp), ref, atol=1e-12, rtol=1e-12)
        bb.trim_multiple = 8  # 12 -> 16 -> 17 (min) -> 24
        torch.testing.assert_close(bb(x, v, mask), ref, atol=1e-12, rtol=1e-12)
        bb.trim_multiple, bb.trim = 1, False  # no trimming: runs on all 64 slots
        torch.testing.assert_close(bb(xp, vp, mp), ref, atol=1e-12, rtol=1e-12)
        bb.trim = True
        # the k+1 floor matters: a 12-slot graph without the floor would fail (topk k+1 = 17 > 12)
        with pytest.raises(RuntimeError):
            weaver_pn.knn(x[..., [DETA, DPHI]].transpose(1, 2), 16)
        empty = bb(x, v, torch.zeros_like(mask))  # no real particle at all: finite
        assert torch.isfinite(empty).all()


# ------------------------------------------------------------------------------ (d) checkpoints
def test_save_load_roundtrip(published, tmp_path):
    save_tagger(tmp_path / "pn.pt", published, meta={"source": "published"})
    tagger, meta = load_tagger(tmp_path / "pn.pt")
    assert isinstance(tagger.backbone, ParticleNetBackbone) and tagger.task == "jetclass"
    assert tagger.backbone.config == published.backbone.config and meta == {"source": "published"}
    x, v, mask = jets([3, 20, 40], 40)
    with torch.no_grad():
        assert torch.equal(tagger(x, v, mask), published(x, v, mask))
    small = JetTagger(build_backbone(SMALL), "xbb")
    save_tagger(tmp_path / "small.pt", small)
    again, _ = load_tagger(tmp_path / "small.pt")
    assert again.backbone.config == small.backbone.config and again.backbone.embed_dim == 10


def test_build_backbone_config():
    assert build_backbone({"architecture": "particlenet"}).config == PUBLISHED_CONFIG
    no_fc = build_backbone({"architecture": "particlenet", "fc_params": [], "use_fusion": True})
    assert no_fc.embed_dim == 384  # fusion width of 64 + 128 + 256 channels
    with pytest.raises(ConfigError, match="embed_dims"):
        build_backbone({"architecture": "particlenet", "embed_dims": [64]})
    with pytest.raises(ConfigError, match="architecture"):
        build_backbone({"architecture": "gnn"})


# ------------------------------------------------------------------------------ (e) jetclass score
def test_jetclass_xbb_score(published):
    assert TASK_OUTPUTS["jetclass"] == len(JETCLASS_CLASSES) == 10
    logits = 3 * torch.randn(50, 10, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(logits, dim=1)
    hbb, qcd = JETCLASS_CLASSES.index("Hbb"), JETCLASS_CLASSES.index("QCD")
    torch.testing.assert_close(published.xbb_score(logits), p[:, hbb] / (p[:, hbb] + p[:, qcd]))
    extreme = torch.full((1, 10), -1e4)
    extreme[0, 2] = 1e4  # p(Hbb) and p(QCD) both underflow
    assert torch.isfinite(published.xbb_score(extreme)).all()


# ------------------------------------------------------------------------------ (f) FLOPs
@pytest.mark.parametrize("cfg", [PUBLISHED_CONFIG, SMALL], ids=["published", "small"])
@pytest.mark.parametrize("n", [5, 30])
def test_flops_match_counter(cfg, n):
    tagger = JetTagger(build_backbone(cfg), "jetclass").eval().requires_grad_(False)
    B = 2
    x, v, mask = jets([n] * B, n)
    with FlopCounterMode(display=False) as counter:
        tagger.backbone(x, v, mask)
    assert counter.get_total_flops() == B * particlenet_forward_flops(tagger.backbone.config, n)
    with FlopCounterMode(display=False) as counter:
        tagger(x, v, mask)
    assert counter.get_total_flops() == B * tagger_forward_flops(tagger.backbone.config, 10, n)
    if n < 17:  # padded to k+1 = 17 (published) slots: costs as a 17-particle jet
        assert particlenet_forward_flops(PUBLISHED_CONFIG, n) == particlenet_forward_flops(PUBLISHED_CONFIG, 17)


# ------------------------------------------------------------------------------ (g) taps
def test_taps(published):
    x, v, mask = jets([2, 10, 33], 33)
    taps: list = []
    with torch.no_grad():
        out = published.backbone(x, v, mask)
        tapped = published.backbone(x, v, mask, taps=taps)
        taps_padded: list = []
        xp, vp, mp = jets([2, 10, 33], 50)
        xp[:, :33] = x
        published.backbone(xp, vp, mp, taps=taps_padded)
    assert torch.equal(out, tapped)
    assert [(name, tuple(t.shape)) for name, t in taps] == [
        ("edge1", (3, 64)), ("edge2", (3, 128)), ("edge3", (3, 256)), ("output", (3, 256))]
    assert taps[-1][1] is tapped
    for (name, t), (name_p, t_p) in zip(taps, taps_padded):  # masked means: padding-independent
        assert name == name_p
        torch.testing.assert_close(t_p, t, atol=1e-6, rtol=1e-6)
    assert all((t >= 0).all() for name, t in taps[:3])  # EdgeConv outputs end in ReLU
