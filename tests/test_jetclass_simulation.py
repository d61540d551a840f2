"""hhfm.simulate.jetclass: real Pythia 8 runs written in the JetClass ROOT format.

Each class is generated once (module fixture) with MPI off ("PartonLevel:MPI = off", ~5x faster;
the mass peaks and prong structure come from the hard decay, not from the underlying event).
Physics windows (medians of ~50 jets; fixed seeds, so the numbers are reproducible):
- soft-drop mass: the peak sits at the resonance mass; FSR out of the cone, neutrinos of b/c
  decays and prongs groomed away make a low tail that pulls the median a few % below the pole, so
  the windows are [pole - 15 %, pole + 8 %]: W [68, 87], Z [78, 98], H [106, 135], top [148, 187].
  With 50 jets the median's statistical error is ~2-4 GeV, so a mass shifted by one class
  (W <-> Z: 11 GeV, Z <-> H: 34 GeV) or a missing prong fails.
- QCD: median m_SD < 50 GeV (a falling spectrum, no peak) and < 20 % of jets in the H window.
- prongs: median tau21 of W, Z, H(bb) at least 0.15 below QCD's (2-prong: ~0.25-0.35 vs ~0.6);
  median tau32 of Tbqq at least 0.15 below QCD's and below Wqq's (3-prong).
"""

from __future__ import annotations

import json
import math

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
uproot = pytest.importorskip("uproot")

from hhfm.features import JETCLASS_CLASSES  # noqa: E402
from hhfm.simulate import jetclass  # noqa: E402

FAST = ("PartonLevel:MPI = off",)
SEED = 11
#: jets per class: the mass-peak classes get enough jets for a median, the others a format check
N_JETS = {"QCD": 50, "Hbb": 50, "Zqq": 50, "Wqq": 50, "Tbqq": 50, "Hcc": 8, "Hgg": 8, "H4q": 8, "Hqql": 8, "Tbl": 8}
PART_FLOAT = ["part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi", "part_d0val", "part_d0err",
              "part_dzval", "part_dzerr", "part_charge"]  # fmt: skip
PART_INT = ["part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton", "part_isElectron", "part_isMuon"]
JET = ["jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4"]
AUX = ["aux_genpart_eta", "aux_genpart_phi", "aux_genpart_pid", "aux_genpart_pt", "aux_truth_match"]
#: JetClass' branch names (the published example file's tree.show())
EXPECTED = set(PART_FLOAT + PART_INT + JET + AUX + ["jet_nparticles"] + [f"label_{c}" for c in JETCLASS_CLASSES])
RES_PID = {"Hbb": 25, "Hcc": 25, "Hgg": 25, "H4q": 25, "Hqql": 25, "Zqq": 23, "Wqq": 24, "Tbqq": 6, "Tbl": 6}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """class -> (path, sidecar); every class simulated once."""
    d = tmp_path_factory.mktemp("jetclass")
    out = {}
    for cls in JETCLASS_CLASSES:
        n = N_JETS[cls]
        path = d / f"{cls}.root"
        side = jetclass.simulate_jetclass_file(cls, n, SEED, path, progress=False, extra_settings=FAST,
                                               batch_events=100 if n > 10 else 40)  # fmt: skip
        out[cls] = (path, side)
    return out


@pytest.fixture(scope="module")
def tables(files):
    return {cls: uproot.open(path)["tree"].arrays() for cls, (path, _) in files.items()}


def _median(a) -> float:
    return float(np.median(ak.to_numpy(a)))


def test_branches_and_dtypes(files):
    for cls, (path, side) in files.items():
        tree = uproot.open(path)["tree"]
        assert set(tree.keys()) == EXPECTED, cls
        assert tree.num_entries == N_JETS[cls] == side["n_jets"]
        for name in PART_FLOAT + PART_INT:
            interp = tree[name].interpretation
            assert isinstance(interp, uproot.AsJagged), name
            assert interp.content.from_dtype == np.dtype(">f4" if name in PART_FLOAT else ">i4"), name
        for name in JET + AUX:
            assert tree[name].interpretation.from_dtype == np.dtype(">f4"), name
        assert tree["jet_nparticles"].interpretation.from_dtype == np.dtype(">i4")  # the jagged counter
        for c in JETCLASS_CLASSES:
            want = ">f4" if c == "QCD" else "bool" if c.startswith("H") else ">i4"
            assert tree[f"label_{c}"].interpretation.from_dtype == np.dtype(want), c
        side_file = json.loads(path.with_suffix(".json").read_text())
        assert side_file["class"] == cls and side_file["n_events"] > 0


