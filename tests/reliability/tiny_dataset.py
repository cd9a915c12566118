"""Fixtures of the tiny dataset that the reliability and the compat tests train on: a conftest.py registers
them by importing them (``from tests.reliability.tiny_dataset import tiny_dirs, tiny_preprocessed``)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.reliability.helpers import TINY_ID, command_env, make_dirs, script


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
