"""Fixtures of the fault-injection suite (their helpers: tests/reliability/helpers.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.helpers import Filesystems
from tests.reliability.tiny_dataset import tiny_dirs, tiny_preprocessed  # noqa: F401 - fixtures used by name


@pytest.fixture
def marker(tmp_path) -> Path:
    """A file that a malicious payload would create; tests assert it never appears."""
    return tmp_path / "PWNED"


@pytest.fixture
def filesystems(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("full and read-only disk faults mount a small tmpfs, which needs root; run the suite as root "
                    "(CI does) to include them")
    fs = Filesystems(tmp_path / "mounts")
    yield fs
    fs.unmount_all()
