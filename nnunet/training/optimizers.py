"""Optimizers a trainer can name in its ``optimizer`` attribute (with ``optimizer_kwargs`` for the rest).

* ``"SGD"`` (default): Nesterov SGD with the trainer's ``momentum`` (0.99);
* ``"AdamW"``: torch's AdamW (``nnUNetTrainerAdam`` adds ``amsgrad=True``; Primus ``betas=(0.9, 0.98)``,
  ``fused=True``);
* ``"Adam"``: torch's Adam with L2 weight decay (``nnUNetTrainerVanillaAdam``);
* ``"Adan"``: Adan from the optional ``adan-pytorch`` package (``pip install "nnunet-fast[adan]"``).

Every optimizer gets the trainer's ``initial_lr`` and ``weight_decay``.

On CUDA the default SGD runs torch's fused kernel (one launch for all parameters instead of one per tensor or
tensor group; with fp16 autocast the GradScaler then hands it the scale and the inf flag on the device instead of
reading the flag on the host each step). Two traps of that kernel are handled here:

* a step the GradScaler skips (inf/NaN gradients, routine in the first fp16 steps) leaves the momentum buffers that
  the kernel allocated with ``torch.empty_like`` uninitialised, and the next step adds that garbage to the weights.
  :func:`prime_momentum_buffers` fills them with zeros first, which is the same update: the first momentum is
  ``0.99 * 0 + grad = grad``, as in the unfused first step;
* ``load_state_dict`` copies the saved ``fused``/``foreach`` flags over the optimizer's own, and an unfused flag under
  a GradScaler that treats the optimizer as fused fails in the step: :func:`load_optimizer_state` keeps them.

Elsewhere SGD stays as in nnU-Net 2.8.1 (torch's default implementation): on the CPU there is no per-step host
synchronisation to save, and the weights stay bit for bit what they were.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterable

import torch

from nnunet.errors import ConfigurationError

OPTIMIZERS = ("SGD", "AdamW", "Adam", "Adan")


def _adan_class() -> type:
    try:
        from adan_pytorch import Adan
    except ImportError:
        raise ConfigurationError('This trainer uses the Adan optimizer from the optional package adan-pytorch, which '
                                 'is not installed. Install it with: pip install "nnunet-fast[adan]" (or pip install '
                                 'adan-pytorch).') from None
    return Adan


def sgd_implementation(device: torch.device) -> dict[str, bool]:
    """``{"fused": True}`` on CUDA where torch's SGD has a fused kernel (its constructor takes ``fused``; older torch
    has none), else ``{}``: torch's default, foreach on CUDA and the per-tensor loop elsewhere."""
    if device.type != "cuda" or "fused" not in inspect.signature(torch.optim.SGD).parameters:
        return {}
    return {"fused": True}


def _device_of(params: list) -> torch.device:
    first = params[0]["params"][0] if isinstance(params[0], dict) else params[0]
    return first.device


def prime_momentum_buffers(optimizer: torch.optim.Optimizer) -> None:
    """Zero momentum buffers for the parameters of fused SGD groups that have none (see the module docstring)."""
    for group in optimizer.param_groups:
        if not group.get("fused") or not group.get("momentum"):
            continue
        for p in group["params"]:
            state = optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state_dict: dict) -> None:
    """``optimizer.load_state_dict`` that keeps the optimizer's own ``fused``/``foreach`` choice (a checkpoint of
    nnU-Net 2.8.1 or of another device has its own), then primes missing fused momentum buffers."""
    flags = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state_dict)
    for group, own in zip(optimizer.param_groups, flags):
        group.update(own)
    prime_momentum_buffers(optimizer)


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float,
                    momentum: float = 0.99, **kwargs: Any) -> torch.optim.Optimizer:
    """The optimizer called ``name`` (one of :data:`OPTIMIZERS`) over ``params``; ``kwargs`` go to its constructor
    (a ``fused`` or ``foreach`` there replaces the choice of :func:`sgd_implementation`)."""
    if name == "SGD":
        params = list(params)
        if params and "fused" not in kwargs and "foreach" not in kwargs:
            kwargs = {**sgd_implementation(_device_of(params)), **kwargs}
        optimizer = torch.optim.SGD(params, lr, weight_decay=weight_decay, momentum=momentum, nesterov=True,
                                    **kwargs)
        prime_momentum_buffers(optimizer)
        return optimizer
    if name == "AdamW":
        return torch.optim.AdamW(params, lr, weight_decay=weight_decay, **kwargs)
    if name == "Adam":
        return torch.optim.Adam(params, lr, weight_decay=weight_decay, **kwargs)
    if name == "Adan":
        return _adan_class()(params, lr=lr, weight_decay=weight_decay, **kwargs)
    raise ConfigurationError(f"Unknown optimizer {name!r} in the trainer; choose one of {', '.join(OPTIMIZERS)}.")
