"""Augmentation: the built pipelines have the transforms, order, probabilities and ranges of nnU-Net 2.8.1's,
and a few transforms behave as specified with fixed parameters."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.intensity.contrast import BGContrast
from batchgeneratorsv2.transforms.utils.random import RandomTransform

from nnunet.training.augmentation import (configure_spatial_augmentation, deep_supervision_scales,
                                          get_training_transforms, get_validation_transforms, initial_patch_size)

torch.set_num_threads(1)
DEG = math.pi / 180


@pytest.mark.parametrize("patch, rotation, dummy, initial, mirror", [
    ((512, 512), 180, False, (602, 602), (0, 1)),
    ((128, 256), 15, False, None, (0, 1)),
    ((128, 128, 128), 30, False, (205, 205, 205), (0, 1, 2)),
    ((80, 192, 160), 30, False, (194, 289, 210), (0, 1, 2)),
    ((12, 64, 64), 180, True, None, (0, 1, 2)),
])
def test_spatial_setup(patch, rotation, dummy, initial, mirror):
    setup = configure_spatial_augmentation(patch)
    assert setup.rotation_for_DA == pytest.approx((-rotation * DEG, rotation * DEG))
    assert setup.do_dummy_2d_data_aug is dummy
    assert setup.mirror_axes == mirror
    if initial is not None:
        assert setup.initial_patch_size == initial
    if dummy:
        assert setup.initial_patch_size[0] == patch[0]
    assert all(i >= p for i, p in zip(setup.initial_patch_size, patch))


def test_initial_patch_size_2d_small_rotation():
    # 15 degrees: rotate (128, 256) -> |(128 c - 256 s ... )| per axis, max with the extent, / 0.85
    c, s = math.cos(15 * DEG), math.sin(15 * DEG)
    x = max(128, abs(128 * c + 256 * s))
    y = max(256, abs(-128 * s + 256 * c))
    assert initial_patch_size((128, 256), (-15 * DEG, 15 * DEG)) == (int(x / 0.85), int(y / 0.85))


def test_deep_supervision_scales():
    strides = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]
    assert deep_supervision_scales(strides) == [[1, 1, 1], [0.5] * 3, [0.25] * 3, [0.125] * 3, [0.0625] * 3]


def _names(pipeline):
    return [type(t.transform if isinstance(t, RandomTransform) else t).__name__ for t in pipeline.transforms]


def test_training_pipeline_parameters():
    scales = [[1, 1, 1], [0.5, 0.5, 0.5]]
    rot = (-30 * DEG, 30 * DEG)
    pipe = get_training_transforms((16, 16, 16), rot, scales, (0, 1, 2), False, use_mask_for_norm=[False, True])
    assert _names(pipe) == ["SpatialTransform", "GaussianNoiseTransform", "GaussianBlurTransform",
                            "MultiplicativeBrightnessTransform", "ContrastTransform",
                            "SimulateLowResolutionTransform", "GammaTransform", "GammaTransform", "MirrorTransform",
                            "MaskImageTransform", "RemoveLabelTransform", "DownsampleSegForDSTransform"]
    t = pipe.transforms
    sp = t[0]
    assert (sp.patch_size, sp.random_crop, sp.p_elastic_deform, sp.p_rotation, sp.p_scaling) == \
        ((16, 16, 16), False, 0, 0.2, 0.2)
    assert sp.rotation == rot and sp.scaling == (0.7, 1.4) and sp.p_synchronize_scaling_across_axes == 1
    assert (sp.border_mode_seg, sp.padding_value_seg, sp.bg_style_seg_sampling) == ("constant", -1, False)
    assert [r.apply_probability for r in t[1:8]] == [0.1, 0.2, 0.15, 0.15, 0.25, 0.1, 0.3]
    noise, blur, bright, contrast, lowres, gamma_inv, gamma = (r.transform for r in t[1:8])
    assert noise.noise_variance == (0, 0.1) and noise.synchronize_channels and noise.p_per_channel == 1
    assert blur.blur_sigma == (0.5, 1.0) and blur.p_per_channel == 0.5
    assert not blur.synchronize_channels and not blur.synchronize_axes
    for tr, attr in ((bright, "multiplier_range"), (contrast, "contrast_range")):
        rng = getattr(tr, attr)
        assert isinstance(rng, BGContrast) and rng.contrast_range == (0.75, 1.25)
        assert not tr.synchronize_channels and tr.p_per_channel == 1
    assert contrast.preserve_range
    assert lowres.scale == (0.5, 1) and lowres.p_per_channel == 0.5 and lowres.synchronize_axes
    assert not lowres.synchronize_channels and lowres.ignore_axes is None
    for g, inv in ((gamma_inv, 1), (gamma, 0)):
        assert g.gamma.contrast_range == (0.7, 1.5) and g.p_invert_image == inv and g.p_retain_stats == 1
        assert g.p_per_channel == 1 and not g.synchronize_channels
    assert t[8].allowed_axes == (0, 1, 2)
    assert t[9].apply_to_channels == [1] and t[9].channel_idx_in_seg == 0 and t[9].set_outside_to == 0
    assert (t[10].label_value, t[10].set_to) == (-1, 0)
    assert t[11].ds_scales == scales


def test_dummy_2d_cascade_regions_pipeline():
    pipe = get_training_transforms((8, 32, 32), (-math.pi, math.pi), None, None, True, is_cascaded=True,
                                   foreground_labels=[1, 2], regions=[(1, 2), 2], ignore_label=3)
    names = _names(pipe)
    assert names[:3] == ["Convert3DTo2DTransform", "SpatialTransform", "Convert2DTo3DTransform"]
    assert pipe.transforms[1].patch_size == (32, 32)
    lowres = [t.transform for t in pipe.transforms if isinstance(t, RandomTransform)
              and type(t.transform).__name__ == "SimulateLowResolutionTransform"][0]
    assert lowres.ignore_axes == (0,)
    assert "MirrorTransform" not in names and "MaskImageTransform" not in names
    assert names[-4:] == ["MoveSegAsOneHotToDataTransform", "ApplyRandomBinaryOperatorTransform",
                          "RemoveRandomConnectedComponentFromOneHotEncodingTransform",
                          "ConvertSegmentationToRegionsTransform"]
    morph, remove_cc = pipe.transforms[-3], pipe.transforms[-2]
    assert morph.apply_probability == 0.4 and morph.transform.strel_size == (1, 8)
    assert morph.transform.p_per_label == 0.5 and morph.transform.channel_idx == [-2, -1]
    assert remove_cc.apply_probability == 0.2 and remove_cc.transform.p_per_label == 0.5
    assert remove_cc.transform.dont_do_if_covers_more_than_x_percent == 0.15
    assert remove_cc.transform.fill_with_other_class_p == 0
    assert [r.tolist() for r in pipe.transforms[-1].regions] == [[1, 2], [2], [3]]


def test_validation_pipeline():
    pipe = get_validation_transforms([[1, 1], [0.5, 0.5]], is_cascaded=True, foreground_labels=[1])
    assert _names(pipe) == ["RemoveLabelTransform", "MoveSegAsOneHotToDataTransform", "DownsampleSegForDSTransform"]


def test_fixed_parameter_behaviour():
    pipe = get_training_transforms((4, 4), (-math.pi, math.pi), [[1, 1], [0.5, 0.5]], (0, 1), False)
    spatial, mirror, remove, ds = pipe.transforms[0], pipe.transforms[8], pipe.transforms[9], pipe.transforms[10]
    image = torch.arange(36, dtype=torch.float32).reshape(1, 6, 6)
    seg = torch.zeros(1, 6, 6, dtype=torch.int16)
    seg[0, 2, 2] = 1
    # no rotation/scaling: integer crop around the centre (6 -> 4 keeps rows/cols 1..4)
    out = spatial.apply({"image": image.clone(), "segmentation": seg.clone()},
                        center_location_in_pixels=[3.0, 3.0], grid=None, affine=None, elastic_offsets=None)
    assert torch.equal(out["image"], image[:, 1:5, 1:5]) and out["segmentation"][0, 1, 1] == 1
    flipped = mirror.apply({"image": image.clone(), "segmentation": seg.clone()}, axes=[1])
    assert torch.equal(flipped["image"], torch.flip(image, [2])) and flipped["segmentation"][0, 2, 3] == 1
    seg_m = torch.tensor([[[-1, 0], [1, 2]]], dtype=torch.int16)
    assert remove(image=None, segmentation=seg_m.clone())["segmentation"].tolist() == [[[0, 0], [1, 2]]]
    targets = ds(segmentation=torch.arange(16, dtype=torch.int16).reshape(1, 4, 4))["segmentation"]
    assert [tuple(t.shape) for t in targets] == [(1, 4, 4), (1, 2, 2)]
    assert targets[1].tolist() == [[[5, 7], [13, 15]]]  # nearest-exact samples at pixel centres: 1, 3


def test_gamma_with_fixed_gamma_retains_stats():
    gamma = get_training_transforms((4, 4), (0, 0), None, None, False).transforms[7].transform
    img = torch.tensor([[[0.0, 1.0], [2.0, 4.0]]])
    params = {"apply_to_channel": torch.tensor([0]), "retain_stats": torch.tensor([True]),
              "invert_image": torch.tensor([False]), "gamma": torch.tensor([2.0])}
    out = gamma._apply_to_image(img.clone(), **params)
    x = ((img - 0) / 4) ** 2 * 4
    x = (x - x.mean()) / x.std() * img.std() + img.mean()
    assert np.allclose(out.numpy(), x.numpy(), atol=1e-5)


def test_no_dummy_2d_option():
    setup = configure_spatial_augmentation((12, 64, 64), allow_dummy_2d=False)
    assert not setup.do_dummy_2d_data_aug
    assert setup.rotation_for_DA == pytest.approx((-30 * DEG, 30 * DEG))
    assert setup.initial_patch_size == initial_patch_size((12, 64, 64), (-30 * DEG, 30 * DEG))