def test_jagged_particles_consistent(tables):
    for cls, a in tables.items():
        n = ak.to_numpy(a.jet_nparticles)
        assert np.all((n >= 1) & (n <= 128)), cls
        for name in PART_FLOAT + PART_INT:
            assert np.array_equal(ak.to_numpy(ak.num(a[name])), n), name
        pt = np.hypot(a.part_px, a.part_py)
        assert ak.all(pt[:, 1:] <= pt[:, :-1]), f"{cls}: particles not pT-ordered"
        flags = sum(a[f] for f in PART_INT)
        assert ak.all(flags == 1), f"{cls}: each particle has exactly one type"
        charged = (a.part_isChargedHadron + a.part_isElectron + a.part_isMuon) == 1
        assert ak.all((a.part_charge != 0) == charged)
        # jets below 128 particles: the particles add up to the jet momentum (float32 precision)
        full = n < 128
        sx, sy = ak.to_numpy(ak.sum(a.part_px, axis=1)), ak.to_numpy(ak.sum(a.part_py, axis=1))
        assert np.allclose(np.hypot(sx, sy)[full], ak.to_numpy(a.jet_pt)[full], rtol=1e-4), cls
        # part_deta = sign(jet_eta) * (eta - jet_eta), part_dphi wrapped; anti-kT R = 0.8 jets are
        # nearly conical (a few soft constituents end up slightly beyond 0.8 of the final axis)
        eta = np.arcsinh(a.part_pz / pt)
        sign = np.where(ak.to_numpy(a.jet_eta) > 0, 1.0, -1.0)
        assert ak.all(abs(a.part_deta - sign * (eta - a.jet_eta)) < 1e-4), cls
        dr = ak.to_numpy(ak.flatten(np.hypot(a.part_deta, a.part_dphi)))
        assert dr.max() < 1.2 and np.mean(dr > 0.8) < 0.02, cls
        # impact parameters in mm: charged errors ~ 0.01-0.1 mm, neutral exactly 0
        d0err = ak.flatten(a.part_d0err[charged])
        assert 0.005 < float(np.median(ak.to_numpy(d0err))) < 0.1, cls
        assert ak.all(a.part_d0val[~charged] == 0) and ak.all(a.part_dzerr[~charged] == 0)


def test_selection_labels_and_truth(tables):
    for cls, a in tables.items():
        pt, eta = ak.to_numpy(a.jet_pt), ak.to_numpy(a.jet_eta)
        assert np.all((pt > 500) & (pt < 1000) & (np.abs(eta) < 2.0)), cls
        labels = np.stack([ak.to_numpy(a[f"label_{c}"]).astype(int) for c in JETCLASS_CLASSES], axis=1)
        assert np.all(labels.sum(axis=1) == 1), cls
        assert np.all(labels[:, JETCLASS_CLASSES.index(cls)] == 1), cls
        tau = np.stack([ak.to_numpy(a[f"jet_tau{k}"]) for k in (1, 2, 3, 4)], 1)
        assert np.all(tau >= 0) and np.all(np.diff(tau, axis=1) <= 1e-6), f"{cls}: tau_N not decreasing"
        msd = ak.to_numpy(a.jet_sdmass)
        mass = np.sqrt(np.maximum(ak.to_numpy(a.jet_energy) ** 2 - (pt * np.cosh(eta)) ** 2, 0))
        assert np.all(msd <= mass * 1.001 + 1e-3), cls
        if cls == "QCD":
            continue
        assert np.all(np.abs(ak.to_numpy(a.aux_genpart_pid)) == RES_PID[cls]), cls
        assert np.all(ak.to_numpy(a.aux_truth_match) == 1)
        dphi = (ak.to_numpy(a.aux_genpart_phi) - ak.to_numpy(a.jet_phi) + math.pi) % (2 * math.pi) - math.pi
        assert np.all(np.hypot(ak.to_numpy(a.aux_genpart_eta) - eta, dphi) < 0.8), cls


