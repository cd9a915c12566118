"""The heavier "DA5" augmentation pipeline of nnU-Net's ``nnUNetTrainerDA5`` family.

Compared with the default pipeline (:mod:`nnunet.training.augmentation`): rotation with p 0.4 and each axis
with p 0.5, independent zoom per axis in (0.7, 1.43), 90-degree rotations and axis transposes among the axes
of equal patch length, median filter or blur, additive brightness, contrast with or without range clipping,
stronger low-resolution simulation, blank rectangles, local brightness gradients, local gamma and sharpening.
The initial patch is enlarged for the zoom range (0.7, 1.43). nnU-Net applies the inverted gamma transform
twice (p 0.1 each) and no plain gamma transform; so do we.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from batchgeneratorsv2.helpers.scalar_type import RandomScalar
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.intensity.brightness import BrightnessAdditiveTransform
from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
from batchgeneratorsv2.transforms.local.brightness_gradient import BrightnessGradientAdditiveTransform
from batchgeneratorsv2.transforms.local.local_gamma import LocalGammaTransform
from batchgeneratorsv2.transforms.noise.blank_rectangle import BlankRectangleTransform
from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
from batchgeneratorsv2.transforms.noise.median_filter import MedianFilterTransform
from batchgeneratorsv2.transforms.noise.sharpen import SharpeningTransform
from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
from batchgeneratorsv2.transforms.spatial.rot90 import Rot90Transform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.spatial.transpose import TransposeAxesTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
from batchgeneratorsv2.transforms.utils.pseudo2d import Convert2DTo3DTransform, Convert3DTo2DTransform
from batchgeneratorsv2.transforms.utils.random import OneOfTransform, RandomTransform
from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTransform

from nnunet.training.augmentation import (DA5_SCALE_RANGE, cascade_transforms, interpolation_mode,
                                          target_transforms)


def local_transform_scale(shape: Sequence[int], axis: int) -> float:
    """Width of the local brightness/gamma kernels along ``axis``: log-uniform in ``[shape[axis] // 6,
    shape[axis]]``."""
    return float(np.exp(np.random.uniform(np.log(shape[axis] // 6), np.log(shape[axis]))))


def brightness_gradient_strength(_image, _axis) -> float:
    """Uniform in [-5, -1] or [1, 5], each with probability 0.5."""
    return np.random.uniform(-5, -1) if np.random.uniform() < 0.5 else np.random.uniform(1, 5)


def local_gamma() -> float:
    """Uniform in [0.01, 0.8] or [1.5, 4], each with probability 0.5."""
    return np.random.uniform(0.01, 0.8) if np.random.uniform() < 0.5 else np.random.uniform(1.5, 4)


def _equal_length_axes(patch_size: Sequence[int]) -> tuple[bool, set[int]]:
    """Whether some axes have the same length, and the axes that share the most common length."""
    matching = np.array([sum(i == j for j in patch_size) for i in patch_size])
    return bool(np.any(matching > 1)), {int(a) for a in np.where(matching == np.max(matching))[0]}


def _spatial(patch: Sequence[int], rotation: RandomScalar, image_order: int, seg_order: int) -> SpatialTransform:
    return SpatialTransform(
        tuple(patch), patch_center_dist_from_border=0, random_crop=False, p_elastic_deform=0, p_rotation=0.4,
        rotation=rotation, p_rot_per_axis=0.5, p_scaling=0.2, scaling=DA5_SCALE_RANGE,
        p_synchronize_scaling_across_axes=0, bg_style_seg_sampling=False, border_mode_seg="constant",
        padding_value_seg=-1, mode_image=interpolation_mode(image_order), mode_seg=interpolation_mode(seg_order))


def _intensity(low_res_ignore_axes: tuple[int, ...] | None) -> list[BasicTransform]:
    contrast = [RandomTransform(ContrastTransform(contrast_range=BGContrast((0.5, 2)), preserve_range=keep,
                                                  synchronize_channels=False, p_per_channel=0.5),
                                apply_probability=0.2) for keep in (True, False)]
    inverted_gamma = [RandomTransform(GammaTransform(gamma=BGContrast((0.7, 1.5)), p_invert_image=1,
                                                     synchronize_channels=False, p_per_channel=1, p_retain_stats=1),
                                      apply_probability=0.1) for _ in range(2)]
    return [
        OneOfTransform([
            RandomTransform(MedianFilterTransform((2, 8), p_same_for_each_channel=0, p_per_channel=0.5),
                            apply_probability=0.2),
            RandomTransform(GaussianBlurTransform((0.3, 1.5), synchronize_channels=False, synchronize_axes=True,
                                                  p_per_channel=0.5), apply_probability=0.2)]),
        RandomTransform(GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True),
                        apply_probability=0.1),
        RandomTransform(BrightnessAdditiveTransform(mu=0, sigma=0.5, synchronize_channels=False, p_per_channel=0.5),
                        apply_probability=0.1),
        OneOfTransform(contrast),
        RandomTransform(SimulateLowResolutionTransform(scale=(0.25, 1), synchronize_channels=False,
                                                       synchronize_axes=True, ignore_axes=low_res_ignore_axes,
                                                       p_per_channel=0.5), apply_probability=0.15),
        *inverted_gamma,
    ]


def _local(patch_size: Sequence[int]) -> list[BasicTransform]:
    return [
        RandomTransform(BlankRectangleTransform(rectangle_size=[[max(1, p // 10), p // 3] for p in patch_size],
                                                rectangle_value=torch.mean, num_rectangles=(1, 5), force_square=False,
                                                p_per_channel=0.5), apply_probability=0.4),
        RandomTransform(BrightnessGradientAdditiveTransform(scale=local_transform_scale, loc=(-0.5, 1.5),
                                                            max_strength=brightness_gradient_strength,
                                                            mean_centered=False, same_for_all_channels=False,
                                                            p_per_channel=0.5), apply_probability=0.3),
        RandomTransform(LocalGammaTransform(scale=local_transform_scale, loc=(-0.5, 1.5), gamma=local_gamma,
                                            same_for_all_channels=False, p_per_channel=0.5), apply_probability=0.3),
        RandomTransform(SharpeningTransform(strength=(0.1, 1), p_same_for_each_channel=0, p_per_channel=0.5),
                        apply_probability=0.2),
    ]


def da5_training_transforms(patch_size: Sequence[int], rotation_for_DA: RandomScalar,  # noqa: N803
                            deep_supervision_scales: Sequence | None, mirror_axes: Sequence[int] | None,
                            do_dummy_2d_data_aug: bool, use_mask_for_norm: Sequence[bool] | None = None,
                            is_cascaded: bool = False, foreground_labels: Sequence[int] | None = None,
                            regions: Sequence | None = None, ignore_label: int | None = None, image_order: int = 1,
                            seg_order: int = 1) -> BasicTransform:
    """The DA5 training pipeline (arguments as :func:`nnunet.training.augmentation.get_training_transforms`).

    ``image_order`` / ``seg_order`` 0 resample image / segmentation with nearest neighbour in the spatial
    transform (``nnUNetTrainerDA5ord0`` both, ``nnUNetTrainerDA5Segord0`` the segmentation only).
    """
    transforms: list[BasicTransform] = []
    low_res_ignore_axes = (0,) if do_dummy_2d_data_aug else None
    if do_dummy_2d_data_aug:
        transforms.append(Convert3DTo2DTransform())
    transforms.append(_spatial(patch_size[1:] if do_dummy_2d_data_aug else patch_size, rotation_for_DA,
                               image_order, seg_order))
    if do_dummy_2d_data_aug:
        transforms.append(Convert2DTo3DTransform())
    has_equal_axes, axes = _equal_length_axes(patch_size)
    if has_equal_axes:
        transforms += [RandomTransform(Rot90Transform(num_axis_combinations=1, num_rot_per_combination=(0, 1, 2, 3),
                                                      allowed_axes=axes), apply_probability=0.5),
                       RandomTransform(TransposeAxesTransform(allowed_axes=axes), apply_probability=0.5)]
    transforms += _intensity(low_res_ignore_axes)
    if mirror_axes is not None and len(mirror_axes) > 0:
        transforms.append(MirrorTransform(allowed_axes=tuple(mirror_axes)))
    transforms += _local(patch_size)
    if use_mask_for_norm is not None and any(use_mask_for_norm):
        transforms.append(MaskImageTransform(apply_to_channels=[i for i, m in enumerate(use_mask_for_norm) if m],
                                             channel_idx_in_seg=0, set_outside_to=0))
    transforms.append(RemoveLabelTransform(-1, 0))
    if is_cascaded:
        transforms += cascade_transforms(foreground_labels, augment=True, p_per_label=1)
    transforms += target_transforms(deep_supervision_scales, regions, ignore_label)
    return ComposeTransforms(transforms)
