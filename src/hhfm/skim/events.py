"""Event keys, grouping, splits and per-event random numbers, all from a 64-bit hash of the event key.

The key is the record's (sample_isQCD, event_no, rho, npv, ntrueInt) plus the sample name when a
sidecar gives one; hashing it (splitmix64 on the exact bit patterns) groups jets wherever they sit
(adjacent entries, other chunks, the next file) and makes splits independent of file order.
"""

from __future__ import annotations

import hashlib

import numpy as np

_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (wrapping uint64 arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def string_hash(text: str) -> np.uint64:
    """Stable 64-bit hash of a string (not Python's salted hash())."""
    return np.uint64(int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little"))


def event_hash(sample_hash: np.ndarray, sample_isqcd: np.ndarray, event_no: np.ndarray, rho: np.ndarray,
               npv: np.ndarray, ntrueint: np.ndarray) -> np.ndarray:
    """uint64 hash per jet of its event key; equal keys -> equal hashes."""
    h = np.asarray(sample_hash, dtype=np.uint64)
    fields = [np.asarray(sample_isqcd).astype(np.int64).astype(np.uint64), np.asarray(event_no).astype(np.uint64)]
    fields += [np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64) for x in (rho, npv, ntrueint)]
    for f in fields:
        with np.errstate(over="ignore"):
            h = _mix(h ^ (f + _GOLDEN + (h << np.uint64(6)) + (h >> np.uint64(2))))
    return h


def uniform(h: np.ndarray, seed: int, salt: str) -> np.ndarray:
    """Uniform [0, 1) per hash, independent streams for different (seed, salt)."""
    with np.errstate(over="ignore"):
        x = _mix(h ^ _mix(np.asarray([string_hash(f"{seed}:{salt}")], dtype=np.uint64)))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_splits(u: np.ndarray, fractions: dict) -> np.ndarray:
    """Split code (features.SPLITS order train, val, test) from a uniform number."""
    from hhfm.features import SPLITS

    edges = np.cumsum([fractions[name] for name in SPLITS])
    codes = np.searchsorted(edges, u, side="right")
    return np.minimum(codes, len(SPLITS) - 1).astype(np.int8)
