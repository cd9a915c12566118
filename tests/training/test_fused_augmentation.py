"""The fused spatial stage gives batchgeneratorsv2's result: with the same (fixed) rotation and scaling the image
agrees within 1e-4 of its intensity range and the labels on >= 99.9 % of voxels, in 2-D, 3-D, dummy-2-D, with a
cascade channel, many labels, patches reaching past the window and nearest-neighbour labels; and a loader built
with the fused pipeline yields the batches of the 2.8.1 pipeline from the same random stream."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.pseudo2d import Convert2DTo3DTransform, Convert3DTo2DTransform

from nnunet.errors import ConfigurationError
from nnunet.io.labels import LabelManager
from nnunet.training.augmentation import (FusedTrainingTransforms, configure_spatial_augmentation,
                                          fused_training_transforms, get_training_transforms)
from nnunet.training.data.loader import PatchLoader
from nnunet.training.fused_spatial import FusedSpatialTransform, resample_labels
from nnunet.training.trainer import nnUNetTrainer

from tests.training.augmentation_cases import FakeCases, blobs

torch.set_num_threads(1)


def reference_transform(patch, angle, scale, seg_order=1, p=1.0):
    """batchgeneratorsv2's spatial transform with fixed parameters (scalars are returned as drawn)."""
    return SpatialTransform(patch, patch_center_dist_from_border=0, random_crop=False, p_elastic_deform=0,
                            p_rotation=p, rotation=angle, p_scaling=p, scaling=scale,
                            p_synchronize_scaling_across_axes=1, bg_style_seg_sampling=False,
                            mode_seg="nearest" if seg_order == 0 else "bilinear", border_mode_seg="constant",
                            padding_value_seg=-1)


def fused_result(patch, window_image, window_seg, angle, scale, seg_order=1, dummy_2d=False, p=1.0):
    fused = FusedSpatialTransform(patch, angle, dummy_2d=dummy_2d, seg_order=seg_order, p_rotation=p,
                                  p_scaling=p, scaling=scale)
    draw = fused.draw(window_image.shape[1:])
    box = (slice(None),) + tuple(slice(lo, hi) for lo, hi in draw.box)
    return fused(image=window_image[box].clone(), segmentation=window_seg[box].clone(), spatial=draw)


def assert_agrees(ours, ref):
    image_range = float(ref["image"].max() - ref["image"].min())
    assert ours["image"].shape == ref["image"].shape
    assert float((ours["image"] - ref["image"]).abs().max()) <= 1e-4 * image_range
    assert ours["segmentation"].shape == ref["segmentation"].shape
    assert ours["segmentation"].dtype == ref["segmentation"].dtype
    agreement = float((ours["segmentation"] == ref["segmentation"]).float().mean())
    assert agreement >= 0.999, agreement


@pytest.mark.parametrize("window, patch, labels, angle, scale", [
    ((60, 66, 70), (40, 44, 48), 3, 0.4, 1.15),     # 3-D, rotation about every axis, zoomed out
    ((60, 66, 70), (40, 44, 48), 30, -0.5, 0.8),    # many labels, zoomed in
    ((60, 66, 70), (40, 44, 48), 4, 0.5, 1.4),      # reaches past the window: padded with -1 / 0
    ((90, 110), (64, 72), 5, 2.5, 1.3),             # 2-D, large angle
    ((90, 110), (64, 72), 1, 0.0, 1.0),             # identity affine: still resampled, equals the crop
])
def test_spatial_stage_matches_batchgeneratorsv2(window, patch, labels, angle, scale):
    rng = np.random.default_rng(labels)
    image = torch.from_numpy(rng.normal(size=(2, *window)).astype(np.float32) * 50 + 10)
    seg = torch.from_numpy(blobs(window, labels, rng))
    ref = reference_transform(patch, angle, scale)(image=image.clone(), segmentation=seg.clone())
    assert_agrees(fused_result(patch, image, seg, angle, scale), ref)


def test_labels_with_cascade_channel_and_nearest_order():
    rng = np.random.default_rng(7)
    window, patch = (50, 56, 60), (32, 36, 40)
    image = torch.from_numpy(rng.normal(size=(1, *window)).astype(np.float32))
    seg = torch.from_numpy(blobs(window, 6, rng, channels=2))
    for order in (0, 1):
        ref = reference_transform(patch, 0.6, 1.2, seg_order=order)(image=image.clone(), segmentation=seg.clone())
        assert_agrees(fused_result(patch, image, seg, 0.6, 1.2, seg_order=order), ref)


def test_dummy_2d_rotates_each_slice_alike():
    rng = np.random.default_rng(3)
    window, patch = (8, 70, 76), (8, 48, 52)
    image = torch.from_numpy(rng.normal(size=(1, *window)).astype(np.float32))
    seg = torch.from_numpy(blobs(window, 4, rng))
    data = {"image": image.clone(), "segmentation": seg.clone()}
    for t in (Convert3DTo2DTransform(), reference_transform(patch[1:], 1.2, 0.9), Convert2DTo3DTransform()):
        data = t(**data)
    assert_agrees(fused_result(patch, image, seg, 1.2, 0.9, dummy_2d=True), data)