def _lepton_share(a) -> np.ndarray:
    """pT of the hardest electron / muon of each jet over the jet pT (0 without one)."""
    pt = np.hypot(a.part_px, a.part_py)
    hardest = ak.fill_none(ak.max(pt[(a.part_isElectron + a.part_isMuon) > 0], axis=1), 0.0)
    return ak.to_numpy(hardest) / ak.to_numpy(a.jet_pt)


def test_leptonic_classes_contain_a_lepton(tables):
    # t -> b l nu and H -> l nu q q' (l = e, mu, tau; tau -> e/mu ~35 %): most jets hold a hard e / mu
    # (> 10 % of the jet pT); in hadronic jets leptons are soft (b / c / Dalitz decays)
    for cls in ("Tbl", "Hqql"):
        assert np.mean(_lepton_share(tables[cls]) > 0.1) >= 0.5, cls
    for cls in ("Tbqq", "Wqq", "QCD"):
        assert np.mean(_lepton_share(tables[cls]) > 0.1) < 0.25, cls


@pytest.mark.parametrize("cls, lo, hi", [("Wqq", 68, 87), ("Zqq", 78, 98), ("Hbb", 106, 135), ("Tbqq", 148, 187),
                                         ("H4q", 100, 135), ("Hcc", 100, 135), ("Hgg", 100, 135)])  # fmt: skip
def test_soft_drop_mass_peaks(tables, cls, lo, hi):
    assert lo <= _median(tables[cls].jet_sdmass) <= hi


def test_qcd_mass_falls_and_ordering(tables):
    qcd = ak.to_numpy(tables["QCD"].jet_sdmass)
    assert np.median(qcd) < 50
    assert np.mean((qcd > 106) & (qcd < 135)) < 0.2
    assert _median(tables["Wqq"].jet_sdmass) < _median(tables["Zqq"].jet_sdmass) < _median(tables["Hbb"].jet_sdmass)
    assert _median(tables["Hbb"].jet_sdmass) < _median(tables["Tbqq"].jet_sdmass)


def test_prong_structure(tables):
    def ratio(cls, num, den):
        a = tables[cls]
        return _median(a[f"jet_tau{num}"] / a[f"jet_tau{den}"])

    qcd21, qcd32 = ratio("QCD", 2, 1), ratio("QCD", 3, 2)
    for cls in ("Wqq", "Zqq", "Hbb"):
        assert ratio(cls, 2, 1) < qcd21 - 0.15, cls
    assert ratio("Tbqq", 3, 2) < qcd32 - 0.15
    assert ratio("Tbqq", 3, 2) < ratio("Wqq", 3, 2)


def test_deterministic_and_seeded(tmp_path, tables):
    kw = dict(progress=False, extra_settings=FAST, batch_events=100, sidecar=False)
    jetclass.simulate_jetclass_file("Hbb", 4, SEED, tmp_path / "a.root", **kw)
    a = uproot.open(tmp_path / "a.root")["tree"].arrays()
    ref = tables["Hbb"][:4]  # same seed and batch size: the first jets of the fixture file
    for name in ("jet_pt", "jet_sdmass", "part_px", "part_d0val"):
        assert ak.all(a[name] == ref[name]), name
    jetclass.simulate_jetclass_file("Hbb", 4, SEED, tmp_path / "b.root", index=1, **kw)
    b = uproot.open(tmp_path / "b.root")["tree"].arrays()
    assert not np.array_equal(ak.to_numpy(a.jet_pt), ak.to_numpy(b.jet_pt))


def test_cli_and_errors(tmp_path):
    from hhfm import cli
    from hhfm.errors import ConfigError

    assert cli.STAGES["simulate-jetclass"][0] == "hhfm.simulate.jetclass"
    out = tmp_path / "HToBB_0.root"
    rc = cli.main(["simulate-jetclass", "--class", "Hbb", "--n-jets", "0", "--seed", "1", "--index", "0",
                   "--output", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0 and out.exists() and not list(tmp_path.glob(".*tmp*"))
    tree = uproot.open(out)["tree"]
    assert set(tree.keys()) == EXPECTED and tree.num_entries == 0
    with pytest.raises(ConfigError):
        jetclass.class_spec("Hxx")
    with pytest.raises(ConfigError):
        jetclass.class_spec("QCD", "minbias")
