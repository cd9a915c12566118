"""nnU-Net 2.8.1's nibabel readers: ours (:mod:`nnunet.io.readers.nibabel_io`)."""
from __future__ import annotations

from nnunet.io.readers.nibabel_io import NibabelIO, NibabelIOWithReorient

__all__ = ["NibabelIO", "NibabelIOWithReorient"]
