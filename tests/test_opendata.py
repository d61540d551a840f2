"""The open-data path for real: the record's file list, files in the record's layout, and reading them
from a real XRootD server on localhost (tests/xrootd/server.sh, started by .ci/run, which also sets
HHFM_XROOTD_TEST=1: then a missing server FAILS these tests instead of skipping them).

Checked: the skim of files streamed over root:// equals the skim of the same files on local disk,
array for array (per file) and byte for byte (the merged dataset.h5), through the workflow with
Snakemake storage (streamed and staged); and every bad input over the network (server down, no
such file, truncated file, wrong tree) stops with an error that names the URL and leaves no output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest
import uproot
import yaml

from test_workflow import configs, job_counts, smk

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "tests/xrootd/server.sh"
XROOTD_REQUIRED = os.environ.get("HHFM_XROOTD_TEST") == "1"
EXPORT = Path(os.environ.get("HHFM_XROOTD_STATE", "/tmp/hhfm-xrootd")) / "export"
#: the record layout of the simulated fixture files: entries per file, files in test/
ENTRIES_PER_FILE, TEST_FILES = 250, 1
#: fast retries for tests (the defaults wait 2 s, 4 s, 8 s)
FAST = {"skim": {"remote": {"retries": 1, "backoff_s": 0.05, "connect_timeout_s": 2.0}}}


# --- the record's file list -----------------------------------------------------------------------


def test_record_file_list_is_the_records():
    """91 files: test/ntuple_merged_0..8 then train/ntuple_merged_9..90, under the EOS base (schema 1.4)."""
    from hhfm.opendata import BASE_URL, record_files

    files = record_files()
    assert len(files) == 91 and len(set(files)) == 91
    assert all(f.startswith(BASE_URL) and f.startswith("root://eospublic.cern.ch//eos/opendata/cms/") for f in files)
    names = [f.removeprefix(BASE_URL) for f in files]
    assert names[:9] == [f"test/ntuple_merged_{k}.root" for k in range(9)]
    assert names[9:] == [f"train/ntuple_merged_{k}.root" for k in range(9, 91)]


def test_shipped_overlay_is_current_and_valid():
    """configs/opendata.yaml is what `hhfm opendata-files` writes, and validates as an overlay."""
    from hhfm import config
    from hhfm.opendata import record_files

    overlay = yaml.safe_load((REPO / "configs/opendata.yaml").read_text())
    assert overlay == {"data": {"source": "opendata", "opendata_files": record_files()}}
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg = config.validate(config.merge(base, overlay))
    assert cfg["data"]["source"] == "opendata" and len(cfg["data"]["opendata_files"]) == 91
    assert cfg["data"]["stage_remote"] is False


def test_opendata_files_command_points_at_a_mirror(tmp_path):
    from hhfm.cli import main

    out = tmp_path / "mirror.yaml"
    assert main(["opendata-files", "--base", "root://localhost:1094//eos/mirror", "--split", "test",
                 "--output", str(out)]) == 0
    files = yaml.safe_load(out.read_text())["data"]["opendata_files"]
    assert files == [f"root://localhost:1094//eos/mirror/test/ntuple_merged_{k}.root" for k in range(9)]


def test_portal_refresh_works_or_says_why(tmp_path):
    """With the network: the portal's 91 files. Without (as here): a clear message, nothing written."""
    out = tmp_path / "portal.yaml"
    proc = subprocess.run([sys.executable, "-m", "hhfm.cli", "opendata-files", "--from-portal", "--output", str(out)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode == 0:
        assert len(yaml.safe_load(out.read_text())["data"]["opendata_files"]) == 91
    else:
        assert proc.returncode == 1 and "CERN open data portal" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and not out.exists()


def test_transient_errors_are_retried_permanent_ones_are_not(caplog):
    """The retry loop of every remote read: a flaky server recovers after two failures; no such file
    fails at once; giving up names the URL and the number of tries; local paths never retry."""
    from hhfm.errors import InputError
    from hhfm.remote import RetryPolicy, call_with_retries

    url, policy = "root://localhost:1//eos/x.root", RetryPolicy(retries=3, backoff_s=0.0)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("File did not vector_read properly: [FATAL] Socket timeout")
        return "data"

    assert call_with_retries(flaky, url, "read", policy) == "data" and len(calls) == 3
    assert [r.message.count("retry") for r in caplog.records if r.name == "hhfm.remote"] == [1, 1]

    def failing(message: str):
        def fn():
            calls.append(1)
            raise OSError(message)
        return fn

    calls.clear()
    with pytest.raises(OSError, match="3011"):
        call_with_retries(failing("Failed to open file: [ERROR] Server responded with an error: [3011] no such file"),
                          url, "open the file", policy)
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(InputError, match=r"^root://localhost:1//eos/x\.root: cannot read after 4 tries"):
        call_with_retries(failing("Failed to open file: [FATAL] Connection error"), url, "read", policy)
    assert len(calls) == 4
    calls.clear()
    with pytest.raises(OSError, match="FATAL"):
        call_with_retries(failing("[FATAL] Connection error"), "/local/x.root", "read", policy)
    assert len(calls) == 1


# --- files as the record serves them --------------------------------------------------------------


@pytest.fixture(scope="session")
def record_layout_dir(simulated_files, tmp_path_factory) -> Path:
    """The fixture simulation rewritten in the record's layout (test/ and train/, no sidecars)."""
    from hhfm.opendata.record_layout import record_layout

    out = tmp_path_factory.mktemp("record_layout")
    inputs = [root for _, (root, _) in sorted(simulated_files.items())]
    record_layout(inputs, out, ENTRIES_PER_FILE, TEST_FILES, seed=3)
    return out


def _layout_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*/ntuple_merged_*.root"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))


def _rows(path: Path) -> np.ndarray:
    """One comparable record per jet: its event key, jet index and a few raw values (bit-exact)."""
    t = uproot.open(path)["deepntuplizer/tree"]
    cols = t.arrays(["sample_isQCD", "event_no", "jet_no", "rho", "fj_pt", "fj_eta", "npfcands"], library="np")
    return np.rec.fromarrays(list(cols.values()), names=list(cols))


def test_record_layout_interleaves_samples_and_keeps_their_order(record_layout_dir, simulated_files):
    from hhfm.simulate.writer import ALL_BRANCHES

    files = _layout_files(record_layout_dir)
    assert [p.parent.name for p in files] == ["test"] * TEST_FILES + ["train"] * (len(files) - TEST_FILES)
    assert [int(p.stem.rsplit("_", 1)[1]) for p in files] == list(range(len(files)))
    assert not list(record_layout_dir.rglob("*.json")), "the record has no sidecars"
    sizes = [uproot.open(p)["deepntuplizer/tree"].num_entries for p in files]
    assert all(n == ENTRIES_PER_FILE for n in sizes[:-1]) and 0 < sizes[-1] <= ENTRIES_PER_FILE
    assert sorted(uproot.open(files[0])["deepntuplizer/tree"].keys()) == ALL_BRANCHES

    out = np.concatenate([_rows(p) for p in files])
    where = {row.tobytes(): i for i, row in enumerate(out)}
    assert len(where) == len(out), "duplicate rows"
    positions = {s: [where[r.tobytes()] for r in _rows(root)] for s, (root, _) in simulated_files.items()}
    assert sum(map(len, positions.values())) == len(out), "every input jet exactly once"
    for sample, pos in positions.items():
        assert pos == sorted(pos), f"{sample}: order within the sample not kept"
    first = {s: pos[0] for s, pos in positions.items()}
    assert max(first.values()) < len(out) // 4, f"samples not interleaved: first rows {first}"
    # jets of one event sit a few entries apart, and some events straddle a file boundary
    file_of = np.repeat(np.arange(len(files)), sizes)
    events: dict = {}
    for i, r in enumerate(out):
        events.setdefault((r["sample_isQCD"], r["event_no"], r["rho"].tobytes()), set()).add(file_of[i])
    assert any(len(f) > 1 for f in events.values()), "no event straddles a file boundary"


def test_record_layout_rejects_a_file_without_the_tree(tmp_path):
    from hhfm.errors import InputError
    from hhfm.opendata.record_layout import record_layout

    bad = tmp_path / "bad.root"
    with uproot.recreate(bad) as f:
        f["other"] = {"x": np.arange(3)}
    with pytest.raises(InputError, match=r"bad\.root.*deepntuplizer/tree"):
        record_layout([bad], tmp_path / "out", 10, 1, seed=0)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.root"))


# --- a real XRootD server --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def xrootd(record_layout_dir) -> dict:
    """The record layout served by the local XRootD server: {"url": root://localhost:PORT//eos/<dir>, "dir": Path}."""
    up = subprocess.run([str(SERVER), "status"], capture_output=True, text=True).returncode == 0
    if not up:
        msg = "no XRootD server on localhost (start one with tests/xrootd/server.sh start)"
        if XROOTD_REQUIRED:
            pytest.fail(msg + "; HHFM_XROOTD_TEST=1 requires it")
        pytest.skip(msg + "; CI sets HHFM_XROOTD_TEST=1")
    base = subprocess.run([str(SERVER), "url"], capture_output=True, text=True, check=True).stdout.strip()
    served = EXPORT / "eos" / f"hhfm-tests-{uuid.uuid4().hex[:10]}"
    shutil.copytree(record_layout_dir, served / "record")
    for p in [served, *served.rglob("*")]:  # readable by the server's own user, whatever the umask
        p.chmod(0o755 if p.is_dir() else 0o644)
    yield {"url": f"{base}/eos/{served.name}", "dir": served, "base": base}
    shutil.rmtree(served, ignore_errors=True)


def _served(xrootd: dict, name: str, data: bytes | None = None, source: Path | None = None) -> str:
    """Put a file into the served tree; return its root:// URL."""
    path = xrootd["dir"] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copyfile(source, path)
    else:
        path.write_bytes(data or b"")
    path.chmod(0o644)
    return f"{xrootd['url']}/{name}"


def _skim_cfg():
    from hhfm.skim.params import stage_config

    return stage_config({"seed": 7, "skim": {}}, {"skim": {**FAST["skim"], "chunk_size": 100}})


def _h5_content(path: Path) -> dict:
    """Every dataset's bytes and every attribute, by name (the `source` attribute aside)."""
    out = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda n, o: out.__setitem__(n, (o.dtype.str, o.shape, o[()].tobytes()))
                      if isinstance(o, h5py.Dataset) else None)
        out["attrs"] = {k: str(v) for k, v in h5.attrs.items() if k != "source"}
    return out


def test_skim_over_xrootd_equals_skim_from_disk(xrootd, record_layout_dir, tmp_path):
    from hhfm.skim import skim_file

    cfg = _skim_cfg()
    local = _layout_files(record_layout_dir)[1]
    url = f"{xrootd['url']}/record/{local.parent.name}/{local.name}"
    cut_remote = skim_file(url, None, tmp_path / "remote.h5", cfg)
    cut_local = skim_file(str(local), None, tmp_path / "local.h5", cfg)
    assert cut_remote == cut_local and cut_local["entries_read"] == ENTRIES_PER_FILE
    assert _h5_content(tmp_path / "remote.h5") == _h5_content(tmp_path / "local.h5")
    with h5py.File(tmp_path / "remote.h5") as h5:
        assert h5.attrs["source"] == url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["server down", "no such file", "truncated file", "wrong tree name"])
