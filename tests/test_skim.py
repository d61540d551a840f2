"""Skim stage: features, labels, event building, splits, fractions, bad input, atomic outputs.

Inputs are real record-format ROOT files written with uproot (tests/record_files.py) and read back
by the real skim code; nothing is mocked.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import record_files as rf

from hhfm.dataset import event_rows, fraction_mask, jet_rows, open_dataset
from hhfm.errors import ConfigError, InputError
from hhfm.features import JET_CLASSES, PARTICLE_FEATURE_NAMES, SPLITS
from hhfm.config import Section
from hhfm.skim import skim_file
from hhfm.skim.merge import merge
from hhfm.skim.params import stage_config


def _sidecar(path: Path, sample: str, process: str, mass, n_generated: int, xsec: float = 10.0) -> Path:
    path.write_text(json.dumps({"sample": sample, "process": process, "mass": mass, "n_generated": n_generated,
                                "cross_section_pb": xsec, "sum_weights": float(n_generated), "seed": 1,
                                "pthat_min": 300, "pthat_max": 470, "event_weights": None}))
    return path


def _cfg(runtime: dict | None = None, seed: int = 0, **skim) -> Section:
    """The skim's validated config: `skim` keys as given (tracked), `runtime` keys apart, as the CLI takes them."""
    return stage_config({"seed": seed, "skim": skim}, {"skim": runtime or {}})


def _skim_and_merge(tmp: Path, files: list[tuple[Path, Path | None]], **skim) -> Path:
    p = _cfg(**skim)
    outs = []
    for i, (root, side) in enumerate(files):
        out = tmp / "files" / f"f{i}.h5"
        skim_file(str(root), str(side) if side else None, out, p)
        outs.append(str(out))
    merge(outs, str(tmp / "dataset.h5"), str(tmp / "cutflow.csv"), str(tmp / "counts.csv"), p)
    return tmp / "dataset.h5"


def _one_jet(pt=500.0, eta=-1.2, phi=3.0, mass=120.0, sdmass=110.0, **over) -> dict:
    """A single hand-made jet: 3 constituents given in NON-pT order."""
    jets = {"scalars": {"fj_pt": [pt], "fj_eta": [eta], "fj_phi": [phi], "fj_mass": [mass], "fj_sdmass": [sdmass],
                        "fj_doubleb": [0.5], "fj_gen_pt": [-999.0], "rho": [10.0], "npv": [20.0], "ntrueInt": [25.0],
                        "fj_nbHadrons": [0], "fj_ncHadrons": [0], "fj_label": [55], "fj_isQCD": [1],
                        "label_H_bb": [0], "sample_isQCD": [1], "event_no": [7], "jet_no": [0]},
            "pfcand": {"ptrel": [[0.1, 0.3, 0.05]], "erel": [[0.12, 0.25, 0.06]], "etarel": [[0.1, -0.05, 0.2]],
                       "phirel": [[0.02, 0.1, -0.3]], "deltaR": [[0.102, 0.112, 0.36]], "charge": [[0.0, 1.0, -1.0]],
                       "isChargedHad": [[0.0, 1.0, 0.0]], "isNeutralHad": [[0.0, 0.0, 0.0]],
                       "isGamma": [[1.0, 0.0, 0.0]], "isEl": [[0.0, 0.0, 0.0]], "isMu": [[0.0, 0.0, 1.0]],
                       "dxy": [[0.0, 0.02, -0.3]], "dxysig": [[0.0, 4.0, -3.0]], "dz": [[0.0, 0.05, 0.01]],
                       "dzsig": [[0.0, 2.0, 0.5]]}}
    for k, v in over.items():
        (jets["scalars"] if k in jets["scalars"] else jets["pfcand"])[k] = v
    return jets


# --- features ---------------------------------------------------------------------------------------


