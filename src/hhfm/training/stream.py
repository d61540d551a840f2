"""Bounded-memory training batches from dataset.h5: windows of jets read by DataLoader workers, in an
order that is a pure function of (seed, epoch).

An epoch's plan: the selected rows (sorted, as in the file) are cut into chunks of `chunk_jets`
consecutive rows; the full chunks are permuted (the short tail chunk goes last); `window_chunks`
consecutive chunks form a window, the shuffle buffer; a window's rows are permuted and cut into
batches. One window is one item of a map-style Dataset, so the DataLoader hands the windows back in
plan order whatever the number of workers: batches never depend on `workers`, and a resumed epoch
sees the same batches. With several DDP ranks every rank plans the same global batches and reads
only its slice of each (`shard`); batches smaller than the number of ranks are left out. Memory:
one window of the big per-jet arrays (chunk_jets x window_chunks jets; 8.5 kB each at 100
particles) per worker and prefetched item, whatever the dataset's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import h5py
import numpy as np
import torch

from hhfm.dataset import read_rows

Batch = dict[str, torch.Tensor]
#: file rows per HDF5 read (dataset.h5 is chunked by 1024 rows): ~35 MB of the widest array at most
READ_BLOCK = 4096


@dataclass(frozen=True)
class StreamSettings:
    """How an epoch is cut (`chunk_jets`, `window_chunks`: change the order) and read (`workers`)."""

    chunk_jets: int = 1024
    window_chunks: int = 16
    workers: int = 0


def epoch_windows(n: int, s: StreamSettings, seed: int | None = None, epoch: int = 0) -> list[np.ndarray]:
    """Positions 0..n-1 grouped into windows, each listed in batch order; `seed` None: in order."""
    size = s.chunk_jets * s.window_chunks
    if seed is None:
        return [np.arange(a, min(a + size, n)) for a in range(0, n, size)]
    rng = np.random.default_rng([seed, epoch])
    n_full = n // s.chunk_jets
    chunks = [np.arange(c * s.chunk_jets, (c + 1) * s.chunk_jets) for c in rng.permutation(n_full)]
    if n % s.chunk_jets:
        chunks.append(np.arange(n_full * s.chunk_jets, n))
    return [rng.permutation(np.concatenate(chunks[k:k + s.window_chunks]))
            for k in range(0, len(chunks), s.window_chunks)]


def cut(pos: np.ndarray, batch_size: int, world: int = 1) -> list[np.ndarray]:
    """A window's positions cut into global batches; with `world` > 1 ranks, those with >= world jets."""
    batches = [pos[a:a + batch_size] for a in range(0, len(pos), batch_size)]
    return [b for b in batches if len(b) >= world] if world > 1 else batches


def n_batches(n: int, batch_size: int, s: StreamSettings, world: int = 1) -> int:
    """Batches per epoch (the same every epoch: only the last window can be shorter)."""
    return sum(len(cut(w, batch_size, world)) for w in epoch_windows(n, s))


class WindowDataset(torch.utils.data.Dataset):
    """Item k: the batches of window k, each {big arrays read from /jets, small columns, "pos"}.

    `rows` are the selected rows of /jets (sorted); `small` holds per-jet columns already in memory
    (aligned with `rows`); `prepare` runs on every batch in the worker (trimming, checks); `shard`
    (rank, world): this rank's slice [rank::world] of every global batch.
    """

    def __init__(self, path: str, rows: np.ndarray, big: list[str], small: Mapping[str, np.ndarray],
                 windows: list[np.ndarray], batch_size: int, prepare: Callable[[Batch], Batch] | None = None,
                 shard: tuple[int, int] = (0, 1)):
        self.path, self.rows, self.big, self.small = str(path), rows, big, small
        self.windows, self.batch_size, self.prepare, self.shard = windows, batch_size, prepare, shard
        self._file: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.windows)

    def _jets(self) -> h5py.Group:
        if self._file is None or self._pid != os.getpid():  # h5py handles do not survive a fork
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file["jets"]

    def __getitem__(self, k: int) -> list[Batch]:
        rank, world = self.shard
        parts = [b[rank::world] for b in cut(self.windows[k], self.batch_size, world)]
        pos = np.concatenate(parts) if parts else np.empty(0, np.int64)
        order = np.argsort(pos, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        jets = self._jets()  # read in blocks of READ_BLOCK file rows: a bounded transient, whatever the split's density
        data = {name: read_rows(jets[name], self.rows[pos[order]], READ_BLOCK)[inverse] for name in self.big}
        out, a = [], 0
        for p in parts:
            batch = {name: torch.from_numpy(np.ascontiguousarray(v[a:a + len(p)])) for name, v in data.items()}
            a += len(p)
            batch.update({name: torch.from_numpy(np.asarray(v[p])) for name, v in self.small.items()})
            batch["pos"] = torch.from_numpy(p.astype(np.int64))
            out.append(self.prepare(batch) if self.prepare else batch)
        return out


def stream(dataset: torch.utils.data.Dataset, workers: int = 0, pin_memory: bool = False) -> Iterator[Batch]:
    """Batches of a dataset whose items are lists of batches (a window each), read ahead by `workers` processes."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                         pin_memory=pin_memory, prefetch_factor=2 if workers else None)
    for window in loader:
        yield from window


def resolve_workers(workers: int, device: torch.device) -> int:
    """-1 (auto): no worker processes on CPU (they would compete with the model for the cores), 4 on CUDA."""
    if workers >= 0:
        return workers
    return min(4, max(1, (os.cpu_count() or 2) - 1)) if device.type == "cuda" else 0
