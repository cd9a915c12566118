"""Soft Dice loss. Returns the *negative* Dice, so the loss lies in [-1, 0]."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def softmax_channels(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, 1)


def _all_gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Stack ``t`` from all DDP ranks along a new first axis, keeping gradients for the local part."""
    import torch.distributed as dist
    import torch.distributed.nn.functional as dist_fn

    if not (dist.is_available() and dist.is_initialized()):
        return t[None]
    return torch.stack(dist_fn.all_gather(t))


def onehot_target(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``y`` as a one-hot (or region) target of ``x``'s shape: a label map (B, 1, ...) or (B, ...) is scattered
    into booleans; a target that already has ``x``'s shape is returned as it is."""
    if x.ndim != y.ndim:
        y = y.view((y.shape[0], 1, *y.shape[1:]))
    if x.shape == y.shape:
        return y
    onehot = torch.zeros(x.shape, device=x.device, dtype=torch.bool)
    onehot.scatter_(1, y.long(), 1)
    return onehot


class SoftDiceLoss(nn.Module):
    """Soft Dice on probabilities against a label map or one-hot/region target.

    ``dc = (2 I + smooth) / max(P + G + smooth, 1e-8)`` with ``I = sum(p g)``, ``P = sum(p)``, ``G = sum(g)`` over
    the spatial axes (and the batch when ``batch_dice``); the loss is ``-mean(dc)``. A ``loss_mask`` (B, 1, ...)
    multiplies ``I`` and both sums. The one-hot target is built without gradients, in bool, to save memory.

    Args:
        apply_nonlin: maps logits to probabilities (softmax over channels, or sigmoid for regions); None: identity.
        batch_dice: pool the statistics over the batch (and DDP ranks) before dividing.
        do_bg: keep channel 0; False drops the background channel of softmax outputs.
        smooth: added to numerator and denominator.
        ddp: gather batch-dice statistics from all ranks.
    """

    def __init__(self, apply_nonlin: Callable | None = None, batch_dice: bool = False, do_bg: bool = True,
                 smooth: float = 1.0, ddp: bool = False):
        super().__init__()
        self.apply_nonlin = apply_nonlin
        self.batch_dice = batch_dice
        self.do_bg = do_bg
        self.smooth = smooth
        self.ddp = ddp

    def forward(self, x: torch.Tensor, y: torch.Tensor, loss_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.apply_nonlin is not None:
            x = self.apply_nonlin(x)
        axes = tuple(range(2, x.ndim))
        with torch.no_grad():
            y_onehot = onehot_target(x, y)
            if not self.do_bg:
                y_onehot = y_onehot[:, 1:]
            sum_gt = y_onehot.sum(axes) if loss_mask is None else (y_onehot * loss_mask).sum(axes)
        if not self.do_bg:
            x = x[:, 1:]
        if loss_mask is None:
            intersect = (x * y_onehot).sum(axes)
            sum_pred = x.sum(axes)
        else:
            intersect = (x * y_onehot * loss_mask).sum(axes)
            sum_pred = (x * loss_mask).sum(axes)
        if self.batch_dice:
            if self.ddp:
                intersect = _all_gather_with_grad(intersect).sum(0)
                sum_pred = _all_gather_with_grad(sum_pred).sum(0)
                sum_gt = _all_gather_with_grad(sum_gt).sum(0)
            intersect, sum_pred, sum_gt = intersect.sum(0), sum_pred.sum(0), sum_gt.sum(0)
        dc = (2 * intersect + self.smooth) / torch.clip(sum_gt + sum_pred + self.smooth, 1e-8)
        return -dc.mean()
