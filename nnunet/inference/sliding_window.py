"""Sliding-window prediction: tile positions, Gaussian weighting, padding, mirroring and accumulation.

The pieces are small functions so that each can be tested with exact values; :func:`sliding_window_logits`
puts them together for one (C, X, Y, Z) image and :func:`sliding_window_logits_with_fallback` adds the
"accumulate on the CPU when the device runs out of memory" retry.
"""
from __future__ import annotations

import contextlib
import logging
import math
from typing import Callable, Sequence

import torch
from tqdm import tqdm

from nnunet.inference.tiling import (GAUSSIAN_SIGMA_SCALE, GAUSSIAN_VALUE_SCALE, MIRROR_BATCH_VOXELS,  # noqa: F401
                                     _gaussian_float64, compute_steps_for_sliding_window, iter_tile_slicers,
                                     mirror_axis_combinations, num_tiles, padding_for_patch)

logger = logging.getLogger(__name__)


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
