"""nnU-Net 2.8.1's Dice losses under their names, on :mod:`nnunet.training.loss.dice`.

Both names give our soft Dice, ``(2 sum(p g) + smooth) / max(sum(p) + sum(g) + smooth, 1e-8)``, which is what
2.8.1's ``MemoryEfficientSoftDiceLoss`` computes and equals its ``SoftDiceLoss`` (whose ``2 tp + fp + fn`` is the
same denominator) except for ``clip_tp``, which clips the true positives first."""
from __future__ import annotations

from typing import Callable

import torch

from nnunet.training.loss.dice import SoftDiceLoss as _SoftDice
from nnunet.training.loss.dice import onehot_target

__all__ = ["MemoryEfficientSoftDiceLoss", "SoftDiceLoss", "get_tp_fp_fn_tn"]


class MemoryEfficientSoftDiceLoss(_SoftDice):
    def __init__(self, apply_nonlin: Callable = None, batch_dice: bool = False, do_bg: bool = True,
                 smooth: float = 1., ddp: bool = True):
        super().__init__(apply_nonlin, batch_dice, do_bg, smooth, ddp)


class SoftDiceLoss(_SoftDice):
    def __init__(self, apply_nonlin: Callable = None, batch_dice: bool = False, do_bg: bool = True,
                 smooth: float = 1., ddp: bool = True, clip_tp: float = None):
        super().__init__(apply_nonlin, batch_dice, do_bg, smooth, ddp)
        if clip_tp is not None:
            raise NotImplementedError("SoftDiceLoss(clip_tp=...) is not provided by nnunet-fast's nnunetv2 namespace")


def get_tp_fp_fn_tn(net_output: torch.Tensor, gt: torch.Tensor, axes=None, mask=None, square=False):
    """Soft true/false positives/negatives per (batch, channel) of ``net_output`` (probabilities) against a label
    map or one-hot ``gt``, summed over ``axes`` (default: the spatial axes); ``mask`` (B, 1, ...) excludes voxels;
    ``square`` squares each term before summing."""
    if axes is None:
        axes = tuple(range(2, net_output.ndim))
    with torch.no_grad():
        onehot = onehot_target(net_output, gt)
    tp, fp = net_output * onehot, net_output * ~onehot.bool()
    fn, tn = (1 - net_output) * onehot, (1 - net_output) * ~onehot.bool()
    if mask is not None:
        tp, fp, fn, tn = (t * mask for t in (tp, fp, fn, tn))
    if square:
        tp, fp, fn, tn = (t ** 2 for t in (tp, fp, fn, tn))
    if len(axes) > 0:
        tp, fp, fn, tn = (t.sum(dim=axes, keepdim=False) for t in (tp, fp, fn, tn))
    return tp, fp, fn, tn
