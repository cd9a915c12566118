"""The CPU runtimes (OpenVINO, ONNX Runtime) that run an exported network, and a head start for them.

This module imports no torch. The prediction commands call :func:`start_compiling_cached` first thing, so that
the runtime is imported and the fold's cached conversion compiled in a background thread while the main thread
is still importing torch (about 1 s of a 2-core machine's start-up that would otherwise come after it).
:func:`make_runner` then takes that result if it is for the same file, runtime and thread count; otherwise it
compiles as usual. The head start never decides anything: which file is valid for a checkpoint is decided
later by :mod:`nnunet.inference.backends`, which only asks for the file it has checked.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

#: sub-folder of a fold folder that holds the exported networks
CACHE_FOLDER = ".nnunet_cache"

Runner = Callable[[np.ndarray], np.ndarray]

_started: dict[tuple[str, str, int], Future] = {}


def _openvino_runner(onnx_file: Path, threads: int) -> Runner:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
                                   "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})[0].copy()


def _onnxruntime_runner(onnx_file: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"tile": x})[0]


_RUNNERS = {"openvino": _openvino_runner, "onnxruntime": _onnxruntime_runner}


def make_runner(backend: str, onnx_file: Path, threads: int) -> Runner:
    """A function (B, C, *patch) float32 array -> logits array, running ``onnx_file`` with ``backend``."""
    future = _started.pop((backend, str(onnx_file), threads), None)
    if future is not None:
        try:
            return future.result()
        except Exception:  # compile again here, so that an error surfaces where it is expected, with its message
            pass
    return _RUNNERS[backend](Path(onnx_file), threads)


def drop_head_starts() -> None:
    """Forget compiled networks nobody asked for (their checkpoint changed, or another thread count was used)."""
    _started.clear()


def default_threads() -> int:
    """The thread count prediction will most likely use (torch's default: OMP_NUM_THREADS, else the CPUs)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def start_compiling_cached(backend: str, checkpoints: Iterable[Path], threads: int) -> None:
    """Compile, in a background thread, the one cached conversion of each checkpoint that has exactly one.

    Nothing happens for the torch backend, for a runtime that is not installed (the prediction reports that
    itself) or for checkpoints without a cached conversion (the first run exports it).
    """
    if backend not in _RUNNERS:
        return
    files = []
    for checkpoint in checkpoints:
        found = list((Path(checkpoint).parent / CACHE_FOLDER).glob(f"{Path(checkpoint).name}.*.onnx"))
        if len(found) == 1:
            files.append(found[0])
    if not files:
        return
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnunet-compile")
    for onnx_file in files:
        _started[(backend, str(onnx_file), threads)] = executor.submit(_RUNNERS[backend], onnx_file, threads)
    executor.shutdown(wait=False)
