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
  N_B unweighted, sum(w_B)/min(w_B) weighted, so numbers stay finite and comparable; such a
  rejection is flagged `capped` (only a lower bound).
- Uncertainties (`metrics_with_intervals`, `rejection_band`): central 68 % percentile interval of a
  seeded bootstrap, events drawn with replacement within their class, each keeping its weight.
- Rank-based metrics take any monotone score; the pipeline passes the head's float64 `logit`.
- `weights=None` counts every test event once (the machine-learning convention of the reference
  study); passing the cross-section weights gives the physics-weighted curve.
"""

from __future__ import annotations

import numpy as np

#: signal efficiencies at which rejection is reported, and their metric names
EFFICIENCIES: dict[str, float] = {"rej50": 0.5, "rej70": 0.7, "rej90": 0.9}
#: percentiles of the bootstrap distribution bounding the central 68 % interval
INTERVAL = (15.865525393145708, 84.13447460685429)


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
    sig, w, last, order, _ = _sorted(score, label, weight)
    eff_s, eff_b = _roc(np.ones((1, len(w))), sig, w, last)
    return eff_s[0], eff_b[0], np.r_[np.inf, np.asarray(score, dtype=np.float64)[order][last]]


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
    return float(_eps_b_at(np.asarray(eff_s)[None], np.asarray(eff_b)[None], np.array([target]))[0, 0])


def _resample_counts(is_sig: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) multiplicities of each event in `n_boot` resamples drawn within its class."""
    counts = np.zeros((n_boot, len(is_sig)))
    for idx in (np.flatnonzero(is_sig), np.flatnonzero(~is_sig)):
        k = len(idx)
        draws = rng.integers(0, k, size=(n_boot, k)) + (np.arange(n_boot) * k)[:, None]
        counts[:, idx] = np.bincount(draws.ravel(), minlength=n_boot * k).reshape(n_boot, k)
    return counts


