"""Where the network's forward passes run: torch (any device), or OpenVINO / ONNX Runtime on the CPU.

The fast CPU backends run the same network exported to ONNX (float32, opset 17, the batch axis dynamic, the
spatial axes fixed to the patch size, which is what every tile has). The export is made once per fold and
cached next to the checkpoint, in ``fold_X/.nnunet_cache/<checkpoint>.<key>.onnx``; the key hashes the
checkpoint's bytes, the trainer, the input shape and the torch version, so a changed checkpoint gets a new
export and the stale one is deleted. A model folder that cannot be written (shared, read-only) is exported
into a temporary folder for each run instead.

OpenVINO is told to compute in float32 (``INFERENCE_PRECISION_HINT f32``): on CPUs with bfloat16 or AMX units
it would otherwise pick bfloat16, and the predictions would no longer agree with torch.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nnunet.errors import ConfigurationError
from nnunet.inference.runners import CACHE_FOLDER, drop_head_starts, make_runner
from nnunet.utils.files import OutputError, publish

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "openvino", "onnxruntime")
#: bump when the export itself changes, so that older cached files are not used
EXPORT_VERSION = 1
ONNX_OPSET = 17
_INSTALL = {"openvino": "pip install 'nnunet[openvino]' (the openvino package, about 60 MB)",
            "onnxruntime": "pip install 'nnunet[onnxruntime]' (the onnxruntime package, about 20 MB)"}


class BackendError(ConfigurationError):
    """A backend that is unknown, not installed, or asked for on a device it does not support."""


def check_backend(backend: str, device: torch.device | str) -> None:
    """Raise :class:`BackendError` unless ``backend`` can run on ``device`` here (package installed)."""
    if backend not in BACKENDS:
        raise BackendError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if backend == "torch":
        return
    if torch.device(device).type != "cpu":
        raise BackendError(f"The {backend} backend runs on the CPU; use -device cpu (or -backend torch on "
                           f"{torch.device(device).type}).")
    # find_spec, not import: onnx costs 0.6 s to import and is only needed when a fold is exported
    if importlib.util.find_spec(backend) is None:
        raise BackendError(f"The {backend} backend needs the {backend} package, which is not installed: "
                           f"{_INSTALL[backend]}.")
    if importlib.util.find_spec("onnx") is None:
        raise BackendError(f"The {backend} backend exports the network with torch.onnx, which needs the onnx "
                           f"package: {_INSTALL[backend]} installs it too.")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(checkpoint: Path, trainer_name: str, input_shape: Sequence[int]) -> str:
    """Hash of everything the exported file depends on (16 hex digits)."""
    parts = [_file_digest(checkpoint), trainer_name, "x".join(map(str, input_shape)), torch.__version__,
             str(ONNX_OPSET), str(EXPORT_VERSION)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cached_export_path(checkpoint: Path, key: str) -> Path:
    return checkpoint.parent / CACHE_FOLDER / f"{checkpoint.name}.{key}.onnx"


def _export_onnx(network: torch.nn.Module, input_shape: Sequence[int], target: Path) -> None:
    example = torch.zeros((1, *input_shape))
    with warnings.catch_warnings():  # tracer notes about shape checks that are constant for a fixed patch size
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (example,), str(target), dynamo=False, input_names=["tile"], output_names=["logits"],
                          dynamic_axes={"tile": {0: "batch"}, "logits": {0: "batch"}}, opset_version=ONNX_OPSET)


def _export_onnx_or_explain(network: torch.nn.Module, input_shape: Sequence[int], target: Path,
                            checkpoint: Path) -> None:
    try:
        _export_onnx(network, input_shape, target)
    except OSError:
        raise
    except Exception as e:  # an operation torch.onnx cannot express: say which network and what to do
        raise BackendError(f"The network of {checkpoint} cannot be exported to ONNX for a fast CPU backend "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Use -backend "
                           f"torch.") from None


def _remove_stale(checkpoint: Path, keep: Path) -> None:
    folder = checkpoint.parent / CACHE_FOLDER
    for old in folder.glob(f"{checkpoint.name}.*.onnx"):
        if old != keep:
            logger.info("Removing the outdated export %s (its checkpoint changed).", old)
            old.unlink(missing_ok=True)


def export_fold(network: torch.nn.Module, parameters: dict[str, Any] | None, checkpoint: Path, trainer_name: str,
                input_shape: Sequence[int], scratch: Path) -> Path:
    """The ONNX file of one fold: from the cache, or exported now (into the cache if it is writable)."""
    key = cache_key(checkpoint, trainer_name, input_shape)
    cached = cached_export_path(checkpoint, key)
    if cached.is_file():
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
        return cached
    except (OSError, OutputError) as e:
        logger.warning("Cannot cache the export next to %s (%s); exporting into a temporary folder for this run.",
                       checkpoint, str(e).splitlines()[0])
    target = scratch / f"{checkpoint.parent.name}.{key}.onnx"
    _export_onnx_or_explain(network, input_shape, target, checkpoint)
    return target


class CompiledNetwork:
    """A fold's network on a CPU backend, called like the torch module: (B, C, *patch) tensor -> logits."""

    def __init__(self, backend: str, onnx_file: Path, threads: int):
        self.backend, self.onnx_file = backend, onnx_file
        self._run = make_runner(backend, onnx_file, max(1, threads))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run(np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)))


def compile_folds(backend: str, network: torch.nn.Module, parameters: list[dict[str, Any]] | None,
                  checkpoints: list[Path], trainer_name: str, input_shape: Sequence[int],
                  threads: int) -> list[CompiledNetwork]:
    """One :class:`CompiledNetwork` per fold (``parameters[i]`` belongs to ``checkpoints[i]``)."""
    compiled = []
    with tempfile.TemporaryDirectory(prefix="nnunet_export_") as scratch:
        for i, checkpoint in enumerate(checkpoints):
            params = parameters[i] if parameters is not None else None
            onnx_file = export_fold(network, params, Path(checkpoint), trainer_name, input_shape, Path(scratch))
            compiled.append(CompiledNetwork(backend, onnx_file, threads))
    drop_head_starts()
    if parameters is not None:  # leave the torch network as loading left it: the first fold's weights
        network.load_state_dict(parameters[0])
    return compiled
