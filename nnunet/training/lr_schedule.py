"""Learning-rate schedules, set from the epoch index at the start of every epoch.

Each scheduler computes the rate of an epoch in closed form, so ``step(epoch)`` after a resume sets exactly the
rate of that epoch (no scheduler state needs to be saved in checkpoints):

* :class:`PolyLRScheduler` (the default): ``initial_lr * (1 - epoch / num_epochs) ** 0.9``;
* :class:`CosineLRScheduler`: ``initial_lr * (1 + cos(pi * epoch / num_epochs)) / 2``;
* :class:`WarmupPolyLRScheduler`: a linear warm-up to ``initial_lr`` over the first epochs, then the poly decay
  over the remaining ones (nnU-Net's ``nnUNetTrainer_warmup`` and the Primus trainers).

:func:`build_lr_scheduler` picks one by name (a trainer's ``lr_schedule`` attribute).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch.optim.lr_scheduler import LRScheduler

from nnunet.errors import ConfigurationError


def poly_lr(initial_lr: float, step: int, max_steps: int, exponent: float = 0.9) -> float:
    """``initial_lr * (1 - step / max_steps) ** exponent``."""
    return initial_lr * (1 - step / max_steps) ** exponent


def cosine_lr(initial_lr: float, step: int, max_steps: int) -> float:
    """Cosine annealing to 0 over ``max_steps`` (torch's ``CosineAnnealingLR`` closed form, ``eta_min = 0``)."""
    return initial_lr * (1 + math.cos(math.pi * step / max_steps)) / 2


def warmup_poly_lr(initial_lr: float, step: int, max_steps: int, warmup_steps: int, exponent: float = 0.9) -> float:
    """Linear warm-up ``initial_lr * (step + 1) / warmup_steps`` for the first ``warmup_steps`` steps, then the poly
    decay over the remaining ``max_steps - warmup_steps`` steps, starting again at ``initial_lr``."""
    if step < warmup_steps:
        return initial_lr / warmup_steps * (1 + step)
    return poly_lr(initial_lr, step - warmup_steps, max_steps - warmup_steps, exponent)


class EpochLRScheduler(LRScheduler):
    """Sets every parameter group's lr to ``rate(step)``; ``step(epoch)`` sets the rate of that epoch, ``step()``
    without an argument advances an internal counter by one."""

    def __init__(self, optimizer: torch.optim.Optimizer, rate: Callable[[int], float],
                 current_step: int | None = None):
        self.optimizer = optimizer
        self.rate = rate
        self.ctr = 0
        super().__init__(optimizer, current_step if current_step is not None else -1)

    def step(self, current_step: int | None = None) -> None:  # type: ignore[override]
        if current_step is None or current_step == -1:
            current_step = self.ctr
            self.ctr += 1
        lr = self.rate(current_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._last_lr = [lr] * len(self.optimizer.param_groups)


class PolyLRScheduler(EpochLRScheduler):
    """:func:`poly_lr` of the given step (the epoch index)."""

    def __init__(self, optimizer: torch.optim.Optimizer, initial_lr: float, max_steps: int, exponent: float = 0.9,
                 current_step: int | None = None):
        self.initial_lr, self.max_steps, self.exponent = initial_lr, max_steps, exponent
        super().__init__(optimizer, lambda s: poly_lr(initial_lr, s, max_steps, exponent), current_step)


class CosineLRScheduler(EpochLRScheduler):
    """:func:`cosine_lr` of the given step."""

    def __init__(self, optimizer: torch.optim.Optimizer, initial_lr: float, max_steps: int):
        super().__init__(optimizer, lambda s: cosine_lr(initial_lr, s, max_steps))


class WarmupPolyLRScheduler(EpochLRScheduler):
    """:func:`warmup_poly_lr` of the given step."""

    def __init__(self, optimizer: torch.optim.Optimizer, initial_lr: float, max_steps: int, warmup_steps: int,
                 exponent: float = 0.9):
        super().__init__(optimizer, lambda s: warmup_poly_lr(initial_lr, s, max_steps, warmup_steps, exponent))


LR_SCHEDULES = ("poly", "cosine", "warmup_poly")


def build_lr_scheduler(name: str, optimizer: torch.optim.Optimizer, initial_lr: float, num_epochs: int,
                       exponent: float = 0.9, warmup_epochs: int = 50) -> EpochLRScheduler:
    """The scheduler called ``name`` (one of :data:`LR_SCHEDULES`) over ``num_epochs`` epochs."""
    if name == "poly":
        return PolyLRScheduler(optimizer, initial_lr, num_epochs, exponent)
    if name == "cosine":
        return CosineLRScheduler(optimizer, initial_lr, num_epochs)
    if name == "warmup_poly":
        return WarmupPolyLRScheduler(optimizer, initial_lr, num_epochs, warmup_epochs, exponent)
    raise ConfigurationError(f"Unknown lr_schedule {name!r} in the trainer; choose one of {', '.join(LR_SCHEDULES)}.")
