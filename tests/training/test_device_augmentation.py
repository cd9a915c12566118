"""Augmentation on the training device: the blur computed where the image is equals batchgeneratorsv2's, a batch of
windows augmented by :func:`augment_batch` equals the 2.8.1 pipeline applied per sample with the same draws, and
a trainer with ``nnUNet_augment_on_device=1`` trains on such batches (run here with the CPU as the device)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform, blur_dimension

from nnunet.io.labels import LabelManager
from nnunet.registry import TRAINERS
from nnunet.training.augmentation import (configure_spatial_augmentation, fused_training_transforms,
                                          get_training_transforms)
from nnunet.training.data.device_augmentation import (DeviceAugmentedLoader, DeviceGaussianBlur, augment_batch,
                                                      blur_axis, device_pipeline)
from nnunet.training.data.loader import PatchLoader
from nnunet.training.run import get_trainer_from_args

from tests.training.augmentation_cases import FakeCases
from tests.training.helpers import TinyTestTrainer, make_3d_dataset

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, TinyTestTrainer)


@pytest.mark.parametrize("shape", [(2, 30, 34, 38), (1, 40, 44)])
def test_blur_axis_equals_batchgeneratorsv2(shape):
    img = torch.from_numpy(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    for axis in range(len(shape) - 1):
        ours = blur_axis(img, 0.8, axis)
        ref = blur_dimension(img, 0.8, axis, force_use_fft=False)
        assert torch.allclose(ours, ref, atol=1e-6)


def test_device_blur_draws_and_blurs_like_the_original():
    original = GaussianBlurTransform(blur_sigma=(0.5, 1.0), synchronize_channels=False, synchronize_axes=False,
                                     p_per_channel=0.5, benchmark=True)
    device = DeviceGaussianBlur(blur_sigma=(0.5, 1.0), synchronize_channels=False, synchronize_axes=False,
                                p_per_channel=0.5, benchmark=True)
    img = torch.from_numpy(np.random.default_rng(1).normal(size=(4, 20, 22, 24)).astype(np.float32))
    for seed in range(4):
        outs = []
        for t in (original, device):
            np.random.seed(seed)
            torch.manual_seed(seed)
            outs.append(t(image=img.clone())["image"])
        assert torch.allclose(outs[0], outs[1], atol=1e-5)
    assert not torch.equal(outs[1], img)  # something was blurred


@pytest.mark.parametrize("patch", [(24, 28, 32), (48, 40)])
def test_batch_augmented_on_the_device_equals_the_cpu_pipeline(patch):
    setup = configure_spatial_augmentation(patch)
    dim = len(patch)
    cases = FakeCases(np.random.default_rng(2), (40, 44, 50) if dim == 3 else (1, 70, 80), 4)
    labels = LabelManager({"background": 0, **{f"l{k}": k for k in range(1, 5)}})
    args = (patch, setup.rotation_for_DA, [[1] * dim, [0.5] * dim], setup.mirror_axes, False)
    windows = PatchLoader(cases, 3, setup.initial_patch_size, patch, labels, oversample_foreground_percent=0.5)
    reference = get_training_transforms(*args)
    pipeline = device_pipeline(fused_training_transforms(*args))
    for seed in range(4):
        np.random.seed(seed)
        batch = next(windows)
        np.random.seed(100 + seed)
        torch.manual_seed(100 + seed)
        ours = augment_batch(batch, pipeline, torch.device("cpu"))
        np.random.seed(100 + seed)
        torch.manual_seed(100 + seed)
        refs = [reference(image=batch["data"][j].clone(), segmentation=batch["target"][j].clone())
                for j in range(3)]
        assert ours["keys"] == batch["keys"]
        for j, ref in enumerate(refs):
            image_range = float(ref["image"].max() - ref["image"].min())
            assert float((ours["data"][j] - ref["image"]).abs().max()) <= 1e-4 * image_range
            for level in range(2):
                agreement = (ours["target"][level][j] == ref["segmentation"][level]).float().mean()
                assert float(agreement) >= 0.999
    assert tuple(ours["data"].shape[2:]) == patch


def test_trainer_augments_on_the_device_when_asked(dirs, monkeypatch):
    make_3d_dataset(dirs["preprocessed"])
    monkeypatch.setenv("nnUNet_augment_on_device", "1")
    trainer = get_trainer_from_args(901, "3d_fullres", 0, "TinyTestTrainer", device=torch.device("cpu"))
    trainer.initialize()
    train, val = trainer.get_dataloaders()
    try:
        assert isinstance(train, DeviceAugmentedLoader) and not isinstance(val, DeviceAugmentedLoader)
        batch = next(train)
        patch = tuple(trainer.configuration_manager.patch_size)
        assert tuple(batch["data"].shape[2:]) == patch
        assert isinstance(batch["target"], list) and tuple(batch["target"][0].shape[2:]) == patch
        assert int(batch["target"][0].min()) >= 0  # the -1 padding label was removed
        before = [p.detach().clone() for p in trainer.network.parameters()]
        trainer.network.train()
        loss = float(trainer.train_step(batch)["loss"])
        assert np.isfinite(loss)
        assert any(not torch.equal(a, b) for a, b in zip(before, trainer.network.parameters()))
    finally:
        for loader in (train, val):
            getattr(loader, "_finish", lambda: None)()
    monkeypatch.setenv("nnUNet_augment_on_device", "0")
    fresh = get_trainer_from_args(901, "3d_fullres", 0, "TinyTestTrainer", device=torch.device("cpu"))
    fresh.initialize()
    assert not fresh.augments_on_device(fresh.get_plain_dataloaders()[0].transforms)