def test_plain_crop_reads_only_the_patch():
    fused = FusedSpatialTransform((40, 44, 48), 0.3, p_rotation=0, p_scaling=0)
    draw = fused.draw((61, 66, 70))
    assert draw.affine is None
    assert draw.box == ((10, 50), (11, 55), (11, 59))  # batchgeneratorsv2's crop: floor(S / 2) - P // 2
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.normal(size=(1, 61, 66, 70)).astype(np.float32))
    seg = torch.from_numpy(blobs((61, 66, 70), 3, rng))
    ref = reference_transform((40, 44, 48), 0.3, 1.0, p=0)(image=image.clone(), segmentation=seg.clone())
    out = fused_result((40, 44, 48), image, seg, 0.3, 1.0, p=0)
    assert torch.equal(out["image"], ref["image"]) and torch.equal(out["segmentation"], ref["segmentation"])


def test_rotated_box_is_smaller_than_the_window():
    fused = FusedSpatialTransform((128, 128, 128), 0.2, p_rotation=1, p_scaling=0)
    draw = fused.draw((205, 205, 205))
    assert all(hi - lo < 205 for lo, hi in draw.box)


def test_vote_settles_exact_ties_by_the_nearest_neighbour_and_counts_weights():
    seg = torch.tensor([[[0, 0, 5, 5], [0, 0, 5, 5], [7, 7, 7, 7], [7, 7, 7, 7]]], dtype=torch.int16)
    # between rows 1 and 2 (weights 0.5 / 0.5) and columns 1 and 2: 0 and 5 have 0.25 each, 7 has 0.5
    points = [torch.tensor([[1.5]]), torch.tensor([[1.5]])]
    assert resample_labels(seg, points).item() == 7
    # exactly between 0 and 5 on row 0: a tie, settled by the nearest neighbour (round half to even: column 2)
    points = [torch.tensor([[0.0]]), torch.tensor([[1.5]])]
    assert resample_labels(seg, points).item() == 5
    # 0.25 of the way from column 1 to 2: 0 wins; outside the image the padding label
    assert resample_labels(seg, [torch.tensor([[0.0]]), torch.tensor([[1.25]])]).item() == 0
    assert resample_labels(seg, [torch.tensor([[-3.0]]), torch.tensor([[1.0]])]).item() == -1


@pytest.mark.parametrize("patch", [(24, 28, 32), (48, 40), (6, 40, 44)])
def test_loader_batches_equal_the_2_8_1_pipeline_from_the_same_stream(patch):
    setup = configure_spatial_augmentation(patch)
    dim = len(patch)
    cases = FakeCases(np.random.default_rng(1), (8, 50, 56) if dim == 3 and patch[0] == 6 else
                      ((40, 44, 50) if dim == 3 else (1, 70, 80)), 5)
    labels = LabelManager({"background": 0, **{f"l{k}": k for k in range(1, 6)}})
    scales = [[1] * dim, [0.5] * dim]
    args = (patch, setup.rotation_for_DA, scales, setup.mirror_axes, setup.do_dummy_2d_data_aug)
    batches = {}
    for name, build in (("bgv2", get_training_transforms), ("fused", fused_training_transforms)):
        loader = PatchLoader(cases, 4, setup.initial_patch_size, patch, labels, oversample_foreground_percent=0.5,
                             transforms=build(*args))
        np.random.seed(11)
        torch.manual_seed(11)
        batches[name] = [next(loader) for _ in range(6)]
    assert isinstance(fused_training_transforms(*args), FusedTrainingTransforms)
    for ours, ref in zip(batches["fused"], batches["bgv2"]):
        assert ours["keys"] == ref["keys"]
        for level in range(2):
            assert ours["target"][level].shape == ref["target"][level].shape
        assert_agrees({"image": ours["data"], "segmentation": ours["target"][0]},
                      {"image": ref["data"], "segmentation": ref["target"][0]})


def test_pipeline_choice(monkeypatch):
    setup = configure_spatial_augmentation((16, 16, 16))
    args = ((16, 16, 16), setup.rotation_for_DA, None, (0, 1, 2), False)
    assert isinstance(nnUNetTrainer.get_training_transforms(*args), FusedTrainingTransforms)
    monkeypatch.setenv("nnUNet_augmentation_pipeline", "bgv2")
    assert type(nnUNetTrainer.get_training_transforms(*args)).__name__ == "ComposeTransforms"
    monkeypatch.setenv("nnUNet_augmentation_pipeline", "fast")
    with pytest.raises(ConfigurationError, match="fused.*bgv2"):
        nnUNetTrainer.get_training_transforms(*args)


def test_identity_is_skipped_for_a_plain_crop():
    fused = FusedSpatialTransform((4, 4), math.pi, p_rotation=0, p_scaling=0)
    image = torch.ones((1, 4, 4))
    out = fused(image=image, segmentation=torch.zeros((1, 4, 4), dtype=torch.int16), spatial=fused.draw((4, 4)))
    assert out["image"] is image  # nothing resampled, nothing copied


def test_crops_of_a_read_only_memmap_are_writable_copies(tmp_path):
    # legacy .npy cases are opened read-only; the in-place transforms used to get a view of the mapped file
    from nnunet.training.data.loader import crop_and_pad

    np.save(tmp_path / "case.npy", np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6))
    mapped = np.load(tmp_path / "case.npy", mmap_mode="r")
    crop = crop_and_pad(mapped, [[1, 4], [0, 6]], 0, np.float32)
    assert crop.flags.writeable and not np.shares_memory(crop, mapped)
    torch.from_numpy(crop).mul_(-1)  # the gamma transform's first step on an inverted image
    assert float(np.load(tmp_path / "case.npy")[0, 1, 0]) == 6.0
