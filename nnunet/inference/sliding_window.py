"""Sliding-window prediction: tile positions, Gaussian weighting, padding, mirroring and accumulation.

The pieces are small functions so that each can be tested with exact values; :func:`sliding_window_logits`
puts them together for one (C, X, Y, Z) image and :func:`sliding_window_logits_with_fallback` adds the
"accumulate on the CPU when the device runs out of memory" retry.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from tqdm import tqdm

logger = logging.getLogger(__name__)

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


def compute_gaussian(tile_size: Sequence[int], sigma_scale: float = GAUSSIAN_SIGMA_SCALE,
                     value_scale: float = GAUSSIAN_VALUE_SCALE, dtype: torch.dtype = torch.float16,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Importance map of shape ``tile_size`` that weights tile centres more than tile borders.

    A Gaussian (sigma = ``sigma_scale`` * tile size per axis, constant-0 boundary) centred at ``size // 2``,
    scaled so that its maximum equals ``value_scale``, converted to ``dtype`` on ``device``. Values that became
    exactly 0 (underflow in float16 far from the centre) are replaced by the smallest non-zero value, so that
    no voxel can end up with a total weight of 0.
    """
    weights = torch.from_numpy(_gaussian_float64(tuple(int(t) for t in tile_size), float(sigma_scale),
                                                 float(value_scale)).copy())
    weights = weights.to(device=device, dtype=dtype)
    zero = weights == 0
    if bool(zero.any()):
        weights[zero] = weights[~zero].min()
    return weights


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


