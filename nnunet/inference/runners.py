"""The CPU runtimes (OpenVINO, ONNX Runtime) that run an exported network, its cache, and a head start.

This module imports no torch. The prediction commands call :func:`start_compiling_cached` first thing, so that
the runtime is imported and the fold's cached conversion compiled in a background thread while the main thread
is still importing torch (about 1 s of a 2-core machine's start-up that would otherwise come after it).
:func:`make_runner` then takes that result if it is for the same file, runtime and thread count; otherwise it
compiles as usual. The head start never decides anything: which file is valid for a checkpoint is decided
later (:func:`find_cached_export`), and only the file it has checked is asked for.

The cached conversions live in ``fold_X/.nnunet_cache/<checkpoint>.<key>.onnx``; the key hashes the
checkpoint's bytes, the trainer, the input shape and the torch version, so a changed checkpoint gets a new
export. Next to each, ``<...>.onnx.json`` records what prediction needs from the checkpoint (trainer,
configuration, mirror axes), so that a later run with the same checkpoint neither loads it nor imports torch.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

#: sub-folder of a fold folder that holds the exported networks
CACHE_FOLDER = ".nnunet_cache"
#: bump when the export itself changes, so that older cached files are not used
EXPORT_VERSION = 1
ONNX_OPSET = 17

Runner = Callable[[np.ndarray], np.ndarray]

_started: dict[tuple[str, str, int], Future] = {}


def openvino_config(threads: int) -> dict[str, Any]:
    """How the CPU plugin compiles a fold: float32 (bf16 would no longer agree with torch), one request at a time."""
    return {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}


def _openvino_runner(onnx_file: Path, threads: int) -> Runner:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", openvino_config(threads))
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
    """torch's default thread count, without importing torch: OMP_NUM_THREADS, else the usable CPUs."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def prediction_threads() -> int:
    """Threads a runtime gets: torch's setting when torch is loaded (a caller may have chosen it), else its
    default; at most ``default_num_processes()``, the cap prediction puts on torch's threads too."""
    from nnunet.constants import default_num_processes

    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else default_threads()
    return max(1, min(default_num_processes(), threads))


# ----------------------------------------------------------------------------------------------- the cache

def torch_version() -> str:
    """The installed torch's version, read from its package metadata (importing torch takes seconds)."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:  # a source build without metadata
        import torch

        return torch.__version__


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(checkpoint: Path, trainer_name: str, input_shape: Sequence[int]) -> str:
    """Hash of everything the exported file depends on (16 hex digits)."""
    parts = [file_digest(checkpoint), trainer_name, "x".join(map(str, input_shape)), torch_version(),
             str(ONNX_OPSET), str(EXPORT_VERSION)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cached_export_path(checkpoint: Path, key: str) -> Path:
    return checkpoint.parent / CACHE_FOLDER / f"{checkpoint.name}.{key}.onnx"


def cached_exports(checkpoint: Path) -> list[Path]:
    """The conversions cached for ``checkpoint`` (normally one; none before the first run)."""
    return sorted((Path(checkpoint).parent / CACHE_FOLDER).glob(f"{Path(checkpoint).name}.*.onnx"))


def sidecar_path(onnx_file: Path) -> Path:
    return onnx_file.with_name(onnx_file.name + ".json")


def read_sidecar(onnx_file: Path) -> dict[str, Any] | None:
    """The checkpoint facts stored next to a cached conversion; None if absent or unreadable."""
    try:
        info = json.loads(sidecar_path(onnx_file).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("trainer_name"), str) \
            or not isinstance(info.get("configuration"), str):
        return None
    axes = info.get("inference_allowed_mirroring_axes")  # not part of the key, so checked here
    if axes is not None and not (isinstance(axes, list) and all(type(a) is int and a >= 0 for a in axes)):
        return None
    return info


def find_cached_export(checkpoint: Path, input_shape_of: Callable[[str], Sequence[int]]) -> tuple[Path, dict] | None:
    """The current cached conversion of ``checkpoint`` and its sidecar facts, or None.

    ``input_shape_of(configuration)`` gives the network's input shape for a configuration name. The file is
    current when its key equals the key of the checkpoint as it is now, with the trainer its sidecar names.
    """
    found = cached_exports(checkpoint)
    if len(found) != 1:
        return None
    info = read_sidecar(found[0])
    if info is None:
        return None
    try:
        key = cache_key(Path(checkpoint), info["trainer_name"], input_shape_of(info["configuration"]))
    except Exception:  # a configuration the plans do not have: not ours to explain here, load the checkpoint
        return None
    return (found[0], info) if found[0] == cached_export_path(Path(checkpoint), key) else None


def start_compiling_cached(backend: str, checkpoints: Iterable[Path], threads: int) -> None:
    """Compile, in a background thread, the one cached conversion of each checkpoint that has exactly one.

    Nothing happens for the torch backend, for a runtime that is not installed (the prediction reports that
    itself) or for checkpoints without a cached conversion (the first run exports it).
    """
    if backend not in _RUNNERS:
        return
    files = []
    for checkpoint in checkpoints:
        found = cached_exports(checkpoint)
        if len(found) == 1:
            files.append(found[0])
    if not files:
        return
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnunet-compile")
    for onnx_file in files:
        _started[(backend, str(onnx_file), threads)] = executor.submit(_RUNNERS[backend], onnx_file, threads)
    executor.shutdown(wait=False)


def write_sidecar(onnx_file: Path, trainer_name: str, configuration: str,
                  mirror_axes: Sequence[int] | None) -> None:
    """Record next to a cached conversion what prediction needs from its checkpoint (atomically)."""
    from nnunet.utils.files import publish

    info = {"trainer_name": trainer_name, "configuration": configuration,
            "inference_allowed_mirroring_axes": list(mirror_axes) if mirror_axes is not None else None}
    if read_sidecar(onnx_file) == info:
        return
    with publish(sidecar_path(onnx_file)) as tmp:
        tmp.write_text(json.dumps(info, indent=1))
