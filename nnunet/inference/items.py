"""The items the predictor's entry points predict: a call's cases, checked, then preprocessed in order.

An item is ``{"data", "data_properties", "ofile"}``, what :func:`nnunet.inference.cases.predict_items` takes.
``preprocessing`` is ``(plans, configuration, dataset_json, verbose)``, the arguments every preprocessing job
ends with (:func:`~nnunet.inference.data_iterators.preprocess_files`, ``preprocess_arrays``).
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import numpy as np

from nnunet.inference import cases, coercion, data_iterators


@contextlib.contextmanager
def file_items(todo: cases.FileCases, preprocessing: tuple, processes: int) -> Iterator[Iterator[dict[str, Any]]]:
    """The cases of ``todo`` preprocessed in ``processes`` background processes (0: here), in order; the
    workers hand large arrays over through a private folder next to the outputs, removed at the end."""
    jobs = [(files, previous, *preprocessing) for files, previous in zip(todo.files, todo.previous)]
    with cases.handover_folder(todo.output_folder, processes > 0) as handover:
        yield data_iterators.iterate_in_order(data_iterators.preprocess_files, jobs, todo.ofiles, processes,
                                              handover)


def array_items(images: Any, segmentations: Any, properties: Any, names: Any, preprocessing: tuple, channels: int,
                processes: int) -> tuple[Iterator[dict[str, Any]], int]:
    """The items of ``predict_from_list_of_npy_arrays`` (one value or a list each) and their number, preprocessed
    in at most ``processes`` background processes. Everything is checked before the first case is preprocessed.
    """
    images, segmentations, properties, names = coercion.array_cases(images, segmentations, properties, names)
    for i, (image, p) in enumerate(zip(images, properties)):
        coercion.check_array(image, p, channels, f"image {i}")
    coercion.check_previous_stage(preprocessing[1], any(s is None for s in segmentations),
                                  "the previous stage's segmentation for every image")
    jobs = [(image, seg, p, *preprocessing) for image, seg, p in zip(images, segmentations, properties)]
    iterator = data_iterators.iterate_in_order(data_iterators.preprocess_arrays, jobs,
                                               [str(n) if n is not None else None for n in names],
                                               min(processes, len(jobs)))
    return iterator, len(jobs)


def single_item(image: np.ndarray, properties: dict[str, Any], segmentation: np.ndarray | None,
                ofile: str | os.PathLike | None, preprocessing: tuple, channels: int) -> dict[str, Any]:
    """The one item of ``predict_single_npy_array``, checked and preprocessed here."""
    coercion.check_array(image, properties, channels, "the image")
    coercion.check_previous_stage(preprocessing[1], segmentation is None, "segmentation_previous_stage")
    data, data_properties = data_iterators.preprocess_arrays(image, segmentation, properties, *preprocessing)
    return {"data": data, "data_properties": data_properties, "ofile": str(ofile) if ofile is not None else None}
