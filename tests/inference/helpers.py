"""Helpers of the inference tests: the reference-trained tiny model and its test images, a predictor on it,
model variants (another fold, another configuration) and accumulators that run out of device memory."""
from __future__ import annotations

import json
import shutil

import torch

from nnunet.inference.data_iterators import preprocess_files
from nnunet.inference.engine import NumpyOps
from nnunet.networks.from_plans import build_network_for_configuration
from tests.helpers import FIXTURES

INFERENCE_FIXTURES = FIXTURES / "inference"
MODEL = INFERENCE_FIXTURES / "model"
IMAGES = INFERENCE_FIXTURES / "imagesTs"
CASES = ("ts_aniso", "ts_regular", "ts_small")


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


def add_fold(model_dir, fold, scale=0.5, seed=0):
    """fold_<fold>: the fold-0 checkpoint with perturbed output-layer weights (a different model)."""
    checkpoint = torch.load(model_dir / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    generator = torch.Generator().manual_seed(seed)
    for key, value in checkpoint["network_weights"].items():
        if key.startswith("decoder.seg_layers"):
            checkpoint["network_weights"][key] = value + scale * torch.randn(value.shape, generator=generator)
    (model_dir / f"fold_{fold}").mkdir()
    torch.save(checkpoint, model_dir / f"fold_{fold}" / "checkpoint_final.pth")


def preprocessed(predictor, case="ts_regular"):
    """A test image preprocessed for ``predictor``'s model, as a tensor."""
    data, _ = preprocess_files([str(IMAGES / f"{case}_0000.nii.gz")], None, predictor.plans,
                               predictor.configuration, predictor.dataset_json)
    return torch.from_numpy(data)


def make_variant_model(model_dir, configuration_name, config_entry, in_channels, seed=0):
    """Add a configuration to the plans and a randomly initialised checkpoint trained 'for' it."""
    plans = json.loads((model_dir / "plans.json").read_text())
    plans["configurations"][configuration_name] = config_entry
    (model_dir / "plans.json").write_text(json.dumps(plans))
    from nnunet.planning.plans import Plans

    config = Plans(plans).configuration(configuration_name)
    torch.manual_seed(seed)
    network = build_network_for_configuration(config, in_channels, 3, enable_deep_supervision=False)
    folder = model_dir.parent / configuration_name
    (folder / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        shutil.copy(model_dir / name, folder / name)
    torch.save({"network_weights": network.state_dict(), "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": configuration_name},
                "inference_allowed_mirroring_axes": tuple(range(len(config.patch_size)))},
               folder / "fold_0" / "checkpoint_final.pth")
    return folder
