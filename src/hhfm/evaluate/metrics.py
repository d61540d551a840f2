"""Binary-classifier metrics from saved scores: ROC curve, AUC, background rejection 1/eps_B.

Conventions (README "Stage: evaluate"):
- The ROC curve is the set of (eps_S, eps_B) points of every distinct score threshold, ordered by
  decreasing threshold and starting at (0, 0); ties in score move both efficiencies together.
- AUC is the trapezoidal area under eps_S(eps_B): the probability that a random signal event scores
  above a random background event, ties counting one half (Mann-Whitney).
- Rejection at a target eps_S interpolates eps_B linearly between the two ROC points around the
  target (never the nearest threshold). When no background passes (eps_B = 0) the rejection is
  reported as the largest the test set can measure, 1 / (smallest possible nonzero eps_B):
  N_B unweighted, sum(w_B)/min(w_B) weighted, so numbers stay finite and comparable.
- `weights=None` counts every test event once (the machine-learning convention of the reference
  study); passing the cross-section weights gives the physics-weighted curve.
"""

from __future__ import annotations

import numpy as np

#: signal efficiencies at which rejection is reported, and their metric names
EFFICIENCIES: dict[str, float] = {"rej50": 0.5, "rej70": 0.7, "rej90": 0.9}


def _check(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, ...]:
    score = np.asarray(score, dtype=np.float64)
    label = np.asarray(label)
    w = np.ones_like(score) if weight is None else np.asarray(weight, dtype=np.float64)
    if not (score.shape == label.shape == w.shape) or score.ndim != 1:
        raise ValueError("score, label and weight must be 1-d arrays of the same length")
    if not np.all(np.isfinite(score)):
        raise ValueError("score contains NaN or infinite values")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    is_sig = label == 1
    if not is_sig.any() or is_sig.all():
        raise ValueError("need both signal (label 1) and background (label 0) events")
    if w[is_sig].sum() <= 0 or w[~is_sig].sum() <= 0:
        raise ValueError("signal and background weights must have positive sums")
    return score, is_sig, w


def roc_curve(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eps_S, eps_B, thresholds) at every distinct threshold, from (0, 0) up to (1, 1)."""
    score, is_sig, w = _check(score, label, weight)
    order = np.argsort(-score, kind="stable")
    s_sorted, sig_sorted, w_sorted = score[order], is_sig[order], w[order]
    cum_s = np.cumsum(np.where(sig_sorted, w_sorted, 0.0))
    cum_b = np.cumsum(np.where(sig_sorted, 0.0, w_sorted))
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]  # last index of each tie group
    eff_s = np.r_[0.0, cum_s[last] / cum_s[-1]]
    eff_b = np.r_[0.0, cum_b[last] / cum_b[-1]]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return eff_s, eff_b, thresholds


def auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Area under the ROC curve (0.5 random, 1 perfect, 0 perfectly inverted)."""
    eff_s, eff_b, _ = roc_curve(score, label, weight)
    return float(np.sum(np.diff(eff_b) * (eff_s[1:] + eff_s[:-1]) / 2))


def background_efficiency_at(eff_s: np.ndarray, eff_b: np.ndarray, target: float) -> float:
    """eps_B at signal efficiency `target`, linearly interpolated along the ROC curve."""
    if not 0 < target <= 1:
        raise ValueError(f"target signal efficiency must be in (0, 1], got {target}")
    i = int(np.searchsorted(eff_s, target, side="left"))  # first point with eps_S >= target
    if eff_s[i] == target or i == 0:
        return float(eff_b[i])
    x0, x1, y0, y1 = eff_s[i - 1], eff_s[i], eff_b[i - 1], eff_b[i]
    return float(y0 + (y1 - y0) * (target - x0) / (x1 - x0))


def max_rejection(label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Largest rejection the test background can measure (one event's share of the background)."""
    bkg = np.asarray(label) != 1
    if weight is None:
        return float(bkg.sum())
    wb = np.asarray(weight, dtype=np.float64)[bkg]
    wb = wb[wb > 0]
    return float(wb.sum() / wb.min())


def rejection_at(score: np.ndarray, label: np.ndarray, target: float, weight: np.ndarray | None = None) -> float:
    """Background rejection 1/eps_B at signal efficiency `target` (capped at `max_rejection`)."""
    eff_s, eff_b, _ = roc_curve(score, label, weight)
    eps_b = background_efficiency_at(eff_s, eff_b, target)
    cap = max_rejection(label, weight)
    return float(cap if eps_b <= 1.0 / cap else 1.0 / eps_b)


def rejection_curve(score: np.ndarray, label: np.ndarray, grid: np.ndarray,
                    weight: np.ndarray | None = None) -> np.ndarray:
    """Rejection on a grid of signal efficiencies (for ROC plots), capped like `rejection_at`."""
    eff_s, eff_b, _ = roc_curve(score, label, weight)
    cap = max_rejection(label, weight)
    eps = np.array([background_efficiency_at(eff_s, eff_b, t) for t in grid])
    return np.where(eps <= 1.0 / cap, cap, 1.0 / np.maximum(eps, 1e-300))


def binary_metrics(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> dict[str, float]:
    """AUC and rejection at 50/70/90 % signal efficiency."""
    eff_s, eff_b, _ = roc_curve(score, label, weight)
    out = {"auc": float(np.sum(np.diff(eff_b) * (eff_s[1:] + eff_s[:-1]) / 2))}
    cap = max_rejection(label, weight)
    for name, target in EFFICIENCIES.items():
        eps_b = background_efficiency_at(eff_s, eff_b, target)
        out[name] = float(cap if eps_b <= 1.0 / cap else 1.0 / eps_b)
    return out
