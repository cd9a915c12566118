"""Network variants (nnU-Net's ``variants/network_architecture``). Inference builds the network through the
trainer class named in the checkpoint, so a BN model is predicted with BatchNorm."""
from __future__ import annotations

from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer

# ruff: noqa: N801


@TRAINERS.register
class nnUNetTrainerBN(nnUNetTrainer):
    """The plans' U-Net with BatchNorm (eps 1e-5, affine) instead of its normalisation layers."""

    norm_op = "batch"


@TRAINERS.register
class nnUNetTrainerNoDeepSupervision(nnUNetTrainer):
    enable_deep_supervision = False
