"""`hhfm limits`: expected 95 % CL CLs limits and discovery significance per signal mass (pyhf).

For one head run: per signal mass, bin the head's logit with edges fixed on the run's validation
events, histogram the test-set events of that mass's signal and of all background (`hhfm.limits.model`), build a HistFactory workspace and compute expected
limits on mu = sigma / sigma_ref from Asimov data. Writes `workspace_M{mass}.json` into `--outdir`
and one row per mass into `--table`, prefixed with the run's identifying columns from its run.json.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from hhfm import config, layout
from hhfm.errors import InputError
from hhfm.io import setup_logging, write_json
from hhfm.layout import mass_label, signal_masses
from hhfm.limits.model import (BAND_NAMES, expected_limits, histograms, initial_edges, merge_edges, rough_limit,
                               workspace_spec)

log = logging.getLogger("hhfm.limits")
SECTIONS = ["limits"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help="JSON {'limits': {...}}: the tracked config")
    parser.add_argument("--scores", required=True, help="scores.parquet of one head run")
    parser.add_argument("--val-scores", required=True,
                        help="val_scores.parquet of the same run (its validation events: they set the binning)")
    parser.add_argument("--run", required=True, help="run.json of the same run (its identifying columns)")
    parser.add_argument("--outdir", required=True, help="directory for workspace_M{mass}.json")
    parser.add_argument("--table", required=True, help="limit table (CSV) to write")


def _background_weights(bkg: pd.DataFrame, p: Mapping) -> np.ndarray:
    """Background weights in pb; `background_xsec_pb` (data without weights) shares a total equally."""
    w = bkg["weight"].to_numpy(dtype=np.float64)
    if p["background_xsec_pb"] is not None:
        w = np.full(len(bkg), float(p["background_xsec_pb"]) / max(len(bkg), 1))
    if w.sum() <= 0:
        raise InputError("background weights sum to zero; set limits.background_xsec_pb for unweighted data")
    return w


def _like_test(val_w: np.ndarray, test_w: np.ndarray) -> np.ndarray:
    """Validation weights scaled so that they sum like the test events' of the same class / mass."""
    return val_w * (test_w.sum() / val_w.sum()) if val_w.sum() > 0 else val_w


def sensitive_neff(s: np.ndarray, b: np.ndarray, berr: np.ndarray, fraction: float = 0.5) -> float:
    """Effective background MC events (sum w)^2 / sum w^2 in the most sensitive bins: the bins of highest
    s / sqrt(b) that together hold at least `fraction` of the total s^2 / b."""
    z2 = np.where(b > 0, s**2 / np.maximum(b, 1e-300), 0.0)
    order = np.argsort(-z2, kind="stable")
    n_keep = int(np.searchsorted(np.cumsum(z2[order]), fraction * z2.sum())) + 1
    sel = order[:n_keep]
    b2 = float(np.sum(berr[sel] ** 2))
    return float(b[sel].sum() ** 2 / b2) if b2 > 0 else 0.0


def _mass_limit(mass: float, test: pd.DataFrame, val: pd.DataFrame, bkg_w: tuple, p: Mapping) -> tuple[dict, dict]:
    """Row and workspace of one signal mass: edges from validation events, histograms from test events."""
    lumi_pb = float(p["luminosity_fb"]) * 1000.0
    sig, vsig = (d[(d["label"] == 1) & (d["mass"] == mass)] for d in (test, val))
    sig_w, vsig_w = (d["weight"].to_numpy(dtype=np.float64) for d in (sig, vsig))
    vbkg = val[val["label"] == 0]
    bkg_logit = test.loc[test["label"] == 0, "logit"].to_numpy()
    fine = initial_edges(vsig["logit"].to_numpy(), vbkg["logit"].to_numpy(), p["binning"], int(p["n_bins"]))
    vbkg_yield = lumi_pb * _like_test(bkg_w[1], bkg_w[0])
    edges = merge_edges(fine, vbkg["logit"].to_numpy(), vbkg_yield, float(p["min_background"]),
                        int(p["min_background_mc"]))
    s, b, berr = histograms(sig["logit"].to_numpy(), lumi_pb * float(p["signal_xsec_pb"]) * sig_w, bkg_logit,
                            lumi_pb * bkg_w[0], edges)
    # a bin without test background MC events (edges come from the validation events) takes the validation
    # estimate of its background and MC error: a zero yield with zero error has no likelihood
    empty = np.histogram(bkg_logit, edges)[0] == 0
    if empty.any():
        _, vb, vberr = histograms(np.zeros(0), np.zeros(0), vbkg["logit"].to_numpy(), vbkg_yield, edges)
        b, berr = np.where(empty, vb, b), np.where(empty, vberr, berr)
    rough_limit(s, b, berr, float(p["background_normsys"]))  # clear error when the signal histogram is empty
    spec = workspace_spec(s, b, berr, float(p["background_normsys"]), bool(p["staterror"]), poi_max=1e6)
    result = expected_limits(spec, level=1.0 - float(p["cl"]))
    neff = sensitive_neff(s, b, berr)
    row = {"mass": mass, "luminosity_fb": p["luminosity_fb"], "signal_xsec_pb": p["signal_xsec_pb"],
           "n_bins": len(edges) - 1, "bin_edges": " ".join(f"{e:.6g}" for e in edges),
           "signal_yield": float(s.sum()), "background_yield": float(b.sum()),
           "bkg_bins_from_validation": int(empty.sum()),
           "bkg_neff_sensitive": neff, "mc_stat_flag": bool(neff < float(p["min_effective_mc"]))}
    row |= {f"mu_{n}": result[f"mu_{n}"] for n in BAND_NAMES}
    row |= {f"xsec_{n}_pb": result[f"mu_{n}"] * float(p["signal_xsec_pb"]) for n in BAND_NAMES}
    row |= {"z_discovery": result["z_discovery"], "workspace": f"workspace_M{mass_label(mass)}.json"}
    log.info("M=%s: %d bins, S=%.3g B=%.3g, expected mu_up %.3g (sigma %.3g pb), Z %.2f, n_eff %.3g", mass_label(mass),
             len(edges) - 1, s.sum(), b.sum(), result["mu_exp"], row["xsec_exp_pb"], result["z_discovery"], neff)
    return row, spec


def limits_for_scores(scores: pd.DataFrame, val_scores: pd.DataFrame, params: Mapping,
                      outdir: Path | None = None) -> pd.DataFrame:
    """One row per signal mass of the test `scores`: binning from `val_scores`, yields from the test events."""
    p = config.section("limits", params)
    bkg_w = tuple(_background_weights(d[d["label"] == 0], p) for d in (scores, val_scores))
    rows = []
    for mass in signal_masses(scores):
        row, spec = _mass_limit(mass, scores, val_scores, bkg_w, p)
        if outdir is not None:
            write_json(outdir / row["workspace"], spec)
        rows.append(row)
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = config.load(args.config, None, sections=SECTIONS)
    labels = layout.run_labels(layout.read_run(args.run))
    table = limits_for_scores(layout.read_scores(args.scores), layout.read_scores(args.val_scores), cfg.limits,
                              Path(args.outdir))
    for col in reversed(layout.RUN_COLUMNS):
        table.insert(0, col, labels[col])
    layout.write_table(table, args.table)
    log.info("limits for %d mass point(s) -> %s", len(table), args.table)
