"""`hhfm limits`: expected 95 % CL CLs limits and discovery significance per signal mass (pyhf).

For one head run: per signal mass, histogram the test-set event score of that mass's signal and of
all background (binning: `hhfm.limits.model`), build a HistFactory workspace and compute expected
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
from hhfm.limits.model import (BAND_NAMES, expected_limits, histograms, initial_edges, merge_edges,
                               rough_limit, workspace_spec)

log = logging.getLogger("hhfm.limits")
SECTIONS = ["limits"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help="JSON {'limits': {...}}: the tracked config")
    parser.add_argument("--scores", required=True, help="scores.parquet of one head run")
    parser.add_argument("--run", required=True, help="run.json of the same run (its identifying columns)")
    parser.add_argument("--outdir", required=True, help="directory for workspace_M{mass}.json")
    parser.add_argument("--table", required=True, help="limit table (CSV) to write")


def conditioning_scale(b: np.ndarray, berr: np.ndarray, p: dict, poisson_fraction: float = 0.1) -> np.ndarray:
    """Per-bin factors k_i <= 1 that bring huge expected yields into a range the minimisers handle.

    With ~1e8 QCD events per bin (138 fb^-1) the likelihood is ~1e10 and the fits stall or fail,
    silently giving degenerate bands. In such bins the Poisson term is negligible next to the
    relative systematics (staterror, normsys), which scaling s_i, b_i and the MC-stat error of a bin by
    the same k_i leaves unchanged (normsys stays fully correlated, staterror stays relative). So each
    bin is scaled down to b_i k_i = (1/poisson_fraction / rel_i)^2, where its Poisson error is still
    only `poisson_fraction` of its systematic one (total uncertainty changed by < 0.5 %); bins with
    fewer events are left alone.
    """
    normsys, staterror = float(p["background_normsys"]), bool(p["staterror"])
    rel = np.sqrt((berr / np.maximum(b, 1e-300)) ** 2 * staterror + normsys**2)
    target = np.where(rel > 0, (1.0 / (poisson_fraction * np.maximum(rel, 1e-300))) ** 2, np.inf)
    return np.where(b > target, target / np.maximum(b, 1e-300), 1.0)


def limits_for_scores(scores: pd.DataFrame, params: Mapping, outdir: Path | None = None) -> pd.DataFrame:
    """One row per signal mass: yields, binning, expected limits on mu and sigma, significance."""
    p = config.section("limits", params)
    lumi_pb = float(p["luminosity_fb"]) * 1000.0
    bkg = scores[scores["label"] == 0]
    bkg_w = bkg["weight"].to_numpy(dtype=np.float64)
    if p["background_xsec_pb"] is not None:  # e.g. the open-data record: no weights, documented total
        bkg_w = np.full(len(bkg), float(p["background_xsec_pb"]) / len(bkg))
    if bkg_w.sum() <= 0:
        raise InputError("background weights sum to zero; set limits.background_xsec_pb for unweighted data")
    bkg_yield = lumi_pb * bkg_w
    rows = []
    for mass in signal_masses(scores):
        sig = scores[(scores["label"] == 1) & (scores["mass"] == mass)]
        sig_yield = lumi_pb * float(p["signal_xsec_pb"]) * sig["weight"].to_numpy(dtype=np.float64)
        fine = initial_edges(sig["score"].to_numpy(), bkg["score"].to_numpy(), p["binning"], int(p["n_bins"]))
        edges = merge_edges(fine, bkg["score"].to_numpy(), bkg_yield, float(p["min_background"]),
                            int(p["min_background_mc"]))
        s, b, berr = histograms(sig["score"].to_numpy(), sig_yield, bkg["score"].to_numpy(), bkg_yield, edges)
        guess = rough_limit(s, b, berr if p["staterror"] else 0 * berr, float(p["background_normsys"]))
        k = conditioning_scale(b, berr, p)
        spec = workspace_spec(s * k, b * k, berr * k, float(p["background_normsys"]), bool(p["staterror"]),
                              poi_max=max(10.0, 100.0 * guess))
        result = expected_limits(spec, level=1.0 - float(p["cl"]))
        name = f"workspace_M{mass_label(mass)}.json"
        if outdir is not None:
            write_json(outdir / name, spec)
        row = {"mass": mass, "luminosity_fb": p["luminosity_fb"], "signal_xsec_pb": p["signal_xsec_pb"],
               "n_bins": len(edges) - 1, "bin_edges": " ".join(f"{e:.6g}" for e in edges),
               "signal_yield": float(s.sum()), "background_yield": float(b.sum()), "fit_yield_scale_min": float(k.min())}
        row |= {f"mu_{n}": result[f"mu_{n}"] for n in BAND_NAMES}
        row |= {f"xsec_{n}_pb": result[f"mu_{n}"] * float(p["signal_xsec_pb"]) for n in BAND_NAMES}
        row |= {"z_discovery": result["z_discovery"], "workspace": name}
        log.info("M=%s: %d bins, S=%.3g B=%.3g, expected mu_up %.3g (sigma %.3g pb), Z %.2f", mass_label(mass),
                 len(edges) - 1, s.sum(), b.sum(), result["mu_exp"], row["xsec_exp_pb"], result["z_discovery"])
        rows.append(row)
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = config.load(args.config, None, sections=SECTIONS)
    labels = layout.run_labels(layout.read_run(args.run))
    table = limits_for_scores(layout.read_scores(args.scores), cfg.limits, Path(args.outdir))
    for col in reversed(layout.RUN_COLUMNS):
        table.insert(0, col, labels[col])
    layout.write_table(table, args.table)
    log.info("limits for %d mass point(s) -> %s", len(table), args.table)
