"""The test jets a representation study looks at, and every layer's jet representation of a tagger on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hhfm.dataset import event_rows, open_dataset, read_rows
from hhfm.errors import InputError


@dataclass
class TestJets:
    """A seeded sample of the jets of test-split events: x (n, P, C), v (n, P, 4), mask (n, P), and per jet
    its /jets row, label_class, label_xbb and its event's label (1 signal, 0 background)."""

    rows: np.ndarray
    x: np.ndarray
    v: np.ndarray
    mask: np.ndarray
    label_class: np.ndarray
    label_xbb: np.ndarray
    event_label: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def sample_test_jets(dataset: str | Path, n_jets: int, seed: int) -> TestJets:
    """Up to `n_jets` jets of the test events (all if fewer), chosen with `seed`, in /jets row order."""
    with open_dataset(dataset) as f:
        ev = f["events"]
        test = event_rows(f, "test")
        jets = ev["jets"][:][test]  # (Ne, J) rows in /jets, -1 = none
        owner = np.broadcast_to(ev["label"][:][test][:, None], jets.shape)[jets >= 0]
        rows, first = np.unique(jets[jets >= 0], return_index=True)
        if not len(rows):
            raise InputError(f"{dataset}: no jets in test-split events")
        labels = owner[first]
        if len(rows) > n_jets:
            keep = np.sort(np.random.default_rng(seed).choice(len(rows), n_jets, replace=False))
            rows, labels = rows[keep], labels[keep]
        g = f["jets"]
        x, v, m = (read_rows(g[name], rows) for name in ("features", "vectors", "mask"))
        for name, a in (("features", x), ("vectors", v)):
            bad = ~np.isfinite(a).reshape(len(a), -1).all(1)
            if bad.any():
                raise InputError(f"{dataset}: /jets/{name} has non-finite values (row {int(rows[bad.argmax()])})")
        return TestJets(rows, x, v, m, read_rows(g["label_class"], rows), read_rows(g["label_xbb"], rows),
                        labels.astype(np.int8))


@torch.no_grad()
def layer_representations(tagger: torch.nn.Module, jets: TestJets, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Every layer's jet representation (n, D) of the tagger's backbone on `jets` (eval mode, fp32, CPU):
    `embed`, `block{i}` (mean over real particles), `cls{i}` (class token), `output` (the jet embedding)."""
    tagger = tagger.cpu().eval()
    parts: dict[str, list[np.ndarray]] = {}
    for a in range(0, len(jets), batch_size):
        taps: list[tuple[str, torch.Tensor]] = []
        sl = slice(a, a + batch_size)
        tagger.backbone(torch.from_numpy(jets.x[sl]).float(), torch.from_numpy(jets.v[sl]).float(),
                        torch.from_numpy(jets.mask[sl]), taps=taps)
        for name, t in taps:
            parts.setdefault(name, []).append(t.float().numpy())
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}
