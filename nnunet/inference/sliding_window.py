"""The sliding window for a torch network, as functions (what tests and nnU-Net-style callers use).

Thin wrappers over :mod:`nnunet.inference.engine` with a :class:`~nnunet.inference.torch_engine.TorchRunner`;
the tile positions and the importance map come from :mod:`nnunet.inference.tiling`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from tqdm import tqdm

from nnunet.inference import engine
from nnunet.inference.tiling import (GAUSSIAN_SIGMA_SCALE, GAUSSIAN_VALUE_SCALE, MIRROR_BATCH_VOXELS,  # noqa: F401
                                     _gaussian_float64, compute_steps_for_sliding_window, iter_tile_slicers,
                                     mirror_axis_combinations, num_tiles, padding_for_patch)
from nnunet.inference.torch_engine import TorchOps, TorchRunner, compute_gaussian  # noqa: F401


def pad_to_patch(image: torch.Tensor, patch_size: Sequence[int]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad a (C, *spatial) tensor so that it is at least ``patch_size``; also return the undo slicer.

    ``padded[slicer]`` is the original image. Nothing is copied if no padding is needed.
    """
    pads = padding_for_patch(image.shape[1:], patch_size)
    slicer = (slice(None),) + tuple(slice(before, before + size) for (before, _), size in zip(pads, image.shape[1:]))
    return TorchOps(image.device).pad(image, pads), slicer


def predict_with_mirroring(network: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                           mirror_axes: Sequence[int] | None,
                           max_batch_voxels: int | None = MIRROR_BATCH_VOXELS) -> torch.Tensor:
    """Network output for a batch ``x`` (B, C, *spatial), averaged over all flips of the spatial ``mirror_axes``
    (see :func:`nnunet.inference.engine.mirrored_prediction`).

    Raises:
        ValueError: a mirror axis that ``x`` does not have.
    """
    return engine.mirrored_prediction(network, TorchOps(x.device), x, mirror_axes, max_batch_voxels)


def sliding_window_logits(network: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                          patch_size: Sequence[int], num_heads: int, step_size: float = 0.5,
                          use_gaussian: bool = True, mirror_axes: Sequence[int] | None = None,
                          device: torch.device | str = "cpu", results_device: torch.device | str | None = None,
                          accumulation_dtype: torch.dtype = torch.float16,
                          progress: bool = False, on_tile: Callable[[], None] | None = None) -> torch.Tensor:
    """Logits of a whole (C, X, Y, Z) image, stitched from overlapping tiles (:func:`engine.predict_logits`).

    Each tile's prediction (mirror-averaged if ``mirror_axes``) is multiplied by the importance map and added
    to a ``logits_sum`` accumulator, the map itself to ``weight_sum``; the result is their quotient, cropped
    back to the unpadded image. Accumulators live on ``results_device`` (default: ``device``) in
    ``accumulation_dtype`` (float16 as in nnU-Net; float32 for more headroom); if that is an accelerator and
    the attempt fails (out of memory), the image is predicted again with the accumulators on the CPU.

    Args:
        network: maps (1, C, *patch) to (1, num_heads, *patch); called under ``torch.inference_mode``.
        image: (C, X, Y, Z) float tensor (a 2-D configuration gets (C, 1, X, Y) or (C, N, X, Y) and a 2-axis patch).
        patch_size: tile size (2 or 3 axes).
        num_heads: number of output channels.
        device: where the network runs. results_device: where the accumulators live.
        progress: show a bar over the tiles. on_tile: called after every tile (e.g. a caller's progress bar).

    Returns:
        (num_heads, X, Y, Z) tensor of ``accumulation_dtype`` on the accumulators' device.

    Raises:
        RuntimeError: the accumulated logits overflowed (inf).
    """
    device = torch.device(device)
    on_device = results_device is None or torch.device(results_device) == device
    runner = TorchRunner(network, None, TorchOps(device, accumulate_on_device=on_device))
    settings = engine.WindowSettings(tuple(patch_size), num_heads, step_size, use_gaussian,
                                     tuple(mirror_axes) if mirror_axes else None, engine.dtype_name(accumulation_dtype))
    with tqdm(total=num_tiles(image.shape[1:], patch_size, step_size) if progress else None, disable=not progress,
              desc="tiles", leave=False) as bar:
        def tile_done() -> None:
            bar.update()
            if on_tile is not None:
                on_tile()
        return engine.predict_logits([runner], image, settings, tile_done, to_host=False)
