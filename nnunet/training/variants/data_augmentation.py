"""Augmentation variants (nnU-Net's ``variants/data_augmentation``): class attributes of the default trainer."""
from __future__ import annotations

from nnunet.registry import TRAINERS
from nnunet.training.augmentation import DA5_SCALE_RANGE
from nnunet.training.trainer import nnUNetTrainer

# ruff: noqa: N801


@TRAINERS.register
class nnUNetTrainerNoDA(nnUNetTrainer):
    """No augmentation: the validation pipeline for training, the plain patch (no enlarged crop), no mirroring
    (neither in training nor at inference)."""

    augmentation = "none"


@TRAINERS.register
class nnUNetTrainerNoMirroring(nnUNetTrainer):
    use_mirroring = False


@TRAINERS.register
class nnUNetTrainer_onlyMirror01(nnUNetTrainer):
    """Mirrors only along spatial axes 0 and 1 in 3-D, axis 0 in 2-D (training and inference)."""

    mirror_axes_by_dim = {2: (0,), 3: (0, 1)}


@TRAINERS.register
class nnUNetTrainer_onlyMirror01_1500ep(nnUNetTrainer_onlyMirror01):
    num_epochs = 1500


@TRAINERS.register
class nnUNetTrainer_DASegOrd0(nnUNetTrainer):
    """Nearest-neighbour segmentation resampling in the spatial transform (cascade morphology per label with
    probability 1)."""

    seg_interpolation_order = 0
    cascade_p_per_label = 1.0


@TRAINERS.register
class nnUNetTrainer_DASegOrd0_NoMirroring(nnUNetTrainer_DASegOrd0):
    use_mirroring = False


@TRAINERS.register
class nnUNetTrainer_onlyMirror01_DASegOrd0(nnUNetTrainer_onlyMirror01):
    seg_interpolation_order = 0
    cascade_p_per_label = 1.0


@TRAINERS.register
class nnUNetTrainer_noDummy2DDA(nnUNetTrainer):
    allow_dummy_2d_data_aug = False


@TRAINERS.register
class nnUNetTrainerDA5(nnUNetTrainer):
    """The heavier DA5 pipeline (:mod:`nnunet.training.augmentation_da5`)."""

    augmentation = "DA5"
    initial_patch_scale_range = DA5_SCALE_RANGE


@TRAINERS.register
class nnUNetTrainerDA5ord0(nnUNetTrainerDA5):
    """DA5 with nearest-neighbour image and segmentation resampling in the spatial transform."""

    image_interpolation_order = 0
    seg_interpolation_order = 0


@TRAINERS.register
class nnUNetTrainerDA5Segord0(nnUNetTrainerDA5):
    """DA5 with nearest-neighbour segmentation resampling in the spatial transform."""

    seg_interpolation_order = 0


@TRAINERS.register
class nnUNetTrainerDA5_10epochs(nnUNetTrainerDA5):
    num_epochs = 10
