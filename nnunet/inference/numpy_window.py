"""The sliding window in numpy, for networks run by OpenVINO or ONNX Runtime (no torch in the process).

It is :func:`nnunet.inference.sliding_window.sliding_window_logits` on the CPU, operation for operation: the
same tiles in the same order (:mod:`nnunet.inference.tiling`), the same importance map, the mirrored copies
summed in the same order, and the accumulators in the same dtype with the same float32 intermediate results,
so the logits are the same numbers. Prediction with a cached export therefore never needs to import torch,
which is a good part of a CPU run's start-up.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from nnunet.inference.tiling import (MIRROR_BATCH_VOXELS, gaussian_weights, iter_tile_slicers,
                                     mirror_axis_combinations, padding_for_patch)

#: a network as the runtimes run it: (B, C, *patch) float32 -> (B, heads, *patch) float32
ArrayNetwork = Callable[[np.ndarray], np.ndarray]


def predict_with_mirroring(network: ArrayNetwork, x: np.ndarray, mirror_axes: Sequence[int] | None,
                           max_batch_voxels: int | None = MIRROR_BATCH_VOXELS) -> np.ndarray:
    """``network(x)`` averaged over all flips of the spatial ``mirror_axes`` (see the torch version)."""
    if not mirror_axes:
        return network(x)
    num_spatial = x.ndim - 2
    if max(mirror_axes) >= num_spatial or min(mirror_axes) < 0:
        raise ValueError(f"Mirror axes {tuple(mirror_axes)} do not fit an input with {num_spatial} spatial axes.")
    flips = [()] + mirror_axis_combinations([a + 2 for a in mirror_axes])
    tile_voxels = x.shape[0] * int(np.prod(x.shape[2:]))
    per_pass = max(1, max_batch_voxels // tile_voxels) if max_batch_voxels else 1
    prediction = None
    for start in range(0, len(flips), per_pass):
        group = flips[start:start + per_pass]
        outputs = network(np.ascontiguousarray(np.concatenate([np.flip(x, dims) for dims in group])))
        for i, dims in enumerate(group):
            output = np.flip(outputs[i * x.shape[0]:(i + 1) * x.shape[0]], dims)
            if prediction is None:
                prediction = output.copy()
            else:
                prediction += output
    prediction /= np.float32(len(flips))
    return prediction


def sliding_window_logits(network: ArrayNetwork, image: np.ndarray, patch_size: Sequence[int], num_heads: int,
                          step_size: float = 0.5, use_gaussian: bool = True,
                          mirror_axes: Sequence[int] | None = None, accumulation_dtype: type = np.float16,
                          on_tile: Callable[[], None] | None = None) -> np.ndarray:
    """Logits (num_heads, *spatial) of ``accumulation_dtype`` for a (C, *spatial) float32 image.

    Raises:
        RuntimeError: the accumulated logits overflowed (inf).
    """
    pads = padding_for_patch(image.shape[1:], patch_size)
    data = np.pad(image, [(0, 0)] + pads) if any(b or a for b, a in pads) else image
    unpad = (slice(None),) + tuple(slice(b, b + s) for (b, _), s in zip(pads, image.shape[1:]))
    spatial = data.shape[1:]
    logits_sum = np.zeros((num_heads, *spatial), dtype=accumulation_dtype)
    weight_sum = np.zeros(spatial, dtype=accumulation_dtype)
    weights = gaussian_weights(patch_size, accumulation_dtype) if use_gaussian else None
    for index in iter_tile_slicers(spatial, patch_size, step_size):
        tile = np.ascontiguousarray(data[index][None], dtype=np.float32)
        prediction = predict_with_mirroring(network, tile, mirror_axes)[0]
        if weights is not None:
            prediction *= weights
            weight_sum[index[1:]] += weights
        else:
            weight_sum[index[1:]] += 1
        logits_sum[index] += prediction
        if on_tile is not None:
            on_tile()
    np.divide(logits_sum, weight_sum, out=logits_sum)
    if np.isinf(logits_sum).any():
        raise RuntimeError("The accumulated logits overflowed (inf). Accumulate in float32 "
                           "(accumulation_dtype=torch.float32) or lower the importance-map scale.")
    return logits_sum[unpad]
