"""Fixtures for the inference tests: the reference-trained tiny model and its test images."""
from __future__ import annotations

import shutil

import pytest
import torch

from nnunet.inference.engine import NumpyOps
from tests.conftest import FIXTURES

INFERENCE_FIXTURES = FIXTURES / "inference"
MODEL = INFERENCE_FIXTURES / "model"
IMAGES = INFERENCE_FIXTURES / "imagesTs"
CASES = ("ts_aniso", "ts_regular", "ts_small")

torch.set_num_threads(1)


@pytest.fixture
def model_dir(tmp_path):
    """A writable copy of the model folder trained by nnU-Net 2.8.1 (fold 0 only)."""
    target = tmp_path / "model"
    shutil.copytree(MODEL, target)
    return target


class DeviceOutOfMemoryOps(NumpyOps):
    """Accumulators 'on a device' whose every allocation runs out of memory; ``log`` records what was done."""
    on_device = True

    def __init__(self, log: list):
        self.log = log

    def zeros(self, shape, dtype):
        self.log.append("device zeros")
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def empty_cache(self):
        self.log.append("emptied")

    def host_accumulation(self):
        self.log.append("host")
        return NumpyOps()


def make_predictor(model=MODEL, folds=(0,), **kwargs):
    from nnunet.inference.predictor import nnUNetPredictor

    predictor = nnUNetPredictor(device="cpu", allow_tqdm=False, **kwargs)
    predictor.initialize_from_trained_model_folder(model, folds)
    return predictor
