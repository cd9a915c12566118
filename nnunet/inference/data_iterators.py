"""Preprocessing of the inputs for prediction, inline or in background processes.

Every case runs the configuration's preprocessor (transpose -> crop -> normalize -> resample, exactly as for
training). For cascaded configurations the previous stage's segmentation goes through the preprocessor's
segmentation slot and is then one-hot encoded over the foreground labels and appended as extra channels.

This module imports no torch, so spawned preprocessing workers start quickly.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from collections import deque
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from nnunet.errors import NnunetError
from nnunet.io.labels import LabelManager
from nnunet.planning.plans import Configuration, Plans
from nnunet.registry import PREPROCESSORS
from nnunet.utils.files import OutputError, describe_os_error
from nnunet.utils.pool import spawn_pool, stop_pool_now


def append_previous_stage(data: np.ndarray, seg: np.ndarray, label_manager: LabelManager) -> np.ndarray:
    """Concatenate the one-hot encoding of ``seg`` ((1, ...), -1 outside the crop) over the foreground labels.

    Voxels with -1 or 0 get all-zero channels.
    """
    one_hot = np.zeros((len(label_manager.foreground_labels), *seg.shape[1:]), dtype=data.dtype)
    for i, label in enumerate(label_manager.foreground_labels):
        one_hot[i] = seg[0] == label
    return np.concatenate([data, one_hot])


def _preprocessor(configuration: Configuration, verbose: bool):
    return PREPROCESSORS.get(configuration.preprocessor_name)(verbose=verbose)


def preprocess_files(image_files: Sequence[str], previous_stage_file: str | None, plans: Plans,
                     configuration: Configuration, dataset_json: dict[str, Any],
                     verbose: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Read and preprocess one case: (C(+foreground labels), X, Y, Z) float32 data and its properties."""
    data, seg, properties = _preprocessor(configuration, verbose).run_case(
        image_files, previous_stage_file, plans, configuration, dataset_json)
    if previous_stage_file is not None:
        data = append_previous_stage(data, seg, plans.label_manager(dataset_json))
    properties.pop("class_locations", None)  # computed because a segmentation was given; not needed here
    return np.ascontiguousarray(data, dtype=np.float32), properties


def preprocess_arrays(image: np.ndarray, previous_stage_seg: np.ndarray | None, properties: dict[str, Any],
                      plans: Plans, configuration: Configuration, dataset_json: dict[str, Any],
                      verbose: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Like :func:`preprocess_files` for an image already read (C, X, Y, Z) with properties (``spacing`` at least)."""
    seg = None
    if previous_stage_seg is not None:
        seg = np.asarray(previous_stage_seg)
        if seg.ndim == image.ndim - 1:
            seg = seg[None]
    data, seg, properties = _preprocessor(configuration, verbose).run_case_npy(
        np.array(image, dtype=np.float32), seg, dict(properties), plans, configuration, dataset_json)
    if previous_stage_seg is not None:
        data = append_previous_stage(data, seg, plans.label_manager(dataset_json))
    properties.pop("class_locations", None)
    return np.ascontiguousarray(data, dtype=np.float32), properties


#: a worker's preprocessed array larger than this goes to the consumer as a .npy file in the hand-over folder
#: (sending it through the pipe holds a pickled copy in both processes; the file can be memory-mapped)
HANDOVER_BYTES = 512 * 1024 ** 2


def run_and_hand_over(fn: Callable[..., tuple[np.ndarray, dict]], handover: str | None,
                      *args: Any) -> tuple[np.ndarray | str, dict]:
    """``fn(*args)`` in a worker; a large result array is saved to ``handover`` and its path returned instead."""
    data, properties = fn(*args)
    if handover is not None and data.nbytes > HANDOVER_BYTES:
        path = os.path.join(handover, f"{uuid.uuid4().hex}.npy")
        try:
            np.save(path, data)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.remove(path)
            raise OutputError(describe_os_error(e, path) + " (a preprocessed case handed to the predicting "
                              "process)") from None
        return path, properties
    return data, properties


def iterate_in_order(fn: Callable[..., tuple[np.ndarray, dict]], jobs: Sequence[tuple], output_files: Sequence,
                     num_processes: int, handover: str | os.PathLike | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``{"data", "data_properties", "ofile"}`` for every job, in order.

    With ``num_processes <= 0`` each case is preprocessed here when it is needed. Otherwise the first case is
    preprocessed here while a spawn pool starts and works ahead on the others, at most ``num_processes + 1``
    cases ahead of the consumer, so memory stays bounded. With a ``handover`` folder, workers pass arrays over
    :data:`HANDOVER_BYTES` as .npy files there; ``data`` is then the file's path (the consumer loads and deletes
    it).
    """
    if num_processes <= 0 or len(jobs) == 0:
        for args, ofile in zip(jobs, output_files):
            data, properties = fn(*args)
            yield {"data": data, "data_properties": properties, "ofile": ofile}
        return
    with spawn_pool(min(num_processes, len(jobs))) as pool:
        pending: deque[Future] = deque()
        next_job = 1

        def top_up() -> None:
            nonlocal next_job
            while next_job < len(jobs) and len(pending) <= num_processes:
                pending.append(pool.submit(run_and_hand_over, fn, None if handover is None else str(handover),
                                           *jobs[next_job]))
                next_job += 1

        try:
            top_up()
            for index, ofile in enumerate(output_files):
                if index == 0:  # here, while the workers start: a worker needs about a second to import its modules
                    data, properties = fn(*jobs[0])
                else:
                    top_up()
                    data, properties = pending.popleft().result()
                yield {"data": data, "data_properties": properties, "ofile": ofile}
        except BrokenProcessPool:
            raise NnunetError("A preprocessing worker died, most likely because it ran out of memory. Use fewer "
                              "preprocessing processes (-npp).") from None
        except (KeyboardInterrupt, GeneratorExit):  # Ctrl-C, or the consumer stopped early: stop the workers now
            stop_pool_now(pool)
            raise
        finally:
            for future in pending:
                future.cancel()


def case_label(image_files: Sequence[str | os.PathLike]) -> str:
    return os.path.basename(str(image_files[0])) if image_files else "?"
