"""Shared fixtures. Each stage keeps its session fixtures in its own plugin module
(tests/fixtures_<stage>.py) so engineers never edit the same fixture file."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["fixtures_simulate", "fixtures_skim", "fixtures_pretrain"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
