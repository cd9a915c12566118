"""Fixtures of the fault-injection suite: environments for subprocess commands, tiny datasets."""
from __future__ import annotations

import os
import subprocess
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


def make_dirs(root: Path) -> dict[str, Path]:
    dirs = {name: root / name for name in ("raw", "preprocessed", "results")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    return dirs


TINY_ID = 931
TINY = f"Dataset{TINY_ID}_Tiny"


@pytest.fixture(scope="session")
def tiny_preprocessed(tmp_path_factory) -> dict[str, Path]:
    """A planned and preprocessed 5-case dataset of 16^3 volumes (3d_fullres), made once per test session.

    Tests may read it and train on it, but write their results into a fresh ``nnUNet_results`` of their own
    (see :func:`tiny_dirs`).
    """
    from nnunet.demo.synthetic import SyntheticSpec, make_dataset

    dirs = make_dirs(tmp_path_factory.mktemp("tiny"))
    make_dataset(dirs["raw"], TINY_ID, "Tiny", SyntheticSpec(num_cases=5, shape=(16, 16, 16), shape_jitter=0))
    result = subprocess.run([script("nnUNet_plan_and_preprocess"), "-d", str(TINY_ID), "-c", "3d_fullres", "-np",
                             "1", "-npfp", "1", "--no_pbar"], env=command_env(dirs), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return dirs


@pytest.fixture
def tiny_dirs(tiny_preprocessed, tmp_path, monkeypatch) -> dict[str, Path]:
    """The session's tiny dataset with a fresh, empty ``nnUNet_results`` (set in this process's environment)."""
    dirs = dict(tiny_preprocessed, results=tmp_path / "results")
    dirs["results"].mkdir()
    for variable, key in (("nnUNet_raw", "raw"), ("nnUNet_preprocessed", "preprocessed"),
                          ("nnUNet_results", "results")):
        monkeypatch.setenv(variable, str(dirs[key]))
    return dirs
