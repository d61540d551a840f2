"""ParticleNet (Qu, Gouskos, arXiv:1902.08570) as a jet encoder, loadable with the published JetClass weights.

Faithful to `weaver.nn.model.ParticleNet.ParticleNet` (weaver-core 0.5.x): same modules, same parameter
names and shapes (`bn_fts`, `edge_convs.{i}.{convs,bns,sc,sc_bn}`, `fusion_block`, `fc.{i}`), same function
in eval mode (checked in tests/test_particlenet.py). Only the hidden fc layers live here: their output is
the jet embedding; weaver's final classifier Linear becomes the task head (hhfm.models.tagger.JetTagger).

Shapes (documented once):
    B batch, P padded particles, C = 17 input features (hhfm.features.PARTICLE_FEATURE_NAMES order),
    C' channels of an EdgeConv block, k neighbours, D embed dim.
    x (B, P, C) standardised features, v (B, P, 4) four-vectors (unused), mask (B, P) bool, True = real.
    Internally channels-first as weaver: points (B, 2, P) = (part_deta, part_dphi), features (B, C, P).

Padding, as weaver: padded points are moved to COORD_SHIFT in every coordinate (never a neighbour of a real
point unless a jet has < k+1 particles; then all padded neighbours are identical zero-feature points),
features are zeroed outside the mask after every block, pooling is the mean over real particles
(use_counts). So with use_counts=True the eval-mode output does not depend on the amount of padding as long
as P >= k+1: the particle axis is cut to the longest jet of the batch but never below max(k)+1 (inputs
shorter than that are zero-padded). Training-mode BatchNorm statistics include padded slots, as in weaver.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from hhfm.errors import ConfigError
from hhfm.features import PARTICLE_FEATURE_NAMES

#: the published JetClass ParticleNet (jet-universe/particle_transformer, models/ParticleNet_full.pt)
PUBLISHED_CONFIG: dict[str, Any] = {
    "architecture": "particlenet", "input_dim": 17,
    "conv_params": [[16, [64, 64, 64]], [16, [128, 128, 128]], [16, [256, 256, 256]]],
    "fc_params": [[256, 0.1]], "use_fusion": False, "use_fts_bn": True, "use_counts": True, "trim": True,
}
#: the published weights, relative to the repository root (pretrained/README.md): defined in hhfm.backbones
from hhfm.backbones import PUBLISHED_PARTICLENET  # noqa: E402

__all__ = ["PUBLISHED_PARTICLENET", "PUBLISHED_CONFIG", "ParticleNetBackbone", "particlenet_config"]
#: columns of x used as the coordinates of the first kNN graph
POINT_COLUMNS = [PARTICLE_FEATURE_NAMES.index("part_deta"), PARTICLE_FEATURE_NAMES.index("part_dphi")]
#: padded points are moved here (weaver's coord_shift without AMP)
COORD_SHIFT = 1e9


def particlenet_config(cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Full ParticleNet config: PUBLISHED_CONFIG with the keys of `cfg` replaced; an unknown key raises ConfigError."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(PUBLISHED_CONFIG))
    if unknown:
        raise ConfigError(f"unknown ParticleNet model key(s) {unknown}; known: {sorted(PUBLISHED_CONFIG)}")
    if cfg.get("architecture", "particlenet") != "particlenet":
        raise ConfigError(f"architecture must be 'particlenet' here, got {cfg['architecture']!r}")
    return {**PUBLISHED_CONFIG, **cfg}


def fusion_width(in_chn: int) -> int:
    """Output channels of weaver's fusion block for `in_chn` concatenated EdgeConv channels."""
    return int(min(max((in_chn // 128) * 128, 128), 1024))


def knn(points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, P, k) of the k nearest other points of each point; points (B, Cp, P), Euclidean as weaver."""
    inner = -2 * torch.matmul(points.transpose(2, 1), points)  # (B, P, P)
    xx = torch.sum(points**2, dim=1, keepdim=True)  # (B, 1, P)
    dist = (xx.transpose(2, 1) + inner + xx).clamp(min=0)
    return dist.topk(k=k + 1, dim=-1, largest=False, sorted=True)[1][:, :, 1:]  # drop self


class EdgeConvBlock(nn.Module):
    """EdgeConv: x_i' = ReLU(shortcut(x_i) + mean_j MLP(x_i, x_j - x_i)) over the k nearest neighbours j."""

    def __init__(self, k: int, in_feat: int, out_feats: Sequence[int]):
        super().__init__()
        self.k = k
        widths = [2 * in_feat, *out_feats]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, kernel_size=1, bias=False) for a, b in zip(widths[:-1], widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in out_feats)
        self.acts = nn.ModuleList(nn.ReLU() for _ in out_feats)
        self.sc = None if in_feat == out_feats[-1] else nn.Conv1d(in_feat, out_feats[-1], kernel_size=1, bias=False)
        if self.sc is not None:
            self.sc_bn = nn.BatchNorm1d(out_feats[-1])
        self.sc_act = nn.ReLU()

    def forward(self, points: torch.Tensor, fts: torch.Tensor) -> torch.Tensor:
        """points (B, Cp, P), fts (B, C, P) -> (B, C', P)."""
        B, C, P = fts.shape
        with torch.autocast(fts.device.type, enabled=False):  # neighbour choice in fp32
            idx = knn(points.float(), self.k)  # (B, P, k)
        idx = (idx + torch.arange(B, device=fts.device).view(-1, 1, 1) * P).view(-1)
        nbr = fts.transpose(2, 1).reshape(B * P, C)[idx].view(B, P, self.k, C).permute(0, 3, 1, 2)  # (B, C, P, k)
        ctr = fts.unsqueeze(-1).expand(-1, -1, -1, self.k)
        x = torch.cat((ctr, nbr - ctr), dim=1)  # (B, 2C, P, k)
        for conv, bn, act in zip(self.convs, self.bns, self.acts):
            x = act(bn(conv(x)))  # (B, C', P, k)
        sc = fts if self.sc is None else self.sc_bn(self.sc(fts))
        return self.sc_act(sc + x.mean(dim=-1))


class ParticleNetBackbone(nn.Module):
    """ParticleNet encoder: (x, v, mask) -> jet embedding (B, D) after the hidden fc layers.

    Keyword-only hyperparameters as weaver's ParticleNet (conv_params [[k, [C', ...]], ...], fc_params
    [[width, dropout], ...]); PUBLISHED_CONFIG is the JetClass model (embed_dim 256).
    """

    def __init__(self, *, input_dim: int, conv_params: Sequence[Sequence[Any]], fc_params: Sequence[Sequence[Any]],
                 use_fusion: bool, use_fts_bn: bool, use_counts: bool, trim: bool = True):
        super().__init__()
        conv_params = [[int(k), [int(c) for c in chans]] for k, chans in conv_params]
        fc_params = [[int(w), float(p)] for w, p in fc_params]
        if not conv_params:
            raise ConfigError("ParticleNet needs at least one EdgeConv block (conv_params)")
        if input_dim <= max(POINT_COLUMNS):
            raise ConfigError(f"ParticleNet input_dim={input_dim}: x must hold PARTICLE_FEATURE_NAMES (deta, dphi)")
        #: constructor arguments, saved in checkpoints so a model rebuilds itself (hhfm.models.save_tagger)
        self.config = dict(architecture="particlenet", input_dim=int(input_dim), conv_params=conv_params,
                           fc_params=fc_params, use_fusion=bool(use_fusion), use_fts_bn=bool(use_fts_bn),
                           use_counts=bool(use_counts), trim=bool(trim))
        self.use_fusion, self.use_fts_bn, self.use_counts, self.trim = use_fusion, use_fts_bn, use_counts, trim
        #: round trimmed lengths up to this multiple
        self.trim_multiple: int = 1
        #: the particle axis is never shorter than this (kNN needs k+1 points incl. self)
        self.min_points = max(k for k, _ in conv_params) + 1
        if use_fts_bn:
            self.bn_fts = nn.BatchNorm1d(input_dim)
        widths = [input_dim] + [chans[-1] for _, chans in conv_params]
        self.edge_convs = nn.ModuleList(EdgeConvBlock(k, widths[i], chans) for i, (k, chans) in enumerate(conv_params))
        width = widths[-1]
        if use_fusion:
            width = fusion_width(sum(widths[1:]))
            self.fusion_block = nn.Sequential(nn.Conv1d(sum(widths[1:]), width, kernel_size=1, bias=False),
                                              nn.BatchNorm1d(width), nn.ReLU())
        fcs = []
        for w, p in fc_params:
            fcs.append(nn.Sequential(nn.Linear(width, w), nn.ReLU(), nn.Dropout(p)))
            width = w
        self.fc = nn.Sequential(*fcs)
        self.embed_dim = width

    def _trim(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut (trim) or zero-pad the particle axis to max(longest jet, min_points), rounded to trim_multiple."""
        P = mask.shape[1]
        length = P
        if self.trim:
            used = mask.any(dim=0).nonzero()
            length = int(used[-1]) + 1 if len(used) else 1
        length = max(length, self.min_points)
        length = -(-length // self.trim_multiple) * self.trim_multiple
        if length <= P:
            return x[:, :length], mask[:, :length]
        return F.pad(x, (0, 0, 0, length - P)), F.pad(mask, (0, length - P))

    def forward(self, x: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                taps: list[tuple[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """x (B, P, C), v (B, P, 4) unused, mask (B, P) bool -> (B, D).

        `taps`: if a list, appends ("edge{i}", (B, C'_i)) = mean over real particles of EdgeConv block i
        (1-based), then ("output", (B, D)) = the result.
        """
        x, mask = self._trim(x, mask.bool())
        pad = ~mask.unsqueeze(1)  # (B, 1, P) True = padded
        features = (x * mask.unsqueeze(-1).to(x.dtype)).transpose(1, 2)  # (B, C, P)
        points = features[:, POINT_COLUMNS]  # (B, 2, P)
        counts = mask.sum(dim=-1, keepdim=True).clamp(min=1).to(x.dtype)  # (B, 1)
        fts = self.bn_fts(features).masked_fill(pad, 0) if self.use_fts_bn else features
        outputs = []
        for i, conv in enumerate(self.edge_convs):
            pts = (points if i == 0 else fts).masked_fill(pad, COORD_SHIFT)
            fts = conv(pts, fts).masked_fill(pad, 0)  # (B, C'_i, P)
            outputs.append(fts)
            if taps is not None:
                taps.append((f"edge{i + 1}", fts.sum(dim=-1) / counts))
        if self.use_fusion:
            fts = self.fusion_block(torch.cat(outputs, dim=1)).masked_fill(pad, 0)
        pooled = fts.sum(dim=-1) / counts if self.use_counts else fts.mean(dim=-1)  # (B, C')
        out = self.fc(pooled)
        if taps is not None:
            taps.append(("output", out))
        return out
