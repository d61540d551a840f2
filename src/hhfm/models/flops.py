"""Analytic FLOP counts of the packed Particle Transformer (hhfm.models.particle_transformer).

Convention of torch.utils.flop_counter: 2 FLOPs per multiply-add, matmul-like ops only (Linear / 1x1 Conv1d,
the two attention products); norms, activations, softmax, pair features and index ops count 0.
Because the model is packed, one jet of n real particles (no padding, P = n) costs a quadratic in n:
    flops(n) = c0 + c1 * n + c2 * n^2
from per-token layers (~ n), real lower-triangle pairs (n(n+1)/2), particle attention (n x n scores) and
class attention (1 query vs 1+n keys). A sample of jets then needs only (count, sum n, sum n^2).
This per-jet count is what the compute accounting reports (hhfm.training.compute). What a batch actually
runs adds the padding of the attention layout (hhfm.models.inputs.JetGroups): the two attention products
over each group's B_g jets padded to L_g slots, `grouped_attention_flops`, instead of the real n x n; the
pair bias is scattered, not multiplied, so its padding costs no FLOPs.

FlopCounterMode on CPU counts 0 for F.scaled_dot_product_attention: with a float mask it dispatches to
aten._scaled_dot_product_flash_attention_for_cpu(_backward), absent from torch's registry (torch 2.13);
`cpu_sdpa_flop_mapping()` supplies torch's own fused-attention formulas for them. (SDPA whose bias requires
grad, i.e. the pair bias in training, runs the math path instead: bmm, counted without help.)

ParticleNet (hhfm.models.particlenet, `particlenet_forward_flops`): one jet of n real particles runs on
P = max(n, max k + 1) slots (the backbone never trims below k+1, so for n <= k the padding counts). Per
EdgeConv block with k neighbours and C_in -> C'_1 -> ... -> C'_L channels: the kNN inner products
(P x C_pts) @ (C_pts x P), 2 P^2 C_pts with C_pts = 2 (deta, dphi) for the first block, else C_in; the 1x1
Conv2d chain on the P*k edges, 2 P k (2 C_in C'_1 + C'_1 C'_2 + ...); the 1x1 Conv1d shortcut when
C_in != C'_L, 2 P C_in C'_L. Then the fusion 1x1 Conv1d (2 P C_cat C_fusion, if used) and the hidden fc
Linears per jet. BatchNorm, topk, gathers, masking and pooling count 0, as in FlopCounterMode (which counts
every one of these products itself: bmm and convolution).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from hhfm.models.inputs import group_layout
from hhfm.models.particlenet import fusion_width

#: training step = forward + backward, backward ~ 2x forward (grad w.r.t. inputs + grad w.r.t. weights,
#: one matmul each per forward matmul). Exact for the Linears here (every Linear input requires grad);
#: torch counts fused-attention backward as 2.5x its forward (scores recomputed), so counted ratios are >= 3
#: (3.00-3.04 for the small test models).
TRAIN_FACTOR = 3


def _chain_flops(dims: Sequence[int]) -> int:
    """2 * sum(in * out) of a Linear chain dims[0] -> dims[1] -> ... (FLOPs per row)."""
    return 2 * sum(int(a) * int(b) for a, b in zip(dims[:-1], dims[1:]))


def _attention_coefficients(config: Mapping[str, Any]) -> tuple[int, int, int]:
    """(c0, c1, c2) of the two attention products alone: scores q k^T and weights @ v, 2 * 2*Pq*Pk*D each."""
    D, L, Lc = int(config["embed_dims"][-1]), int(config["num_layers"]), int(config["num_cls_layers"])
    return 4 * D * Lc, 4 * D * Lc, 4 * D * L  # particle blocks n x n; class blocks 1 x (1+n)


def part_flop_coefficients(config: Mapping[str, Any], attention: bool = True) -> tuple[int, int, int]:
    """(c0, c1, c2) with forward FLOPs of one unpadded jet = c0 + c1 n + c2 n^2; `config` = ParticleTransformer.config.

    attention=False leaves out the SDPA products (what a plain FlopCounterMode counts on CPU).
    """
    D, H = int(config["embed_dims"][-1]), int(config["num_heads"])
    L, Lc = int(config["num_layers"]), int(config["num_cls_layers"])
    Fd = int(config["ffn_ratio"]) * D
    embed = _chain_flops([config["input_dim"], *config["embed_dims"]])
    pair = _chain_flops([config["pair_input_dim"], *config["pair_embed_dims"], H]) if config["pair_input_dim"] else 0
    token = 2 * (3 * D * D + D * D + 2 * D * Fd)  # in_proj (Q, K, V), out_proj, fc1, fc2 per particle
    cls_const = 2 * (D * D + 2 * D * D + D * D + 2 * D * Fd)  # class token: query, its K/V, out_proj, FFN
    cls_token = 2 * (2 * D * D)  # particle keys and values of each class block
    a0, a1, a2 = _attention_coefficients(config) if attention else (0, 0, 0)
    # pairs i >= j: n (n + 1) / 2 -> pair / 2 in both n and n^2 (pair is even)
    return Lc * cls_const + a0, embed + pair // 2 + L * token + Lc * cls_token + a1, pair // 2 + a2


def part_forward_flops(config: Mapping[str, Any], n: int | np.ndarray) -> float | np.ndarray:
    """Forward FLOPs of one jet with n real particles and no padding (vectorised over integer arrays n)."""
    c0, c1, c2 = part_flop_coefficients(config)
    n = np.asarray(n, dtype=np.float64)
    out = c0 + c1 * n + c2 * n * n
    return float(out) if out.ndim == 0 else out


def part_flops_from_moments(config: Mapping[str, Any], n_jets: int, sum_n: float, sum_n2: float) -> float:
    """Forward FLOPs summed over jets (unpadded), from their count, sum of n and sum of n^2."""
    c0, c1, c2 = part_flop_coefficients(config)
    return float(c0 * n_jets + c1 * float(sum_n) + c2 * float(sum_n2))


def padded_attention_flops(config: Mapping[str, Any], n_jets: int, P: int) -> float:
    """SDPA FLOPs of a batch padded to P slots (attention sees the padded layout; everything else is packed).

    A padded batch costs part_flops_from_moments(...) - attention at the real n + this.
    """
    a0, a1, a2 = _attention_coefficients(config)
    return float(n_jets * (a0 + a1 * P + a2 * P * P))


def grouped_attention_flops(config: Mapping[str, Any], ns: Sequence[int], group_jets: int | None,
                            multiple_of: int = 1) -> float:
    """SDPA FLOPs of one batch of jets with multiplicities `ns` (real particles first) in the attention layout
    of ParticleTransformer.group_jets = `group_jets` (None/0: the batch padded to its longest jet).

    A batch costs part_flops_from_moments(...) - attention at the real n + this.
    """
    sizes, lengths = group_layout(sorted(int(n) for n in ns), group_jets, multiple_of)
    return sum(padded_attention_flops(config, b, n) for b, n in zip(sizes, lengths))


def _particlenet_widths(config: Mapping[str, Any]) -> tuple[int, int]:
    """(pooled width, embed dim) of a ParticleNetBackbone config."""
    last = [int(chans[-1]) for _, chans in config["conv_params"]]
    pooled = fusion_width(sum(last)) if config["use_fusion"] else last[-1]
    return pooled, int(config["fc_params"][-1][0]) if config["fc_params"] else pooled


def particlenet_forward_flops(config: Mapping[str, Any], n: int | np.ndarray) -> float | np.ndarray:
    """Forward FLOPs of a ParticleNetBackbone (`config` = its .config) on one jet of n real particles, no padding
    beyond the k+1 minimum (see the module docstring; vectorised over integer arrays n)."""
    P = np.maximum(np.asarray(n, dtype=np.float64), max(int(k) for k, _ in config["conv_params"]) + 1)
    per_slot, per_slot2, c_in = 0, 0, int(config["input_dim"])  # FLOPs ~ P and ~ P^2
    for i, (k, chans) in enumerate(config["conv_params"]):
        per_slot2 += 2 * (2 if i == 0 else c_in)  # kNN inner products
        per_slot += int(k) * _chain_flops([2 * c_in, *chans])  # edge convs on P*k edges
        per_slot += 2 * c_in * int(chans[-1]) if c_in != int(chans[-1]) else 0  # shortcut
        c_in = int(chans[-1])
    pooled, _ = _particlenet_widths(config)
    if config["use_fusion"]:
        per_slot += 2 * sum(int(chans[-1]) for _, chans in config["conv_params"]) * pooled
    per_jet = _chain_flops([pooled, *(int(w) for w, _ in config["fc_params"])])
    out = per_jet + per_slot * P + per_slot2 * P * P
    return float(out) if out.ndim == 0 else out


def tagger_forward_flops(config: Mapping[str, Any], n_outputs: int, n: int | np.ndarray) -> float | np.ndarray:
    """Forward FLOPs of a JetTagger (backbone + Linear(D, n_outputs) head) on one unpadded jet of n particles;
    the backbone by config["architecture"] ("part" when absent, or "particlenet")."""
    if config.get("architecture", "part") == "particlenet":
        return particlenet_forward_flops(config, n) + 2 * _particlenet_widths(config)[1] * int(n_outputs)
    return part_forward_flops(config, n) + 2 * int(config["embed_dims"][-1]) * int(n_outputs)


def linear_flops_per_row(module: nn.Module) -> int:
    """2 * sum(in * out) over every nn.Linear and 1x1 nn.Conv1d in `module`: FLOPs of an MLP applied to one row."""
    total = 0
    for m in module.modules():
        if isinstance(m, nn.Conv1d) and m.kernel_size != (1,):
            raise ValueError(f"linear_flops_per_row: Conv1d with kernel {m.kernel_size} is not per-row")
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            total += 2 * m.weight.numel()  # Linear: out*in; 1x1 Conv1d: out*(in/groups)
    return total


def _fused_sdpa_flops(q: Sequence[int], k: Sequence[int], v: Sequence[int]) -> int:
    """torch's fused-attention forward count: scores (b h sq d)x(d sk) and weights @ v (sq sk)x(sk dv)."""
    b, h, sq, d = q
    return 2 * b * h * sq * k[-2] * (d + v[-1])


def _fused_sdpa_backward_flops(q: Sequence[int], k: Sequence[int], v: Sequence[int]) -> int:
    """torch's fused-attention backward count: scores recomputed, then grad of scores, V, Q and K (5 products)."""
    b, h, sq, d = q
    sk, dv = k[-2], v[-1]
    return 2 * b * h * sq * sk * (d + dv + dv + d + d)


def cpu_sdpa_flop_mapping() -> dict[Any, Callable[..., int]]:
    """custom_mapping for FlopCounterMode that counts CPU fused SDPA as torch counts fused SDPA on CUDA.

    Usage: FlopCounterMode(display=False, custom_mapping=cpu_sdpa_flop_mapping()).
    """
    aten = torch.ops.aten

    def fwd(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return _fused_sdpa_flops(query, key, value)

    def bwd(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return _fused_sdpa_backward_flops(query, key, value)

    return {aten._scaled_dot_product_flash_attention_for_cpu: fwd,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: bwd}
