"""Resampling of images, segmentations and logits to a new shape (nnU-Net's default rules).

Images: spline of the given order (3) with edge extension, clipped to the input range, computed in float64.
Segmentations: each label's indicator is resampled linearly; a voxel takes the label with the highest score
(the smallest label among equal scores, unless the nearest-neighbour label is among them, which then wins).
Anisotropic data (spacing ratio > 3) are resampled slice by slice in-plane and with nearest neighbour across
slices ("separate z").

Same results as the reference (scikit-image ``resize`` = scipy ``zoom`` in grid mode, per slice or per volume),
computed differently:

* images: a grid-mode spline zoom is separable, so it is applied as one ``(new, old)`` matrix per axis (prefilter
  and interpolation weights folded together, banded into row blocks) with BLAS matrix products over the whole
  volume, all slices at once. Agrees with the reference's 3-D zoom to about 1e-14 relative.
* segmentations (order 1): an output voxel whose interpolation taps all carry one label gets that label (that
  is what the per-label scores give). Only the remaining voxels, at label borders, are scored, with the very
  floating-point operations of scipy's zoom in the same order, so the label maps are bit-identical.
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy.ndimage import map_coordinates, spline_filter1d, zoom

from nnunet.constants import ANISO_THRESHOLD
from nnunet.registry import RESAMPLERS


def compute_new_shape(old_shape: Sequence[int], old_spacing: Sequence[float],
                      new_spacing: Sequence[float]) -> list[int]:
    """``round(old_spacing / new_spacing * old_shape)`` per axis (Python rounding)."""
    return [int(round(o / n * s)) for o, n, s in zip(old_spacing, new_spacing, old_shape)]


def needs_separate_z(spacing: Sequence[float], threshold: float = ANISO_THRESHOLD) -> bool:
    return max(spacing) / min(spacing) > threshold


def lowres_axes(spacing: Sequence[float]) -> list[int]:
    """All axes whose spacing equals the largest spacing."""
    spacing = np.asarray(spacing, dtype=float)
    return [int(a) for a in np.where(max(spacing) / spacing == 1)[0]]


def separate_z_axis(current_spacing: Sequence[float], new_spacing: Sequence[float],
                    force_separate_z: bool | None, threshold: float = ANISO_THRESHOLD) -> int | None:
    """The axis to resample separately, or None. Two or three equally coarse axes mean no separate axis."""
    if force_separate_z is not None:
        axes = lowres_axes(current_spacing) if force_separate_z else None
    elif needs_separate_z(current_spacing, threshold):
        axes = lowres_axes(current_spacing)
    elif needs_separate_z(new_spacing, threshold):
        axes = lowres_axes(new_spacing)
    else:
        axes = None
    if axes is None or len(axes) != 1:
        return None
    return axes[0]


# --------------------------------------------------------------------------------------------------------------
# continuous data: separable spline zoom as matrix products
# --------------------------------------------------------------------------------------------------------------

#: output rows per block of an axis operator; a block only touches the input columns near its rows
BLOCK_ROWS = 256
#: input columns kept on each side of a block's nominal range: the cubic prefilter's impulse response decays
#: like 0.27**d (at most 0.43**d for order 5), so beyond 64 columns it is far below float64 precision
SUPPORT_MARGIN = 64
#: scipy pads by this many edge values before the spline prefilter in 'nearest' mode
_SPLINE_PAD = 12


def _cubic_weights(frac: np.ndarray) -> list[np.ndarray]:
    """Cubic B-spline weights of the 4 taps ``floor(x) - 1 ... floor(x) + 2`` (scipy's formulas)."""
    y, z = frac, 1.0 - frac
    w1 = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0
    w2 = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0
    w0 = z * z * z / 6.0
    return [w0, w1, w2, 1.0 - w0 - w1 - w2]


def dense_axis_operator(n_in: int, n_out: int, order: int) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix of scikit-image's ``resize(mode='edge')`` (scipy grid-mode zoom with edge
    extension) along one axis.

    Orders 0, 1 and 3 are built directly: output pixel centres ``(i + 0.5) * n_in / n_out - 0.5``, taps
    clamped to the edge; for order 3 the taps read the spline coefficients of the edge-padded identity, as
    scipy's prefilter computes them. Other orders: scipy's zoom applied to every unit impulse.
    """
    coords = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    rows = np.arange(n_out)
    if order == 0:
        matrix = np.zeros((n_out, n_in))
        matrix[rows, np.clip(np.floor(coords + 0.5).astype(np.intp), 0, n_in - 1)] = 1.0
        return matrix
    start = np.floor(coords)
    frac = coords - start
    start = start.astype(np.intp)
    if order == 1:
        matrix = np.zeros((n_out, n_in))
        w0 = 1.0 - frac
        np.add.at(matrix, (rows, np.clip(start, 0, n_in - 1)), w0)
        np.add.at(matrix, (rows, np.clip(start + 1, 0, n_in - 1)), 1.0 - w0)
        return matrix
    if order == 3:
        padded = np.pad(np.eye(n_in), ((_SPLINE_PAD, _SPLINE_PAD), (0, 0)), mode="edge")
        coefficients = spline_filter1d(padded, 3, axis=0, mode="nearest", output=np.float64)
        first = start - 1 + _SPLINE_PAD
        matrix = np.zeros((n_out, n_in))
        for tap, weight in enumerate(_cubic_weights(frac)):
            matrix += weight[:, None] * coefficients[first + tap]
        return matrix
    impulses = np.eye(n_in)
    return np.stack([zoom(impulses[j], n_out / n_in, order=order, mode="nearest", grid_mode=True)
                     for j in range(n_in)], axis=1)


@lru_cache(maxsize=16)
def axis_operator(n_in: int, n_out: int, order: int) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """:func:`dense_axis_operator` as row blocks ``(r0, r1, c0, c1, M[r0:r1, c0:c1])``; the columns outside
    a block's support window hold only negligible values and are left out, so long axes cost O(n), not O(n^2)
    per output line."""
    dense = dense_axis_operator(n_in, n_out, order)
    ratio = n_in / n_out
    margin = 2 if order <= 1 else SUPPORT_MARGIN
    blocks = []
    for r0 in range(0, n_out, BLOCK_ROWS):
        r1 = min(n_out, r0 + BLOCK_ROWS)
        c0 = max(0, int(np.floor(r0 * ratio)) - margin - 3)
        c1 = min(n_in, int(np.ceil(r1 * ratio)) + margin + 3)
        block = np.ascontiguousarray(dense[r0:r1, c0:c1])
        block.flags.writeable = False
        blocks.append((r0, r1, c0, c1, block))
    return tuple(blocks)


def _apply_along_axis(volume: np.ndarray, operator, axis: int) -> np.ndarray:
    """Apply an :func:`axis_operator` along ``axis`` with BLAS products; returns a new C-contiguous array."""
    volume = np.ascontiguousarray(volume)
    before = int(np.prod(volume.shape[:axis]))
    after = int(np.prod(volume.shape[axis + 1:]))
    n_out = operator[-1][1]
    out_shape = volume.shape[:axis] + (n_out,) + volume.shape[axis + 1:]
    if after == 1:  # last axis: rows of the volume times the transposed operator
        flat = volume.reshape(before, -1)
        out = np.empty((before, n_out))
        for r0, r1, c0, c1, block in operator:
            np.matmul(flat[:, c0:c1], block.T, out=out[:, r0:r1])
        return out.reshape(out_shape)
    stacked = volume.reshape(before, -1, after)
    out = np.empty((before, n_out, after))
    for r0, r1, c0, c1, block in operator:
        np.matmul(block, stacked[:, c0:c1], out=out[:, r0:r1])
    return out.reshape(out_shape)


def spline_resize(volume: np.ndarray, new_shape: Sequence[int], order: int) -> np.ndarray:
    """Separable spline resize (float64, not clipped). Axes whose length does not change are left as they are
    (the zoom is the identity there up to rounding); shrinking axes go first so later products are smaller."""
    out = volume.astype(np.float64, copy=False)
    axes = [a for a in range(volume.ndim) if volume.shape[a] != new_shape[a]]
    for axis in sorted(axes, key=lambda a: new_shape[a] / volume.shape[a]):
        out = _apply_along_axis(out, axis_operator(volume.shape[axis], int(new_shape[axis]), order), axis)
    return out


def _resize_image(channel: np.ndarray, new_shape: Sequence[int], order: int,
                  slice_axis: int | None) -> np.ndarray:
    """Resize one channel (float64 result) and clip it to the input range: of the whole channel, or of each
    slice along ``slice_axis`` (which keeps its length) when slices are resized one by one."""
    out = spline_resize(channel, new_shape, order)
    if order > 0:
        if slice_axis is None:
            low, high = channel.min(), channel.max()
        else:
            other = tuple(a for a in range(channel.ndim) if a != slice_axis)
            low, high = channel.min(axis=other, keepdims=True), channel.max(axis=other, keepdims=True)
        np.clip(out, low, high, out=out)
    return out


# --------------------------------------------------------------------------------------------------------------
# label maps
# --------------------------------------------------------------------------------------------------------------

def _axis_taps(n_in: int, n_out: int, order: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per output index along one axis: the input indices and weights of scipy's grid-mode zoom of order 0/1
    with edge extension (same arithmetic as scipy), and the nearest-neighbour index."""
    coords = (np.arange(n_out, dtype=np.float64) + 0.5) * (np.float64(n_in) / np.float64(n_out)) - 0.5
    nearest = np.clip(np.floor(coords + 0.5).astype(np.intp), 0, n_in - 1)
    if order == 0:
        return [nearest], [np.ones(n_out)], nearest
    start = np.floor(coords)
    w0 = 1.0 - (coords - start)
    first = start.astype(np.intp)
    return ([np.clip(first, 0, n_in - 1), np.clip(first + 1, 0, n_in - 1)], [w0, 1.0 - w0], nearest)


