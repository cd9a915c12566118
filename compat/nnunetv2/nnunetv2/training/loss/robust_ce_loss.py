"""nnU-Net 2.8.1's cross-entropy losses (label-map targets of shape (B, 1, ...)) under their names."""
from __future__ import annotations

from nnunet.training.loss.cross_entropy import LabelMapCrossEntropy, TopKCrossEntropy

__all__ = ["RobustCrossEntropyLoss", "TopKLoss"]

RobustCrossEntropyLoss = LabelMapCrossEntropy


class TopKLoss(TopKCrossEntropy):
    def __init__(self, weight=None, ignore_index: int = -100, k: float = 10, label_smoothing: float = 0):
        if weight is not None:
            raise NotImplementedError("TopKLoss(weight=...) is not provided by nnunet-fast's nnunetv2 namespace")
        super().__init__(ignore_index=ignore_index, k=k, label_smoothing=label_smoothing)
