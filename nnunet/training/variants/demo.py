"""Short schedules that are not part of nnU-Net: the demo's, and a first trial run on real data on a CPU.

* ``nnUNetTrainerDemo``: 3 epochs x 25 iterations, for the generated demo spheres (five folds of two
  configurations train in a few minutes on a laptop CPU).
* ``nnUNetTrainerCPUTrial``: 10 epochs x 60 iterations with the batch size capped at 32, for a first run on real
  data without a GPU: it finishes in minutes and learns enough to check the set-up end to end (documentation/
  training.md gives the measured cost and Dice on MSD Hippocampus: a 2d model starts segmenting after about 150
  iterations). It is not a substitute for a real training (``nnUNetTrainer``: 1000 epochs x 250 iterations).
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


@TRAINERS.register
class nnUNetTrainerCPUTrial(nnUNetTrainer):
    num_epochs = 10
    num_iterations_per_epoch = 60
    num_val_iterations_per_epoch = 5
    #: 2-D plans often ask for hundreds of slices per batch (Hippocampus: 287), tens of seconds per step on a CPU
    max_batch_size = 32
