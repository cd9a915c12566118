"""Training and validation augmentation pipelines (those of nnU-Net 2.8.1), built from batchgeneratorsv2 transforms.

The transforms work per sample on ``image`` (C, X, Y[, Z]) float tensors and ``segmentation`` (1 or 2, ...) int
tensors. This module only decides *which* transforms run with *which* probabilities and ranges; the
transforms themselves are batchgeneratorsv2's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from nnunet.constants import ANISO_THRESHOLD

if TYPE_CHECKING:
    from batchgeneratorsv2.helpers.scalar_type import RandomScalar
    from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast

#: the scaling range the initial (rotation-safe) patch size is computed for; its minimum enlarges the patch
LEGACY_SCALE_RANGE = (0.85, 1.25)
#: zoom range of the DA5 spatial transform, also the range its initial patch is enlarged for
DA5_SCALE_RANGE = (0.7, 1.43)


def _degrees(d: float) -> float:
    return d / 360 * 2 * math.pi


@dataclass(frozen=True)
class SpatialAugmentationSetup:
    """Rotation range (radians), dummy-2-D switch, mirror axes and the enlarged patch the loader crops."""

    rotation_for_DA: tuple[float, float]  # noqa: N815 - nnU-Net's name
    do_dummy_2d_data_aug: bool
    initial_patch_size: tuple[int, ...]
    mirror_axes: tuple[int, ...] | None


def rotation_matrix(axis: int, angle: float) -> np.ndarray:
    """3-D rotation about ``axis`` (0, 1 or 2) by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    if axis == 0:
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == 1:
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def initial_patch_size(final_patch_size: Sequence[int], rotation_range: RandomScalar,
                       scale_range: Sequence[float] = LEGACY_SCALE_RANGE) -> tuple[int, ...]:
    """Patch to crop so that rotating by up to ``rotation_range`` and zooming out still fills the final patch.

    The extent vector is rotated by the largest absolute angle (at most 90 degrees) about each axis on its own;
    the per-axis maximum of the absolute coordinates (never below the original extent) is divided by
    ``min(scale_range)`` and truncated.

    Example:
        >>> initial_patch_size((128, 128, 128), (-math.pi / 6, math.pi / 6))
        (205, 205, 205)
    """
    angle = max(abs(a) for a in rotation_range) if isinstance(rotation_range, (tuple, list)) else abs(rotation_range)
    angle = min(angle, math.pi / 2)
    extent = np.array(final_patch_size, dtype=float)
    result = extent.copy()
    if len(extent) == 3:
        for axis in range(3):
            # row vector times matrix: the coordinate convention of the original rotation helper
            result = np.maximum(result, np.abs(extent @ rotation_matrix(axis, angle)))
    elif len(extent) == 2:
        c, s = math.cos(angle), math.sin(angle)
        result = np.maximum(result, np.abs(extent @ np.array([[c, -s], [s, c]])))
    else:
        raise ValueError(f"Patch size must be 2-D or 3-D, got {tuple(final_patch_size)}.")
    return tuple(int(v) for v in result / min(scale_range))


def configure_spatial_augmentation(patch_size: Sequence[int], allow_dummy_2d: bool = True,
                                   scale_range: Sequence[float] = LEGACY_SCALE_RANGE) -> SpatialAugmentationSetup:
    """Rotation range, dummy-2-D, mirror axes and initial patch size for a configuration's patch size.

    ``allow_dummy_2d=False`` never uses dummy-2-D augmentation (3-D patches then always rotate by up to 30 degrees).
    ``scale_range``: the zoom range the initial patch is enlarged for (DA5 uses (0.7, 1.43)).
    """
    dim = len(patch_size)
    if dim == 2:
        do_dummy_2d = False
        angle = _degrees(15) if max(patch_size) / min(patch_size) > 1.5 else _degrees(180)
        mirror_axes: tuple[int, ...] = (0, 1)
    elif dim == 3:
        do_dummy_2d = allow_dummy_2d and max(patch_size) / patch_size[0] > ANISO_THRESHOLD
        angle = _degrees(180) if do_dummy_2d else _degrees(30)
        mirror_axes = (0, 1, 2)
    else:
        raise ValueError(f"Patch size must be 2-D or 3-D, got {tuple(patch_size)}.")
    rotation = (-angle, angle)
    initial = list(initial_patch_size(patch_size, rotation, scale_range))
    if do_dummy_2d:
        initial[0] = patch_size[0]
    return SpatialAugmentationSetup(rotation, do_dummy_2d, tuple(initial), mirror_axes)