def test_features_match_hand_computed_jet(tmp_path):
    root = rf.write_record_file(tmp_path / "one.root", _one_jet())
    out = tmp_path / "one.h5"
    skim_file(str(root), None, out, _cfg(max_particles=4))
    with h5py.File(out) as f:
        feat, vec, mask = f["jets/features"][0], f["jets/vectors"][0], f["jets/mask"][0]
        hlf = f["jets/hlf"][0]
    assert mask.tolist() == [True, True, True, False]
    # leading particle after pT sorting is the record's 2nd: ptrel 0.3, erel 0.25, charged hadron
    pt_j, eta_j, phi_j, m_j = 500.0, -1.2, 3.0, 120.0
    e_j = math.sqrt((pt_j * math.cosh(eta_j)) ** 2 + m_j**2)
    pt, e = 0.3 * pt_j, 0.25 * e_j
    deta = -(-0.05)  # record etarel = sign(eta_jet) * deta, eta_jet < 0
    phi = phi_j + 0.1
    eta = eta_j + deta
    f = dict(zip(PARTICLE_FEATURE_NAMES, feat[0].tolist()))
    assert f["part_pt_log"] == pytest.approx((math.log(pt) - 1.7) * 0.7, rel=1e-5)
    assert f["part_e_log"] == pytest.approx((math.log(e) - 2.0) * 0.7, rel=1e-5)
    assert f["part_logptrel"] == pytest.approx((math.log(0.3) + 4.7) * 0.7, rel=1e-5)
    assert f["part_logerel"] == pytest.approx((math.log(0.25) + 4.7) * 0.7, rel=1e-5)
    assert f["part_deltaR"] == pytest.approx((0.112 - 0.2) * 4.0, rel=1e-5)
    assert (f["part_charge"], f["part_isChargedHadron"], f["part_isPhoton"], f["part_isMuon"]) == (1, 1, 0, 0)
    assert f["part_d0"] == pytest.approx(math.tanh(0.2), rel=1e-5)  # 0.02 cm = 0.2 mm
    assert f["part_d0err"] == pytest.approx(0.05, rel=1e-5)  # 0.02 cm / 4 = 0.05 mm
    assert f["part_dz"] == pytest.approx(math.tanh(0.5), rel=1e-5)
    assert f["part_dzerr"] == pytest.approx(0.25, rel=1e-5)
    # part_deta follows JetClass: sign(eta_jet) * deta = the record's etarel (-0.05), not the true deta (+0.05)
    assert f["part_deta"] == pytest.approx(-0.05, rel=1e-5) and f["part_dphi"] == pytest.approx(0.1, rel=1e-5)
    np.testing.assert_allclose(vec[0], [pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta), e], rtol=1e-5)
    # third particle: muon, d0 = tanh(-3 mm), d0err = 1 mm -> clipped to 1; deltaR (0.36-0.2)*4
    g = dict(zip(PARTICLE_FEATURE_NAMES, feat[2].tolist()))
    assert g["part_d0"] == pytest.approx(math.tanh(-3.0), rel=1e-5) and g["part_d0err"] == 1.0
    assert g["part_isMuon"] == 1 and g["part_charge"] == -1
    # the photon (no track): d0err = dzerr = 0
    h = dict(zip(PARTICLE_FEATURE_NAMES, feat[1].tolist()))
    assert h["part_isPhoton"] == 1 and h["part_d0err"] == 0 and h["part_dzerr"] == 0
    assert not feat[3].any() and not vec[3].any()  # padding
    np.testing.assert_allclose(hlf, [math.log(500), -1.2, 3.0, math.log(120), math.log(110)], rtol=1e-6)


def test_chunking_and_coffea_reader_do_not_change_output(tmp_path):
    root = rf.write_record_file(tmp_path / "a.root", rf.random_jets(40, seed=3))
    outs = {}
    attrs = {}
    for tag, runtime in {"big": {}, "small": {"chunk_size": 7},
                         "coffea": {"chunk_size": 13, "reader": "coffea", "file_compression": "lzf"}}.items():
        skim_file(str(root), None, tmp_path / f"{tag}.h5", _cfg(runtime))
        with h5py.File(tmp_path / f"{tag}.h5") as f:
            outs[tag] = {f"{g}/{k}": f[g][k][:] for g in ("jets", "keys") for k in f[g]}
            attrs[tag] = dict(f.attrs)
    # the recorded parameters hold only result-affecting keys: equal whatever the runtime keys
    assert attrs["small"] == attrs["big"] == attrs["coffea"]
    recorded = json.loads(attrs["big"]["skim_params"])
    assert recorded["seed"] == 0 and recorded["max_particles"] == 100
    assert not {"chunk_size", "reader", "file_compression"} & set(recorded)
    for tag in ("small", "coffea"):
        assert outs[tag].keys() == outs["big"].keys()
        for k in outs["big"]:
            np.testing.assert_array_equal(outs[tag][k], outs["big"][k], err_msg=f"{tag}: {k}")


# --- labels, sorting, grouping ----------------------------------------------------------------------


