"""nnU-Net 2.8.1's ``no_resampling_hack`` (the data as given) on ours in :mod:`nnunet.preprocessing.resampling`."""
from __future__ import annotations

from nnunet.preprocessing.resampling import no_resampling_hack as _no_resampling

__all__ = ["no_resampling_hack"]


def no_resampling_hack(data, new_shape, current_spacing, new_spacing):
    return _no_resampling(data, new_shape, current_spacing, new_spacing)
