"""nnU-Net 2.8.1's resampling functions on :mod:`nnunet.preprocessing.resampling` (the same results)."""
from __future__ import annotations

from nnunet.preprocessing.resampling import compute_new_shape, lowres_axes, needs_separate_z, \
    resample_data_or_seg_to_shape

__all__ = ["compute_new_shape", "get_do_separate_z", "get_lowres_axis", "resample_data_or_seg_to_shape"]


def get_do_separate_z(spacing, anisotropy_threshold=3) -> bool:
    return needs_separate_z(spacing, anisotropy_threshold)


def get_lowres_axis(new_spacing):
    return lowres_axes(new_spacing)