def test_labels_stay_aligned_when_sorting_changes_jet_order(tmp_path):
    # one event, record order: 400 GeV H->bb, 900 GeV QCD, 600 GeV unlabelled -> pT order 900, 600, 400
    ev = rf.random_jets(1, seed=0, sample_isQCD=0, jets_per_event=(3, 3))
    s = ev["scalars"]
    s["fj_pt"] = [400.0, 900.0, 600.0]
    s["fj_sdmass"] = [120.0, 80.0, 60.0]
    s["fj_doubleb"] = [0.9, -0.6, 0.1]  # identifies each jet
    s["jet_no"] = [2, 0, 1]
    s["label_H_bb"], s["fj_isQCD"], s["fj_label"] = [1, 0, 0], [0, 1, 1], [41, 51, 55]
    s["sample_isQCD"] = [0, 0, 0]  # signal sample: the QCD-like jets are unlabelled (sample_isQCD * fj_isQCD)
    s["fj_isQCD"][1] = 1
    other = rf.random_jets(3, seed=1, sample_isQCD=1, jets_per_event=(2, 2), event_offset=100)
    root = rf.write_record_file(tmp_path / "s.root", rf.concat(ev, other))
    ds = _skim_and_merge(tmp_path, [(root, None)])
    with open_dataset(ds) as f:
        e = int(np.flatnonzero(f["events/event_no"][:] == s["event_no"][0])[0])
        rows = f["events/jets"][e]
        assert f["events/n_jets"][e] == 3 and rows[3:].tolist() == [-1, -1]
        jets = f["jets"]
        assert jets["fj_pt"][:][rows[:3]].tolist() == [900.0, 600.0, 400.0]
        assert jets["fj_doubleb"][:][rows[:3]].tolist() == pytest.approx([-0.6, 0.1, 0.9])
        assert jets["label_xbb"][:][rows[:3]].tolist() == [-1, -1, 1]
        assert jets["label_class"][:][rows[2]] == JET_CLASSES.index("H_bb")
        assert f["events/label"][e] == 1
        # the per-particle arrays moved with their jet: leading particle pT / jet pT = stored ptrel
        lead = jets["vectors"][:][rows[:3], 0]
        ptrel = np.hypot(lead[:, 0], lead[:, 1]) / np.array([900.0, 600.0, 400.0])
        expect = [max(ev["pfcand"]["ptrel"][i]) for i in (1, 2, 0)]
        np.testing.assert_allclose(ptrel, expect, rtol=1e-5)
        assert (jets["event"][:][rows[:3]] == e).all()


def test_grouping_across_adjacent_entries_and_files(tmp_path):
    a = rf.random_jets(6, seed=5, jets_per_event=(2, 4))
    n = len(a["scalars"]["fj_pt"])
    rng = np.random.default_rng(0)
    order = np.argsort(np.arange(n) + rng.uniform(0, 4, n))  # interleave jets of neighbouring events
    a = rf.take(a, order)
    ev0 = a["scalars"]["event_no"]
    cut = n // 2
    f1 = rf.write_record_file(tmp_path / "x1.root", rf.take(a, range(cut)))
    f2 = rf.write_record_file(tmp_path / "x2.root", rf.take(a, range(cut, n)))
    straddling = set(ev0[:cut]) & set(ev0[cut:])
    assert straddling, "test setup: an event must straddle the two files"
    ds = _skim_and_merge(tmp_path, [(f1, None), (f2, None)], pt_min=1.0, sdmass_min=0.0, sdmass_max=1e4,
                         pt_max=1e5)
    counts = pd.Series(ev0).value_counts()
    with open_dataset(ds) as f:
        got = dict(zip(f["events/event_no"][:].tolist(), f["events/n_jets"][:].tolist()))
        assert got == {int(k): int(v) for k, v in counts.items() if 2 <= v <= 5}
        for e, rows in enumerate(f["events/jets"][:]):
            rows = rows[rows >= 0]
            assert (f["jets/event"][:][rows] == e).all()
            assert np.all(np.diff(f["jets/fj_pt"][:][rows]) <= 0)


# --- splits and fractions ---------------------------------------------------------------------------


def _mass_files(tmp: Path) -> list[tuple[Path, Path]]:
    files = []
    for i, (name, proc, mass, qcd) in enumerate([("Sig_M1000", "signal", 1000, 0), ("Sig_M2500", "signal", 2500, 0),
                                                 ("QCD_A", "qcd", None, 1)]):
        j = rf.random_jets(120 if qcd else 40, seed=10 + i, sample_isQCD=qcd, jets_per_event=(2, 3), max_cands=8)
        root = rf.write_record_file(tmp / f"{name}.root", j)
        files.append((root, _sidecar(tmp / f"{name}.json", name, proc, mass, n_generated=200)))
    return files


