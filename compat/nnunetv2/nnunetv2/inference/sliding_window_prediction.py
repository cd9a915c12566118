"""nnU-Net 2.8.1's ``nnunetv2.inference.sliding_window_prediction`` on :mod:`nnunet.inference.sliding_window`."""
from __future__ import annotations

from functools import lru_cache
from typing import List, Tuple, Union

import torch

from nnunet.inference import sliding_window as _sliding_window
from nnunet.inference import tiling as _tiling

__all__ = ["compute_gaussian", "compute_steps_for_sliding_window"]


@lru_cache(maxsize=2)  # as in 2.8.1, so that programs calling compute_gaussian.cache_clear() work
def compute_gaussian(tile_size: Union[Tuple[int, ...], List[int]], sigma_scale: float = 1. / 8,
                     value_scaling_factor: float = 1, dtype=torch.float16, device=torch.device("cuda", 0)) \
        -> torch.Tensor:
    """Gaussian importance map of ``tile_size`` with maximum ``value_scaling_factor`` (the predictor uses 10)."""
    return _sliding_window.compute_gaussian(tile_size, sigma_scale, value_scaling_factor, dtype, device)


def compute_steps_for_sliding_window(image_size: Tuple[int, ...], tile_size: Tuple[int, ...],
                                     tile_step_size: float) -> List[List[int]]:
    return _tiling.compute_steps_for_sliding_window(image_size, tile_size, tile_step_size)
