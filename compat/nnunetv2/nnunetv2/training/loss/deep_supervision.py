"""nnU-Net 2.8.1's ``DeepSupervisionWrapper``: our :class:`~nnunet.training.loss.deep_supervision.DeepSupervisionLoss`."""
from __future__ import annotations

from nnunet.training.loss.deep_supervision import DeepSupervisionLoss

__all__ = ["DeepSupervisionWrapper"]


class DeepSupervisionWrapper(DeepSupervisionLoss):
    def __init__(self, loss, weight_factors=None):
        super().__init__(loss, weight_factors)
