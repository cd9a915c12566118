"""The folds of a loaded model as runners: the one place where the backend decides how a fold runs.

With the torch backend every fold is a :class:`~nnunet.inference.torch_engine.TorchRunner` over the torch
network; with OpenVINO or ONNX Runtime it is a compilation of the fold (:mod:`~nnunet.inference.backends`),
made once per loaded model. The model comes as a :class:`~nnunet.models.LoadedModel` that the predictor builds
from its attributes when the runners are asked for (programs assign those by hand); what is made once is kept
in a :class:`FoldCache`, which the predictor replaces when a model is loaded.

torch is imported only in the torch branches: a CPU runtime whose conversions are all cached runs without it.
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from nnunet.inference import engine
from nnunet.inference.backends import compile_folds, open_cached
from nnunet.inference.cached_model import load_cached_model
from nnunet.inference.runners import prediction_threads
from nnunet.models import LoadedModel, load_model_folder, num_input_channels

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass
class FoldCache:
    """What is made once per loaded model: the CPU runtimes' compiled folds, and the copies of the torch network
    that the slab path gives every fold after the first (with the key they were made for)."""
    compiled: list[engine.ArrayRunner] | None = None
    copies: tuple[tuple, list] | None = None


def load_model(model_folder: str | os.PathLike, use_folds: Iterable[int | str] | int | str | None,
               checkpoint_name: str, on_torch: bool) -> LoadedModel:
    """The model of a trained model folder. For a CPU runtime with every fold's conversion cached, no checkpoint
    is loaded and torch is not imported; otherwise the checkpoints are read (:func:`nnunet.models.load_model_folder`).
    """
    model = None
    if not on_torch:
        model = load_cached_model(model_folder, use_folds, checkpoint_name)
    if model is None:
        model = load_model_folder(model_folder, use_folds, checkpoint_name)
    if model.network is not None and model.parameters:  # loading put fold 0's weights in
        from nnunet.inference.torch_engine import mark_loaded

        mark_loaded(model.network, model.parameters[0])
    return model


def compiled_network(network: Any, on_torch: bool) -> Any:
    """``network`` through ``torch.compile`` when nnUNet_compile is set (torch backend, not compiled yet)."""
    if os.environ.get("nnUNet_compile", "").lower() in ("true", "1", "t") and not hasattr(network, "_orig_mod") \
            and on_torch:
        import torch

        logger.info("Compiling the network (nnUNet_compile is set).")
        return torch.compile(network)
    return network


def fold_runners(model: LoadedModel, backend: str, on_torch: bool, device: torch.device | str, on_device: bool,
                 cache: FoldCache, interleaved: bool = False, current_weights: bool = False) -> list[engine.Runner]:
    """The folds of ``model`` as runners. ``on_torch``: the backend runs the torch network itself (resolved when
    the predictor was made); ``on_device``: the accumulators stay on the device.

    ``interleaved``: the folds take turns per row of tiles (the slab path), so each torch fold gets its own copy
    of the network, made once and kept while the network and parameters stay the same; its weights are then
    loaded once. ``current_weights``: one runner with the network's weights as they are.
    """
    if not on_torch:
        if cache.compiled is None:
            cache.compiled = compile_model(model, backend)
        return cache.compiled[:1] if current_weights else cache.compiled
    from nnunet.inference.torch_engine import TorchOps, TorchRunner

    ops = TorchOps(device, on_device)
    parameters = [None] if current_weights or not model.parameters else list(model.parameters)
    networks = [model.network] * len(parameters)
    if interleaved and len(parameters) > 1:
        networks = [model.network] + network_copies(model, device, len(parameters) - 1, cache)
    return [TorchRunner(network, p, ops) for network, p in zip(networks, parameters)]


def network_copies(model: LoadedModel, device: torch.device | str, count: int, cache: FoldCache) -> list:
    """``count`` copies of the torch network, kept in ``cache`` while the network, the parameters, the count and
    the device stay the same."""
    key = (id(model.network), id(model.parameters), count, str(device))
    if cache.copies is None or cache.copies[0] != key:
        module = getattr(model.network, "_orig_mod", model.network)
        cache.copies = (key, [copy.deepcopy(module) for _ in range(count)])
    return cache.copies[1]


def compile_model(model: LoadedModel, backend: str) -> list[engine.ArrayRunner]:
    """One OpenVINO / ONNX Runtime runner per fold: the checked cached conversions, or exports made now."""
    if model.onnx_files is not None:
        return open_cached(backend, model.onnx_files, prediction_threads())
    input_shape = (num_input_channels(model.plans, model.configuration, model.dataset_json),
                   *model.configuration.patch_size)
    facts = {"trainer_name": model.trainer_name or "", "configuration": model.configuration.name,
             "mirror_axes": model.mirror_axes}
    return compile_folds(backend, model.network, model.parameters, model.checkpoint_files, facts, input_shape,
                         prediction_threads())
