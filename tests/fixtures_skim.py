"""Session fixtures of the skim stage (see tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: small but complete: all jets kept in events (window on pretraining jets only), 100 particles max
TINY_SKIM_CONFIG = {"seed": 7, "skim": {"max_particles": 100}}
TINY_SKIM_RUNTIME = {"skim": {"chunk_size": 500}}


@pytest.fixture(scope="session")
def tiny_dataset(simulated_files, tmp_path_factory) -> Path:
    """Path of a dataset.h5 (hhfm.dataset layout) made by the real skim + merge from `simulated_files`."""
    from hhfm.skim import skim_file
    from hhfm.skim.merge import merge
    from hhfm.skim.params import stage_config

    base = tmp_path_factory.mktemp("skim")
    cfg = stage_config(TINY_SKIM_CONFIG, TINY_SKIM_RUNTIME)
    per_file = []
    for sample, (root, sidecar) in sorted(simulated_files.items()):
        out = base / "files" / sample / "ntuple_0.h5"
        skim_file(str(root), str(sidecar), out, cfg)
        per_file.append(str(out))
    merge(per_file, str(base / "dataset.h5"), str(base / "cutflow.csv"), str(base / "counts.csv"), cfg)
    return base / "dataset.h5"
