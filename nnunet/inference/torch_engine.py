"""The torch side of the engine (:mod:`nnunet.inference.engine`): torch array operations and the torch runner.

On CUDA the forward passes run under autocast, the accumulators and the fold sum stay on the device unless told
otherwise (``accumulate_on_device=False``, or the retry after a failure), tiles read from the host are copied
from pinned memory without waiting, and nothing is read back to the host per tile.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Sequence

import numpy as np
import torch

from nnunet.inference.tiling import GAUSSIAN_SIGMA_SCALE, GAUSSIAN_VALUE_SCALE, _gaussian_float64

#: the parameters each network holds now (so that a fold's weights are loaded only when they are not there)
_LOADED: "weakref.WeakKeyDictionary[torch.nn.Module, Any]" = weakref.WeakKeyDictionary()


def compute_gaussian(tile_size: Sequence[int], sigma_scale: float = GAUSSIAN_SIGMA_SCALE,
                     value_scale: float = GAUSSIAN_VALUE_SCALE, dtype: torch.dtype = torch.float16,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Importance map of shape ``tile_size`` that weights tile centres more than tile borders.

    A Gaussian (sigma = ``sigma_scale`` * tile size per axis, constant-0 boundary) centred at ``size // 2``,
    scaled so that its maximum equals ``value_scale``, converted to ``dtype`` on ``device``. Values that became
    exactly 0 (underflow in float16 far from the centre) are replaced by the smallest non-zero value, so that
    no voxel can end up with a total weight of 0. (:func:`nnunet.inference.tiling.gaussian_weights` is the numpy
    twin: the same numbers.)
    """
    weights = torch.from_numpy(_gaussian_float64(tuple(int(t) for t in tile_size), float(sigma_scale),
                                                 float(value_scale)).copy())
    weights = weights.to(device=device, dtype=dtype)
    zero = weights == 0
    if bool(zero.any()):
        weights[zero] = weights[~zero].min()
    return weights


def empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


class TorchOps:
    """torch tensors: the network runs on ``device``; the accumulators live there too when
    ``accumulate_on_device`` (else on the CPU)."""

    def __init__(self, device: torch.device | str, accumulate_on_device: bool = True):
        self.device = torch.device(device)
        self.accumulator_device = self.device if accumulate_on_device else torch.device("cpu")
        self.on_device = self.accumulator_device.type != "cpu"

    def host_accumulation(self) -> "TorchOps":
        return TorchOps(self.device, accumulate_on_device=False)

    def context(self):
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.device.type == "cuda":
            stack.enter_context(torch.autocast("cuda", enabled=True))
        return stack

    def dtype(self, name: str) -> torch.dtype:
        return getattr(torch, name)

    def zeros(self, shape, dtype):
        return torch.zeros(tuple(shape), dtype=dtype, device=self.accumulator_device)

    def importance_map(self, patch_size, dtype):
        return compute_gaussian(patch_size, dtype=dtype, device=self.accumulator_device)

    def image(self, image):
        return image if isinstance(image, torch.Tensor) else torch.from_numpy(np.asarray(image))

    def pad(self, image, pads):
        if not any(before or after for before, after in pads):
            return image
        flat = [p for before_after in reversed(pads) for p in before_after]  # torch wants the last axis first
        return torch.nn.functional.pad(image, flat, mode="constant", value=0)

    def batch(self, view):
        return view[None].contiguous().to(self.device, non_blocking=True)

    def from_host(self, array):
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":  # a pinned copy goes to the device without the host waiting for it
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def flip(self, x, dims):
        return torch.flip(x, dims)

    def cat(self, xs):
        return torch.cat(xs)

    def copy(self, x):
        return x.clone()

    def to_accumulator(self, x):
        return x.to(self.accumulator_device)

    def divide(self, a, b, in_place):
        return torch.div(a, b, out=a) if in_place else torch.div(a, b)

    def any_inf(self, x):
        return torch.isinf(x).any()

    def to_host(self, x):
        return x.to("cpu")

    def to_numpy(self, x):
        return x.to("cpu").numpy()

    def empty_cache(self) -> None:
        empty_cache(self.device)


def mark_loaded(network: torch.nn.Module, parameters: Any) -> None:
    """Record that ``network`` holds ``parameters`` now (e.g. after a model folder was loaded)."""
    _LOADED[getattr(network, "_orig_mod", network)] = parameters


class TorchRunner:
    """One fold of a torch network on ``ops.device``. ``parameters``: this fold's weights, loaded into the
    network by :meth:`prepare` unless it holds them already (None: the network's current weights)."""

    def __init__(self, network: torch.nn.Module, parameters: dict[str, Any] | None, ops: TorchOps):
        self.network, self.parameters, self.ops = network, parameters, ops
        self._ready = False

    def prepare(self) -> None:
        module = getattr(self.network, "_orig_mod", self.network)
        if self.parameters is not None and _LOADED.get(module) is not self.parameters:  # load once per fold
            module.load_state_dict(self.parameters)
            _LOADED[module] = self.parameters
        if not self._ready and isinstance(self.network, torch.nn.Module):  # (a plain function needs nothing)
            self.network.to(self.ops.device)
            self.network.eval()
            self._ready = True

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network(batch)
