"""U-Net topology from spacing and patch size: pooling per axis, strides, kernel sizes, padded patch.

Pure functions, no torch. The rules (those of nnU-Net 2.8.1):

* an axis may be downsampled while its feature map is at least ``2 * min_feature_map_size`` long and its current
  spacing is less than twice the finest current spacing among the axes that may still be pooled;
* when only one axis is left it needs at least ``3 * min_feature_map_size`` voxels;
* an axis gets 3-wide kernels as soon as its current spacing is within a factor 2 of the finest current spacing of
  *all* axes (before that, kernels are 1 wide along it); the bottleneck always uses 3-wide kernels;
* the patch is padded up to a multiple of ``2 ** pools_on_that_axis``.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

#: default minimal edge length of the bottleneck feature maps
MIN_FEATURE_MAP_SIZE = 4
#: "no limit" value for the number of poolings per axis
UNLIMITED_POOLING = 999999


class Topology(NamedTuple):
    """Result of :func:`get_pool_and_conv_props`.

    Attributes:
        num_pool_per_axis: number of stride-2 steps per spatial axis.
        strides: one stride tuple per stage; the first stage is all ones.
        kernel_sizes: one kernel-size tuple per stage (the last one is the bottleneck, all 3).
        patch_size: the input patch padded to a multiple of ``divisor``.
        divisor: ``2 ** num_pool_per_axis``, what every patch edge must be divisible by.
    """

    num_pool_per_axis: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    patch_size: tuple[int, ...]
    divisor: tuple[int, ...]

    @property
    def n_stages(self) -> int:
        return len(self.strides)


def pad_to_divisor(shape: Sequence[float], divisor: Sequence[int]) -> tuple[int, ...]:
    """Smallest multiple of ``divisor`` (per axis) that is >= ``shape``; already divisible edges stay unchanged.

    Edges may be non-integer (a patch clipped to a median shape such as 12.5); they are rounded up as well.

    Example:
        >>> pad_to_divisor((100, 128, 12.5), (32, 32, 4))
        (128, 128, 16)
    """
    if len(shape) != len(divisor):
        raise ValueError(f"shape {tuple(shape)} and divisor {tuple(divisor)} differ in length")
    return tuple(int(math.ceil(s / d)) * int(d) for s, d in zip(shape, divisor))


def get_pool_and_conv_props(spacing: Sequence[float], patch_size: Sequence[float],
                            min_feature_map_size: int = MIN_FEATURE_MAP_SIZE,
                            max_numpool: int = UNLIMITED_POOLING) -> Topology:
    """Derive the U-Net topology for a patch of ``patch_size`` voxels at ``spacing``.

    Args:
        spacing: voxel spacing per axis (2 or 3 values, any unit).
        patch_size: patch edge lengths in voxels (same length as ``spacing``).
        min_feature_map_size: minimal bottleneck edge length (4 in nnU-Net).
        max_numpool: maximal number of poolings per axis.

    Returns:
        A :class:`Topology`.

    Example:
        >>> t = get_pool_and_conv_props((3, 0.8, 0.8), (40, 224, 192))
        >>> t.strides[:3], t.kernel_sizes[0]
        (((1, 1, 1), (1, 2, 2), (2, 2, 2)), (1, 3, 3))
    """
    dim = len(spacing)
    if len(patch_size) != dim:
        raise ValueError(f"spacing {tuple(spacing)} and patch size {tuple(patch_size)} differ in length")
    cur_spacing = [float(s) for s in spacing]
    cur_size = [float(s) for s in patch_size]
    num_pool = [0] * dim
    kernel = [1] * dim
    strides: list[tuple[int, ...]] = [(1,) * dim]
    kernels: list[tuple[int, ...]] = []

    while True:
        axes = [a for a in range(dim) if cur_size[a] >= 2 * min_feature_map_size]
        if not axes:
            break
        finest = min(cur_spacing[a] for a in axes)
        axes = [a for a in axes if cur_spacing[a] / finest < 2]
        axes = [a for a in axes if num_pool[a] < max_numpool]
        if len(axes) == 1 and cur_size[axes[0]] < 3 * min_feature_map_size:
            break
        if not axes:
            break
        finest_all = min(cur_spacing)
        for d in range(dim):
            if kernel[d] != 3 and cur_spacing[d] / finest_all < 2:
                kernel[d] = 3
        stride = [1] * dim
        for a in axes:
            stride[a] = 2
            num_pool[a] += 1
            cur_spacing[a] *= 2
            cur_size[a] = math.ceil(cur_size[a] / 2)
        strides.append(tuple(stride))
        kernels.append(tuple(kernel))

    kernels.append((3,) * dim)
    divisor = tuple(2 ** n for n in num_pool)
    return Topology(tuple(num_pool), tuple(strides), tuple(kernels), pad_to_divisor(patch_size, divisor), divisor)


def initial_patch_size(spacing: Sequence[float], median_shape: Sequence[float]) -> list[float]:
    """Start patch: a physically cube-shaped (square in 2-D) patch of 256**3 (2048**2) voxels, clipped to the median shape.

    Edge lengths are inversely proportional to the spacing and rounded half-to-even. An edge clipped to a
    non-integer median (e.g. 12.5) keeps that value; :func:`get_pool_and_conv_props` pads it.

    Example:
        >>> initial_patch_size((1.0, 1.0, 1.0), (300, 300, 100))
        [256, 256, 100]
    """
    dim = len(spacing)
    if dim not in (2, 3):
        raise ValueError(f"Only 2-D and 3-D configurations can be planned, got spacing {tuple(spacing)}")
    inverse = 1 / np.array(spacing, dtype=np.float64)
    budget = 256 ** 3 if dim == 3 else 2048 ** 2
    # same float operations as nnU-Net so that the rounding of ties agrees
    edges = inverse * (budget / np.prod(inverse)) ** (1 / dim)
    rounded = [round(e) for e in edges]
    out = []
    for r, m in zip(rounded, list(median_shape)[:dim]):
        m = float(m)
        out.append(r if r <= m else (int(m) if m.is_integer() else m))
    return out


def features_per_stage(n_stages: int, max_features: int, base_features: int = 32) -> tuple[int, ...]:
    """``min(max_features, base_features * 2**i)`` for each stage."""
    return tuple(min(max_features, base_features * 2 ** i) for i in range(n_stages))
