"""JetClass reader (hhfm.jetclass): hand-written JetClass-format ROOT files read back by the real code.

Every expected number is recomputed here by hand from the JetClass_full.yaml definitions and the
PARTICLE_FEATURES constants (not from the reader's helpers).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot

from hhfm.cli import main as cli_main
from hhfm.dataset import jet_rows, open_dataset
from hhfm.errors import ConfigError, InputError
from hhfm.features import (HLF_NAMES, JETCLASS_CLASSES, N_PARTICLE_FEATURES, PARTICLE_FEATURE_NAMES,
                           PARTICLE_FEATURES, SPLITS)
from hhfm.jetclass import build_jetclass_dataset, jet_splits, read_jetclass_file
from hhfm.jetclass.reader import EVENT_COLUMNS, JET_BRANCHES, PARTICLE_BRANCHES

F = {name: i for i, name in enumerate(PARTICLE_FEATURE_NAMES)}


def _jet(label: str, parts: list[dict], pt=600.0, eta=0.5, phi=1.0, energy=900.0, sdmass=100.0) -> dict:
    """One JetClass jet: particles as dicts of part_* values (unset branches = 0)."""
    return {"label": label, "parts": parts, "jet_pt": pt, "jet_eta": eta, "jet_phi": phi, "jet_energy": energy,
            "jet_sdmass": sdmass}


def _write(path: Path, jets: list[dict], drop: tuple[str, ...] = (), labels: list[list[str]] | None = None,
           tree: str = "tree") -> Path:
    """A JetClass-format file: var * float32 particle branches, float32 jet scalars, bool one-hot labels."""
    counts = np.array([len(j["parts"]) for j in jets], np.int64)
    flat = {b: np.array([float(p.get(b, 0.0)) for j in jets for p in j["parts"]], np.float32)
            for b in PARTICLE_BRANCHES if b not in drop}
    data: dict = {"part": ak.zip({b.removeprefix("part_"): ak.unflatten(v, counts) for b, v in flat.items()})}
    for b in JET_BRANCHES:
        data[b] = np.array([j[b] for j in jets], np.float32)
    data["jet_nparticles"] = counts.astype(np.float32)
    for c in JETCLASS_CLASSES:
        data[f"label_{c}"] = np.array([c in (labels[i] if labels else [j["label"]]) for i, j in enumerate(jets)])
    data = {k: v for k, v in data.items() if k not in drop}
    with uproot.recreate(path) as f:
        t = f.mktree(tree, {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()},
                     counter_name=lambda counted: "n_part", title="tree")
        t.extend(data)
    return path


def _p(px, py, pz=0.0, e=None, **kw) -> dict:
    e = math.sqrt(px * px + py * py + pz * pz) if e is None else e
    return {"part_px": px, "part_py": py, "part_pz": pz, "part_energy": e, **kw}


def _std(name: str, x: float) -> float:
    spec = PARTICLE_FEATURES[name]
    if spec is None:
        return x
    a, b, lo, hi = spec
    return min(max((x - a) * b, lo), hi)


def _random_file(path: Path, n: int, classes: list[str], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    jets = []
    for i in range(n):
        parts = [_p(*rng.normal(0, 20, 2), pz=rng.normal(0, 20), deta=rng.normal(0, .2), dphi=rng.normal(0, .2))
                 for _ in range(rng.integers(1, 12))]
        jets.append(_jet(classes[i % len(classes)], parts, pt=float(rng.uniform(500, 1000)),
                         eta=float(rng.uniform(-2, 2)), energy=3000.0))
    return _write(path, jets)


# the jet of the value test: three particles given in NON-pT order, jet at negative eta
P0 = _p(3.0, 4.0, 1.0, 6.0, part_deta=0.1, part_dphi=-0.2, part_d0val=0.5, part_d0err=2.0, part_dzval=-0.3,
        part_dzerr=0.25, part_charge=1.0, part_isChargedHadron=1.0)
P1 = _p(30.0, 40.0, 10.0, 60.0, part_deta=-0.05, part_dphi=0.02, part_isPhoton=1.0)
P2 = _p(0.6, 0.8, 0.0, 1.5, part_deta=0.3, part_dphi=0.3, part_isNeutralHadron=1.0, part_charge=0.0)
VALUE_JET = _jet("Hbb", [P0, P1, P2], pt=600.0, eta=-1.0, phi=0.5, energy=1000.0, sdmass=110.0)


@pytest.fixture(scope="module")
def value_file(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("jc") / "HToBB_000.root", [VALUE_JET])


def test_particle_features_by_hand(value_file):
    out = read_jetclass_file(value_file, max_particles=4)
    x, v, m = out["features"][0], out["vectors"][0], out["mask"][0]
    assert out["features"].dtype == np.float32 and out["features"].shape == (1, 4, N_PARTICLE_FEATURES)
    assert m.tolist() == [True, True, True, False]  # 3 particles + padding
    # pT order: P1 (50) > P0 (5) > P2 (1); the four-vectors are the px.. branches themselves
    np.testing.assert_array_equal(v[:3], np.float32([[30, 40, 10, 60], [3, 4, 1, 6], [0.6, 0.8, 0, 1.5]]))
    assert not x[3].any() and not v[3].any()
    f0 = x[1]  # P0
    assert f0[F["part_pt_log"]] == pytest.approx((math.log(5.0) - 1.7) * 0.7, rel=1e-6)
    expected = {"part_pt_log": math.log(5.0), "part_e_log": math.log(6.0), "part_logptrel": math.log(5 / 600),
                "part_logerel": math.log(6 / 1000), "part_deltaR": math.hypot(0.1, -0.2), "part_charge": 1.0,
                "part_isChargedHadron": 1.0, "part_isNeutralHadron": 0.0, "part_isPhoton": 0.0,
                "part_isElectron": 0.0, "part_isMuon": 0.0, "part_d0": math.tanh(0.5),  # already mm: no x10
                "part_d0err": 2.0, "part_dz": math.tanh(-0.3), "part_dzerr": 0.25,
                "part_deta": 0.1, "part_dphi": -0.2}  # deta copied as stored although jet_eta < 0
    for name, raw in expected.items():
        assert f0[F[name]] == pytest.approx(_std(name, raw), rel=1e-5, abs=1e-6), name
    assert f0[F["part_d0err"]] == 1.0  # clipped to [0, 1]
    # P2: pt 1 -> part_pt_log (0 - 1.7) * 0.7; logptrel clipped at -5? (log(1/600) + 4.7) * 0.7 = -1.19
    assert x[2, F["part_pt_log"]] == pytest.approx(-1.7 * 0.7, rel=1e-6)
    assert x[2, F["part_logptrel"]] == pytest.approx((math.log(1 / 600) + 4.7) * 0.7, rel=1e-5)
    assert x[2, F["part_isNeutralHadron"]] == 1.0 and x[0, F["part_isPhoton"]] == 1.0
    assert x[0, F["part_deta"]] == pytest.approx(-0.05) and x[2, F["part_deta"]] == pytest.approx(0.3)


def test_truncation_keeps_leading(value_file):
    out = read_jetclass_file(value_file, max_particles=2)
    assert out["mask"].tolist() == [[True, True]]
    np.testing.assert_array_equal(out["vectors"][0, :, 0], np.float32([30, 3]))


def test_jet_columns_and_hlf(value_file):
    out = read_jetclass_file(value_file, max_particles=4)
    mass = math.sqrt(1000.0**2 - (600.0 * math.cosh(-1.0)) ** 2)  # from the jet four-vector
    hlf = dict(zip(HLF_NAMES, out["hlf"][0]))
    assert hlf["log_pt"] == pytest.approx(math.log(600.0), rel=1e-6)
    assert hlf["eta"] == pytest.approx(-1.0) and hlf["phi"] == pytest.approx(0.5)
    assert hlf["log_mass"] == pytest.approx(math.log(mass), rel=1e-5)
    assert hlf["log_sdmass"] == pytest.approx(math.log(110.0), rel=1e-6)
    assert out["fj_mass"][0] == pytest.approx(mass, rel=1e-5) and out["fj_pt"][0] == 600.0
    assert out["fj_sdmass"][0] == pytest.approx(110.0) and out["fj_eta"][0] == -1.0
    assert np.isnan(out["fj_doubleb"][0]) and np.isnan(out["fj_gen_pt"][0])
    assert out["fj_nbHadrons"].tolist() == [-1] and out["fj_ncHadrons"].dtype == np.int32
    assert out["label_jetclass"].tolist() == [1] and out["label_xbb"].tolist() == [1]
    assert out["label_class"].tolist() == [-1] and out["in_window"].tolist() == [True]
    assert out["event"].tolist() == [-1] and out["entry"].tolist() == [0]


def test_labels_and_mass_floor(tmp_path):
    parts = [_p(10.0, 0.0)]
    jets = [_jet(c, parts) for c in ("QCD", "Hbb", "Hcc", "Tbl", "Wqq")]
    jets[0].update(jet_energy=600.0 * math.cosh(0.5), jet_sdmass=0.0)  # massless jet, sdmass 0 -> floors
    out = read_jetclass_file(_write(tmp_path / "mix.root", jets), max_particles=3)
    assert out["label_jetclass"].tolist() == [0, 1, 2, 9, 7]
    assert out["label_xbb"].tolist() == [0, 1, -1, -1, -1]
    assert out["label_class"].tolist() == [-1] * 5
    assert out["hlf"][0, HLF_NAMES.index("log_mass")] == pytest.approx(0.0, abs=1e-6)
    assert out["hlf"][0, HLF_NAMES.index("log_sdmass")] == 0.0


def test_build_layout_and_pretraining_reads_it(tmp_path):
    a = _random_file(tmp_path / "HToBB_000.root", 60, ["Hbb", "QCD"], 1)
    b = _random_file(tmp_path / "ZJetsToNuNu_000.root", 40, ["QCD", "Tbqq"], 2)
    out = tmp_path / "jc.h5"
    summary = build_jetclass_dataset([str(a), str(b)], out, max_particles=8, step_size=16)
    assert summary["jets"] == 100
    with open_dataset(out) as f:
        j = f["jets"]
        assert j["features"].shape == (100, 8, 17) and j["features"].dtype == np.float32
        assert j["vectors"].shape == (100, 8, 4) and j["mask"].dtype == bool and j["hlf"].shape == (100, 5)
        for name, dt in (("label_jetclass", "i1"), ("label_xbb", "i1"), ("label_class", "i1"), ("split", "i1"),
                         ("source_file", "i2"), ("event", "i8"), ("fj_nbHadrons", "i4"), ("fj_sdmass", "f4"),
                         ("in_window", "?")):
            assert j[name].dtype == np.dtype(dt), name
        assert set(EVENT_COLUMNS) <= set(f["events"]) and all(len(f["events"][k]) == 0 for k in EVENT_COLUMNS)
        assert json.loads(f.attrs["files"]) == [str(a), str(b)] and f.attrs["format"] == "jetclass"
        assert json.loads(f.attrs["particle_features"]) == PARTICLE_FEATURE_NAMES
        assert int(f.attrs["max_particles"]) == 8
        assert json.loads(f.attrs["skim_params"])["window_applies_to"] == "both"
        assert j["source_file"][:].tolist() == [0] * 60 + [1] * 40
        assert (j["label_class"][:] == -1).all() and j["in_window"][:].all()
        rows = jet_rows(f, "train", require_label="label_jetclass")
        assert len(rows) and (j["split"][:][rows] == SPLITS["train"]).all()
        n_counted = sum(v for c in summary["counts"].values() for v in c.values())
        assert n_counted == 100 and summary["counts"]["Tbqq"]["train"] + summary["counts"]["Tbqq"]["val"] \
            + summary["counts"]["Tbqq"]["test"] == 20
        # chunked (step 16) == one read per file
        whole = read_jetclass_file(a, max_particles=8)
        np.testing.assert_array_equal(j["features"][:60], whole["features"])
        np.testing.assert_array_equal(j["mask"][:60], whole["mask"])


def test_pretraining_loader_reads_output(tmp_path):
    """hhfm.pretrain.data (torch) finds every column it reads; rows = labelled train jets."""
    pytest.importorskip("torch")
    from hhfm.pretrain.data import jet_rows as pretrain_jet_rows, load_split

    a = _random_file(tmp_path / "HToBB_002.root", 40, ["Hbb", "QCD", "Zqq"], 7)
    out = tmp_path / "jc.h5"
    build_jetclass_dataset([str(a)], out, max_particles=8)
    with open_dataset(out) as f:
        rows = pretrain_jet_rows(f, "train", require_label="label_jetclass")
        assert len(rows) and (f["jets/split"][:][rows] == SPLITS["train"]).all()
    split = load_split(str(out), "train", "xbb")
    with h5py.File(out, "r") as f:
        expected = np.flatnonzero((f["jets/label_xbb"][:] >= 0) & (f["jets/split"][:] == SPLITS["train"]))
    np.testing.assert_array_equal(split.rows, expected)


def test_splits_deterministic_and_order_independent(tmp_path):
    a = _random_file(tmp_path / "HToBB_001.root", 300, ["Hbb"], 3)
    b = _random_file(tmp_path / "ZJetsToNuNu_001.root", 200, ["QCD"], 4)
    keyed = []
    for order, name in (([a, b], "ab.h5"), ([b, a], "ba.h5")):
        build_jetclass_dataset([str(p) for p in order], tmp_path / name, max_particles=4)
        with h5py.File(tmp_path / name) as f:
            files = [Path(p).name for p in json.loads(f.attrs["files"])]
            src, entry, split = f["jets/source_file"][:], f["jets/entry"][:], f["jets/split"][:]
            keyed.append({(files[s], int(e)): int(c) for s, e, c in zip(src, entry, split)})
    assert keyed[0] == keyed[1] and len(keyed[0]) == 500
    codes = np.array(list(keyed[0].values()))
    assert 0.7 < (codes == 0).mean() < 0.9 and 0.04 < (codes == 1).mean() < 0.16
    # independent of the directory; other seed -> other splits; fractions honoured
    other = tmp_path / "moved"
    other.mkdir()
    shutil.copy(a, other / a.name)
    e = np.arange(300)
    fr = {"train": 0.8, "val": 0.1, "test": 0.1}
    np.testing.assert_array_equal(jet_splits(str(other / a.name), e, fr), jet_splits(str(a), e, fr))
    assert (jet_splits(str(a), e, fr, seed=1) != jet_splits(str(a), e, fr)).any()
    assert (jet_splits(str(a), e, {"train": 0.0, "val": 0.0, "test": 1.0}) == SPLITS["test"]).all()
    with pytest.raises(ConfigError, match="split_fractions"):
        build_jetclass_dataset([str(a)], tmp_path / "x.h5", split_fractions={"train": 0.5, "val": 0.1, "test": 0.1})


def test_max_jets_per_file(tmp_path):
    a = _random_file(tmp_path / "TTBar_000.root", 30, ["Tbqq"], 5)
    s = build_jetclass_dataset([str(a)], tmp_path / "o.h5", max_particles=4, max_jets_per_file=7, step_size=4)
    assert s["jets"] == 7
    with h5py.File(tmp_path / "o.h5") as f:
        assert f["jets/entry"][:].tolist() == list(range(7))


# --- errors --------------------------------------------------------------------------------------------------


def test_missing_branch_names_branch_and_file(tmp_path):
    path = _write(tmp_path / "HToCC_000.root", [VALUE_JET], drop=("part_d0val",))
    with pytest.raises(InputError, match=r"HToCC_000\.root.*part_d0val"):
        read_jetclass_file(path)


def test_label_errors(tmp_path):
    jets = [VALUE_JET, VALUE_JET, VALUE_JET]
    two = _write(tmp_path / "two.root", jets, labels=[["Hbb"], ["Hbb", "QCD"], ["QCD"]])
    with pytest.raises(InputError, match=r"two\.root: entry 1 .*2 labels set \(label_QCD, label_Hbb\)"):
        read_jetclass_file(two)
    none = _write(tmp_path / "none.root", jets, labels=[["Hbb"], ["QCD"], []])
    with pytest.raises(InputError, match=r"none\.root: entry 2 .*0 labels set"):
        read_jetclass_file(none)
    # the build stops and leaves no half-written output
    good = _write(tmp_path / "good.root", [VALUE_JET])
    with pytest.raises(InputError, match="entry 1"):
        build_jetclass_dataset([str(good), str(two)], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists() and not list(tmp_path.glob(".out.h5*"))


def test_bad_files(tmp_path, value_file):
    with pytest.raises(InputError, match=r"nope\.root: input file does not exist"):
        read_jetclass_file(tmp_path / "nope.root")
    junk = tmp_path / "junk.root"
    junk.write_bytes(b"this is not a ROOT file at all" * 20)
    with pytest.raises(InputError, match=r"junk\.root: not a readable ROOT file"):
        read_jetclass_file(junk)
    cut = tmp_path / "cut.root"
    cut.write_bytes(value_file.read_bytes()[:2000])
    with pytest.raises(InputError, match=r"cut\.root: (truncated|not a readable|cannot read)"):
        read_jetclass_file(cut)
    other = _write(tmp_path / "other.root", [VALUE_JET], tree="events")
    with pytest.raises(InputError, match=r"other\.root: no TTree 'tree'"):
        read_jetclass_file(other)
    empty = tmp_path / "empty.root"
    with uproot.recreate(empty) as f:
        f.mktree("tree", {**{b: "var * float32" for b in PARTICLE_BRANCHES}, **{b: "float32" for b in JET_BRANCHES},
                          **{f"label_{c}": "bool" for c in JETCLASS_CLASSES}})
    with pytest.raises(InputError, match=r"empty\.root: .*no entries"):
        build_jetclass_dataset([str(empty)], tmp_path / "e.h5")
    with pytest.raises(InputError, match="given twice"):
        build_jetclass_dataset([str(value_file), str(value_file)], tmp_path / "d.h5")
    with pytest.raises(ConfigError, match="nan_policy"):
        read_jetclass_file(value_file, nan_policy="ignore")


# --- non-finite values ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nan_file(tmp_path_factory) -> Path:
    bad = _jet("QCD", [P1, {**P0, "part_d0val": float("nan")}], pt=600.0, eta=-1.0, phi=0.5, energy=1000.0)
    inf_sd = _jet("Hbb", [P1], sdmass=float("inf"))
    return _write(tmp_path_factory.mktemp("nan") / "nan.root", [VALUE_JET, bad, inf_sd])


def test_nan_policy_zero(nan_file):
    stats: dict = {}
    out = read_jetclass_file(nan_file, max_particles=4, nan_policy="zero", stats=stats)
    assert len(out["entry"]) == 3 and np.isfinite(out["features"]).all() and np.isfinite(out["hlf"]).all()
    assert out["features"][1, 1, F["part_d0"]] == 0.0  # P0 of jet 1 (second by pT), d0 zeroed
    assert out["features"][1, 1, F["part_dz"]] == pytest.approx(math.tanh(-0.3), rel=1e-6)  # the rest kept
    assert out["fj_sdmass"][2] == 0.0 and out["hlf"][2, HLF_NAMES.index("log_sdmass")] == 0.0
    assert stats["nonfinite:part_d0val"] == 1 and stats["nonfinite:feature:part_d0"] == 1
    assert stats["nonfinite:jet_sdmass"] == 1 and stats["nonfinite:hlf:log_sdmass"] == 1
    assert stats["jets_nonfinite"] == 2 and stats["jets_dropped_nonfinite"] == 0 and stats["jets_written"] == 3


def test_nan_policy_drop_and_error(nan_file):
    out = read_jetclass_file(nan_file, max_particles=4, nan_policy="drop_jet")
    assert out["entry"].tolist() == [0] and out["label_jetclass"].tolist() == [1]
    with pytest.raises(InputError, match=r"nan\.root: non-finite value in branch\(es\) part_d0val at entry 1"):
        read_jetclass_file(nan_file, nan_policy="error")
    # a NaN in a particle truncated away does not make the jet bad (as in the skim)
    out = read_jetclass_file(nan_file, max_particles=1, nan_policy="drop_jet")
    assert out["entry"].tolist() == [0, 1]


# --- CLI -----------------------------------------------------------------------------------------------------


def test_cli(tmp_path, value_file, capsys):
    a = _random_file(tmp_path / "WToQQ_000.root", 20, ["Wqq", "QCD"], 6)
    out = tmp_path / "cli.h5"
    rc = cli_main(["skim-jetclass", "--input", str(a), str(value_file), "--output", str(out), "--max-particles", "6",
                   "--seed", "3", "--split-fractions", '{"train": 0.5, "val": 0.25, "test": 0.25}'])
    assert rc == 0
    with h5py.File(out) as f:
        assert f["jets/features"].shape == (21, 6, 17)
        assert json.loads(f.attrs["skim_params"])["seed"] == 3
    rc = cli_main(["skim-jetclass", "--input", str(tmp_path / "missing.root"), "--output", str(tmp_path / "m.h5")])
    err = capsys.readouterr().err
    assert rc == 1 and "missing.root: input file does not exist" in err
