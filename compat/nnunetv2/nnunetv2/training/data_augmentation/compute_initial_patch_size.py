"""nnU-Net 2.8.1's ``get_patch_size`` on :func:`nnunet.training.augmentation.initial_patch_size`."""
from __future__ import annotations

import numpy as np

from nnunet.training.augmentation import initial_patch_size

__all__ = ["get_patch_size"]


def _largest(angle) -> float:
    return float(max(abs(a) for a in angle)) if isinstance(angle, (tuple, list)) else abs(float(angle))


def get_patch_size(final_patch_size, rot_x, rot_y, rot_z, scale_range) -> np.ndarray:
    """The patch to crop so that rotating (radians, a range or its bound) and scaling still fill
    ``final_patch_size``. 2-D patches use ``rot_x`` only; 3-D patches need one angle for all three axes (what
    nnU-Net's trainers pass), different angles per axis are not supported."""
    if len(final_patch_size) == 3 and len({_largest(rot_x), _largest(rot_y), _largest(rot_z)}) > 1:
        raise NotImplementedError(f"get_patch_size with different rotations per axis ({rot_x}, {rot_y}, {rot_z}) is "
                                  f"not provided by nnunet's nnunetv2 namespace; pass the same range for all axes")
    return np.array(initial_patch_size(final_patch_size, _largest(rot_x), scale_range), dtype=int)
