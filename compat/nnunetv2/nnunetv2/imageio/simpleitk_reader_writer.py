"""nnU-Net 2.8.1's SimpleITK readers: ours (:mod:`nnunet.io.readers.simpleitk`)."""
from __future__ import annotations

from nnunet.io.readers.simpleitk import SimpleITKIO, SimpleITKIOWithReorient

__all__ = ["SimpleITKIO", "SimpleITKIOWithReorient"]
