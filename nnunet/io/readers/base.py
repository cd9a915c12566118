"""The reader/writer interface every image format implements."""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

from nnunet.errors import DatasetError


class BaseReaderWriter(ABC):
    """Reads images as ``(C, X, Y, Z)`` float32 and segmentations as ``(1, X, Y, Z)``; writes segmentations.

    ``properties["spacing"]`` (three floats, in array-axis order) is always set by ``read_images``/``read_seg``.
    Subclasses list the lower-case file endings they can handle in ``supported_file_endings``.
    """

    supported_file_endings: tuple[str, ...] = ()

    @abstractmethod
    def read_images(self, image_files: Sequence[str | os.PathLike]) -> tuple[np.ndarray, dict[str, Any]]:
        """Read the channel files of one case into a (C, X, Y, Z) float32 array and its properties."""

    @abstractmethod
    def read_seg(self, seg_file: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
        """Read a segmentation into a (1, X, Y, Z) float32 array and its properties."""

    @abstractmethod
    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: dict[str, Any]) -> None:
        """Write an integer segmentation of shape (X, Y, Z) (2-D data: (1, X, Y)) with the original geometry."""

    @staticmethod
    def seg_dtype(seg: np.ndarray) -> type:
        return np.uint8 if seg.max(initial=0) < 255 else np.uint16


def check_channels_agree(files: Sequence, shapes: Sequence, spacings: Sequence) -> None:
    """Raise :class:`~nnunet.errors.DatasetError` unless the channel files of one case share shape and spacing."""
    for what, values, differ in (("shape", shapes, lambda v: v != shapes[0]),
                                 ("spacing", spacings, lambda v: not np.allclose(v, spacings[0]))):
        if any(differ(v) for v in values):
            raise DatasetError(f"The channel files of one case differ in {what}: "
                               f"{ {str(f): v for f, v in zip(files, values)} }")

