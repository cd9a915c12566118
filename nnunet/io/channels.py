"""The channel count of a case must be the one dataset.json declares (checked whenever a case is read).

Readers return whatever a file holds: an RGB PNG gives three channels, a 4-D NIfTI gives one channel per volume.
A dataset that declares one channel but has such a file among its cases would otherwise fail later with an index
error, or be preprocessed with misaligned channels. This check costs nothing for good cases; only when the
count is wrong are the files read one by one to name the culprit.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from nnunet.errors import DatasetError
from nnunet.io.readers.base import BaseReaderWriter


def check_case_channels(reader: BaseReaderWriter, data: np.ndarray, image_files: Sequence[str | os.PathLike],
                        channel_names: dict[str, str], seg: np.ndarray | None = None,
                        seg_file: str | os.PathLike | None = None) -> None:
    """Raise :class:`DatasetError` naming the file when a case's image (or segmentation) channels are wrong.

    Args:
        reader: the reader that read the case (used to re-read single files when the count is wrong).
        data: the case's images as read, ``(C, ...)``.
        image_files: the case's image files.
        channel_names: ``dataset.json["channel_names"]``.
        seg, seg_file: the case's segmentation as read (``(1, ...)`` expected) and its file.
    """
    expected = len(channel_names)
    if data.shape[0] != expected:
        raise DatasetError(_image_problem(reader, image_files, expected, channel_names, data.shape[0]))
    if seg is not None and seg.shape[0] != 1:
        raise DatasetError(f"{seg_file}: a segmentation must have one channel, but this file holds {seg.shape[0]} "
                           f"({_what(Path(str(seg_file)), seg.shape[0])}). Save it as a single label map.")


def _what(path: Path, channels: int) -> str:
    if path.suffix.lower() in (".png", ".bmp", ".tif", ".tiff", ".jpg") and channels in (3, 4):
        return "an RGB image" if channels == 3 else "an RGBA image"
    return f"a {channels}-channel (4-D) image"


def _image_problem(reader: BaseReaderWriter, image_files: Sequence[str | os.PathLike], expected: int,
                   channel_names: dict[str, str], found: int) -> str:
    declared = f"dataset.json declares {expected} channel{'s' if expected != 1 else ''} " \
               f"({', '.join(channel_names.values())})"
    if len(image_files) > 1 or expected == 1:
        for f in image_files:
            channels = reader.read_images([f])[0].shape[0]
            if channels > 1 and (len(image_files) > 1 or channels != expected):
                path = Path(str(f))
                fix = ("convert it to grey values" if _what(path, channels).startswith("an RGB")
                       else "give each channel its own file (CASE_0000, CASE_0001, ...; nnUNet_convert_MSD_dataset "
                            "does this for Decathlon tasks)")
                return (f"{path} holds {channels} channels ({_what(path, channels)}), but {declared} and every case "
                        f"needs exactly these, one file per channel: {fix}.")
    files = ", ".join(str(f) for f in image_files)
    return f"The case with the files {files} has {found} channel{'s' if found != 1 else ''}, but {declared}."
