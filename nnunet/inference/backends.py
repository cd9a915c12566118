"""Where the network's forward passes run: torch (any device), or OpenVINO / ONNX Runtime on the CPU.

The fast CPU backends run the same network exported to ONNX (float32, opset 17, the batch axis dynamic, the
spatial axes fixed to the patch size, which is what every tile has). The export is made once per fold and
cached next to the checkpoint (see :mod:`nnunet.inference.runners` for the file names and the key), so a
changed checkpoint gets a new export and the stale one is deleted. A model folder that cannot be written
(shared, read-only) is exported into a temporary folder for each run instead.

torch is imported only where a network is exported: a run whose folds are all cached does not need it.

OpenVINO is told to compute in float32 (``INFERENCE_PRECISION_HINT f32``): on CPUs with bfloat16 or AMX units
it would otherwise pick bfloat16, and the predictions would no longer agree with torch.
"""
from __future__ import annotations

import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from nnunet.errors import ConfigurationError, exception_line
from nnunet.inference.engine import ArrayRunner
from nnunet.inference.runners import (CACHE_FOLDER, cache_key, cached_export_path,  # noqa: F401
                                      drop_head_starts, make_runner, sidecar_path, write_sidecar)
from nnunet.utils.files import OutputError, publish

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "openvino", "onnxruntime")
_INSTALL = {"openvino": "pip install 'nnunet-fast[openvino]' (the openvino package, about 60 MB)",
            "onnxruntime": "pip install 'nnunet-fast[onnxruntime]' (the onnxruntime package, about 20 MB)"}


class BackendError(ConfigurationError):
    """A backend that is unknown, not installed, or asked for on a device it does not support."""


def device_type(device: torch.device | str) -> str:
    """``"cuda"`` for ``"cuda:1"`` or ``torch.device("cuda")``, without importing torch."""
    return device.type if hasattr(device, "type") else str(device).split(":")[0]


def runs_on_torch(backend: str) -> bool:
    """Whether ``backend`` runs the torch network itself (else an OpenVINO / ONNX Runtime compilation of it)."""
    return backend == "torch"


def check_backend(backend: str, device: torch.device | str) -> None:
    """Raise :class:`BackendError` unless ``backend`` can run on ``device`` here (package installed)."""
    if backend not in BACKENDS:
        raise BackendError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if runs_on_torch(backend):
        return
    if device_type(device) != "cpu":
        raise BackendError(f"The {backend} backend runs on the CPU; use -device cpu (or -backend torch on "
                           f"{device_type(device)}).")
    # find_spec, not import: onnx costs 0.6 s to import and is only needed when a fold is exported
    if importlib.util.find_spec(backend) is None:
        raise BackendError(f"The {backend} backend needs the {backend} package, which is not installed: "
                           f"{_INSTALL[backend]}.")
    if importlib.util.find_spec("onnx") is None:
        raise BackendError(f"The {backend} backend exports the network with torch.onnx, which needs the onnx "
                           f"package: {_INSTALL[backend]} installs it too.")


def _export_onnx(network: torch.nn.Module, input_shape: Sequence[int], target: Path) -> None:
    from nnunet.inference.onnx_export import export_onnx  # imports torch: only when a fold is exported

    export_onnx(network, input_shape, target)


def _export_onnx_or_explain(network: torch.nn.Module, input_shape: Sequence[int], target: Path,
                            checkpoint: Path) -> None:
    try:
        _export_onnx(network, input_shape, target)
    except OSError:
        raise
    except Exception as e:  # an operation torch.onnx cannot express: say which network and what to do
        raise BackendError(f"The network of {checkpoint} cannot be exported to ONNX for a fast CPU backend "
                           f"({exception_line(e)}). Use -backend "
                           f"torch.") from None


def _remove_stale(checkpoint: Path, keep: Path) -> None:
    folder = checkpoint.parent / CACHE_FOLDER
    for old in folder.glob(f"{checkpoint.name}.*.onnx"):
        if old != keep:
            logger.info("Removing the outdated export %s (its checkpoint changed).", old)
            old.unlink(missing_ok=True)
            sidecar_path(old).unlink(missing_ok=True)