def test_splits_deterministic_disjoint_and_file_order_independent(tmp_path):
    files = _mass_files(tmp_path)
    d1 = _skim_and_merge(tmp_path / "r1", files)
    d2 = _skim_and_merge(tmp_path / "r2", files[::-1])

    def split_of(ds):
        with open_dataset(ds) as f:
            names = [s["name"] for s in json.loads(f.attrs["samples"])]
            ev = f["events"]
            return {(names[s], int(e)): int(k) for s, e, k in zip(ev["sample"][:], ev["event_no"][:], ev["split"][:])}

    s1, s2 = split_of(d1), split_of(d2)
    assert s1 == s2 and len(s1) > 100
    with open_dataset(d1) as f:
        sets = [set(event_rows(f, name).tolist()) for name in SPLITS]
        assert sum(map(len, sets)) == len(f["events/split"]) and not (sets[0] & sets[1] or sets[0] & sets[2])
        assert len(sets[0]) > len(sets[1]) and len(sets[2]) > 0
        # jets carry the split of their event
        ej = f["events/jets"][:]
        js = f["jets/split"][:]
        for e, rows in enumerate(ej):
            assert (js[rows[rows >= 0]] == f["events/split"][e]).all()
        # weights: summed over one split, a sample gives its selected cross-section
        w, sample, split = f["events/weight"][:], f["events/sample"][:], f["events/split"][:]
        n_sel_qcd = int((sample == 2).sum())
        for code in SPLITS.values():
            m = (sample == 2) & (split == code)
            assert w[m].sum() == pytest.approx(10.0 * n_sel_qcd / 200)
            m = (sample == 0) & (split == code)
            assert w[m].sum() == pytest.approx(1.0 * (sample == 0).sum() / 200)  # signal: 1 pb
    counts = pd.read_csv(tmp_path / "r1" / "counts.csv")
    ev = counts[counts.level == "event"]
    assert set(ev["mass"]) == {0.0, 1000.0, 2500.0} and ev["n"].sum() == len(s1)


def test_fractions_nested_and_stratified(tmp_path):
    ds = _skim_and_merge(tmp_path, _mass_files(tmp_path))
    with open_dataset(ds) as f:
        ev = f["events"]
        rand, label, mass = ev["rand"][:], ev["label"][:], ev["mass"][:]
        assert 0 <= rand.min() and rand.max() < 1 and len(np.unique(rand)) == len(rand)
        masks = {fr: fraction_mask(rand, label, mass, fr) for fr in (0.05, 0.2, 0.5, 1.0)}
        assert masks[1.0].all()
        for small, big in ((0.05, 0.2), (0.2, 0.5), (0.5, 1.0)):
            assert not (masks[small] & ~masks[big]).any()
        strata = {(lab, m) for lab, m in zip(label, mass)}
        for key in strata:  # every (class, mass) stratum present at the smallest fraction, in proportion
            in_s = (label == key[0]) & (mass == key[1])
            assert masks[0.05][in_s].sum() == max(1, round(0.05 * in_s.sum()))
        tr = event_rows(f, "train", 0.2)
        assert set(tr.tolist()) <= set(event_rows(f, "train", 0.5).tolist())
        assert len(jet_rows(f, "train")) > 0


def test_window_modes(tmp_path):
    root = rf.write_record_file(tmp_path / "w.root", rf.random_jets(60, seed=8, jets_per_event=(2, 4)))
    n_ev = {}
    for mode in ("pretraining", "events", "both"):
        ds = _skim_and_merge(tmp_path / mode, [(root, None)], window_applies_to=mode)
        with open_dataset(ds) as f:
            rows = f["events/jets"][:]
            win = f["jets/in_window"][:]
            n_ev[mode] = len(rows)
            if mode != "pretraining":
                assert win[rows[rows >= 0]].all()
            tr = jet_rows(f, "train")
            assert win[tr].all() if mode != "events" else not win[tr].all()
    assert n_ev["events"] == n_ev["both"] < n_ev["pretraining"]


# --- bad input --------------------------------------------------------------------------------------