def _identity_taps(n: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    index = np.arange(n, dtype=np.intp)
    return [index], [np.ones(n)], index


def _uniform_blocks(labels: np.ndarray, taps: Sequence[int]) -> np.ndarray:
    """True where the block ``labels[i:i+taps_0, j:j+taps_1, ...]`` holds a single label (edge-padded)."""
    pad = [(0, t - 1) for t in taps]
    padded = np.pad(labels, pad, mode="edge") if any(t > 1 for t in taps) else labels
    first = padded[tuple(slice(0, n) for n in labels.shape)]
    uniform = np.ones(labels.shape, dtype=bool)
    for offset in itertools.product(*[range(t) for t in taps]):
        if any(offset):
            uniform &= padded[tuple(slice(o, o + n) for o, n in zip(offset, labels.shape))] == first
    return uniform


def resize_labels(labels: np.ndarray, new_shape: Sequence[int], order: int = 1,
                  keep_axis: int | None = None) -> np.ndarray:
    """Resize a label map like the reference's ``resize_segmentation`` (order 0 or 1), optionally treating
    every slice along ``keep_axis`` (whose length must not change) as its own 2-D image.

    Order 1: per label, the indicator is resized linearly (clipped to [0, 1]); a voxel gets the label with the
    highest score, ties going to the nearest-neighbour label if it is among them, else to the smallest label.
    """
    new_shape = tuple(int(s) for s in new_shape)
    if keep_axis is not None and labels.shape[keep_axis] != new_shape[keep_axis]:
        raise ValueError(f"keep_axis {keep_axis} must keep its length: {labels.shape} -> {new_shape}")
    axes = [_identity_taps(n) if a == keep_axis else _axis_taps(n, m, order)
            for a, (n, m) in enumerate(zip(labels.shape, new_shape))]
    indices, weights, nearest = zip(*axes)
    first_taps = np.ix_(*[i[0] for i in indices])
    if order == 0:
        return labels[first_taps]
    # voxels whose taps all carry one label take that label; the others are scored exactly below
    uniform = _uniform_blocks(labels, [len(i) for i in indices])
    border = np.nonzero(~uniform[first_taps])
    out = labels[first_taps]
    if border[0].size:
        out[border] = _score_border_voxels(labels, border, indices, weights, nearest)
    return out


def _score_border_voxels(labels: np.ndarray, border: tuple[np.ndarray, ...], indices, weights,
                         nearest) -> np.ndarray:
    """Labels of the given output voxels from per-label interpolated scores, accumulated tap by tap in
    scipy's order (last axis fastest; weights multiplied axis by axis) so that ties are decided identically."""
    tap_labels, tap_weights = [], []
    for taps in itertools.product(*[range(len(i)) for i in indices]):
        tap_labels.append(labels[tuple(indices[a][t][border[a]] for a, t in enumerate(taps))])
        w = weights[0][taps[0]][border[0]]
        for a in range(1, len(taps)):
            w = w * weights[a][taps[a]][border[a]]
        tap_weights.append(w)
    candidates = np.unique(np.concatenate(tap_labels))
    nn_label = labels[tuple(nearest[a][border[a]] for a in range(len(border)))]
    best = np.full(border[0].size, -1.0)
    winner = np.empty(border[0].size, dtype=labels.dtype)
    nn_score = np.zeros(border[0].size)
    for label in candidates:  # ascending: the first label reaching the maximum wins ties
        score = np.zeros(border[0].size)
        for lab, w in zip(tap_labels, tap_weights):
            score += np.where(lab == label, w, 0.0)
        np.clip(score, 0.0, 1.0, out=score)
        better = score > best
        winner[better] = label
        best[better] = score[better]
        is_nn = nn_label == label
        nn_score[is_nn] = score[is_nn]
    return np.where((nn_score == best) & (nn_score > 0), nn_label, winner)


# --------------------------------------------------------------------------------------------------------------
# the resampling function named in the plans
# --------------------------------------------------------------------------------------------------------------

def _resample_across_slices(volume: np.ndarray, new_shape: Sequence[int], axis: int, is_seg: bool, order_z: int,
                            out: np.ndarray) -> None:
    """Resample along ``axis`` with ``map_coordinates`` at pixel centres (nearest neighbour for ``order_z`` 0)."""
    old_n, new_n = volume.shape[axis], new_shape[axis]
    z = (np.arange(new_n) + 0.5) * (old_n / new_n) - 0.5
    if order_z == 0:
        # nearest neighbour only picks slices: ask map_coordinates which ones (same rounding) on a 1-D index array
        # instead of evaluating it on a full 3-D coordinate grid
        picked = map_coordinates(np.arange(old_n, dtype=np.float64), z[None], order=0, mode="nearest")
        out[...] = np.take(volume, picked.astype(np.intp), axis=axis)
        return
    coords = np.stack(np.meshgrid(*[z if a == axis else np.arange(n, dtype=np.float64)
                                    for a, n in enumerate(new_shape)], indexing="ij"))
    volume = volume.astype(np.float64, copy=False)
    if not is_seg:
        out[...] = map_coordinates(volume, coords, order=order_z, mode="nearest")
        return
    out[...] = 0
    for label in np.unique(volume):
        interpolated = map_coordinates((volume == label).astype(np.float64), coords, order=order_z, mode="nearest")
        out[np.round(interpolated) > 0.5] = label


def _resize_seg_generic(seg: np.ndarray, new_shape: Sequence[int], order: int, keep_axis: int | None) -> np.ndarray:
    """Spline orders above 1 for label maps: the reference library function itself (slow, rarely used)."""
    from batchgenerators.augmentations.utils import resize_segmentation

    seg = seg.astype(np.float64)
    if keep_axis is None:
        return resize_segmentation(seg, tuple(new_shape), order)
    plane = tuple(s for a, s in enumerate(new_shape) if a != keep_axis)
    return np.stack([resize_segmentation(np.take(seg, i, axis=keep_axis), plane, order)
                     for i in range(seg.shape[keep_axis])], axis=keep_axis)


def _resize_channel(channel: np.ndarray, new_shape: Sequence[int], is_seg: bool, order: int,
                    keep_axis: int | None) -> np.ndarray:
    if not is_seg:
        return _resize_image(channel, new_shape, order, keep_axis)
    if order <= 1:
        return resize_labels(channel, new_shape, order, keep_axis)
    return _resize_seg_generic(channel, new_shape, order, keep_axis)


@RESAMPLERS.register
def resample_data_or_seg_to_shape(data: np.ndarray, new_shape: Sequence[int], current_spacing: Sequence[float],
                                  new_spacing: Sequence[float], is_seg: bool = False, order: int = 3,
                                  order_z: int = 0, force_separate_z: bool | None = False,
                                  separate_z_anisotropy_threshold: float = ANISO_THRESHOLD) -> np.ndarray:
    """Resample a (C, X, Y, Z) array to ``new_shape`` (3 values). Returns the input if the shape already matches.

    Args:
        data: image (float) or segmentation (integer-valued) array, channels first.
        new_shape: target spatial shape.
        current_spacing / new_spacing: spacings (array order) that decide the separate-z handling.
        is_seg: per-label resampling for segmentations.
        order: spline order in-plane (or in 3-D); order_z: order across slices when resampled separately.
        force_separate_z: True/False forces the decision; None decides from the spacings.

    Returns:
        A new array of ``data``'s dtype.
    """
    new_shape = [int(s) for s in new_shape]
    if list(data.shape[1:]) == new_shape:
        return data
    axis = separate_z_axis(current_spacing, new_spacing, force_separate_z, separate_z_anisotropy_threshold)
    out = np.empty((data.shape[0], *new_shape), dtype=data.dtype)
    for c in range(data.shape[0]):
        if axis is None:
            out[c] = _resize_channel(data[c], new_shape, is_seg, order, None)
            continue
        in_plane = list(new_shape)
        in_plane[axis] = data.shape[axis + 1]
        stacked = _resize_channel(data[c], in_plane, is_seg, order, axis)
        if in_plane[axis] != new_shape[axis]:
            _resample_across_slices(stacked, new_shape, axis, is_seg, order_z, out[c])
        else:
            out[c] = stacked
    return out


@RESAMPLERS.register
def no_resampling_hack(data: np.ndarray, new_shape: Sequence[int], *args, **kwargs) -> np.ndarray:
    """Leave the data as it is (for datasets that must not be resampled)."""
    return data
