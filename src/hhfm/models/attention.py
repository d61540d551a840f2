"""Multi-head attention of the ParT blocks and the dropout it uses (cheaper keep masks on CPU).

Shapes as in hhfm.models.particle_transformer; attention tensors are (B, H, P, hd).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

#: SDPA backends on CUDA: flash attention cannot take a float bias, so the memory-efficient kernel (math fallback)
_CUDA_BACKENDS = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def dropout_keep_mask(shape: Sequence[int], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool mask, True with probability 1 - p (p in steps of 2^-16): four draws per 64-bit random number.

    On CPU this is ~2x cheaper than bernoulli_, which dominates ParT training there (the attention
    matrix (B, H, P, P) is the largest tensor); uses the torch generator, so runs stay reproducible.
    """
    n = math.prod(shape)
    bits = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=device)
    return (bits.view(torch.int16)[:n] >= round(p * 65536) - 32768).view(*shape)


def _drop(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout of x with the cheap keep mask (p > 0)."""
    return x.masked_fill(~dropout_keep_mask(x.shape, p, x.device), 0.0) * (1.0 / (1.0 - p))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout, with the cheaper keep mask on CPU (same distribution, same torch generator)."""
    if not training or p == 0:
        return x
    if x.is_cuda:
        return F.dropout(x, p, True)
    return _drop(x, p)


def attention_with_dropout(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                           p: float) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd) + bias) with dropout p on the weights, @ v: SDPA's math path, cheaper mask."""
    w = torch.softmax(torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2)) + bias, dim=-1)
    if p > 0:
        w = _drop(w, p)
    return torch.matmul(w, v)


class Attention(nn.Module):
    """Multi-head attention parameters, named as weaver's (`in_proj` = packed Q, K, V; `out_proj`)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads, self.head_dim, self.dropout = num_heads, embed_dim // num_heads, dropout
        self.in_proj = nn.Linear(embed_dim, 3 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        # nn.MultiheadAttention's init (the 0.4-era paper model): xavier in-proj, zero biases
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)

    def sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """q (B, H, Pq, hd), k/v (B, H, Pk, hd), bias (B, H or 1, Pq or 1, Pk) -> (B, H, Pq, hd)."""
        p = self.dropout if self.training else 0.0
        if p > 0 and not q.is_cuda:
            return attention_with_dropout(q, k, v, bias.to(q.dtype), p)
        with sdpa_kernel(_CUDA_BACKENDS) if q.is_cuda else nullcontext():
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=p)
