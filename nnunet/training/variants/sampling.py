"""Foreground-sampling variants (nnU-Net's ``variants/sampling``)."""
from __future__ import annotations

import numpy as np

from nnunet.registry import TRAINERS
from nnunet.training.data.loader import forced_foreground_positions
from nnunet.training.trainer import nnUNetTrainer

# ruff: noqa: N801


@TRAINERS.register
class nnUNetTrainer_probabilisticOversampling(nnUNetTrainer):
    """Each sample is forced to foreground independently, with a probability equal to the fraction the default
    (positional) rule forces in a batch of the configuration's size (batch 2: 0.5). Under DDP the fraction stays
    the global one."""

    probabilistic_oversampling = True
    #: derive the probability from the positional rule (False: use ``oversample_foreground_percent`` as it is)
    match_positional_fraction: bool = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.match_positional_fraction:
            positions = forced_foreground_positions(self.configuration_manager.batch_size,
                                                    self.oversample_foreground_percent)
            self.oversample_foreground_percent = float(np.mean(positions))


@TRAINERS.register
class nnUNetTrainer_probabilisticOversampling_033(nnUNetTrainer_probabilisticOversampling):
    match_positional_fraction = False
    oversample_foreground_percent = 0.33


@TRAINERS.register
class nnUNetTrainer_probabilisticOversampling_010(nnUNetTrainer_probabilisticOversampling):
    match_positional_fraction = False
    oversample_foreground_percent = 0.1
