"""Segmentation losses: soft Dice, Dice+CE, Dice+BCE (regions), CE and top-k CE, and the deep-supervision wrapper."""
from nnunet.training.loss.build import LOSSES, build_segmentation_loss
from nnunet.training.loss.compound import DiceBCELoss, DiceCELoss
from nnunet.training.loss.cross_entropy import LabelMapCrossEntropy, TopKCrossEntropy
from nnunet.training.loss.deep_supervision import DeepSupervisionLoss, deep_supervision_weights
from nnunet.training.loss.dice import SoftDiceLoss

__all__ = ["LOSSES", "DiceBCELoss", "DiceCELoss", "DeepSupervisionLoss", "LabelMapCrossEntropy", "SoftDiceLoss",
           "TopKCrossEntropy", "build_segmentation_loss", "deep_supervision_weights"]
