"""Fixtures for the inference tests (their helpers: tests/inference/helpers.py)."""
from __future__ import annotations

import shutil

import pytest
import torch

from tests.inference.helpers import MODEL

torch.set_num_threads(1)


@pytest.fixture
def model_dir(tmp_path):
    """A writable copy of the model folder trained by nnU-Net 2.8.1 (fold 0 only)."""
    target = tmp_path / "model"
    shutil.copytree(MODEL, target)
    return target
