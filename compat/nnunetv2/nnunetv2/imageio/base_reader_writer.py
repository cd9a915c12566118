"""nnU-Net 2.8.1's ``BaseReaderWriter``: ours (:class:`nnunet.io.readers.base.BaseReaderWriter`)."""
from __future__ import annotations

from nnunet.io.readers.base import BaseReaderWriter

__all__ = ["BaseReaderWriter"]
