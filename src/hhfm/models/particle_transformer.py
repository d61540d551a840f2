"""Particle Transformer (ParT; Qu, Li, Qian, arXiv:2202.03772), v1 = the paper model, as a jet encoder.

Faithful to `weaver.nn.model.ParticleTransformer` (weaver-core 0.5.x, version=1): same modules, same
parameter names and shapes, same function in eval mode (checked in tests/test_models.py), so published
weights load by name. Faster because it is *packed*: every per-token layer (embedding MLP, LayerNorms,
QKV/out projections, FFN) runs only on the real particles (N = sum of multiplicities), and only the
attention itself sees a padded layout. Pair features are computed only for real lower-triangle
pairs, in fp32, with Linear instead of 1x1 Conv1d on channels-last data. The padded layout of the
attention (pair-bias scatter, particle and class attention) is per group of jets of similar
multiplicity (`group_jets`, default inputs.GROUP_JETS; hhfm.models.inputs.JetGroups), each group padded
to its own longest jet: ~sum n_i^2 instead of B * max(n)^2 work. The BatchNorms still see every real
token and pair of the batch at once, so outputs (eval) and training with dropout 0 agree with the
single padded batch (`group_jets = 0`) to rounding; with dropout, attention-dropout draws follow the
layout (other random numbers than the padded batch, deterministic for a seed).

Shapes (documented once):
    B batch, P padded particles, C input features, D embed dim, H heads, hd = D / H head dim,
    N real particles in the batch, M real lower-triangle pairs (i >= j) in the batch.
    x (B, P, C) features, v (B, P, 4) px, py, pz, E (GeV), mask (B, P) bool, True = real particle.

Deliberate differences from weaver (documented in README "Stage: pretrain"):
    * BatchNorm statistics of the particle embedding use real particles only (weaver includes padded
      slots), so the output is independent of the padding also in training mode; eval mode is identical.
    * No random sequence trimming in training (weaver's SequenceTrimmer drops particles of the longest
      ~10 % of jets); batches are cut to their longest jet (`trim_to_longest`), deterministically, and the
      attention runs per multiplicity group (above).
    * The key-padding bias is a finite -1e4 instead of -inf, so fully padded rows never give NaN
      (softmax of an all-masked row is uniform over zero values instead of 0/0).

Modules: this one (embeddings, blocks, encoder), `attention` (multi-head attention, CPU dropout),
`inputs` (trimming, key-padding bias, pair features, multiplicity groups). Hyperparameters have no defaults here: the
config schema (hhfm/config.schema.yaml `model`) holds them, and `hhfm.models.build_backbone` fills them.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from hhfm.models.attention import Attention, dropout
from hhfm.training import distributed
from hhfm.models.inputs import GROUP_JETS, JetGroups, pair_features, plan_groups, real_pairs, trim_to_longest


def _batch_norm(bn: nn.BatchNorm1d, u: torch.Tensor) -> torch.Tensor:
    """BatchNorm1d on channels-last rows u (rows, C); falls back to running stats with < 2 rows.

    With several DDP ranks, training-mode statistics are those of the global batch (all ranks' rows).
    """
    if bn.training and distributed.current().enabled:
        return distributed.synced_batch_norm(bn, u)
    if bn.training and u.shape[0] < 2:
        return F.batch_norm(u, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return bn(u)


def _run_pointwise(seq: nn.Sequential, u: torch.Tensor) -> torch.Tensor:
    """Run a weaver-style Sequential (BatchNorm1d / 1x1 Conv1d / Linear / LayerNorm / act) on rows u (rows, C)."""
    for m in seq:
        if isinstance(m, nn.Conv1d):  # 1x1 conv == linear on channels-last rows; same weight, same name
            u = F.linear(u, m.weight.squeeze(-1), m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            u = _batch_norm(m, u)
        else:
            u = m(u)
    return u


def _to_padded(t: torch.Tensor, idx: torch.Tensor, B: int, P: int) -> torch.Tensor:
    """Packed rows t (N, K) back to the padded layout (B, P, K), zeros in padded slots."""
    return t.new_zeros(B * P, t.shape[-1]).index_copy(0, idx, t).view(B, P, -1)


class Embed(nn.Module):
    """Particle embedding: BatchNorm1d(C), then (LayerNorm -> Linear -> GELU) per width in `dims`."""

    def __init__(self, input_dim: int, dims: Sequence[int]):
        super().__init__()
        self.input_bn = nn.BatchNorm1d(input_dim)
        layers: list[nn.Module] = []
        for dim in dims:
            layers += [nn.LayerNorm(input_dim), nn.Linear(input_dim, dim), nn.GELU()]
            input_dim = dim
        self.embed = nn.Sequential(*layers)

    def forward(self, xp: torch.Tensor) -> torch.Tensor:
        """(N, C) real particles -> (N, D)."""
        return self.embed(_batch_norm(self.input_bn, xp))


class PairEmbed(nn.Module):
    """Pair embedding: BatchNorm1d(4), then (1x1 Conv1d -> BatchNorm1d -> GELU) per width; last width = H."""

    def __init__(self, input_dim: int, dims: Sequence[int], use_pre_activation_pair: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(input_dim)]
        for dim in dims:
            layers += [nn.Conv1d(input_dim, dim, 1), nn.BatchNorm1d(dim), nn.GELU()]
            input_dim = dim
        if use_pre_activation_pair:
            layers = layers[:-1]
        self.embed = nn.Sequential(*layers)
        self.out_dim = dims[-1]

    def forward(self, v: torch.Tensor, mask: torch.Tensor, groups: JetGroups) -> list[torch.Tensor]:
        """Per-head attention bias per group of `groups` (B_g, H, L_g, L_g): embedded pair features for real
        pairs, 0 elsewhere, MASK_VALUE on padded keys. The pair MLP (and its BatchNorms) runs once on all
        real pairs of the batch, whatever the grouping."""
        b, i, j = real_pairs(mask)  # (M,) each
        u = _run_pointwise(self.embed, pair_features(v, b, i, j))  # (M, H)
        return groups.pair_bias(u, b, i, j)


class Block(nn.Module):
    """NormFormer-style ParT block (particle attention with pair bias, or class attention)."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_ratio: int, *, dropout: float, attn_dropout: float,
                 activation_dropout: float):
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        ffn_dim = embed_dim * ffn_ratio
        self.pre_attn_norm = nn.LayerNorm(embed_dim)
        self.attn = Attention(embed_dim, num_heads, attn_dropout)
        self.post_attn_norm = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.pre_fc_norm = nn.LayerNorm(embed_dim)
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.act = nn.GELU()
        self.act_dropout = nn.Dropout(activation_dropout)
        self.post_fc_norm = nn.LayerNorm(ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.c_attn = nn.Parameter(torch.ones(num_heads))  # per-head scale (applied after out_proj, as weaver 0.5)
        self.w_resid = nn.Parameter(torch.ones(embed_dim))  # per-channel residual scale

    def _finish(self, a: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Out-projection, head scale, post-norm, residual, then the FFN; a and residual (..., D)."""
        p, p_act, train = self.dropout.p, self.act_dropout.p, self.training
        a = self.attn.out_proj(a) * self.c_attn.repeat_interleave(self.head_dim)
        x = dropout(self.post_attn_norm(a), p, train) + residual
        h = dropout(self.act(self.fc1(self.pre_fc_norm(x))), p_act, train)
        return dropout(self.fc2(self.post_fc_norm(h)), p, train) + self.w_resid * x

    def forward(self, xp: torch.Tensor, groups: JetGroups, biases: list[torch.Tensor]) -> torch.Tensor:
        """Particle attention: xp (N, D) packed real tokens -> (N, D); attention per group of `groups`
        (biases[g]: (B_g, H or 1, L_g or 1, L_g)), everything else once on the N tokens."""
        D, H, hd = self.embed_dim, self.num_heads, self.head_dim
        qkv = self.attn.in_proj(self.pre_attn_norm(xp))  # (N, 3D)
        out = []
        for part, bias in zip(groups.scatter(qkv), biases):  # part (B_g, L_g, 3D)
            b, n = part.shape[:2]
            q, k, v = part.view(b, n, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0)  # (B_g, H, L_g, hd) each
            out.append(self.attn.sdpa(q, k, v, bias).transpose(1, 2).reshape(b, n, D))
        return self._finish(groups.gather(out), xp)  # gather: (N, D)

    def forward_cls(self, x_cls: torch.Tensor, xp: torch.Tensor, groups: JetGroups,
                    key_biases: list[torch.Tensor]) -> torch.Tensor:
        """Class attention (CaiT): x_cls (B, 1, D), jets in group order, attends to [cls, particles];
        key_biases[g] (B_g, 1, 1, 1+L_g)."""
        D, H, hd = self.embed_dim, self.num_heads, self.head_dim
        w, bvec = self.attn.in_proj.weight, self.attn.in_proj.bias
        q = F.linear(x_cls, w[:D], bvec[:D])  # query = un-normalised class token, as weaver (B, 1, D)
        kv_cls = F.linear(self.pre_attn_norm(x_cls), w[D:], bvec[D:])  # (B, 1, 2D)
        kv_p = F.linear(self.pre_attn_norm(xp), w[D:], bvec[D:])  # (N, 2D)
        out = []
        for part, kc, qg, key_bias in zip(groups.scatter(kv_p), groups.split_jets(kv_cls), groups.split_jets(q),
                                          key_biases):
            b, n = part.shape[:2]
            kv = torch.cat((kc, part), dim=1)  # (B_g, 1+L_g, 2D)
            k, v = kv.view(b, 1 + n, 2, H, hd).permute(2, 0, 3, 1, 4).unbind(0)  # (B_g, H, 1+L_g, hd)
            qg = qg.reshape(b, 1, H, hd).transpose(1, 2).to(k.dtype)  # (B_g, H, 1, hd)
            out.append(self.attn.sdpa(qg, k, v, key_bias).transpose(1, 2).reshape(b, 1, D))
        return self._finish(out[0] if len(out) == 1 else torch.cat(out), x_cls)


class ParticleTransformer(nn.Module):
    """ParT encoder: (x, v, mask) -> jet embedding (B, D) (class token after the final LayerNorm).

    Keyword-only hyperparameters, the config `model` keys (see the schema for their meaning and the
    paper values; build_backbone({}) is the paper model, 2,142,196 parameters at C=17).
    """

    def __init__(self, *, input_dim: int, embed_dims: Sequence[int], pair_input_dim: int,
                 pair_embed_dims: Sequence[int], num_heads: int, num_layers: int, num_cls_layers: int,
                 ffn_ratio: int, dropout: float, attn_dropout: float, activation_dropout: float,
                 use_pre_activation_pair: bool, trim: bool):
        super().__init__()
        #: constructor arguments, saved in checkpoints so a model rebuilds itself (hhfm.models.save_tagger)
        self.config = dict(input_dim=input_dim, embed_dims=list(embed_dims), pair_input_dim=pair_input_dim,
                           pair_embed_dims=list(pair_embed_dims), num_heads=num_heads, num_layers=num_layers,
                           num_cls_layers=num_cls_layers, ffn_ratio=ffn_ratio, dropout=dropout,
                           attn_dropout=attn_dropout, activation_dropout=activation_dropout,
                           use_pre_activation_pair=use_pre_activation_pair, trim=trim)
        if pair_input_dim not in (0, 4):
            raise ValueError(f"pair_input_dim must be 4 (ln kT, ln z, ln Delta, ln m^2) or 0, got {pair_input_dim}")
        D = embed_dims[-1]
        if D % num_heads:
            raise ValueError(f"embed dim {D} is not divisible by num_heads={num_heads}")
        self.embed_dim, self.num_heads, self.trim = D, num_heads, trim
        #: round trimmed lengths up to this multiple (None: 8 on CUDA for the memory-efficient kernel, else 1)
        self.trim_multiple: int | None = None
        #: attention layout (with trim only): jets sorted by multiplicity in groups of this many, each padded
        #: to its own longest jet (hhfm.models.inputs.JetGroups); None or 0: the whole batch padded to its
        #: longest jet. A speed setting, not saved in `config`; outputs agree to rounding either way.
        self.group_jets: int | None = GROUP_JETS
        self.embed = Embed(input_dim, embed_dims)
        self.pair_embed = (PairEmbed(pair_input_dim, (*pair_embed_dims, num_heads), use_pre_activation_pair)
                           if pair_input_dim > 0 else None)
        self.blocks = nn.ModuleList(
            Block(D, num_heads, ffn_ratio, dropout=dropout, attn_dropout=attn_dropout,
                  activation_dropout=activation_dropout) for _ in range(num_layers))
        self.cls_blocks = nn.ModuleList(
            Block(D, num_heads, ffn_ratio, dropout=0.0, attn_dropout=0.0, activation_dropout=0.0)
            for _ in range(num_cls_layers))
        self.norm = nn.LayerNorm(D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if num_cls_layers > 0 else None
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                taps: list[tuple[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """x (B, P, C), v (B, P, 4), mask (B, P) bool -> (B, D).

        `taps`: if a list, every layer's jet representation is appended as (name, (B, D)): `embed` and
        `block{i}` (particle tokens, mean over real particles), `cls{i}` (class token), `output` (the result).
        """
        mask = mask.bool()
        multiple = self.trim_multiple or (8 if x.is_cuda else 1)
        if self.trim:
            x, v, mask = trim_to_longest(x, v, mask, multiple)
        B, P, C = x.shape
        groups = plan_groups(mask, self.group_jets if self.trim else None, multiple)
        idx = groups.idx  # (N,) flat slots of real particles
        xp = self.embed(x.reshape(B * P, C).index_select(0, idx))  # (N, D)
        if taps is not None:
            taps.append(("embed", _mean_pool(xp, idx, mask)))
        # per group (B_g, H, L_g, L_g) with pair features, else (B_g, 1, 1, L_g)
        biases = self.pair_embed(v, mask, groups) if self.pair_embed is not None else groups.key_bias()
        for i, blk in enumerate(self.blocks):
            xp = blk(xp, groups, biases)
            if taps is not None:
                taps.append((f"block{i + 1}", _mean_pool(xp, idx, mask)))
        out = self.norm(self._aggregate(xp, groups, mask, taps))
        if taps is not None:
            taps.append(("output", out))
        return out

    def _aggregate(self, xp: torch.Tensor, groups: JetGroups, mask: torch.Tensor,
                   taps: list[tuple[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """Jet vector (B, D) from the particle tokens xp (N, D): class attention, or masked mean pooling
        (weaver's num_cls_layers=0 aggregator)."""
        B = mask.shape[0]
        if self.cls_token is None:
            return _mean_pool(xp, groups.idx, mask)
        # (B_g, 1, 1, 1+L_g), class token always a valid key
        key_biases = [F.pad(bias, (1, 0)) for bias in groups.key_bias()]
        x_cls = self.cls_token.expand(B, 1, -1)  # jets in group order from here on
        for i, blk in enumerate(self.cls_blocks):
            x_cls = blk.forward_cls(x_cls, xp, groups, key_biases)
            if taps is not None:
                taps.append((f"cls{i + 1}", groups.unsort(x_cls.squeeze(1))))
        return groups.unsort(x_cls.squeeze(1))


def _mean_pool(xp: torch.Tensor, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real particles' tokens xp (N, D) per jet -> (B, D)."""
    B, P = mask.shape
    counts = mask.sum(1, keepdim=True).clamp(min=1)
    return _to_padded(xp, idx, B, P).sum(1) / counts
