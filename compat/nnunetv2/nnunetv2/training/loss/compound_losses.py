"""nnU-Net 2.8.1's compound losses under their names, on :mod:`nnunet.training.loss.compound`."""
from __future__ import annotations

from nnunet.training.loss.compound import DiceBCELoss, DiceCELoss
from nnunet.training.loss.cross_entropy import TopKCrossEntropy
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss, SoftDiceLoss

__all__ = ["DC_and_BCE_loss", "DC_and_CE_loss", "DC_and_topk_loss"]


class DC_and_CE_loss(DiceCELoss):  # noqa: N801 - nnU-Net's name
    def __init__(self, soft_dice_kwargs, ce_kwargs, weight_ce=1, weight_dice=1, ignore_label=None,
                 dice_class=SoftDiceLoss):
        super().__init__(soft_dice_kwargs, ce_kwargs, weight_ce, weight_dice, ignore_label, dice_class)


class DC_and_BCE_loss(DiceBCELoss):  # noqa: N801 - nnU-Net's name
    def __init__(self, bce_kwargs, soft_dice_kwargs, weight_ce=1, weight_dice=1, use_ignore_label: bool = False,
                 dice_class=MemoryEfficientSoftDiceLoss):
        super().__init__(bce_kwargs, soft_dice_kwargs, weight_ce, weight_dice, use_ignore_label, dice_class)


class DC_and_topk_loss(DiceCELoss):  # noqa: N801 - nnU-Net's name
    """Dice + the top-k % cross-entropy (``ce_kwargs`` may hold ``k``)."""

    def __init__(self, soft_dice_kwargs, ce_kwargs, weight_ce=1, weight_dice=1, ignore_label=None):
        super().__init__(soft_dice_kwargs, ce_kwargs, weight_ce, weight_dice, ignore_label, SoftDiceLoss,
                         ce_class=TopKCrossEntropy)
