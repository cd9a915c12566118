"""Where the sliding window puts its tiles, how they are read, and the importance map that weights them
(torch-free).

Used by the engine (:mod:`nnunet.inference.engine`) for every runner, so that the torch and the numpy runners
visit the same tiles in the same order with the same weights.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Iterator, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

#: the Gaussian importance map is scaled so that its maximum is this value (as in nnU-Net)
GAUSSIAN_VALUE_SCALE = 10.0
#: sigma of the importance map as a fraction of the patch size per axis
GAUSSIAN_SIGMA_SCALE = 1.0 / 8
#: mirrored copies of a tile go through the network together while the batch holds at most this many voxels
#: (128^3: a full-size 3-D patch still runs alone, so device memory stays as without batching)
MIRROR_BATCH_VOXELS = 128 ** 3


def compute_steps_for_sliding_window(image_size: Sequence[int], tile_size: Sequence[int],
                                     step_size: float) -> list[list[int]]:
    """Start coordinates of the tiles along every axis.

    The number of tiles per axis is the smallest that keeps the distance between neighbouring tiles at most
    ``tile * step_size``; the tiles are then spread evenly so that the first starts at 0 and the last ends at
    the image border. Example: image 110, tile 64, step 0.5 -> ceil(46 / 32) + 1 = 3 tiles, spaced 23 apart:
    starts 0, 23, 46.

    Args:
        image_size: spatial image shape, at least ``tile_size`` on every axis (pad first).
        tile_size: patch size, same number of axes.
        step_size: fraction of the tile between neighbouring tiles, in (0, 1].

    Returns:
        One list of start coordinates per axis.

    Raises:
        ValueError: mismatching lengths, an image smaller than the tile, or a step size outside (0, 1].
    """
    if len(image_size) != len(tile_size):
        raise ValueError(f"image_size {tuple(image_size)} and tile_size {tuple(tile_size)} must have the same "
                         f"number of axes.")
    if any(t <= 0 for t in tile_size):
        raise ValueError(f"tile_size must be positive on every axis, got {tuple(tile_size)}.")
    if any(i < t for i, t in zip(image_size, tile_size)):
        raise ValueError(f"image_size {tuple(image_size)} is smaller than tile_size {tuple(tile_size)} on some "
                         f"axis; pad the image to at least the tile size first.")
    if not 0 < step_size <= 1:
        raise ValueError(f"step_size must be in (0, 1], got {step_size}.")
    steps = []
    for image, tile in zip(image_size, tile_size):
        n = int(math.ceil((image - tile) / (tile * step_size))) + 1
        if n == 1:
            steps.append([0])
            continue
        spacing = (image - tile) / (n - 1)
        steps.append([int(round(spacing * k)) for k in range(n)])  # round half to even, like nnU-Net
    return steps


@functools.lru_cache(maxsize=4)
def _gaussian_float64(tile_size: tuple[int, ...], sigma_scale: float, value_scale: float) -> np.ndarray:
    # A Gaussian-filtered delta is the outer product of the 1-D filtered deltas: the same numbers that a full N-D
    # gaussian_filter of the delta gives (each output voxel is one product of kernel weights, formed in the same
    # axis order), at a fraction of the cost for large patches.
    kernels = []
    for size in tile_size:
        delta = np.zeros(size)
        delta[size // 2] = 1
        kernels.append(gaussian_filter1d(delta, size * sigma_scale, mode="constant", cval=0))
    result = kernels[0]
    for k in kernels[1:]:
        result = result[..., None] * k
    result /= np.max(result) / value_scale
    result.setflags(write=False)
    return result


def padding_for_patch(spatial_shape: Sequence[int], patch_size: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) zero padding per patched axis so that every axis is at least the patch size.

    The padding is split evenly; an odd amount puts the extra voxel after the image. ``patch_size`` applies to
    the last ``len(patch_size)`` axes of ``spatial_shape``; earlier axes are not padded.
    """
    spatial_shape = list(spatial_shape)
    lead = len(spatial_shape) - len(patch_size)
    if lead < 0:
        raise ValueError(f"patch_size {tuple(patch_size)} has more axes than the image {tuple(spatial_shape)}.")
    pads = [(0, 0)] * lead
    for size, patch in zip(spatial_shape[lead:], patch_size):
        missing = max(0, patch - size)
        pads.append((missing // 2, missing - missing // 2))
    return pads


def iter_tile_slicers(spatial_shape: Sequence[int], patch_size: Sequence[int],
                      step_size: float) -> Iterator[tuple[slice | int, ...]]:
    """Index tuples ``(slice(None), ...)`` of every tile of a (C, *spatial_shape) array, x outermost.

    A patch with one axis fewer than the image (a 2-D configuration on 3-D data) iterates over every index of
    the first spatial axis (yielding an integer index there) and tiles the remaining axes.

    Raises:
        ValueError: the patch has more axes than the image, or two or more fewer.
    """
    spatial_shape = [int(s) for s in spatial_shape]
    extra = len(spatial_shape) - len(patch_size)
    if extra not in (0, 1):
        raise ValueError(f"A patch of {len(patch_size)} axes cannot tile an image with spatial shape "
                         f"{tuple(spatial_shape)}: the patch may have as many axes as the image or one fewer.")
    steps = compute_steps_for_sliding_window(spatial_shape[extra:], patch_size, step_size)
    leading = [range(spatial_shape[0])] if extra else []
    for position in itertools.product(*leading, *steps):
        index: tuple[slice | int, ...] = (slice(None),)
        if extra:
            index += (position[0],)
            position = position[1:]
        index += tuple(slice(p, p + t) for p, t in zip(position, patch_size))
        yield index


def num_tiles(spatial_shape: Sequence[int], patch_size: Sequence[int], step_size: float) -> int:
    extra = len(spatial_shape) - len(patch_size)
    steps = compute_steps_for_sliding_window(list(spatial_shape)[extra:], patch_size, step_size)
    return (spatial_shape[0] if extra else 1) * math.prod(len(s) for s in steps)


def mirror_axis_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every non-empty combination of ``axes``: singles first, then pairs, ... (itertools order).

    Together with the unflipped prediction these are the 2^k test-time augmentations for k axes.
    """
    axes = list(axes)
    return [c for r in range(1, len(axes) + 1) for c in itertools.combinations(axes, r)]


def gaussian_weights(tile_size: Sequence[int], dtype: type = np.float16) -> np.ndarray:
    """The importance map of :func:`nnunet.inference.torch_engine.compute_gaussian` as a numpy array.

    The same numbers: float64 is rounded through float32 (as torch converts to float16), and values that
    underflowed to 0 take the smallest non-zero value.
    """
    weights = _gaussian_float64(tuple(int(t) for t in tile_size), GAUSSIAN_SIGMA_SCALE, GAUSSIAN_VALUE_SCALE)
    weights = weights.astype(np.float32).astype(dtype)
    zero = weights == 0
    if zero.any():
        weights[zero] = weights[~zero].min()
    return weights


#: an index into a (C, *spatial) array as :func:`iter_tile_slicers` yields it
Index = tuple


def row_start(index: Index) -> int:
    """First-axis start of a tile (its integer index for a 2-D configuration on 3-D data)."""
    return index[1] if isinstance(index[1], int) else index[1].start


def tile_rows(spatial_shape: Sequence[int], patch_size: Sequence[int], step_size: float) -> list[list[Index]]:
    """The tiles of :func:`iter_tile_slicers`, grouped by their first-axis start (order kept)."""
    rows: list[list[Index]] = []
    for index in iter_tile_slicers(spatial_shape, patch_size, step_size):
        if not rows or row_start(rows[-1][0]) != row_start(index):
            rows.append([])
        rows[-1].append(index)
    return rows


def read_tile(image: np.ndarray, index: Index, pads: Sequence[tuple[int, int]]) -> np.ndarray:
    """``padded_image[index][None]`` as float32 without padding the image: the part inside it, zeros around.

    ``image`` is (C, *spatial) and may be a read-only memory map; ``pads`` as :func:`padding_for_patch` gives.
    """
    if not any(before or after for before, after in pads):
        return np.ascontiguousarray(image[index], dtype=np.float32)[None]
    source, target, shape = [slice(None)], [slice(None)], [image.shape[0]]
    for axis, (selection, (before, _)) in enumerate(zip(index[1:], pads)):
        if isinstance(selection, int):  # leading axis of a 2-D configuration: never padded
            source.append(selection)
            continue
        size = image.shape[axis + 1]
        start, stop = selection.start - before, selection.stop - before
        lo, hi = max(start, 0), min(stop, size)
        source.append(slice(lo, hi))
        target.append(slice(lo - start, hi - start))
        shape.append(stop - start)
    tile = np.zeros(shape, dtype=np.float32)
    tile[tuple(target)] = image[tuple(source)]
    return tile[None]


def tiles_per_fold(spatial_shape: Sequence[int], patch_size: Sequence[int], step_size: float) -> int:
    """Tiles the sliding window visits for one fold on an image of this spatial shape (before padding)."""
    spatial_shape = list(spatial_shape)
    lead = len(spatial_shape) - len(patch_size)
    padded = [max(s, p) for s, p in zip(spatial_shape[lead:], patch_size)]
    return num_tiles(spatial_shape[:lead] + padded, patch_size, step_size)
