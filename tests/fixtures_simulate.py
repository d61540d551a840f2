"""Session fixtures of the simulate stage (see tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: small simulated set shared by every test that needs record-format input (seconds to make)
FIXTURE_SAMPLES = ["GravitonHH_M1000", "GravitonHH_M2500", "QCD_Pt_300to470", "QCD_Pt_800to1000"]
#: the stage config of that set (`seed` + `simulate` sections, as `hhfm simulate --config` takes it)
FIXTURE_CONFIG = {"seed": 7, "simulate": {"events_per_file": 120, "batch_size": 60}}


@pytest.fixture(scope="session")
def simulated_files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """sample -> (ROOT file, sidecar JSON) of one small record-format file per sample (index 0)."""
    from hhfm import config
    from hhfm.simulate import SECTIONS, simulate_file

    cfg = config.load(FIXTURE_CONFIG, sections=SECTIONS)
    base = tmp_path_factory.mktemp("simulation")
    out: dict[str, tuple[Path, Path]] = {}
    for sample in FIXTURE_SAMPLES:
        root = base / sample / "ntuple_0.root"
        simulate_file(cfg, sample, 0, root, progress=False)
        out[sample] = (root, root.with_suffix(".json"))
    return out
