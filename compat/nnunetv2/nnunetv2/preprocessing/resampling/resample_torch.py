"""nnU-Net 2.8.1's torch resampling on :mod:`nnunet.preprocessing.resampling_torch`."""
from __future__ import annotations

from typing import List, Tuple, Union

import numpy as np

from nnunet.preprocessing.resampling_torch import resample_torch_fornnunet

__all__ = ["resample_torch_fornnunet", "resample_torch_simple"]


def resample_torch_simple(data, new_shape: Union[Tuple[int, ...], List[int], np.ndarray], is_seg: bool = False,
                          num_threads: int = 4, device=None, memefficient_seg_resampling: bool = False,
                          mode="linear"):
    """``interpolate`` of a (C, *spatial) array or tensor to ``new_shape``, all axes at once."""
    ones = [1.0] * (len(data.shape) - 1)
    return resample_torch_fornnunet(data, new_shape, ones, ones, is_seg, num_threads, device,
                                    memefficient_seg_resampling, force_separate_z=False, mode=mode)
