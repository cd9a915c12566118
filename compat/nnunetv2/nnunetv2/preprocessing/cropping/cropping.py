"""nnU-Net 2.8.1's cropping helpers: ours (:mod:`nnunet.preprocessing.cropping`)."""
from __future__ import annotations

from nnunet.preprocessing.cropping import create_nonzero_mask, crop_to_nonzero

__all__ = ["create_nonzero_mask", "crop_to_nonzero"]
