"""nnU-Net 2.8.1's 2-D natural image reader: ours (:mod:`nnunet.io.readers.natural2d`)."""
from __future__ import annotations

from nnunet.io.readers.natural2d import NaturalImage2DIO

__all__ = ["NaturalImage2DIO"]
