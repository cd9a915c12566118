"""The per-epoch "pseudo Dice" of the validation patches: hard TP/FP/FN counts and the Dice per class."""
from __future__ import annotations

import numpy as np
import torch

from nnunet.io.labels import LabelManager


def tp_fp_fn(onehot_prediction: torch.Tensor, target: torch.Tensor, axes: tuple[int, ...],
             mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hard true/false positives and false negatives per channel, summed over ``axes``.

    ``target`` is a label map (B, 1, ...) or already one-hot/regions with the prediction's shape; ``mask``
    (B, 1, ...) excludes voxels.
    """
    with torch.no_grad():
        if target.shape != onehot_prediction.shape:
            gt = torch.zeros(onehot_prediction.shape, device=onehot_prediction.device, dtype=torch.bool)
            gt.scatter_(1, target.long(), 1)
        else:
            gt = target.bool()
        pred = onehot_prediction.bool()
        tp, fp, fn = pred & gt, pred & ~gt, ~pred & gt
        if mask is not None:
            m = mask.bool()
            tp, fp, fn = tp & m, fp & m, fn & m
        return tp.sum(axes), fp.sum(axes), fn.sum(axes)


def validation_counts(output: torch.Tensor, target: torch.Tensor,
                      label_manager: LabelManager) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TP/FP/FN per foreground class (or region) of one batch: argmax one-hot (sigmoid > 0.5 for regions), ignore
    label masked out, background dropped for label training.

    The counts stay on the network's device (int64): copying them to the host here would wait for the GPU once per
    validation step; the epoch loop copies all steps' counts at once at the end of the epoch."""
    axes = (0,) + tuple(range(2, output.ndim))
    if label_manager.has_regions:
        onehot = (torch.sigmoid(output) > 0.5).long()
    else:
        onehot = torch.zeros(output.shape, device=output.device, dtype=torch.float32)
        onehot.scatter_(1, output.argmax(1)[:, None], 1)
    mask = None
    if label_manager.has_ignore_label:
        if not label_manager.has_regions:
            mask = target != label_manager.ignore_label
            target = torch.where(mask, target, 0)
        else:
            last = target[:, -1:]
            mask = ~last.bool() if last.dtype == torch.bool else (1 - last).bool()
            target = target[:, :-1]
    tp, fp, fn = tp_fp_fn(onehot, target, axes, mask)
    if not label_manager.has_regions:  # background is not a class of interest
        tp, fp, fn = tp[1:], fp[1:], fn[1:]
    return tp, fp, fn


def dice_per_class(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[list[float], float]:
    """``2TP / (2TP + FP + FN)`` per class (NaN for a class absent from prediction and target) and their nanmean."""
    dice = [float(2 * a / (2 * a + b + c)) if (2 * a + b + c) > 0 else float("nan") for a, b, c in zip(tp, fp, fn)]
    mean = float(np.nanmean(dice)) if not all(np.isnan(dice)) else float("nan")
    return dice, mean
