"""nnU-Net 2.8.1's ``PolyLRScheduler``: ours (:mod:`nnunet.training.lr_schedule`), the same arguments."""
from __future__ import annotations

from nnunet.training.lr_schedule import PolyLRScheduler

__all__ = ["PolyLRScheduler"]