def deep_supervision_scales(strides: Sequence[Sequence[int]]) -> list[list[float]]:
    """Per-output scale factors ``1 / cumprod(strides)``, without the bottleneck entry (highest resolution first)."""
    cumulative = np.cumprod(np.vstack([np.asarray(s) for s in strides]), axis=0)
    return [[float(v) for v in 1 / c] for c in cumulative][:-1]


def _bg_contrast(range_: tuple[float, float]) -> BGContrast:
    """Factor sampler: with probability 0.5 below 1, else above 1, each uniform in its part of ``range_``."""
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast

    return BGContrast(range_)


def interpolation_mode(order: int) -> str:
    """batchgeneratorsv2's name for an interpolation order: 0 nearest, 1 (bi/tri)linear."""
    if order not in (0, 1):
        raise ValueError(f"Interpolation order must be 0 (nearest) or 1 (linear), got {order}.")
    return "nearest" if order == 0 else "bilinear"


def get_training_transforms(patch_size: Sequence[int], rotation_for_DA: RandomScalar,  # noqa: N803
                            deep_supervision_scales: Sequence | None, mirror_axes: Sequence[int] | None,
                            do_dummy_2d_data_aug: bool, use_mask_for_norm: Sequence[bool] | None = None,
                            is_cascaded: bool = False, foreground_labels: Sequence[int] | None = None,
                            regions: Sequence | None = None, ignore_label: int | None = None, seg_order: int = 1,
                            cascade_p_per_label: float = 0.5) -> BasicTransform:
    """nnU-Net's per-sample training pipeline (same arguments as nnU-Net's trainer method), made of
    batchgeneratorsv2's transforms exactly as nnU-Net 2.8.1 composes them.

    ``seg_order`` 0 resamples the segmentation with nearest neighbour in the spatial transform (nnU-Net's
    ``DASegOrd0`` trainers, which also apply the cascade's morphology with ``cascade_p_per_label`` 1).
    """
    # batchgeneratorsv2 is imported here, not at the top: prediction imports the trainer classes (to build their
    # networks) and should not pay for the augmentation stack (pandas among it, seconds on a slow disk)
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.pseudo2d import Convert2DTo3DTransform, Convert3DTo2DTransform

    transforms: list[BasicTransform] = []
    if do_dummy_2d_data_aug:
        transforms.append(Convert3DTo2DTransform())
    spatial_patch = tuple(patch_size[1:]) if do_dummy_2d_data_aug else tuple(patch_size)
    transforms.append(SpatialTransform(
        spatial_patch, patch_center_dist_from_border=0, random_crop=False, p_elastic_deform=0,
        p_rotation=0.2, rotation=rotation_for_DA, p_scaling=0.2, scaling=(0.7, 1.4),
        p_synchronize_scaling_across_axes=1, bg_style_seg_sampling=False, mode_seg=interpolation_mode(seg_order),
        border_mode_seg="constant", padding_value_seg=-1))
    if do_dummy_2d_data_aug:
        transforms.append(Convert2DTo3DTransform())
    transforms += after_spatial_transforms(deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
                                           use_mask_for_norm, is_cascaded, foreground_labels, regions, ignore_label,
                                           cascade_p_per_label)
    return ComposeTransforms(transforms)