def _record(onnx_file: Path, facts: dict[str, Any]) -> None:
    """Write the sidecar; a model folder that cannot take it only loses the torch-free start of later runs."""
    try:
        write_sidecar(onnx_file, **facts)
    except (OSError, OutputError) as e:
        logger.info("Cannot write %s (%s).", sidecar_path(onnx_file), str(e).splitlines()[0])


def export_fold(network: torch.nn.Module, parameters: dict[str, Any] | None, checkpoint: Path, facts: dict[str, Any],
                input_shape: Sequence[int], scratch: Path) -> Path:
    """The ONNX file of one fold: from the cache, or exported now (into the cache if it is writable).

    ``facts``: the checkpoint's ``trainer_name``, ``configuration`` and ``mirror_axes``, recorded next to the
    cached file (see :mod:`nnunet.inference.runners`).
    """
    key = cache_key(checkpoint, facts["trainer_name"], input_shape)
    cached = cached_export_path(checkpoint, key)
    if cached.is_file():
        _record(cached, facts)  # caches made before sidecars existed get one
        return cached
    if parameters is not None:
        network.load_state_dict(parameters)
    network = network.to("cpu").eval()
    logger.warning("Exporting the network of %s for the fast CPU backend (once per checkpoint).", checkpoint)
    try:
        cached.parent.mkdir(exist_ok=True)
        with publish(cached) as tmp:
            _export_onnx_or_explain(network, input_shape, tmp, checkpoint)
        _remove_stale(checkpoint, cached)
        _record(cached, facts)
        return cached
    except (OSError, OutputError) as e:
        logger.warning("Cannot cache the export next to %s (%s); exporting into a temporary folder for this run.",
                       checkpoint, str(e).splitlines()[0])
    target = scratch / f"{checkpoint.parent.name}.{key}.onnx"
    _export_onnx_or_explain(network, input_shape, target, checkpoint)
    return target


def _runner(backend: str, onnx_file: Path, threads: int) -> ArrayRunner:
    return ArrayRunner(make_runner(backend, onnx_file, max(1, threads)), source=onnx_file)


def open_cached(backend: str, onnx_files: Sequence[Path], threads: int) -> list[ArrayRunner]:
    """One runner per already checked cached conversion (no torch needed)."""
    compiled = [_runner(backend, Path(f), threads) for f in onnx_files]
    drop_head_starts()
    return compiled


def _export_unsaved(network: torch.nn.Module, parameters: list[dict[str, Any]] | None, input_shape: Sequence[int],
                    scratch: Path) -> list[Path]:
    """Export a network given in memory (``manual_initialization``): with no checkpoint file to key a cache
    on, it is exported again on every run, into ``scratch``."""
    files = []
    for i, params in enumerate(parameters or [None]):
        if params is not None:
            network.load_state_dict(params)
        target = scratch / f"network_{i}.onnx"
        _export_onnx_or_explain(network.to("cpu").eval(), input_shape, target, "the network given in memory")
        files.append(target)
    return files


def compile_folds(backend: str, network: torch.nn.Module, parameters: list[dict[str, Any]] | None,
                  checkpoints: list[Path] | None, facts: dict[str, Any], input_shape: Sequence[int],
                  threads: int) -> list[ArrayRunner]:
    """One :class:`~nnunet.inference.engine.ArrayRunner` per fold (``parameters[i]`` belongs to ``checkpoints[i]``), exported first
    where the cache has no current conversion; ``facts`` as for :func:`export_fold`. Without ``checkpoints``
    (a network given in memory) nothing is cached."""
    with tempfile.TemporaryDirectory(prefix="nnunet_export_") as scratch:
        if checkpoints is None:
            files = _export_unsaved(network, parameters, input_shape, Path(scratch))
        else:
            files = [export_fold(network, parameters[i] if parameters is not None else None, Path(checkpoint), facts,
                                 input_shape, Path(scratch)) for i, checkpoint in enumerate(checkpoints)]
        compiled = [_runner(backend, f, threads) for f in files]
    drop_head_starts()
    if parameters is not None:  # leave the torch network as loading left it: the first fold's weights
        network.load_state_dict(parameters[0])
    return compiled
