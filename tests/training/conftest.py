"""Fixtures of the training tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def dirs(nnunet_dirs, monkeypatch):
    """Fresh nnU-Net folders; augmentation in the test process, exports inline (no worker processes)."""
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    return nnunet_dirs