def fused_training_transforms(patch_size: Sequence[int], rotation_for_DA: RandomScalar,  # noqa: N803
                              deep_supervision_scales: Sequence | None, mirror_axes: Sequence[int] | None,
                              do_dummy_2d_data_aug: bool, use_mask_for_norm: Sequence[bool] | None = None,
                              is_cascaded: bool = False, foreground_labels: Sequence[int] | None = None,
                              regions: Sequence | None = None, ignore_label: int | None = None, seg_order: int = 1,
                              cascade_p_per_label: float = 0.5) -> "FusedTrainingTransforms":
    """The same pipeline as :func:`get_training_transforms` (same arguments, probabilities, ranges and order),
    with the spatial stage replaced by :class:`nnunet.training.fused_spatial.FusedSpatialTransform`: the loader
    then crops only what the patch needs, and labels cost the same at any label count."""
    from nnunet.training.fused_spatial import FusedSpatialTransform

    spatial = FusedSpatialTransform(patch_size, rotation_for_DA, dummy_2d=do_dummy_2d_data_aug, seg_order=seg_order)
    rest = after_spatial_transforms(deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug, use_mask_for_norm,
                                    is_cascaded, foreground_labels, regions, ignore_label, cascade_p_per_label)
    return FusedTrainingTransforms(spatial, rest)


class FusedTrainingTransforms:
    """A pipeline whose first stage decides which part of the loader's window it reads.

    The loader calls :meth:`draw_spatial` with its window shape after choosing the window, crops the returned box
    and passes the draw on as ``spatial=``. ``transforms`` lists the stages (the first is the spatial one).
    """

    def __init__(self, spatial, rest: Sequence):
        self.spatial = spatial
        self.transforms = [spatial, *rest]

    def draw_spatial(self, window_shape: Sequence[int]):
        return self.spatial.draw(window_shape)

    def __call__(self, **data) -> dict:
        for stage in self.transforms:
            data = stage(**data)
        return data


def after_spatial_transforms(deep_supervision_scales: Sequence | None, mirror_axes: Sequence[int] | None,
                             do_dummy_2d_data_aug: bool, use_mask_for_norm: Sequence[bool] | None,
                             is_cascaded: bool, foreground_labels: Sequence[int] | None, regions: Sequence | None,
                             ignore_label: int | None, cascade_p_per_label: float) -> list[BasicTransform]:
    """Intensity transforms, mirroring, masking, label removal, cascade input and targets, in nnU-Net's order."""
    from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
    from batchgeneratorsv2.transforms.intensity.contrast import ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
    from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
    from batchgeneratorsv2.transforms.utils.random import RandomTransform
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTransform

    low_res_ignore_axes = (0,) if do_dummy_2d_data_aug else None
    transforms: list[BasicTransform] = [
        RandomTransform(GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True),
                        apply_probability=0.1),
        RandomTransform(GaussianBlurTransform(blur_sigma=(0.5, 1.0), synchronize_channels=False,
                                              synchronize_axes=False, p_per_channel=0.5, benchmark=True),
                        apply_probability=0.2),
        RandomTransform(MultiplicativeBrightnessTransform(multiplier_range=_bg_contrast((0.75, 1.25)),
                                                          synchronize_channels=False, p_per_channel=1),
                        apply_probability=0.15),
        RandomTransform(ContrastTransform(contrast_range=_bg_contrast((0.75, 1.25)), preserve_range=True,
                                          synchronize_channels=False, p_per_channel=1),
                        apply_probability=0.15),
        RandomTransform(SimulateLowResolutionTransform(scale=(0.5, 1), synchronize_channels=False,
                                                       synchronize_axes=True, ignore_axes=low_res_ignore_axes,
                                                       allowed_channels=None, p_per_channel=0.5),
                        apply_probability=0.25),
        RandomTransform(GammaTransform(gamma=_bg_contrast((0.7, 1.5)), p_invert_image=1, synchronize_channels=False,
                                       p_per_channel=1, p_retain_stats=1),
                        apply_probability=0.1),
        RandomTransform(GammaTransform(gamma=_bg_contrast((0.7, 1.5)), p_invert_image=0, synchronize_channels=False,
                                       p_per_channel=1, p_retain_stats=1),
                        apply_probability=0.3),
    ]
    if mirror_axes:
        transforms.append(MirrorTransform(allowed_axes=tuple(mirror_axes)))
    if use_mask_for_norm is not None and any(use_mask_for_norm):
        transforms.append(MaskImageTransform(apply_to_channels=[i for i, m in enumerate(use_mask_for_norm) if m],
                                             channel_idx_in_seg=0, set_outside_to=0))
    transforms.append(RemoveLabelTransform(-1, 0))
    if is_cascaded:
        transforms += cascade_transforms(foreground_labels, augment=True, p_per_label=cascade_p_per_label)
    transforms += target_transforms(deep_supervision_scales, regions, ignore_label)
    return transforms


