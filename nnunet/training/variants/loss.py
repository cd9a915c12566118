"""Loss variants (nnU-Net's ``variants/loss``; :mod:`nnunet.training.loss.build`). The CE and top-k trainers
need label maps and refuse region-based datasets."""
from __future__ import annotations

from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer

# ruff: noqa: N801


@TRAINERS.register
class nnUNetTrainerCELoss(nnUNetTrainer):
    loss_name = "ce"


@TRAINERS.register
class nnUNetTrainerCELoss_5epochs(nnUNetTrainerCELoss):
    num_epochs = 5


@TRAINERS.register
class nnUNetTrainerDiceLoss(nnUNetTrainer):
    loss_name = "dice"


@TRAINERS.register
class nnUNetTrainerDiceCELoss_noSmooth(nnUNetTrainer):
    dice_smooth = 0.0


@TRAINERS.register
class nnUNetTrainerTopk10Loss(nnUNetTrainer):
    loss_name = "topk"
    topk_percent = 10


@TRAINERS.register
class nnUNetTrainerTopk10LossLS01(nnUNetTrainerTopk10Loss):
    label_smoothing = 0.1


@TRAINERS.register
class nnUNetTrainerDiceTopK10Loss(nnUNetTrainer):
    loss_name = "dice_topk"
    topk_percent = 10
