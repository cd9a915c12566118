"""Shared fixtures: isolated nnU-Net folders per test, CPU-only, few threads."""
from __future__ import annotations

import os
import signal

import pytest

from tests.helpers import register_classes

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("nnUNet_def_n_proc", "1")
# tiny test jobs would otherwise run without the worker processes that many tests are about
os.environ.setdefault("nnUNet_small_job_mb", "0")

# A shell starts background jobs (`pytest ... &`, nohup) with Ctrl-C ignored, and commands the tests start
# inherit that: the tests that send SIGINT would then see it ignored. Give the suite a normal Ctrl-C.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def nnunet_dirs(tmp_path, monkeypatch):
    """Fresh nnUNet_raw / nnUNet_preprocessed / nnUNet_results folders set in the environment."""
    dirs = {}
    for var, sub in (("nnUNet_raw", "raw"), ("nnUNet_preprocessed", "preprocessed"), ("nnUNet_results", "results")):
        folder = tmp_path / sub
        folder.mkdir()
        monkeypatch.setenv(var, str(folder))
        dirs[sub] = folder
    return dirs


@pytest.fixture
def register(monkeypatch):
    """``register(REGISTRY, cls, ...)``: make test classes findable by name for one test only; the registry's
    entries are restored afterwards, so no test sees another's classes."""

    def add(registry, *classes) -> None:
        register_classes(monkeypatch, registry, *classes)

    return add
