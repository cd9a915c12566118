"""A very short schedule for the demo and the getting-started walk-through (not part of nnU-Net).

Five folds of two configurations train in a few minutes on a laptop CPU, which is enough for the small
generated demo dataset. For real data use ``nnUNetTrainer`` (1000 epochs of 250 iterations).
"""
from __future__ import annotations

from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer

# ruff: noqa: N801


@TRAINERS.register
class nnUNetTrainerDemo(nnUNetTrainer):
    num_epochs = 3
    num_iterations_per_epoch = 25
    num_val_iterations_per_epoch = 2
    plot_progress = False  # progress.png costs about a second per epoch