def get_validation_transforms(deep_supervision_scales: Sequence | None, is_cascaded: bool = False,
                              foreground_labels: Sequence[int] | None = None, regions: Sequence | None = None,
                              ignore_label: int | None = None) -> BasicTransform:
    """Validation pipeline: remove the -1 label, cascade input, regions, deep-supervision targets."""
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTransform

    transforms: list[BasicTransform] = [RemoveLabelTransform(-1, 0)]
    if is_cascaded:
        transforms += cascade_transforms(foreground_labels, augment=False)
    transforms += target_transforms(deep_supervision_scales, regions, ignore_label)
    return ComposeTransforms(transforms)


def cascade_transforms(foreground_labels: Sequence[int] | None, augment: bool,
                       p_per_label: float = 0.5) -> list[BasicTransform]:
    """Previous-stage segmentation -> one-hot input channels; with ``augment`` also random morphology (p 0.4) and
    removal of a connected component (p 0.2), each label visited with ``p_per_label``."""
    from batchgeneratorsv2.transforms.nnunet.random_binary_operator import ApplyRandomBinaryOperatorTransform
    from batchgeneratorsv2.transforms.nnunet.remove_connected_components import (
        RemoveRandomConnectedComponentFromOneHotEncodingTransform)
    from batchgeneratorsv2.transforms.nnunet.seg_to_onehot import MoveSegAsOneHotToDataTransform
    from batchgeneratorsv2.transforms.utils.random import RandomTransform

    if not foreground_labels:
        raise ValueError("Cascade augmentation needs the dataset's foreground labels.")
    n = len(foreground_labels)
    out: list[BasicTransform] = [MoveSegAsOneHotToDataTransform(source_channel_idx=1, all_labels=list(foreground_labels),
                                                                remove_channel_from_source=True)]
    if augment:
        onehot_channels = list(range(-n, 0))
        out += [
            RandomTransform(ApplyRandomBinaryOperatorTransform(channel_idx=onehot_channels, strel_size=(1, 8),
                                                               p_per_label=p_per_label), apply_probability=0.4),
            RandomTransform(RemoveRandomConnectedComponentFromOneHotEncodingTransform(
                channel_idx=onehot_channels, fill_with_other_class_p=0, dont_do_if_covers_more_than_x_percent=0.15,
                p_per_label=p_per_label), apply_probability=0.2),
        ]
    return out


def target_transforms(ds_scales: Sequence | None, regions: Sequence | None,
                      ignore_label: int | None) -> list[BasicTransform]:
    """Labels -> region channels (with the ignore label as a last channel), then deep-supervision targets."""
    from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
    from batchgeneratorsv2.transforms.utils.seg_to_regions import ConvertSegmentationToRegionsTransform

    out: list[BasicTransform] = []
    if regions is not None:
        region_list = list(regions) + ([ignore_label] if ignore_label is not None else [])
        out.append(ConvertSegmentationToRegionsTransform(regions=region_list, channel_in_seg=0))
    if ds_scales is not None:
        out.append(DownsampleSegForDSTransform(ds_scales=ds_scales))
    return out
