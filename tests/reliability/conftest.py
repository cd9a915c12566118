"""Fixtures of the fault-injection suite: environments for subprocess commands, tiny datasets."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(sys.executable).parent


def command_env(dirs: dict[str, Path] | None = None, **extra: str) -> dict[str, str]:
    """The environment for a command run as a subprocess: the test's nnU-Net folders, one thread, and the
    repository on PYTHONPATH so that spawned workers can import the tests' job functions."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    if dirs:
        env.update(nnUNet_raw=str(dirs["raw"]), nnUNet_preprocessed=str(dirs["preprocessed"]),
                   nnUNet_results=str(dirs["results"]))
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def script(name: str) -> str:
    path = SCRIPTS / name
    assert path.is_file(), f"console script {name} is not installed in {SCRIPTS}"
    return str(path)


@pytest.fixture
def marker(tmp_path) -> Path:
    """A file that a malicious payload would create; tests assert it never appears."""
    return tmp_path / "PWNED"
