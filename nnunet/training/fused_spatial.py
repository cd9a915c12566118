"""Rotation, scaling and the crop in one resampling: the spatial stage of the fused training pipeline.

nnU-Net's spatial transform (batchgeneratorsv2's ``SpatialTransform``) receives the loader's enlarged window,
builds a sampling grid for the rotated and scaled patch, resamples the image once and the segmentation once per
label (each label's indicator interpolated linearly, then an argmax over the labels). Here the same geometry is
drawn first, so that the loader reads only the part of the window the patch touches, and the labels are settled
by a vote of the interpolation corners: a voxel whose corners all carry one label takes that label, and only the
voxels on a label boundary are voted, with the corner weights as votes. That is the argmax of the interpolated
indicators, computed without visiting each label, so the cost does not grow with the number of labels.

Everything is plain torch on whatever device the tensors live on (the GPU augmentation path uses it there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Sequence

import numpy as np
import torch
from batchgeneratorsv2.helpers.scalar_type import sample_scalar
from batchgeneratorsv2.transforms.spatial.spatial import create_affine_matrix_2d, create_affine_matrix_3d
from torch.nn.functional import grid_sample

#: marks a sampling cell whose corners carry more than one label (segmentations are int16, labels far above it)
_MIXED = torch.iinfo(torch.int16).min
#: batchgeneratorsv2 scores the labels as float16 values of 1000 * interpolated indicator; near-ties it cannot
#: tell apart are ties, settled by the nearest neighbour. The vote rounds its scores the same way.
_SCORE_SCALE = 1000.0


@dataclass(frozen=True)
class SpatialDraw:
    """What was drawn for one sample: the affine (rotation @ scaling, None for a plain crop) and the part of the
    loader's window (half-open, per window axis) the output patch reads."""

    affine: np.ndarray | None
    window_shape: tuple[int, ...]
    box: tuple[tuple[int, int], ...]


def draw_affine(dim: int, rotation, p_rotation: float, p_scaling: float, scaling,
                p_synchronize_scaling: float = 1.0) -> np.ndarray | None:
    """Rotation and scaling in batchgeneratorsv2's draw order (so a seeded stream gives its parameters).

    The third coin is the elastic deformation's (never applied in nnU-Net's default pipeline, still drawn).
    """
    do_rotation = np.random.uniform() < p_rotation
    do_scale = np.random.uniform() < p_scaling
    np.random.uniform()
    angles = [sample_scalar(rotation, image=None, dim=i) for i in range(dim)] if do_rotation else [0] * dim
    if do_scale:
        if np.random.uniform() <= p_synchronize_scaling:
            scales = [sample_scalar(scaling, image=None, dim=None)] * dim
        else:
            scales = [sample_scalar(scaling, image=None, dim=i) for i in range(dim)]
    else:
        scales = [1] * dim
    if not (do_rotation or do_scale):
        return None
    return create_affine_matrix_3d(angles, scales) if dim == 3 else create_affine_matrix_2d(angles[-1], scales)


