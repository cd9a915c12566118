"""Dice + cross-entropy (label training) and Dice + BCE (region training), with ignore-label handling."""
from __future__ import annotations

import torch
from torch import nn

from nnunet.training.loss.cross_entropy import LabelMapCrossEntropy
from nnunet.training.loss.dice import SoftDiceLoss, softmax_channels


class DiceCELoss(nn.Module):
    """``weight_ce * CE + weight_dice * SoftDice(softmax)`` for integer label targets (B, 1, ...).

    With ``ignore_label`` the ignored voxels are excluded from both terms (CE ``ignore_index``; Dice loss mask,
    their target set to 0); a batch without any annotated voxel contributes 0 CE.

    Args:
        soft_dice_kwargs: keyword arguments of :class:`SoftDiceLoss` (batch_dice, do_bg, smooth, ddp).
        ce_kwargs: keyword arguments of ``ce_class``.
        ce_class: the cross-entropy term (:class:`~nnunet.training.loss.cross_entropy.LabelMapCrossEntropy`, or
            :class:`~nnunet.training.loss.cross_entropy.TopKCrossEntropy` for Dice + top-k CE).
    """

    def __init__(self, soft_dice_kwargs: dict, ce_kwargs: dict, weight_ce: float = 1, weight_dice: float = 1,
                 ignore_label: int | None = None, dice_class: type = SoftDiceLoss,
                 ce_class: type = LabelMapCrossEntropy):
        super().__init__()
        if ignore_label is not None:
            ce_kwargs = {**ce_kwargs, "ignore_index": ignore_label}
        self.weight_ce = weight_ce
        self.weight_dice = weight_dice
        self.ignore_label = ignore_label
        self.ce = ce_class(**ce_kwargs)
        self.dc = dice_class(apply_nonlin=softmax_channels, **soft_dice_kwargs)

    def forward(self, net_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape[1] != 1:
            raise ValueError(f"DiceCELoss expects a label-map target (B, 1, ...), got shape {tuple(target.shape)}.")
        if self.ignore_label is not None:
            mask = target != self.ignore_label
            target_dice = torch.where(mask, target, 0)
            num_annotated = mask.sum()
        else:
            mask, target_dice, num_annotated = None, target, None
        dc_loss = self.dc(net_output, target_dice, loss_mask=mask) if self.weight_dice != 0 else 0
        use_ce = self.weight_ce != 0 and (num_annotated is None or num_annotated > 0)
        ce_loss = self.ce(net_output, target) if use_ce else 0
        total = self.weight_ce * ce_loss + self.weight_dice * dc_loss
        return total if isinstance(total, torch.Tensor) else net_output.sum() * 0  # keep a graph to backpropagate


class DiceBCELoss(nn.Module):
    """``weight_ce * BCE + weight_dice * SoftDice(sigmoid)`` for region targets (B, R[+1], ...).

    With ``use_ignore_label`` the last target channel marks ignored voxels; the BCE is summed over the region
    channels at valid voxels and divided by the number of valid voxels.
    """

    def __init__(self, bce_kwargs: dict, soft_dice_kwargs: dict, weight_ce: float = 1, weight_dice: float = 1,
                 use_ignore_label: bool = False, dice_class: type = SoftDiceLoss):
        super().__init__()
        if use_ignore_label:
            bce_kwargs = {**bce_kwargs, "reduction": "none"}
        self.weight_ce = weight_ce
        self.weight_dice = weight_dice
        self.use_ignore_label = use_ignore_label
        self.ce = nn.BCEWithLogitsLoss(**bce_kwargs)
        self.dc = dice_class(apply_nonlin=torch.sigmoid, **soft_dice_kwargs)

    def forward(self, net_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.use_ignore_label:
            last = target[:, -1:]
            mask = ~last.bool() if last.dtype == torch.bool else (1 - last).bool()
            target_regions = target[:, :-1]
        else:
            mask, target_regions = None, target
        dc_loss = self.dc(net_output, target_regions, loss_mask=mask) if self.weight_dice != 0 else 0
        target_regions = target_regions.float()
        if self.weight_ce == 0:
            ce_loss = 0
        elif mask is not None:
            ce_loss = (self.ce(net_output, target_regions) * mask).sum() / torch.clip(mask.sum(), min=1e-8)
        else:
            ce_loss = self.ce(net_output, target_regions)
        total = self.weight_ce * ce_loss + self.weight_dice * dc_loss
        return total if isinstance(total, torch.Tensor) else net_output.sum() * 0
