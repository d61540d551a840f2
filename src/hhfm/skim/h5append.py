"""Append row blocks to resizable HDF5 datasets (bounded memory for any number of rows)."""

from __future__ import annotations

from typing import Mapping

import h5py
import numpy as np


def chunk_rows(row_shape: tuple[int, ...], itemsize: int, target_bytes: int = 1 << 20) -> int:
    """Rows per HDF5 chunk so that one chunk is about `target_bytes` (1 MiB)."""
    per_row = max(1, int(np.prod(row_shape, dtype=np.int64)) * itemsize)
    return int(max(1, min(4096, target_bytes // per_row)))


def append(group: h5py.Group, arrays: Mapping[str, np.ndarray], compression: str | None) -> None:
    """Append each array's rows to group/<name>, creating a resizable dataset on first use."""
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if name not in group:
            group.create_dataset(name, shape=(0,) + arr.shape[1:], maxshape=(None,) + arr.shape[1:],
                                 dtype=arr.dtype, chunks=(chunk_rows(arr.shape[1:], arr.dtype.itemsize),)
                                 + arr.shape[1:], compression=compression)
        ds = group[name]
        n = ds.shape[0]
        ds.resize(n + len(arr), axis=0)
        ds[n:] = arr


def create(group: h5py.Group, name: str, shape: tuple[int, ...], dtype, compression: str | None) -> h5py.Dataset:
    """A fixed-size chunked dataset to be filled block by block."""
    chunks = (max(1, min(shape[0], chunk_rows(shape[1:], np.dtype(dtype).itemsize))),) + shape[1:] if shape[0] else None
    return group.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks,
                                compression=compression if shape[0] else None)
