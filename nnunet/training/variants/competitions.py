"""Competition trainers (nnU-Net's ``variants/competitions``)."""
from __future__ import annotations

from nnunet.registry import TRAINERS
from nnunet.training.variants.data_augmentation import nnUNetTrainer_onlyMirror01, nnUNetTrainerDA5

# ruff: noqa: N801


@TRAINERS.register
class nnUNetTrainer_onlyMirror01_DA5(nnUNetTrainer_onlyMirror01, nnUNetTrainerDA5):
    """AortaSeg24: DA5 augmentation, mirroring only along axes 0 and 1."""
