"""nnU-Net 2.8.1's ``nnunetv2.imageio.reader_writer_registry`` on :mod:`nnunet.io.readers`.

Classes are found by name in our reader registry (``overwrite_image_reader_writer``, dotted paths), and by file
ending in 2.8.1's order. ``verbose`` is accepted and not used; failures raise our DatasetError or
ConfigurationError (RuntimeError in 2.8.1).
"""
from __future__ import annotations

from typing import Type

from nnunet.errors import DatasetError as _DatasetError
from nnunet.io import readers as _readers
from nnunet.io.readers import NaturalImage2DIO, NibabelIO, NibabelIOWithReorient, SimpleITKIO, Tiff3DIO
from nnunet.io.readers.base import BaseReaderWriter

__all__ = ["LIST_OF_IO_CLASSES", "determine_reader_writer_from_dataset_json",
           "determine_reader_writer_from_file_ending", "recursive_find_reader_writer_by_name"]

LIST_OF_IO_CLASSES = [NaturalImage2DIO, SimpleITKIO, Tiff3DIO, NibabelIO, NibabelIOWithReorient]


def determine_reader_writer_from_dataset_json(dataset_json_content: dict, example_file: str = None,
                                              allow_nonmatching_filename: bool = False,
                                              verbose: bool = True) -> Type[BaseReaderWriter]:
    name = dataset_json_content.get("overwrite_image_reader_writer")
    if name not in (None, "None") and name in _readers.READERS:
        return _readers.reader_class(name)
    return determine_reader_writer_from_file_ending(dataset_json_content["file_ending"], example_file,
                                                    allow_nonmatching_filename, verbose)


def determine_reader_writer_from_file_ending(file_ending: str, example_file: str = None,
                                             allow_nonmatching_filename: bool = False, verbose: bool = True):
    """The first reader for ``file_ending`` that reads ``example_file``; with ``allow_nonmatching_filename``,
    then any reader that reads it."""
    try:
        return _readers.determine_reader(file_ending, example_file)
    except _DatasetError:
        if not (allow_nonmatching_filename and example_file is not None):
            raise
    for name in _readers.AUTO_ORDER:
        cls = _readers.reader_class(name)
        try:
            cls().read_images([example_file])
            return cls
        except Exception:  # noqa: BLE001 - any reader error means: not this reader
            continue
    raise _DatasetError(f"No image reader/writer can read {example_file} (file ending {file_ending!r}).")


def recursive_find_reader_writer_by_name(rw_class_name: str) -> Type[BaseReaderWriter]:
    return _readers.reader_class(rw_class_name)
