"""Optimizers a trainer can name in its ``optimizer`` attribute (with ``optimizer_kwargs`` for the rest).

* ``"SGD"`` (default): Nesterov SGD with the trainer's ``momentum`` (0.99);
* ``"AdamW"``: torch's AdamW (``nnUNetTrainerAdam`` adds ``amsgrad=True``; Primus ``betas=(0.9, 0.98)``,
  ``fused=True``);
* ``"Adam"``: torch's Adam with L2 weight decay (``nnUNetTrainerVanillaAdam``);
* ``"Adan"``: Adan from the optional ``adan-pytorch`` package (``pip install "nnunet-fast[adan]"``).

Every optimizer gets the trainer's ``initial_lr`` and ``weight_decay``.
"""
from __future__ import annotations

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


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float,
                    momentum: float = 0.99, **kwargs: Any) -> torch.optim.Optimizer:
    """The optimizer called ``name`` (one of :data:`OPTIMIZERS`) over ``params``; ``kwargs`` go to its constructor."""
    if name == "SGD":
        return torch.optim.SGD(params, lr, weight_decay=weight_decay, momentum=momentum, nesterov=True, **kwargs)
    if name == "AdamW":
        return torch.optim.AdamW(params, lr, weight_decay=weight_decay, **kwargs)
    if name == "Adam":
        return torch.optim.Adam(params, lr, weight_decay=weight_decay, **kwargs)
    if name == "Adan":
        return _adan_class()(params, lr=lr, weight_decay=weight_decay, **kwargs)
    raise ConfigurationError(f"Unknown optimizer {name!r} in the trainer; choose one of {', '.join(OPTIMIZERS)}.")
