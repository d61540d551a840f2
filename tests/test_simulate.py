"""Simulator: record-format conformance (schema sections 2 and 5), physics sanity, read-back,
determinism and bad settings. Uses the session fixture `simulated_files` (tests/fixtures_simulate.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import uproot

from hhfm import config
from hhfm.errors import ConfigError
from hhfm.simulate import SECTIONS, samples, simulate_file

TREE = "deepntuplizer/tree"


def _arrays(path) -> ak.Array:
    return uproot.open(path)[TREE].arrays()


@pytest.fixture(scope="module")
def all_jets(simulated_files) -> dict[str, ak.Array]:
    return {s: _arrays(root) for s, (root, _) in simulated_files.items()}


# ---------------------------------------------------------------- format (schema section 2) ----
def test_tree_path_is_a_ttree_with_the_record_branch_set(simulated_files):
    for root, _ in simulated_files.values():
        with uproot.open(root) as f:
            assert "deepntuplizer" in [k.split(";")[0] for k in f.keys(recursive=False)]
            tree = f[TREE]
            assert tree.classname == "TTree" and tree.title == "tree"
            names = set(tree.keys())
            # 219 branches (schema 0): 88 f4 + 42 i4 + 2 u4 scalars, 87 float vectors
            assert len(names) == 219
            assert sum(n.startswith("pfcand_") for n in names) == 24
            assert sum(n.startswith(("track_", "trackBTag_")) for n in names) == 45
            assert sum(n.startswith("sv_") for n in names) == 18
            for needed in ["fj_pt", "fj_eta", "fj_phi", "fj_mass", "fj_sdmass", "fj_doubleb", "fj_label",
                           "label_H_bb", "label_QCD_others", "fj_isH", "fj_isQCD", "fj_isBB", "sample_isQCD",
                           "fj_gen_pt", "fj_nbHadrons", "fj_ncHadrons", "event_no", "jet_no", "npv",
                           "ntrueInt", "rho", "n_pfcands", "npfcands", "n_tracks", "ntracks", "n_sv", "nsv",
                           "fj_tau21", "fj_n_sdsubjets", "pfBoostedDoubleSecondaryVertexAK8BJetTags"]:  # fmt: skip
                assert needed in names, needed


def test_dtypes_and_jaggedness(simulated_files):
    root, _ = simulated_files["GravitonHH_M1000"]
    tree = uproot.open(root)[TREE]
    kinds: dict[str, int] = {}
    for name, branch in tree.items():
        arr = branch.array()
        layout = ak.type(arr).content
        if isinstance(layout, ak.types.ListType):
            assert str(layout.content) == "float32", name
            kinds["vec"] = kinds.get("vec", 0) + 1
        else:
            kinds[str(layout)] = kinds.get(str(layout), 0) + 1
    assert kinds == {"float32": 88, "int32": 42, "uint32": 2, "vec": 87}
    assert tree["event_no"].interpretation.from_dtype == np.dtype(">u4")
    assert tree["fj_label"].interpretation.from_dtype == np.dtype(">i4")
    assert tree["npv"].interpretation.from_dtype == np.dtype(">f4")


# ------------------------------------------------------------ invariants (schema section 5.3) ----
@pytest.mark.parametrize("sample", ["GravitonHH_M1000", "QCD_Pt_300to470"])
def test_counters_lengths_and_orderings(all_jets, sample):
    a = all_jets[sample]
    for group, (n_int, n_float, prefixes) in {
        "pf": ("n_pfcands", "npfcands", ("pfcand_",)),
        "trk": ("n_tracks", "ntracks", ("track_", "trackBTag_")),
        "sv": ("n_sv", "nsv", ("sv_",)),
    }.items():
        assert np.array_equal(a[n_int].to_numpy(), a[n_float].to_numpy().astype(np.int32))
        for name in a.fields:
            if name.startswith(prefixes):
                assert np.array_equal(ak.num(a[name]).to_numpy(), a[n_int].to_numpy()), name
    ptrel = a.pfcand_ptrel
    assert ak.all(ptrel[:, 1:] <= ptrel[:, :-1])
    assert ak.all(ptrel >= 0.95 / a.fj_pt - 1e-6)
    s = ak.sum(ptrel, axis=1).to_numpy()
    assert 0.8 < np.median(s) < 1.1
    sig = a.trackBTag_Sip2dSig
    assert ak.all(sig[:, 1:] <= sig[:, :-1])
    svsig = a.sv_dxysig
    assert ak.all(svsig[:, 1:] <= svsig[:, :-1])
    assert np.all(a.fj_pt.to_numpy() > 200) and np.all(np.abs(a.fj_eta.to_numpy()) < 2.4)
    assert np.array_equal(a.jet_pt.to_numpy(), a.fj_pt.to_numpy())
    assert np.array_equal(a.jet_corr_pt.to_numpy(), a.fj_pt.to_numpy())
    assert np.array_equal(a.jet_eta.to_numpy(), a.fj_eta.to_numpy())


@pytest.mark.parametrize("sample", ["GravitonHH_M2500", "QCD_Pt_800to1000"])
def test_particle_flags_tracks_and_sentinels(all_jets, sample):
    a = all_jets[sample]
    flags = a.pfcand_isMu + a.pfcand_isEl + a.pfcand_isGamma + a.pfcand_isChargedHad + a.pfcand_isNeutralHad
    assert ak.all(flags == 1)
    charged = a.pfcand_charge != 0
    assert ak.all(charged == ((a.pfcand_isEl + a.pfcand_isMu + a.pfcand_isChargedHad) == 1))
    assert np.array_equal(ak.sum(charged, axis=1).to_numpy(), a.n_tracks.to_numpy())
    # multiset of track ptrel == charged pfcand ptrel
    t = ak.sort(a.track_ptrel, axis=1)
    p = ak.sort(a.pfcand_ptrel[charged], axis=1)
    assert ak.all(t == p)
    assert ak.all(a.track_pt >= 0.95 - 1e-4)
    # neutrals carry no impact parameter
    assert ak.all(a.pfcand_dxy[~charged] == 0) and ak.all(a.pfcand_dxysig[~charged] == 0)
    # prompt tracks are smeared (not exactly 0)
    assert ak.mean(a.pfcand_dxy[charged] == 0) < 0.01
    assert ak.all((a.sv_deltaR >= -0.5) & (a.sv_deltaR <= 0))
    assert ak.all((a.track_drminsv >= -0.8) & (a.track_drminsv <= 0))
    assert ak.all((a.pfcand_drminsv == -1) | (a.pfcand_drminsv >= 0))
    assert ak.all((a.trackBTag_Sip2dSig >= -1) & (a.trackBTag_Sip3dVal >= -1))
    # double-b input defaults
    for name, default in [("fj_trackSipdSig_3", -50), ("fj_trackSip2dSigAboveBottom_1", -19),
                          ("fj_tau_vertexMass_1", -1), ("fj_z_ratio", -3)]:  # fmt: skip
        assert np.all(a[name].to_numpy() >= default), name
    no_sv = a.n_sv.to_numpy() == 0
    assert np.all(a.fj_tau_vertexMass_0.to_numpy()[no_sv] == -1)
    # substructure relations
    tau1, tau2, tau3 = (a[f"fj_tau{k}"].to_numpy() for k in (1, 2, 3))
    ok = tau1 > 0
    np.testing.assert_allclose(a.fj_tau21.to_numpy()[ok], (tau2 / np.where(ok, tau1, 1))[ok], rtol=1e-5)
    assert np.all((tau3 <= tau2) & (tau2 <= tau1))
    not_two = a.fj_n_sdsubjets.to_numpy() < 2
    for name in ["fj_sdsj2_pt", "fj_sdsj1_csv", "fj_ptDR", "fj_sdn2", "fj_relptdiff"]:
        assert np.all(a[name].to_numpy()[not_two] == 0), name
    assert ak.all((a.pfcand_drsubjet2 == -1) == not_two)
    assert np.array_equal(a.fj_doubleb.to_numpy(), a.pfBoostedDoubleSecondaryVertexAK8BJetTags.to_numpy())
    d = a.fj_doubleb.to_numpy()
    assert np.all((d >= -1) & (d <= 1))


def test_labels_are_consistent(all_jets):
    from hhfm.features import FJ_LABEL

    for sample, a in all_jets.items():
        label = a.fj_label.to_numpy()
        is_qcd_sample = sample.startswith("QCD")
        assert np.all(a.sample_isQCD.to_numpy() == int(is_qcd_sample))
        allowed = {51, 52, 53, 54, 55} if is_qcd_sample else {41, 51, 52, 53, 54, 55}
        assert set(np.unique(label)) <= allowed
        onehot = np.stack([a[f"label_{k}"].to_numpy() for k in FJ_LABEL], axis=1)
        assert np.all(onehot.sum(axis=1) == 1)
        assert np.all(np.array(list(FJ_LABEL.values()))[onehot.argmax(axis=1)] == label)
        assert np.array_equal(a.fj_isH.to_numpy(), a.label_H_bb.to_numpy())
        assert np.array_equal(a.fj_isQCD.to_numpy(), (label >= 50).astype(np.int32))
        nb, nc = a.fj_nbHadrons.to_numpy(), a.fj_ncHadrons.to_numpy()
        assert np.array_equal(a.fj_isBB.to_numpy(), (nb >= 2).astype(np.int32))
        assert np.array_equal(a.fj_isBB.to_numpy() + a.fj_isNonBB.to_numpy(), np.ones(len(label), np.int32))
        qcd = label >= 50
        expect = np.select([nb >= 2, nb == 1, nc >= 2, nc == 1], [51, 53, 52, 54], 55)
        assert np.array_equal(label[qcd], expect[qcd])
        gen = a.fj_gen_pt.to_numpy()
        assert np.all((gen == -999) == (label != 41))
        if not is_qcd_sample:
            assert (label == 41).mean() > 0.4  # most graviton jets are matched H->bb jets


def test_event_keys(all_jets, simulated_files):
    for sample, a in all_jets.items():
        ev = a.event_no.to_numpy().astype(np.int64)
        # jets of one event are adjacent and share the pile-up keys; jet_no distinct within an event
        change = np.flatnonzero(np.diff(ev) != 0) + 1
        assert len(np.unique(ev)) == len(change) + 1
        for key in ("npv", "ntrueInt", "rho"):
            v = a[key].to_numpy()
            same = np.diff(ev) == 0
            assert np.all(np.diff(v)[same] == 0), key
        pairs = set(zip(ev.tolist(), a.jet_no.to_numpy().tolist()))
        assert len(pairs) == len(ev)
        # (event_no, rho, npv, ntrueInt) identifies events: distinct events have distinct rho
        firsts = np.concatenate([[0], change])
        assert len(np.unique(a.rho.to_numpy()[firsts])) == len(firsts)
        side = json.loads(simulated_files[sample][1].read_text())
        lo, hi = side["event_no_range"]
        assert ev.min() >= lo and ev.max() <= hi


def test_sidecar(simulated_files):
    for sample, (root, side_path) in simulated_files.items():
        side = json.loads(side_path.read_text())
        assert side["sample"] == sample and side["n_generated"] == 120
        assert side["cross_section_pb"] > 0 and side["event_weights"] is None
        assert side["seed"] == samples.file_seed(7, sample, 0)
        assert side["n_jets"] == uproot.open(root)[TREE].num_entries
        if sample.startswith("QCD"):
            assert side["process"] == "qcd" and side["mass"] is None and side["pthat_min"] > 0
        else:
            assert side["process"] == "signal" and side["mass"] in (1000.0, 2500.0)
    qcd_lo = json.loads(simulated_files["QCD_Pt_300to470"][1].read_text())["cross_section_pb"]
    qcd_hi = json.loads(simulated_files["QCD_Pt_800to1000"][1].read_text())["cross_section_pb"]
    assert qcd_lo > 10 * qcd_hi  # falling pT-hat spectrum


# ------------------------------------------------------------------------ physics sanity ----
def _auc(sig: np.ndarray, bkg: np.ndarray) -> float:
    scores = np.concatenate([sig, bkg])
    ranks = np.argsort(np.argsort(scores, kind="stable"), kind="stable") + 1.0
    return (ranks[: len(sig)].sum() - len(sig) * (len(sig) + 1) / 2) / (len(sig) * len(bkg))


def _classes(all_jets):
    sig = ak.concatenate([a[a.fj_label == 41] for s, a in all_jets.items() if s.startswith("Graviton")])
    bkg = ak.concatenate([a for s, a in all_jets.items() if s.startswith("QCD")])
    return sig, bkg


def test_softdrop_mass_peaks_at_the_higgs_mass(all_jets):
    sig, bkg = _classes(all_jets)
    msd_h = sig.fj_sdmass.to_numpy()
    assert 110 < np.median(msd_h) < 135
    assert np.mean((msd_h > 90) & (msd_h < 150)) > 0.6
    assert np.median(bkg.fj_sdmass.to_numpy()) < 70
    assert np.median(sig.fj_tau21.to_numpy()) < np.median(bkg.fj_tau21.to_numpy())


def test_impact_parameter_tail_is_wider_for_hbb(all_jets):
    sig, bkg = _classes(all_jets)
    light = bkg[bkg.fj_label == 55]
    tail = lambda jets: ak.mean(np.abs(ak.flatten(jets.pfcand_dxysig[jets.pfcand_charge != 0])) > 5)  # noqa: E731
    assert tail(sig) > 3 * tail(light)
    assert tail(light) > 0.003  # prompt tracks are not a perfect zero: mis-measured tails exist


def test_doubleb_separates_but_not_perfectly(all_jets):
    sig, bkg = _classes(all_jets)
    auc = _auc(sig.fj_doubleb.to_numpy(), bkg.fj_doubleb.to_numpy())
    assert 0.6 < auc < 0.97, auc


# --------------------------------------------------------------------------- read back ----
def test_reads_back_with_coffea_baseschema(simulated_files):
    from coffea.nanoevents import BaseSchema, NanoEventsFactory

    root, _ = simulated_files["QCD_Pt_300to470"]
    events = NanoEventsFactory.from_root({str(root): TREE}, schemaclass=BaseSchema, mode="eager").events()
    plain = _arrays(root)
    assert len(events) == len(plain)
    assert np.array_equal(ak.to_numpy(events.fj_pt), plain.fj_pt.to_numpy())
    assert ak.all(ak.num(events.pfcand_ptrel) == events.n_pfcands)


# ----------------------------------------------------------------- determinism and errors ----
SMALL = {"events_per_file": 40, "batch_size": 25}


def _cfg(seed: int = 3, **simulate) -> config.Section:
    """The validated stage config: SMALL updated by `simulate` (the `simulate` section), and `seed`."""
    return config.load({"seed": seed, "simulate": {**SMALL, **simulate}}, sections=SECTIONS)


def test_same_seed_gives_identical_arrays_and_other_index_differs(tmp_path):
    sample = "GravitonHH_M1000"
    simulate_file(_cfg(), sample, 0, tmp_path / "a" / "ntuple_0.root", progress=False)
    simulate_file(_cfg(), sample, 0, tmp_path / "b" / "ntuple_0.root", progress=False)
    simulate_file(_cfg(), sample, 1, tmp_path / "c" / "ntuple_1.root", progress=False)
    a, b, c = (_arrays(tmp_path / d / n) for d, n in (("a", "ntuple_0.root"), ("b", "ntuple_0.root"),
                                                      ("c", "ntuple_1.root")))  # fmt: skip
    assert a.fields == b.fields
    for name in a.fields:
        assert ak.array_equal(a[name], b[name]), name
    assert len(a) != len(c) or not ak.array_equal(a.fj_pt, c.fj_pt)
    assert set(a.event_no.to_numpy()).isdisjoint(set(c.event_no.to_numpy()))  # unique within a sample
    seeds = {samples.file_seed(3, s, i) for s in ("GravitonHH_M1000", "QCD_Pt_300to470") for i in range(50)}
    assert len(seeds) == 100 and max(seeds) <= 900_000_000


@pytest.mark.parametrize(
    "sample, params, match",
    [
        ("Zprime_M1000", {}, "unknown sample"),
        ("GravitonHH_M0", {}, "mass must be > 0"),
        ("QCD_Pt_470to300", {}, "low edge"),
        ("GravitonHH_M1000", {"pythia_settings": ["NotAModule:nonsense = on"]}, "NotAModule:nonsense"),
        ("QCD_Pt_300to470", {"pythia_settings": ["HardQCD:all = off"]}, r"init\(\) failed"),
        ("GravitonHH_M1000", {"batch_size": 0}, "simulate.batch_size"),
        ("GravitonHH_M1000", {"batch_size": 1001}, "simulate.batch_size"),
        ("GravitonHH_M1000", {"detector": {"nonsense": 1}}, "simulate.detector.nonsense"),
        ("GravitonHH_M1000", {"pileup": {"mean": 0}}, "simulate.pileup.mean"),
        ("GravitonHH_M1000", {"events_per_file": 2**31}, "overflow uint32"),
    ],
)
def test_bad_settings_raise_config_error_and_write_nothing(tmp_path, sample, params, match):
    out = tmp_path / "ntuple_0.root"
    with pytest.raises(ConfigError, match=match):
        simulate_file(_cfg(**params), sample, 2, out, progress=False)
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_bad_sample_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "hhfm.cli", "simulate", "--sample", "GravitonHH_M-5", "--index", "0",
         "--output", str(tmp_path / "x.root"), "--config", '{"seed": 1, "simulate": {}}'],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "hhfm simulate: error:" in proc.stderr and "GravitonHH_M-5" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pileup_particles_are_off_vertex_and_optional(tmp_path):
    pu_cfg = _cfg(events_per_file=30, pileup={"particles": True, "mean": 40.0})
    simulate_file(pu_cfg, "QCD_Pt_470to600", 0, tmp_path / "pu.root", progress=False)
    simulate_file(_cfg(events_per_file=30, pileup={"mean": 40.0}), "QCD_Pt_470to600", 0, tmp_path / "nopu.root",
                  progress=False)  # fmt: skip
    pu, nopu = _arrays(tmp_path / "pu.root"), _arrays(tmp_path / "nopu.root")
    ch_pu, ch_nopu = pu.pfcand_charge != 0, nopu.pfcand_charge != 0
    assert ak.any(pu.pfcand_fromPV[ch_pu] == 0) and not ak.any(nopu.pfcand_fromPV[ch_nopu] == 0)
    off = pu.pfcand_fromPV[ch_pu] == 0
    assert ak.mean(np.abs(pu.pfcand_dz[ch_pu][off]) > 0.5) > 0.5  # pile-up vertices spread along z
    assert ak.all(pu.pfcand_puppiw[ch_pu][off] == 0)
    assert np.mean(pu.n_pfcands.to_numpy()) > np.mean(nopu.n_pfcands.to_numpy())
    # pile-up keys are drawn per event in both cases, from the same profile
    assert 20 < np.mean(nopu.ntrueInt.to_numpy()) < 60


def test_batches_without_jets_and_many_baskets(tmp_path):
    """Single-event batches (some with no selected jet, more than uproot's initial basket capacity)."""
    cfg = _cfg(seed=4, events_per_file=16, batch_size=1, jet_min_pt=380.0)
    side = simulate_file(cfg, "QCD_Pt_300to470", 0, tmp_path / "ntuple_0.root", progress=False)
    a = _arrays(tmp_path / "ntuple_0.root")
    assert len(a) == side["n_jets"] > 0
    assert len(np.unique(a.event_no.to_numpy())) < 16  # some events had no jet above 380 GeV
    assert np.all(np.diff(a.event_no.to_numpy().astype(np.int64)) >= 0)  # event order kept across batches
    assert np.all(a.fj_pt.to_numpy() > 380)