def _eps_b_at(eff_s: np.ndarray, eff_b: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Row-wise `background_efficiency_at`: (R, points) ROC curves, (T,) targets -> (R, T)."""
    i = np.stack([(eff_s < t).sum(axis=1) for t in targets], axis=1)  # first point with eps_S >= target
    rows = np.arange(len(eff_s))[:, None]
    x1, y1 = eff_s[rows, i], eff_b[rows, i]
    x0, y0 = eff_s[rows, np.maximum(i - 1, 0)], eff_b[rows, np.maximum(i - 1, 0)]
    interp = (i > 0) & (x1 != targets)
    frac = np.where(interp, (targets - x0) / np.where(interp, x1 - x0, 1.0), 0.0)
    return np.where(interp, y0 + (y1 - y0) * frac, y1)


def _roc(counts: np.ndarray, sig: np.ndarray, w: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eps_S, eps_B) of each row of event multiplicities (events in decreasing-score order)."""
    ws = counts * w
    zero = np.zeros((len(counts), 1))
    effs = []
    for cls in (sig, ~sig):
        cum = np.cumsum(np.where(cls, ws, 0.0), axis=1)[:, last]
        effs.append(np.hstack([zero, cum / np.maximum(cum[:, -1:], 1e-300)]))
    return effs[0], effs[1]


def _weighted_metrics(counts: np.ndarray, sig: np.ndarray, w: np.ndarray, last: np.ndarray,
                      targets: np.ndarray) -> dict[str, np.ndarray]:
    """AUC, rejections at `targets` and their `capped` flags of each row of event multiplicities.

    `counts`, `sig`, `w` are in decreasing-score order, `last` ends each tie group. The cap is the
    largest measurable rejection of that (resampled) background: sum(w_B) / min(w_B).
    """
    eff_s, eff_b = _roc(counts, sig, w, last)
    w_b = np.where(sig, 0.0, counts * w).sum(axis=1)
    cap = w_b / np.where((counts > 0) & ~sig & (w > 0), w, np.inf).min(axis=1)
    eps = _eps_b_at(eff_s, eff_b, targets)
    capped = eps <= (1.0 + 1e-9) / cap[:, None]
    return {"auc": np.sum(np.diff(eff_b, axis=1) * (eff_s[:, 1:] + eff_s[:, :-1]) / 2, axis=1),
            "rejection": np.where(capped, cap[:, None], 1.0 / np.maximum(eps, 1e-300)), "capped": capped}


def _sorted(score, label, weight) -> tuple[np.ndarray, ...]:
    """Events in decreasing-score order (stable), their class, weight, tie-group ends and order."""
    score, is_sig, w = _check(score, label, weight)
    order = np.argsort(-score, kind="stable")
    last = np.r_[np.flatnonzero(np.diff(score[order])), len(score) - 1]
    return is_sig[order], w[order], last, order, is_sig


def _evaluate(score, label, weight, targets, n_boot: int = 0, seed: int = 0
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Nominal metrics (one row) and, if `n_boot`, those of `n_boot` class-stratified resamples."""
    sig, w, last, order, is_sig = _sorted(score, label, weight)
    targets = np.asarray(targets, dtype=np.float64)
    nominal = _weighted_metrics(np.ones((1, len(w))), sig, w, last, targets)
    if n_boot <= 0:
        return nominal, None
    rng, chunk, parts = np.random.default_rng(seed), max(1, int(4e6 // len(w))), []
    for start in range(0, n_boot, chunk):
        counts = _resample_counts(is_sig, min(chunk, n_boot - start), rng)[:, order]
        parts.append(_weighted_metrics(counts, sig, w, last, targets))
    return nominal, {k: np.concatenate([p[k] for p in parts]) for k in nominal}


def _interval(value: np.ndarray, boot: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Central 68 % percentile interval of the bootstrap, widened to contain the nominal value."""
    if boot is None:
        return value, value
    lo, hi = np.percentile(boot, INTERVAL, axis=0)
    return np.minimum(lo, value), np.maximum(hi, value)


def rejection_curve(score: np.ndarray, label: np.ndarray, grid: np.ndarray,
                    weight: np.ndarray | None = None) -> np.ndarray:
    """Rejection on a grid of signal efficiencies (for ROC plots), capped like `rejection_at`."""
    return _evaluate(score, label, weight, grid)[0]["rejection"][0]


def rejection_band(score: np.ndarray, label: np.ndarray, grid: np.ndarray, n_boot: int, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rejection, lo, hi) on `grid`: the curve and its 68 % bootstrap band (unweighted)."""
    nominal, boot = _evaluate(score, label, None, grid, n_boot, seed)
    value = nominal["rejection"][0]
    return (value, *_interval(value, None if boot is None else boot["rejection"]))


def rejection_at(score: np.ndarray, label: np.ndarray, target: float, weight: np.ndarray | None = None) -> float:
    """Background rejection 1/eps_B at signal efficiency `target` (capped, see the module notes)."""
    return float(rejection_curve(score, label, np.array([target]), weight)[0])


def metrics_with_intervals(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None,
                           n_boot: int = 0, seed: int = 0) -> dict[str, dict]:
    """{metric: {value, lo, hi, capped}} for AUC and `EFFICIENCIES`, with 68 % bootstrap intervals.

    Resampling: signal and background events are each drawn with replacement within their class
    (test-set class sizes fixed); a drawn event keeps its weight. `n_boot` = 0 gives lo = hi = value.
    `capped`: the nominal rejection is the cap (no background beyond one event's share passes), so
    the value is only a lower bound.
    """
    nominal, boot = _evaluate(score, label, weight, list(EFFICIENCIES.values()), n_boot, seed)
    lo, hi = _interval(nominal["auc"], None if boot is None else boot["auc"])
    out = {"auc": {"value": float(nominal["auc"][0]), "lo": float(lo[0]), "hi": float(hi[0]), "capped": False}}
    lo, hi = _interval(nominal["rejection"][0], None if boot is None else boot["rejection"])
    for j, name in enumerate(EFFICIENCIES):
        out[name] = {"value": float(nominal["rejection"][0, j]), "lo": float(lo[j]), "hi": float(hi[j]),
                     "capped": bool(nominal["capped"][0, j])}
    return out


def binary_metrics(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> dict[str, float]:
    """AUC and rejection at 50/70/90 % signal efficiency."""
    return {k: v["value"] for k, v in metrics_with_intervals(score, label, weight).items()}


def validation_metrics(score: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """`binary_metrics` for per-epoch validation logs: NaN everywhere when a class is absent."""
    label = np.asarray(label)
    if not ((label == 1).any() and (label != 1).any()):
        return {"auc": float("nan"), **{name: float("nan") for name in EFFICIENCIES}}
    return binary_metrics(score, label)