def test_missing_file_tree_and_branch_named(tmp_path):
    p = _cfg()
    with pytest.raises(InputError, match="nope.root.*does not exist"):
        skim_file(str(tmp_path / "nope.root"), None, tmp_path / "o.h5", p)
    import uproot

    with uproot.recreate(tmp_path / "other.root") as f:
        f.mktree("events", {"x": np.float32}).extend({"x": np.zeros(3, np.float32)})
    with pytest.raises(InputError, match=r"other\.root.*deepntuplizer/tree"):
        skim_file(str(tmp_path / "other.root"), None, tmp_path / "o.h5", p)
    root = rf.write_record_file(tmp_path / "nosd.root", rf.random_jets(3), drop=("fj_sdmass", "pfcand_dxysig"))
    with pytest.raises(InputError, match=r"nosd\.root.*fj_sdmass.*pfcand_dxysig"):
        skim_file(str(root), None, tmp_path / "o.h5", p)
    with pytest.raises(InputError, match=r"side\.json.*cross_section_pb"):
        (tmp_path / "side.json").write_text(json.dumps({"sample": "a", "process": "qcd"}))
        skim_file(str(root), str(tmp_path / "side.json"), tmp_path / "o.h5", p)
    assert not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob(".o.h5*"))


def test_corrupt_and_truncated_files_named(tmp_path):
    good = rf.write_record_file(tmp_path / "good.root", rf.random_jets(200, seed=2))
    data = good.read_bytes()
    (tmp_path / "trunc.root").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.root").write_bytes(b"this is not a ROOT file" * 100)
    for name in ("trunc.root", "junk.root"):
        with pytest.raises(InputError, match=name.replace(".", r"\.") + (r".*truncated file" if name == "trunc.root" else "")):
            skim_file(str(tmp_path / name), None, tmp_path / "o.h5", _cfg())
        assert not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob(".o.h5*"))


def test_nonfinite_values_counted_and_policies(tmp_path):
    j = rf.random_jets(10, seed=4)
    j["pfcand"]["dxy"][3] = np.full(len(j["pfcand"]["dxy"][3]), np.nan, dtype=np.float32)
    j["pfcand"]["erel"][5] = np.zeros(len(j["pfcand"]["erel"][5]), dtype=np.float32)  # log(0) = -inf
    n = len(j["scalars"]["fj_pt"])
    root = rf.write_record_file(tmp_path / "nan.root", j)
    cut = skim_file(str(root), None, tmp_path / "zero.h5", _cfg())
    assert cut["nonfinite_values:pfcand_dxy"] == len(j["pfcand"]["dxy"][3])  # all particles, even beyond P
    assert cut["nonfinite_values:part_logerel"] > 0 and cut["jets_nonfinite"] == 2
    with h5py.File(tmp_path / "zero.h5") as f:
        assert f["jets/features"].shape[0] == n and np.isfinite(f["jets/features"][:]).all()
        assert np.isfinite(f["jets/vectors"][:]).all()
    cut = skim_file(str(root), None, tmp_path / "drop.h5", _cfg(nan_policy="drop_jet"))
    assert cut["jets_dropped_nonfinite"] == 2 and cut["jets_written"] == n - 2
    with h5py.File(tmp_path / "drop.h5") as f:
        assert f["jets/features"].shape[0] == n - 2 and 3 not in f["keys/entry"][:].tolist()
    with pytest.raises(InputError, match=r"nan\.root.*pfcand_dxy"):
        skim_file(str(root), None, tmp_path / "err.h5", _cfg(nan_policy="error"))
    assert not (tmp_path / "err.h5").exists()


def test_empty_selection_is_an_error_and_writes_nothing(tmp_path):
    root = rf.write_record_file(tmp_path / "single.root", rf.random_jets(5, jets_per_event=(1, 1)))
    with pytest.raises(InputError, match="empty selection"):
        _skim_and_merge(tmp_path, [(root, None)])
    assert not (tmp_path / "dataset.h5").exists() and not (tmp_path / "counts.csv").exists()
    assert not list(tmp_path.glob(".dataset.h5.tmp*"))