def test_bad_input_over_the_network_names_the_url(xrootd, record_layout_dir, tmp_path, case):
    """A clear InputError naming the URL, after the configured retries where another try could help."""
    from hhfm.errors import InputError
    from hhfm.skim import skim_file

    good = _layout_files(record_layout_dir)[0]
    if case == "server down":
        url, expect = f"root://localhost:{_free_port()}//eos/record/test/{good.name}", "after 2 tries"
    elif case == "no such file":
        url, expect = f"{xrootd['url']}/record/test/ntuple_merged_999.root", "no such file on the server"
    elif case == "truncated file":
        url = _served(xrootd, "bad/truncated.root", good.read_bytes()[: good.stat().st_size // 2])
        expect = rf"truncated file \({good.stat().st_size // 2} bytes, its ROOT header says {good.stat().st_size}\)"
    else:
        other = tmp_path / "other.root"
        with uproot.recreate(other) as f:
            f["Events"] = {"x": np.arange(5, dtype=np.float32)}
        url, expect = _served(xrootd, "bad/wrong_tree.root", source=other), "no TTree 'deepntuplizer/tree'"
    out = tmp_path / "out" / "skim.h5"
    with pytest.raises(InputError, match=expect) as err:
        skim_file(url, None, out, _skim_cfg())
    assert str(err.value).startswith(url), err.value
    assert not out.parent.exists() or not list(out.parent.iterdir()), "half-written output left behind"


# --- the workflow over XRootD ----------------------------------------------------------------------


def _overlay(path: Path, files: list[str], **data) -> Path:
    """A tiny-run overlay: open data from `files`, fast retries, two head models, one fraction."""
    cfg = {"data": {"source": "opendata", "opendata_files": files, **data}, **FAST,
           "heads": {"models": ["standard", "embedding-finetuned"], "fractions": [1.0]}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_workflow_over_xrootd_matches_local_disk(xrootd, record_layout_dir, tmp_path):
    """skim -> pretrain -> heads -> evaluate on root:// inputs (Snakemake storage, streamed); the
    dataset equals, byte for byte, the one skimmed from the same files on disk and the one from
    Snakemake's staged copies; a missing remote file stops the run before any job."""
    files = _layout_files(record_layout_dir)
    rel = [f"{p.parent.name}/{p.name}" for p in files]
    urls = [f"{xrootd['url']}/record/{r}" for r in rel]
    served_paths = [str(xrootd["dir"] / "record" / r) for r in rel]

    def run(name: str, target: str, overlay_files: list[str], **data) -> tuple[Path, subprocess.CompletedProcess]:
        workdir = tmp_path / name
        workdir.mkdir()
        overlay = _overlay(tmp_path / f"{name}.yaml", overlay_files, **data)
        args = [target, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *configs(overlay)]
        return workdir, smk(*args, "--cores", "2", "--resources", "gpu=1", timeout=1800)

    # a missing remote file: Snakemake stops before running anything, naming the URL
    missing = f"{xrootd['url']}/record/train/ntuple_merged_999.root"
    workdir, proc = run("missing", "skim", [*urls, missing])
    assert proc.returncode != 0 and missing in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert "Missing input files" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists(), "a job ran despite a missing input"

    workdir, proc = run("streamed", "evaluate", urls)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    log = (workdir / "logs/skim_file/opendata/ntuple_merged_0.log").read_text()
    assert urls[0] in log
    metrics = sorted((workdir / "results/evaluate").rglob("*.csv"))
    assert len(metrics) == 2, metrics  # standard and embedding-finetuned at fraction 1
    local_dir, proc = run("local", "skim", served_paths)
    assert proc.returncode == 0, proc.stderr[-6000:]
    staged_dir, proc = run("staged", "skim", urls, stage_remote=True)
    assert proc.returncode == 0, proc.stderr[-6000:]

    dataset = "results/skim/dataset.h5"
    assert _sha256(workdir / dataset) == _sha256(local_dir / dataset) == _sha256(staged_dir / dataset)
    name = f"results/skim/files/opendata/{files[0].stem}.h5"
    for d in (local_dir, staged_dir):
        assert _h5_content(workdir / name) == _h5_content(d / name)
    with h5py.File(staged_dir / name) as h5:  # the staged job read Snakemake's local copy
        assert ".snakemake/storage/xrootd" in h5.attrs["source"], h5.attrs["source"]
    with h5py.File(workdir / name) as h5:
        assert h5.attrs["source"] == urls[0]
    cutflow = json.loads((workdir / f"results/skim/files/opendata/{files[0].stem}.cutflow.json").read_text())
    assert cutflow["cutflow"]["entries_read"] == ENTRIES_PER_FILE
    assert not job_counts(smk("evaluate", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
                              *configs(tmp_path / "streamed.yaml"), "-n", check=True).stdout)


def test_workflow_with_the_server_down_stops_before_any_job(tmp_path):
    """Snakemake's existence check of a root:// input on a dead server: an error naming the URL, no job run
    (and, with the client's connection retries bounded, seconds rather than the client's ~8 minutes)."""
    url = f"root://localhost:{_free_port()}//eos/record/test/ntuple_merged_0.root"
    overlay = _overlay(tmp_path / "down.yaml", [url])
    proc = smk("skim", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path / "w"), *configs(overlay),
               "--cores", "1", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and url in out and "Connection error" in out, out[-3000:]
    assert not (tmp_path / "w/results").exists()
