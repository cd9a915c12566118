"""nnU-Net 2.8.1's warm-up schedulers on :class:`nnunet.training.lr_schedule.EpochLRScheduler` and its rates
(``step()`` advances a counter, ``step(n)`` sets step ``n``, as 2.8.1's do)."""
from __future__ import annotations

from nnunet.training.lr_schedule import EpochLRScheduler, cosine_lr, poly_lr

__all__ = ["CosineAnnealingLR_offset", "Lin_incr_LRScheduler", "Lin_incr_offset_LRScheduler",
           "PolyLRScheduler_offset"]


class Lin_incr_LRScheduler(EpochLRScheduler):  # noqa: N801 - nnU-Net's name
    """``max_lr * (step + 1) / max_steps``."""

    def __init__(self, optimizer, max_lr: float, max_steps: int, current_step: int = None):
        self.max_lr, self.max_steps = max_lr, max_steps
        super().__init__(optimizer, lambda s: max_lr / max_steps * (1 + s), current_step)


class Lin_incr_offset_LRScheduler(EpochLRScheduler):  # noqa: N801 - nnU-Net's name
    """``max_lr * (step + 1 - start_step) / max_steps``."""

    def __init__(self, optimizer, max_lr: float, max_steps: int, start_step: int, current_step: int = None):
        self.max_lr, self.max_steps, self.start_step = max_lr, max_steps, start_step
        super().__init__(optimizer, lambda s: max_lr / max_steps * (1 + s - start_step), current_step)


class PolyLRScheduler_offset(EpochLRScheduler):  # noqa: N801 - nnU-Net's name
    """The poly decay from ``initial_lr`` over ``max_steps - start_step`` steps, beginning at ``start_step``."""

    def __init__(self, optimizer, initial_lr: float, max_steps: int, start_step: int, exponent: float = 0.9,
                 current_step: int = None):
        self.initial_lr, self.max_steps, self.start_step, self.exponent = (initial_lr, max_steps - start_step,
                                                                           start_step, exponent)
        super().__init__(optimizer, lambda s: poly_lr(initial_lr, max(s - start_step, 0), max_steps - start_step,
                                                      exponent), current_step)


class CosineAnnealingLR_offset(EpochLRScheduler):  # noqa: N801 - nnU-Net's name
    """Cosine annealing from the optimizer's lr to ``eta_min`` between step ``offset`` and ``T_max``
    (one base lr, the first parameter group's; ``verbose`` is accepted)."""

    def __init__(self, optimizer, T_max: int, eta_min=0, last_epoch=-1,  # noqa: N803 - 2.8.1's names
                 verbose="deprecated", offset: int = 0):
        self.T_max, self.eta_min, self.offset = T_max, eta_min, offset
        base = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
        super().__init__(optimizer, lambda s: eta_min + cosine_lr(base - eta_min, s - offset, T_max - offset))
        if last_epoch != -1:  # resume: the next rate is that of step last_epoch + 1, as torch's schedulers do
            self.ctr = last_epoch + 1
            self.step()
