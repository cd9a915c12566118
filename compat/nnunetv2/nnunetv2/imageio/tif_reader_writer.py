"""nnU-Net 2.8.1's 3-D TIFF reader: ours (:mod:`nnunet.io.readers.tiff`)."""
from __future__ import annotations

from nnunet.io.readers.tiff import Tiff3DIO

__all__ = ["Tiff3DIO"]