def crop_box(patch: Sequence[int], window: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """The centred crop batchgeneratorsv2 takes when nothing is resampled: it starts at floor(S / 2) - P // 2."""
    return tuple((s // 2 - p // 2, s // 2 - p // 2 + p) for p, s in zip(patch, window))


def source_box(affine: np.ndarray, patch: Sequence[int], window: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Every window voxel the interpolation of the rotated, scaled patch can touch, clipped to the window.

    A sample point is ``affine @ q + S / 2 - 1 / 2`` for the patch's centred coordinates ``q``; its extremes are at
    the patch corners. One voxel of margin on each side absorbs rounding.
    """
    half = np.abs(affine) @ ((np.asarray(patch, dtype=float) - 1) / 2)
    centre = np.asarray(window, dtype=float) / 2 - 0.5
    return tuple((max(0, math.floor(c - h) - 1), min(s, math.floor(c + h) + 3))
                 for c, h, s in zip(centre, half, window))


def sample_points(affine: np.ndarray, patch: Sequence[int], window: Sequence[int], box_start: Sequence[int],
                  device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Per axis, the (patch-shaped, float32) pixel coordinate of each output voxel in the cropped box.

    Computed in float32 like batchgeneratorsv2's grid; one broadcast sum of per-axis vectors per output axis.
    """
    dim = len(patch)
    axes = [torch.arange(p, dtype=torch.float32, device=device) - (p - 1) / 2 for p in patch]
    points = []
    for k in range(dim):
        offset = window[k] / 2 - 0.5 - box_start[k]
        terms = [(axes[j] * float(affine[k, j]) + (offset if j == 0 else 0.0)).reshape(
            [-1 if i == j else 1 for i in range(dim)]) for j in range(dim)]
        partial = terms[0]
        for term in terms[1:-1]:  # the sum over all but the last axis is small: one full-size pass at the end
            partial = partial + term
        points.append(torch.add(partial, terms[-1]))
    return points


def resample_image(image: torch.Tensor, points: list[torch.Tensor]) -> torch.Tensor:
    """Linear interpolation, zero outside the box, as ``grid_sample(align_corners=False)``; the leading axes
    (channels, and the slices of dummy-2-D augmentation) share the sample points."""
    dim = len(points)
    lead, box = image.shape[:-dim], image.shape[-dim:]
    grid = torch.empty((*points[0].shape, dim), dtype=torch.float32, device=image.device)
    for k in range(dim):  # grid_sample wants normalised coordinates, last array axis first
        grid[..., dim - 1 - k] = points[k] * (2 / box[k]) + (1 / box[k] - 1)
    flat = image.reshape(1, -1, *box).float()
    out = grid_sample(flat, grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    return out.reshape(*lead, *points[0].shape)


def _cell_codes(padded: torch.Tensor, dim: int) -> torch.Tensor:
    """Per voxel v of ``padded`` (B, *spatial): its label if the 2^dim cell from v to v + 1 carries one label,
    else ``_MIXED``. Built axis by axis: a cell is uniform when its two halves along the axis are and their first
    voxels carry the same label (``base`` is the volume cut to the cells built so far)."""
    uniform, base = None, padded
    for a in range(padded.ndim - 1, padded.ndim - dim - 1, -1):
        lo = (slice(None),) * a + (slice(None, -1),)
        hi = (slice(None),) * a + (slice(1, None),)
        same = base[lo] == base[hi]
        uniform = same if uniform is None else uniform[lo] & uniform[hi] & same
        base = base[lo]
    codes = torch.full_like(padded, _MIXED)
    inner = (slice(None),) * (padded.ndim - dim) + (slice(None, -1),) * dim
    codes[inner] = torch.where(uniform, base, _MIXED)
    return codes


def resample_labels(seg: torch.Tensor, points: list[torch.Tensor], pad_label: int = -1,
                    order: int = 1) -> torch.Tensor:
    """Labels of ``seg`` (B, *box) int16 at the sample points; outside the box is ``pad_label``.

    ``order`` 1: the label with the largest (bi/tri)linearly interpolated indicator, ties (after float16
    rounding of 1000 * score, as batchgeneratorsv2 does) to the nearest neighbour's label if it is among the
    best, else to the lowest label. ``order`` 0: the nearest neighbour.
    """
    dim = len(points)
    lead, box = seg.shape[:-dim], seg.shape[-dim:]
    stack = seg.reshape(-1, *box)
    padded = torch.nn.functional.pad(stack, (1, 2) * dim, value=pad_label)  # room for corner f + 1 at f = S
    strides = padded.stride()[1:]
    clamped = [p.clamp(-1, s) for p, s in zip(points, box)]  # beyond that every corner is padding anyway
    corner = [(torch.round(c) if order == 0 else torch.floor(c)) for c in clamped]
    index = _flat_index(corner, strides, padded[0].numel())
    if order == 0:
        out = torch.stack([b.reshape(-1).take(index) for b in padded])
        return out.reshape(*lead, *points[0].shape)
    codes = _cell_codes(padded, dim)
    offsets = [sum(bit * s for bit, s in zip(bits, strides)) for bits in product((0, 1), repeat=dim)]
    clamped = [c.reshape(-1) for c in clamped]
    corner = [f.reshape(-1) for f in corner]
    results = []
    for b in range(padded.shape[0]):
        out = codes[b].reshape(-1).take(index)
        mixed = (out == _MIXED).nonzero()[:, 0]
        if mixed.numel():  # weights and nearest neighbours are needed at these few voxels only
            at = [c[mixed] for c in clamped]
            floor = [f[mixed] for f in corner]
            fractions = [c - f for c, f in zip(at, floor)]
            # grid_sample's nearest neighbour rounds the coordinate half to even: its corner bit per axis
            nearest_bits = [torch.round(c) - f for c, f in zip(at, floor)]
            out[mixed] = _vote(padded[b].reshape(-1), index[mixed], fractions, nearest_bits, offsets)
        results.append(out)
    return torch.stack(results).reshape(*lead, *points[0].shape)


def _flat_index(corner: list[torch.Tensor], strides: Sequence[int], numel: int) -> torch.Tensor:
    """int64 index of the (corner + 1) voxel in a padded volume. Summed in float32 where every value is an exact
    integer there (below 2^24), which saves an int64 conversion per axis."""
    if numel < 2 ** 24:
        index = torch.full_like(corner[0], float(sum(strides)))
        for c, stride in zip(corner, strides):
            index.add_(c, alpha=stride)
        return index.to(torch.int64).reshape(-1)
    index = None
    for c, stride in zip(corner, strides):
        term = (c.to(torch.int64) + 1) * stride
        index = term if index is None else index.add_(term)
    return index.reshape(-1)


def _vote(flat: torch.Tensor, index: torch.Tensor, fractions: list[torch.Tensor], nearest_bits: list[torch.Tensor],
          offsets: list[int]) -> torch.Tensor:
    """The interpolated-indicator argmax at boundary voxels, from their 2^dim corner labels and weights."""
    dim = len(fractions)
    labels = torch.stack([flat.take(index + o) for o in offsets], 1)  # (M, 2^dim)
    weights = []
    for bits in product((0, 1), repeat=dim):
        w = None
        for k, bit in enumerate(bits):
            part = fractions[k] if bit else 1 - fractions[k]
            w = part if w is None else w * part
        weights.append(w)
    weights = torch.stack(weights, 1)
    same = labels[:, :, None] == labels[:, None, :]
    scores = ((same * weights[:, None, :]).sum(-1) * _SCORE_SCALE).to(torch.float16)
    best = scores.max(1, keepdim=True).values
    nearest = torch.zeros_like(index)
    for k, bit in enumerate(nearest_bits):
        nearest += bit.to(torch.int64) << (dim - 1 - k)
    nearest_label = labels.gather(1, nearest[:, None])[:, 0]
    nearest_is_best = scores.gather(1, nearest[:, None])[:, 0] == best[:, 0]
    top = scores == best
    lowest = torch.where(top, labels, torch.full_like(labels, torch.iinfo(labels.dtype).max)).min(1).values
    return torch.where(nearest_is_best, nearest_label, lowest)


class FusedSpatialTransform:
    """Rotation (p 0.2), scaling (p 0.2, one factor for all axes) and the centred crop of nnU-Net's spatial
    transform, for a window that the loader crops to :meth:`draw`'s box.

    Args:
        patch_size: the network's patch (2 or 3 axes).
        rotation: rotation range in radians (nnU-Net's ``rotation_for_DA``).
        dummy_2d: rotate and scale in the last two axes only (each slice alike).
        seg_order: 1 for the linear-indicator argmax, 0 for nearest neighbour (the DASegOrd0 trainers).
    """

    def __init__(self, patch_size: Sequence[int], rotation, dummy_2d: bool = False, seg_order: int = 1,
                 p_rotation: float = 0.2, p_scaling: float = 0.2, scaling=(0.7, 1.4)):
        self.patch_size = tuple(int(p) for p in patch_size)
        self.rotation, self.dummy_2d, self.seg_order = rotation, dummy_2d, seg_order
        self.p_rotation, self.p_scaling, self.scaling = p_rotation, p_scaling, scaling

    def _split(self, shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(axes kept as they are, axes transformed): dummy-2-D keeps the first."""
        return (tuple(shape[:1]), tuple(shape[1:])) if self.dummy_2d else ((), tuple(shape))

    def draw(self, window_shape: Sequence[int]) -> SpatialDraw:
        window = tuple(int(s) for s in window_shape)
        kept, moved = self._split(window)
        patch_moved = self._split(self.patch_size)[1]
        affine = draw_affine(len(moved), self.rotation, self.p_rotation, self.p_scaling, self.scaling)
        box = crop_box(patch_moved, moved) if affine is None else source_box(affine, patch_moved, moved)
        return SpatialDraw(affine, window, tuple((0, s) for s in kept) + box)

    def __call__(self, **data) -> dict:
        draw: SpatialDraw = data.pop("spatial")
        if draw.affine is None:  # the loader already cut the patch
            return data
        _, moved = self._split(draw.window_shape)
        patch_moved = self._split(self.patch_size)[1]
        start = [lo for lo, _ in draw.box[len(draw.window_shape) - len(moved):]]
        points = sample_points(draw.affine, patch_moved, moved, start, device=data["image"].device)
        data["image"] = resample_image(data["image"], points)
        if data.get("segmentation") is not None:
            data["segmentation"] = resample_labels(data["segmentation"], points, pad_label=-1, order=self.seg_order)
        return data
