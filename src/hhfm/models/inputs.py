"""ParT inputs: trimming the particle axis, the key-padding bias and the pairwise (interaction) features.

Shapes as in hhfm.models.particle_transformer; (b, i, j) index the M real lower-triangle pairs.
"""

from __future__ import annotations

import math
from typing import Sequence

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
    """ln kT, ln z, ln Delta, ln m^2 (weaver's channel order) of the pairs (b, i, j) -> (M, 4), in fp32
    (fp64 if v is fp64).

    Delta uses rapidity and phi, as weaver's `pairwise_lv_fts_pp`. Computed with autocast off: in fp16
    E^2 overflows, in bf16 ln m^2 of a realistic pair cancels to the clamp (shared/model_notes.md 5.3).
    """
    with torch.autocast(device_type=v.device.type, enabled=False):
        v = v if v.dtype == torch.float64 else v.float()
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


#: default ParticleTransformer.group_jets: jets per multiplicity group of the attention layout (see JetGroups)
GROUP_JETS = 32


class JetGroups:
    """Layout of the quadratic work (pair bias, particle and class attention) of one batch.

    The jets are cut into groups; group g holds B_g jets on L_g slots (its own longest jet, rounded up to
    `multiple_of`), so its attention is (B_g, H, L_g, L_g) instead of (B, H, P, P). Everything per token
    stays packed: the N real particles in the row-major order of mask.nonzero() (`idx`), for every layout.
    Group layouts are concatenated into one flat slot axis of S = sum_g B_g L_g rows (`slot`: the row of
    each packed token); the pair bias into one flat buffer of H sum_g B_g L_g^2 values.

    Ungrouped (`plan_groups` with group_jets None/0, or when one group would result): one group, the
    jets in batch order on their own P slots (slot = idx), i.e. exactly the padded (B, P) layout.
    Grouped: jets sorted by multiplicity n (stable), cut into consecutive runs of `group_jets` jets,
    runs with the same rounded length merged; each jet's real particles are compacted, in their
    order, to the first n slots of its row (so any mask works, not only real-particles-first ones).
    The compaction is a permutation of each jet's particles, under which attention is equivariant.
    """

    def __init__(self, mask: torch.Tensor, order: torch.Tensor | None, sizes: list[int], lengths: list[int]):
        B, P = mask.shape
        dev = mask.device
        self.order, self.sizes, self.lengths = order, sizes, lengths
        self.idx = mask.reshape(-1).nonzero().squeeze(1)  # (N,) flat slots of the real particles in (B*P)
        self.chunks = [b * n for b, n in zip(sizes, lengths)]  # rows of each group in the flat slot axis
        self.pair_chunks = [b * n * n for b, n in zip(sizes, lengths)]  # bias values per head of each group
        if order is None:  # padded layout: row b, slot p
            self.inverse = None
            self.pos = torch.arange(P, device=dev).expand(B, P)
            self.jet_len = torch.full((B,), P, device=dev, dtype=torch.long)
            self.jet_slot = torch.arange(B, device=dev) * P
            self.jet_pair = self.jet_slot * P
            self.keys = [mask]
        else:
            self.inverse = torch.empty_like(order).index_copy_(0, order, torch.arange(B, device=dev))
            self.pos = mask.long().cumsum(1) - 1  # compacted slot of each real particle
            n = mask.sum(1)
            rows = torch.arange(B, device=dev)
            group = torch.repeat_interleave(torch.arange(len(sizes), device=dev), torch.tensor(sizes, device=dev))
            start = torch.tensor([0, *sizes[:-1]], device=dev).cumsum(0)  # first sorted position of each group
            L = torch.tensor(lengths, device=dev)
            slot0 = torch.tensor([0, *self.chunks[:-1]], device=dev).cumsum(0)
            pair0 = torch.tensor([0, *self.pair_chunks[:-1]], device=dev).cumsum(0)
            r = rows - start[group]  # row of each sorted jet inside its group
            self.jet_len, self.jet_slot, self.jet_pair = (torch.empty_like(order) for _ in range(3))
            self.jet_len[order] = L[group]
            self.jet_slot[order] = slot0[group] + r * L[group]
            self.jet_pair[order] = pair0[group] + r * L[group] ** 2
            n_sorted = n[order]
            self.keys = [torch.arange(length, device=dev)[None] < n_g[:, None]
                         for n_g, length in zip(n_sorted.split(sizes), lengths)]
        b = self.idx // P
        self.slot = self.jet_slot[b] + self.pos.reshape(-1)[self.idx]  # (N,) row in the flat slot axis
        self.total = sum(self.chunks)

    def scatter(self, t: torch.Tensor) -> list[torch.Tensor]:
        """Packed rows t (N, K) -> per group (B_g, L_g, K), zeros in padded slots."""
        buf = t.new_zeros(self.total, t.shape[-1]).index_copy(0, self.slot, t)
        parts = (buf,) if len(self.sizes) == 1 else buf.split(self.chunks)
        return [p.view(b, n, -1) for p, b, n in zip(parts, self.sizes, self.lengths)]

    def gather(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Per group (B_g, L_g, K) -> packed rows (N, K) of the real slots."""
        K = parts[0].shape[-1]
        flat = parts[0].reshape(-1, K) if len(parts) == 1 else torch.cat([p.reshape(-1, K) for p in parts])
        return flat.index_select(0, self.slot)

    def split_jets(self, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-jet rows t (B, ...) in group order -> per group (B_g, ...)."""
        return (t,) if len(self.sizes) == 1 else t.split(self.sizes)

    def sort(self, t: torch.Tensor) -> torch.Tensor:
        """Per-jet rows (B, ...) in batch order -> group order."""
        return t if self.order is None else t.index_select(0, self.order)

    def unsort(self, t: torch.Tensor) -> torch.Tensor:
        """Per-jet rows (B, ...) in group order -> batch order."""
        return t if self.inverse is None else t.index_select(0, self.inverse)

    def key_bias(self) -> list[torch.Tensor]:
        """Per group the key-padding bias (B_g, 1, 1, L_g)."""
        return [key_padding_bias(k) for k in self.keys]

    def pair_bias(self, u: torch.Tensor, b: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> list[torch.Tensor]:
        """Per group the attention bias (B_g, H, L_g, L_g) from u (M, H) of the real pairs (b, i, j), i >= j:
        u at (i, j) and (j, i), 0 elsewhere, MASK_VALUE on padded keys."""
        H = u.shape[1]
        L, ci, cj = self.jet_len[b], self.pos[b, i], self.pos[b, j]
        base = H * self.jet_pair[b]
        heads = (L * L)[:, None] * torch.arange(H, device=u.device)  # (M, H)
        flat = u.new_zeros(H * sum(self.pair_chunks))
        flat[(base + ci * L + cj)[:, None] + heads] = u
        flat[(base + cj * L + ci)[:, None] + heads] = u  # the diagonal twice: its gradient once, as one write
        parts = (flat,) if len(self.sizes) == 1 else flat.split([H * c for c in self.pair_chunks])
        return [p.view(bg, H, n, n).masked_fill(~k[:, None, None, :], MASK_VALUE)
                for p, bg, n, k in zip(parts, self.sizes, self.lengths, self.keys)]


def group_layout(ns: Sequence[int], group_jets: int | None = None, multiple_of: int = 1) -> tuple[list[int], list[int]]:
    """(jets B_g, slots L_g) of each group for multiplicities `ns` sorted ascending (see JetGroups): runs of
    `group_jets` jets, L_g = the run's longest jet (>= 1) rounded up to `multiple_of`, a run as long as the
    previous one joining it. group_jets None or 0 (or >= len(ns)): one group of all jets."""
    B = len(ns)
    step = group_jets if group_jets and group_jets < B else max(B, 1)
    starts: list[int] = []
    lengths: list[int] = []
    for s in range(0, B, step):
        n = -(-max(int(ns[min(s + step, B) - 1]), 1) // multiple_of) * multiple_of
        if not lengths or lengths[-1] != n:
            starts.append(s)
            lengths.append(n)
    return [e - s for s, e in zip(starts, [*starts[1:], B])], lengths


def plan_groups(mask: torch.Tensor, group_jets: int | None = None, multiple_of: int = 1) -> JetGroups:
    """The attention layout of a batch with mask (B, P) (see JetGroups): group_jets None or 0, or a
    plan that ends in one group -> the padded layout of the batch as it is."""
    if group_jets and mask.shape[0] > group_jets:
        n = mask.sum(1)
        order = torch.argsort(n, stable=True)
        sizes, lengths = group_layout(n[order].tolist(), group_jets, multiple_of)
        if len(sizes) > 1:
            return JetGroups(mask, order, sizes, lengths)
    return JetGroups(mask, None, [mask.shape[0]], [mask.shape[1]])
