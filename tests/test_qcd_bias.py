"""The biased QCD sample (PhaseSpace:bias2Selection over one wide pT-hat range, weighted events): its
settings and sidecar, and that its weighted spectra reproduce the unbiased pT-hat slices (real Pythia,
small samples), while its unweighted spectrum does not (the check can fail)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hhfm import config
from hhfm.errors import ConfigError
from hhfm.simulate import SECTIONS, samples, simulate_file
from hhfm.simulate import weights as W

SLICES = ["QCD_Pt_300to470", "QCD_Pt_470to600"]
BIASED = "QCD_Pt_300to600_biased"
N_SLICE = 200
POWER, REF_PT = 4.0, 300.0


def test_biased_sample_names_and_settings():
    smp = samples.parse_sample(BIASED)
    assert smp.process == "qcd" and smp.biased and (smp.pthat_min, smp.pthat_max) == (300.0, 600.0)
    assert not samples.parse_sample("QCD_Pt_300to600").biased
    lines = samples.pythia_settings(smp, 5, bias=(POWER, REF_PT))
    assert "PhaseSpace:bias2Selection = on" in lines and "PhaseSpace:bias2SelectionPow = 4" in lines
    assert "PhaseSpace:bias2SelectionRef = 300" in lines and "PhaseSpace:pTHatMax = 600" in lines
    assert not any("bias2" in x for x in samples.pythia_settings(samples.parse_sample(SLICES[0]), 5, bias=(4, 300)))
    with pytest.raises(ConfigError, match="biased"):
        samples.pythia_settings(smp, 5)
    with pytest.raises(ConfigError, match="power"):
        samples.pythia_settings(smp, 5, bias=(0.0, 300.0))
    for name in (BIASED, "QCD_Pt_300toInf_biased", "QCD_Pt_300to470", "GravitonHH_M1000"):
        assert re.fullmatch(samples.SAMPLE_PATTERN, name)
    assert not re.fullmatch(samples.SAMPLE_PATTERN, "QCD_Pt_300to470_flat")


def test_workflow_samples_follow_qcd_sampling():
    base = {"seed": 1, "simulate": {"signal_masses": [1000], "files_per_sample": 2}}
    sim = config.load(base, sections=SECTIONS).simulate
    assert samples.sample_files(sim) == {"GravitonHH_M1000": 2, **{f"QCD_Pt_{s}": 2 for s in sim.qcd_slices}}
    biased = {**base["simulate"], "qcd_sampling": "biased", "qcd_biased": {"pthat_range": "250to3000", "files": 7}}
    sim = config.load({"seed": 1, "simulate": biased}, sections=SECTIONS).simulate
    assert samples.sample_files(sim) == {"GravitonHH_M1000": 2, "QCD_Pt_250to3000_biased": 7}
    with pytest.raises(ConfigError, match="qcd_biased"):
        config.load({"seed": 1, "simulate": {"qcd_biased": {"power": -1}}}, sections=SECTIONS)


@pytest.fixture(scope="module")
def bias_files(tmp_path_factory) -> dict[str, tuple[W.LeadingJets, dict]]:
    """Leading jets and sidecar of two unbiased slices and one biased sample over their union (seconds)."""
    base = tmp_path_factory.mktemp("qcd_bias")
    out = {}
    for sample, n in [(s, N_SLICE) for s in SLICES] + [(BIASED, 2 * N_SLICE)]:
        cfg = config.load({"seed": 21, "simulate": {"events_per_file": n, "batch_size": 200,
                                                    "qcd_biased": {"power": POWER, "ref_pt": REF_PT}}},
                          sections=SECTIONS)  # fmt: skip
        root = base / sample / "ntuple_0.root"
        side = simulate_file(cfg, sample, 0, root, progress=False)
        assert json.loads(root.with_suffix(".json").read_text()) == json.loads(json.dumps(side))
        out[sample] = (W.leading_jets(root, side), side)
    return out


def test_biased_sidecar_records_bias_and_weights(bias_files):
    jets, side = bias_files[BIASED]
    assert side["bias"] == {"power": POWER, "ref_pt": REF_PT}
    w = np.asarray(side["event_weights"])
    assert len(w) == side["n_generated"] == 2 * N_SLICE and np.isclose(w.sum(), side["sum_weights"])
    assert w.max() / w.min() > 4  # (600/300)^4 = 16 across the range, minus the pT-hat spread at the edges
    assert np.isclose(jets.xsec_pb.sum(), side["cross_section_pb"])
    for s in SLICES:
        assert bias_files[s][1]["bias"] is None and bias_files[s][1]["event_weights"] is None
    # heavier events have lower weights: the leading jet pT anticorrelates with the weight
    ok = np.isfinite(jets.pt[:, 0])
    assert np.corrcoef(jets.pt[ok, 0], w[ok])[0, 1] < -0.3


def test_biased_cross_section_matches_the_slices(bias_files):
    side = bias_files[BIASED][1]
    slices = [bias_files[s][1] for s in SLICES]
    total = sum(s["cross_section_pb"] for s in slices)
    err = np.sqrt(side["cross_section_err_pb"] ** 2 + sum(s["cross_section_err_pb"] ** 2 for s in slices))
    assert abs(side["cross_section_pb"] - total) < 4 * err, (side["cross_section_pb"], total, err)


def _slices(bias_files) -> W.LeadingJets:
    a, b = (bias_files[s][0] for s in SLICES)
    return a.concat(b)


@pytest.mark.parametrize("column, edges", [
    ("pt", [200, 300, 350, 400, 450, 500, 550, 600, 700, 900]),
    ("sdmass", [0, 10, 20, 30, 40, 60, 90, 150, 250]),
])  # fmt: skip
def test_weighted_spectra_agree_with_the_slices(bias_files, column, edges):
    sl, bi = _slices(bias_files), bias_files[BIASED][0]
    for jet in (0, 1):
        a = W.weighted_hist(getattr(sl, column)[:, jet], sl.xsec_pb, np.asarray(edges, float))
        b = W.weighted_hist(getattr(bi, column)[:, jet], bi.xsec_pb, np.asarray(edges, float))
        chi2, ndf, p = W.chi2_compare(a, b)
        assert p > 0.005, (column, jet, chi2, ndf)


def test_unweighted_biased_spectrum_disagrees(bias_files):
    """The same comparison without the bias weights fails: the check above has the power to fail."""
    sl, bi = _slices(bias_files), bias_files[BIASED][0]
    edges = np.array([200, 300, 350, 400, 450, 500, 550, 600, 700, 900.0])
    flat = np.full(len(bi.xsec_pb), bi.xsec_pb.sum() / len(bi.xsec_pb))
    a = W.weighted_hist(sl.pt[:, 0], sl.xsec_pb, edges)
    _, _, p = W.chi2_compare(a, W.weighted_hist(bi.pt[:, 0], flat, edges))
    assert p < 1e-4


def test_region_and_effective_events():
    jets = W.LeadingJets(pt=np.array([[400, 350], [400, 250], [900, 800], [500, np.nan]]),
                         sdmass=np.array([[100, 120], [100, 120], [140, 95], [100, np.nan]]),
                         xsec_pb=np.array([1.0, 1.0, 1.0, 1.0]))  # fmt: skip
    assert W.in_region(jets).tolist() == [True, False, True, False]
    assert W.effective_events(np.ones(10)) == pytest.approx(10)
    assert W.effective_events(np.array([1.0, 0.0, 0.0])) == pytest.approx(1)
    assert W.effective_events(np.array([3.0, 1.0])) == pytest.approx(16 / 10)
    assert W.effective_events(np.zeros(0)) == 0.0
