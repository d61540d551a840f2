"""Linear centred kernel alignment (CKA; Kornblith et al. 2019) between two representations of the same examples.

    linear_cka(x, y)                 x (n, p), y (n, q): the full (biased) estimator, O(n (p + q)^2) memory-light
    minibatch_cka(x, y, batch_size)  unbiased HSIC averaged over minibatches (Nguyen, Raghu, Kornblith 2021),
                                     so CKA scales to test sets whose n x n Gram matrix would not fit

CKA is 1 for representations equal up to an orthogonal transform and isotropic scaling, about 0 for
independent ones; it does not need the two widths to match.
"""

from __future__ import annotations

import numpy as np


def _centred(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"a representation must be 2-D (examples, features), got shape {a.shape}")
    return a - a.mean(0)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), features centred over the n examples."""
    if len(x) != len(y):
        raise ValueError(f"CKA needs the same examples in both representations, got {len(x)} and {len(y)}")
    xc, yc = _centred(x), _centred(y)
    cross = np.linalg.norm(yc.T @ xc) ** 2
    norm = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    return float(cross / norm) if norm > 0 else float("nan")


def _unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Unbiased HSIC of two n x n Gram matrices (Song et al. 2012), n >= 4."""
    n = len(k)
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    ones_k, ones_l = k.sum(0), l.sum(0)
    term = (k * l).sum() + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2)) - 2.0 * (ones_k @ ones_l) / (n - 2)
    return float(term / (n * (n - 3)))


def minibatch_cka(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int = 0) -> float:
    """CKA from unbiased HSIC summed over seeded random minibatches of `batch_size` examples (>= 4)."""
    if len(x) != len(y):
        raise ValueError(f"CKA needs the same examples in both representations, got {len(x)} and {len(y)}")
    if batch_size < 4:
        raise ValueError(f"minibatch CKA needs batch_size >= 4, got {batch_size}")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    order = np.random.default_rng(seed).permutation(len(x))
    xy = xx = yy = 0.0
    for a in range(0, len(x) - batch_size + 1, batch_size):  # whole minibatches only (a short tail is biased)
        idx = order[a:a + batch_size]
        k, l = x[idx] @ x[idx].T, y[idx] @ y[idx].T
        xy += _unbiased_hsic(k, l)
        xx += _unbiased_hsic(k, k)
        yy += _unbiased_hsic(l, l)
    if xx <= 0 or yy <= 0:
        return float("nan")
    return float(xy / np.sqrt(xx * yy))
