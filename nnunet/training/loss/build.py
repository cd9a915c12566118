"""The segmentation loss a trainer names in its ``loss_name`` attribute (nnU-Net's loss and its variants).

* ``"dice_ce"`` (default): soft Dice + cross-entropy; soft Dice + BCE for region-based training;
* ``"ce"``: cross-entropy only; ``"dice"``: soft Dice only (sigmoid and background kept for regions);
* ``"topk"``: mean of the top ``topk_percent`` % voxel cross-entropies (optionally label-smoothed);
* ``"dice_topk"``: soft Dice + top-k cross-entropy.

The CE and top-k variants need label maps: they refuse region-based datasets, as nnU-Net's do.
"""
from __future__ import annotations

import torch
from torch import nn

from nnunet.errors import ConfigurationError
from nnunet.io.labels import LabelManager
from nnunet.training.loss.compound import DiceBCELoss, DiceCELoss
from nnunet.training.loss.cross_entropy import LabelMapCrossEntropy, TopKCrossEntropy
from nnunet.training.loss.dice import SoftDiceLoss, softmax_channels

LOSSES = ("dice_ce", "ce", "dice", "topk", "dice_topk")


def build_segmentation_loss(name: str, label_manager: LabelManager, batch_dice: bool, ddp: bool = False, *,
                            smooth: float = 1e-5, weight_ce: float = 1.0, weight_dice: float = 1.0,
                            topk_percent: float = 10, label_smoothing: float = 0.0) -> nn.Module:
    """The loss called ``name`` (one of :data:`LOSSES`) for one network output (no deep supervision)."""
    regions = label_manager.has_regions
    if name not in LOSSES:
        raise ConfigurationError(f"Unknown loss_name {name!r} in the trainer; choose one of {', '.join(LOSSES)}.")
    if regions and name in ("ce", "topk", "dice_topk"):
        raise ConfigurationError(f"The loss {name!r} needs label maps; this dataset uses regions "
                                 f"(regions_class_order in dataset.json). Use a Dice + BCE trainer instead.")
    dice_kwargs = {"batch_dice": batch_dice, "smooth": smooth, "ddp": ddp}
    ignore = label_manager.ignore_label
    if name == "dice_ce" and regions:
        return DiceBCELoss({}, {**dice_kwargs, "do_bg": True}, weight_ce=weight_ce, weight_dice=weight_dice,
                           use_ignore_label=ignore is not None)
    if name == "dice_ce":
        return DiceCELoss({**dice_kwargs, "do_bg": False}, {}, weight_ce=weight_ce, weight_dice=weight_dice,
                          ignore_label=ignore)
    if name == "dice":
        return SoftDiceLoss(apply_nonlin=torch.sigmoid if regions else softmax_channels, do_bg=regions,
                            **dice_kwargs)
    ignore_index = ignore if ignore is not None else -100
    if name == "ce":
        return LabelMapCrossEntropy(ignore_index=ignore_index)
    topk_kwargs = {"k": topk_percent, "label_smoothing": label_smoothing}
    if name == "topk":
        return TopKCrossEntropy(ignore_index=ignore_index, **topk_kwargs)
    return DiceCELoss({**dice_kwargs, "do_bg": False}, topk_kwargs, weight_ce=weight_ce, weight_dice=weight_dice,
                      ignore_label=ignore, ce_class=TopKCrossEntropy)