def test_invalid_config_names_key():
    """hhfm.config (config.schema.yaml) checks the skim's config; each error names the key."""
    with pytest.raises(ConfigError, match="skim.window_applies_to"):
        _cfg(window_applies_to="jets")
    with pytest.raises(ConfigError, match="skim.split_fractions"):
        _cfg(split_fractions={"train": 0.5, "val": 0.1, "test": 0.1})
    with pytest.raises(ConfigError, match="skim.min_jets"):
        _cfg(min_jets=6)
    with pytest.raises(ConfigError, match="skim.pt_min"):
        _cfg(pt_min=2500.0)
    with pytest.raises(ConfigError, match="skim.bogus"):
        _cfg(bogus=1)
    with pytest.raises(ConfigError, match="skim.chunk_size"):
        _cfg({"chunk_size": 0})
    with pytest.raises(ConfigError, match="skim.opendata.qcd_cross_section_pb"):
        _cfg(opendata={"qcd_cross_section_pb": -1.0})
    with pytest.raises(ConfigError, match="unexpected section.*heads"):
        stage_config({"seed": 1, "heads": {}})


def test_cli_reports_bad_config_in_one_line(tmp_path):
    root = rf.write_record_file(tmp_path / "ok.root", rf.random_jets(2))
    for opts, key in ((["--config", json.dumps({"seed": 1, "skim": {"nan_policy": "ignore"}})], "skim.nan_policy"),
                      (["--runtime", json.dumps({"skim": {"reader": "root"}})], "skim.reader")):
        res = subprocess.run([sys.executable, "-m", "hhfm.cli", "skim", *opts, "--input", str(root), "--output",
                              str(tmp_path / "o.h5")], capture_output=True, text=True)
        assert res.returncode == 1 and key in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o.h5").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path):
    root = rf.write_record_file(tmp_path / "nopt.root", rf.random_jets(2), drop=("fj_pt",))
    res = subprocess.run([sys.executable, "-m", "hhfm.cli", "skim", "--input", str(root), "--output",
                          str(tmp_path / "o.h5")], capture_output=True, text=True)
    assert res.returncode == 1
    assert "nopt.root" in res.stderr and "fj_pt" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.cutflow.json").exists()


# --- on simulated files (the simulate stage's fixture) ----------------------------------------------


def test_tiny_dataset_from_simulation(tiny_dataset):
    with open_dataset(tiny_dataset) as f:
        samples = json.loads(f.attrs["samples"])
        assert {s["name"] for s in samples} == {"GravitonHH_M1000", "GravitonHH_M2500", "QCD_Pt_300to470",
                                                "QCD_Pt_800to1000"}
        ev = f["events"]
        label, mass, split = ev["label"][:], ev["mass"][:], ev["split"][:]
        assert set(mass[label == 1]) == {1000.0, 2500.0} and (mass[label == 0] == 0).all()
        for code in SPLITS.values():
            assert ((split == code) & (label == 1)).any() and ((split == code) & (label == 0)).any()
        rows = ev["jets"][:]
        n = ev["n_jets"][:]
        assert ((rows >= 0).sum(axis=1) == n).all() and (n >= 2).all() and (n <= 5).all()
        pt = f["jets/fj_pt"][:]
        for r in rows:
            assert np.all(np.diff(pt[r[r >= 0]]) <= 0)
        # signal events contain H->bb jets, background events none
        lx = f["jets/label_xbb"][:]
        sig_jets = rows[label == 1]
        assert (lx[sig_jets[sig_jets >= 0]] == 1).any() and not (lx[rows[label == 0]][rows[label == 0] >= 0] == 1).any()
        feats = f["jets/features"][:200]
        assert np.isfinite(feats).all() and np.abs(feats).max() <= 5.0 + 1e-6
        assert (f["jets/mask"][:200].sum(axis=1) > 0).all()
        assert len(jet_rows(f, "train")) > 0 and (lx[jet_rows(f, "train")] >= 0).all()


def test_failed_runs_leave_previous_outputs_untouched(tmp_path):
    out = tmp_path / "o.h5"
    out.write_bytes(b"previous result")
    root = rf.write_record_file(tmp_path / "bad.root", rf.random_jets(3), drop=("pfcand_erel",))
    with pytest.raises(InputError, match=r"bad\.root.*pfcand_erel"):
        skim_file(str(root), None, out, _cfg())
    assert out.read_bytes() == b"previous result"
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    ds = tmp_path / "dataset.h5"
    ds.write_bytes(b"previous dataset")
    with pytest.raises(InputError, match=r"junk\.h5"):
        merge([str(tmp_path / "junk.h5")], str(ds), str(tmp_path / "c.csv"), str(tmp_path / "n.csv"), _cfg())
    assert ds.read_bytes() == b"previous dataset" and not (tmp_path / "c.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.root", "dataset.h5", "junk.h5", "o.h5"]
