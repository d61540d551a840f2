"""ParT inputs: trimming the particle axis, the key-padding bias and the pairwise (interaction) features.

Shapes as in hhfm.models.particle_transformer; (b, i, j) index the M real lower-triangle pairs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: clamp floor of the pair features (weaver's eps): ln(1e-8) = -18.42 on the diagonal / massless pairs
PAIR_EPS = 1e-8
#: additive attention bias of padded keys; exp(-1e4) underflows to exactly 0 next to any real key
MASK_VALUE = -1e4


def trim_to_longest(
    x: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, multiple_of: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut the particle axis after the last slot that is real in any jet (>= 1 slot kept).

    `multiple_of` rounds the length up (zero-padding beyond P if needed): multiples of 8 keep the
    CUDA memory-efficient attention kernel from padding the bias internally.
    """
    used = mask.any(dim=0).nonzero()
    length = int(used[-1]) + 1 if len(used) else 1
    if multiple_of > 1:
        length = -(-length // multiple_of) * multiple_of
    P = mask.shape[1]
    if length <= P:
        return x[:, :length], v[:, :length], mask[:, :length]
    pad = length - P
    return F.pad(x, (0, 0, 0, pad)), F.pad(v, (0, 0, 0, pad)), F.pad(mask, (0, pad))


def key_padding_bias(mask: torch.Tensor) -> torch.Tensor:
    """Additive attention bias (B, 1, 1, P): 0 for real keys, MASK_VALUE for padded ones."""
    B, P = mask.shape
    return torch.zeros(B, 1, 1, P, device=mask.device).masked_fill(~mask[:, None, None, :], MASK_VALUE)


def real_pairs(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(b, i, j), each (M,): the real pairs with i >= j (the diagonal included)."""
    return (mask.unsqueeze(-1) & mask.unsqueeze(-2)).tril().nonzero(as_tuple=True)


def pair_features(v: torch.Tensor, b: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """ln kT, ln z, ln Delta, ln m^2 (weaver's channel order) of the pairs (b, i, j) -> (M, 4), always fp32.

    Delta uses rapidity and phi, as weaver's `pairwise_lv_fts_pp`. Computed with autocast off: in fp16
    E^2 overflows, in bf16 ln m^2 of a realistic pair cancels to the clamp (shared/model_notes.md 5.3).
    """
    with torch.autocast(device_type=v.device.type, enabled=False):
        v = v.float()
        P = v.shape[1]
        px, py, pz, e = v.unbind(-1)  # each (B, P)
        pt = torch.sqrt(px.square() + py.square())
        rap = 0.5 * torch.log(1 + (2 * pz) / (e - pz).clamp(min=1e-20))
        phi = torch.atan2(py, px)
        per = torch.stack((pt, rap, phi, px, py, pz, e), dim=-1).reshape(-1, 7)  # (B*P, 7)
        a, c = per[b * P + i], per[b * P + j]  # (M, 7) each
        dphi = (a[:, 2] - c[:, 2] + math.pi) % (2 * math.pi) - math.pi
        delta = torch.sqrt((a[:, 1] - c[:, 1]).square() + dphi.square())
        ptmin = torch.minimum(a[:, 0], c[:, 0])
        lnkt = torch.log((ptmin * delta).clamp(min=PAIR_EPS))
        lnz = torch.log((ptmin / (a[:, 0] + c[:, 0]).clamp(min=PAIR_EPS)).clamp(min=PAIR_EPS))
        lndelta = torch.log(delta.clamp(min=PAIR_EPS))
        s = a[:, 3:] + c[:, 3:]  # summed four-vector (M, 4)
        m2 = s[:, 3].square() - s[:, :3].square().sum(-1)
        lnm2 = torch.log(m2.clamp(min=PAIR_EPS))
        return torch.stack((lnkt, lnz, lndelta, lnm2), dim=-1)
