"""Cross-entropy on label-map targets, and its top-k variant (the loss of nnU-Net's TopK trainers)."""
from __future__ import annotations

import torch
from torch import nn


class LabelMapCrossEntropy(nn.CrossEntropyLoss):
    """``nn.CrossEntropyLoss`` for integer label maps with a channel axis (B, 1, ...) or without it (B, ...).

    Voxels labelled ``ignore_index`` do not count; if every voxel is ignored the mean is NaN, as in torch (the
    Dice+CE losses skip the CE term in that case).
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if target.ndim == logits.ndim:
            if target.shape[1] != 1:
                raise ValueError(f"Expected a label-map target (B, 1, ...), got shape {tuple(target.shape)}.")
            target = target[:, 0]
        return super().forward(logits, target.long())


class TopKCrossEntropy(LabelMapCrossEntropy):
    """Mean of the largest ``k`` percent of the per-voxel cross-entropy values (nnU-Net's TopKLoss).

    The count is ``int(num_voxels * k / 100)`` over all voxels of the batch; ignored voxels have loss 0 and still
    count in ``num_voxels``. ``label_smoothing`` is torch's.
    """

    def __init__(self, ignore_index: int = -100, k: float = 10, label_smoothing: float = 0.0):
        super().__init__(weight=None, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing)
        self.k = k

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        per_voxel = super().forward(logits, target)
        count = int(per_voxel.numel() * self.k / 100)
        top, _ = torch.topk(per_voxel.reshape(-1), count, sorted=False)
        return top.mean()
