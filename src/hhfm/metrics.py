"""Binary-classifier metrics, defined once for the whole pipeline: ROC curve, AUC, background rejection.

Used by pretraining validation, head validation, evaluation and the plots, so a number called
`rej90` means the same thing everywhere. Conventions (README "Stage: evaluate"):
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


def _area(eff_s: np.ndarray, eff_b: np.ndarray) -> float:
    return float(np.sum(np.diff(eff_b) * (eff_s[1:] + eff_s[:-1]) / 2))


def auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Area under the ROC curve (0.5 random, 1 perfect, 0 perfectly inverted)."""
    eff_s, eff_b, _ = roc_curve(score, label, weight)
    return _area(eff_s, eff_b)


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


def _rejection(eps_b: np.ndarray | float, cap: float) -> np.ndarray:
    """1 / eps_B, or `cap` where eps_B is below one background event's share."""
    eps_b = np.asarray(eps_b, dtype=np.float64)
    return np.where(eps_b <= 1.0 / cap, cap, 1.0 / np.maximum(eps_b, 1e-300))


def rejection_at(score: np.ndarray, label: np.ndarray, target: float, weight: np.ndarray | None = None) -> float:
    """Background rejection 1/eps_B at signal efficiency `target` (capped at `max_rejection`)."""
    return float(rejection_curve(score, label, np.array([target]), weight)[0])


def rejection_curve(score: np.ndarray, label: np.ndarray, grid: np.ndarray,
                    weight: np.ndarray | None = None) -> np.ndarray:
    """Rejection on a grid of signal efficiencies (for ROC plots), capped like `rejection_at`."""
    eff_s, eff_b, _ = roc_curve(score, label, weight)
    eps = np.array([background_efficiency_at(eff_s, eff_b, t) for t in grid])
    return _rejection(eps, max_rejection(label, weight))


def binary_metrics(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> dict[str, float]:
    """AUC and rejection at 50/70/90 % signal efficiency."""
    eff_s, eff_b, _ = roc_curve(score, label, weight)
    cap = max_rejection(label, weight)
    out = {"auc": _area(eff_s, eff_b)}
    for name, target in EFFICIENCIES.items():
        out[name] = float(_rejection(background_efficiency_at(eff_s, eff_b, target), cap))
    return out


def validation_metrics(score: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """`binary_metrics` for per-epoch validation logs: NaN everywhere when a class is absent."""
    label = np.asarray(label)
    if not ((label == 1).any() and (label != 1).any()):
        return {"auc": float("nan"), **{name: float("nan") for name in EFFICIENCIES}}
    return binary_metrics(score, label)
