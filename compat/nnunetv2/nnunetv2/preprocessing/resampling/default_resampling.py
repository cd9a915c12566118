"""nnU-Net 2.8.1's resampling functions on :mod:`nnunet.preprocessing.resampling` (the same results)."""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import numpy as np

from nnunet.constants import ANISO_THRESHOLD
from nnunet.preprocessing.resampling import compute_new_shape, lowres_axes, needs_separate_z, \
    resample_data_or_seg_to_shape, separate_z_axis

__all__ = ["compute_new_shape", "determine_do_sep_z_and_axis", "get_do_separate_z", "get_lowres_axis",
           "resample_data_or_seg", "resample_data_or_seg_to_shape", "resample_data_or_seg_to_spacing"]


def get_do_separate_z(spacing, anisotropy_threshold=ANISO_THRESHOLD) -> bool:
    return needs_separate_z(spacing, anisotropy_threshold)


def get_lowres_axis(new_spacing):
    return lowres_axes(new_spacing)


def determine_do_sep_z_and_axis(force_separate_z: bool, current_spacing, new_spacing,
                                separate_z_anisotropy_threshold: float = ANISO_THRESHOLD
                                ) -> Tuple[bool, Optional[int]]:
    """(whether one axis is resampled separately, that axis or None)."""
    axis = separate_z_axis(current_spacing, new_spacing, force_separate_z, separate_z_anisotropy_threshold)
    return axis is not None, axis


def resample_data_or_seg_to_spacing(data: np.ndarray,
                                    current_spacing: Union[Tuple[float, ...], List[float], np.ndarray],
                                    new_spacing: Union[Tuple[float, ...], List[float], np.ndarray],
                                    is_seg: bool = False, order: int = 3, order_z: int = 0,
                                    force_separate_z: Optional[bool] = False,
                                    separate_z_anisotropy_threshold: float = ANISO_THRESHOLD) -> np.ndarray:
    """A (C, X, Y, Z) array resampled from ``current_spacing`` to ``new_spacing``."""
    new_shape = compute_new_shape(data.shape[1:], current_spacing, new_spacing)
    return resample_data_or_seg_to_shape(data, new_shape, current_spacing, new_spacing, is_seg, order, order_z,
                                         force_separate_z, separate_z_anisotropy_threshold)


def resample_data_or_seg(data: np.ndarray, new_shape: Union[Tuple[float, ...], List[float], np.ndarray],
                         is_seg: bool = False, axis: Optional[int] = None, order: int = 3,
                         do_separate_z: bool = False, order_z: int = 0, dtype_out=None) -> np.ndarray:
    """A (C, X, Y, Z) array resized to ``new_shape``; with ``do_separate_z``, ``axis`` is resized with ``order_z``
    after the other two."""
    if do_separate_z and axis is None:
        raise ValueError("resample_data_or_seg(do_separate_z=True) needs the anisotropic axis (axis=0, 1 or 2)")
    spacing = [1.0] * (data.ndim - 1)
    if do_separate_z:
        spacing[axis] = 2.0  # makes ``axis`` the one coarse axis, the one resampled separately
    out = resample_data_or_seg_to_shape(data, new_shape, spacing, spacing, is_seg, order, order_z,
                                        force_separate_z=bool(do_separate_z))
    return out.astype(dtype_out if dtype_out is not None else data.dtype, copy=False)