def pad_to_patch(image: torch.Tensor, patch_size: Sequence[int]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad a (C, *spatial) tensor so that it is at least ``patch_size``; also return the undo slicer.

    ``padded[slicer]`` is the original image. Nothing is copied if no padding is needed.
    """
    pads = padding_for_patch(image.shape[1:], patch_size)
    slicer = (slice(None),) + tuple(slice(before, before + size) for (before, _), size in zip(pads, image.shape[1:]))
    if not any(before or after for before, after in pads):
        return image, slicer
    flat = [p for before_after in reversed(pads) for p in before_after]  # torch wants the last axis first
    return torch.nn.functional.pad(image, flat, mode="constant", value=0), slicer


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


def predict_with_mirroring(network: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                           mirror_axes: Sequence[int] | None,
                           max_batch_voxels: int | None = MIRROR_BATCH_VOXELS) -> torch.Tensor:
    """Network output for a batch ``x`` (B, C, *spatial), averaged over all flips of the spatial ``mirror_axes``.

    ``mirror_axes`` count spatial axes (0 = first spatial axis). None or empty: a single forward pass.
    Small tiles are flipped into one larger batch (at most ``max_batch_voxels`` spatial voxels per forward pass;
    None = one pass per flip): the network is then called fewer times, which is faster on CPUs and GPUs alike.
    The outputs are summed in the same order either way.

    Raises:
        ValueError: a mirror axis that ``x`` does not have.
    """
    if not mirror_axes:
        return network(x)
    num_spatial = x.ndim - 2
    if max(mirror_axes) >= num_spatial or min(mirror_axes) < 0:
        raise ValueError(f"Mirror axes {tuple(mirror_axes)} do not fit an input with {num_spatial} spatial axes.")
    flips = [()] + mirror_axis_combinations([a + 2 for a in mirror_axes])
    tile_voxels = x.shape[0] * math.prod(x.shape[2:])
    per_pass = max(1, max_batch_voxels // tile_voxels) if max_batch_voxels else 1
    prediction = None
    for start in range(0, len(flips), per_pass):
        group = flips[start:start + per_pass]
        outputs = network(torch.cat([torch.flip(x, dims) for dims in group])).split(x.shape[0])
        for dims, output in zip(group, outputs):
            output = torch.flip(output, dims)  # flip over no dims is a copy, so the sum owns its memory
            prediction = output if prediction is None else prediction.add_(output)
    prediction /= len(flips)
    return prediction


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def sliding_window_logits(network: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                          patch_size: Sequence[int], num_heads: int, step_size: float = 0.5,
                          use_gaussian: bool = True, mirror_axes: Sequence[int] | None = None,
                          device: torch.device | str = "cpu", results_device: torch.device | str | None = None,
                          accumulation_dtype: torch.dtype = torch.float16,
                          progress: bool = False, on_tile: Callable[[], None] | None = None) -> torch.Tensor:
    """Logits of a whole (C, X, Y, Z) image, stitched from overlapping tiles.

    Each tile's prediction (mirror-averaged if ``mirror_axes``) is multiplied by the importance map and added
    to a ``logits_sum`` accumulator, the map itself to ``weight_sum``; the result is their quotient, cropped
    back to the unpadded image. Accumulators live on ``results_device`` (default: ``device``) in
    ``accumulation_dtype`` (float16 as in nnU-Net; float32 for more headroom).

    Args:
        network: maps (1, C, *patch) to (1, num_heads, *patch); called under ``torch.inference_mode``.
        image: (C, X, Y, Z) float tensor (a 2-D configuration gets (C, 1, X, Y) or (C, N, X, Y) and a 2-axis patch).
        patch_size: tile size (2 or 3 axes).
        num_heads: number of output channels.
        device: where the network runs. results_device: where the accumulators live.
        progress: show a bar over the tiles. on_tile: called after every tile (e.g. a caller's progress bar).

    Returns:
        (num_heads, X, Y, Z) tensor of ``accumulation_dtype`` on ``results_device``.

    Raises:
        RuntimeError: the accumulated logits overflowed (inf).
    """
    device = torch.device(device)
    results_device = torch.device(results_device) if results_device is not None else device
    autocast = torch.autocast("cuda", enabled=True) if device.type == "cuda" else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        data, unpad = pad_to_patch(image, patch_size)
        data = data.to(results_device)
        spatial = data.shape[1:]
        logits_sum = torch.zeros((num_heads, *spatial), dtype=accumulation_dtype, device=results_device)
        weight_sum = torch.zeros(spatial, dtype=accumulation_dtype, device=results_device)
        weights = (compute_gaussian(patch_size, dtype=accumulation_dtype, device=results_device)
                   if use_gaussian else None)
        slicers = list(iter_tile_slicers(spatial, patch_size, step_size))
        for index in tqdm(slicers, disable=not progress, desc="tiles", leave=False):
            tile = data[index][None].contiguous().to(device, non_blocking=True)  # convs are faster on dense input
            prediction = predict_with_mirroring(network, tile, mirror_axes)[0].to(results_device)
            if weights is not None:
                prediction *= weights
                weight_sum[index[1:]] += weights
            else:
                weight_sum[index[1:]] += 1
            logits_sum[index] += prediction
            if on_tile is not None:
                on_tile()
        torch.div(logits_sum, weight_sum, out=logits_sum)
        if bool(torch.isinf(logits_sum).any()):
            raise RuntimeError("The accumulated logits overflowed (inf). Accumulate in float32 "
                               "(accumulation_dtype=torch.float32) or lower the importance-map scale.")
        return logits_sum[unpad]


def sliding_window_logits_with_fallback(network: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                                        patch_size: Sequence[int], num_heads: int, step_size: float = 0.5,
                                        use_gaussian: bool = True, mirror_axes: Sequence[int] | None = None,
                                        device: torch.device | str = "cpu", perform_everything_on_device: bool = True,
                                        accumulation_dtype: torch.dtype = torch.float16,
                                        progress: bool = False,
                                        on_tile: Callable[[], None] | None = None) -> torch.Tensor:
    """:func:`sliding_window_logits` with the accumulators on the device, redone on the CPU if that fails.

    On a non-CPU device with ``perform_everything_on_device``, a RuntimeError during the attempt (typically
    out of memory) empties the device cache and the whole image is predicted again with CPU accumulators (the
    network stays on the device). Otherwise the accumulators are on the CPU from the start.
    """
    device = torch.device(device)
    kwargs = dict(network=network, image=image, patch_size=patch_size, num_heads=num_heads, step_size=step_size,
                  use_gaussian=use_gaussian, mirror_axes=mirror_axes, device=device,
                  accumulation_dtype=accumulation_dtype, progress=progress, on_tile=on_tile)
    if perform_everything_on_device and device.type != "cpu":
        try:
            return sliding_window_logits(results_device=device, **kwargs)
        except RuntimeError as e:
            logger.warning("Prediction with the results on %s failed (%s); predicting this image again with the "
                           "results accumulated on the CPU.", device, str(e).splitlines()[0] if str(e) else type(e))
            _empty_cache(device)
    return sliding_window_logits(results_device=torch.device("cpu"), **kwargs)
