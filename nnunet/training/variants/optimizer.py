"""Optimizer and learning-rate variants (nnU-Net's ``variants/optimizer`` and ``variants/lr_schedule``).

The Adan trainers need the optional package adan-pytorch (``pip install "nnunet-fast[adan]"``); without it they stop
with a message saying so when the optimizer is built.
"""
from __future__ import annotations

from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer

# ruff: noqa: N801


@TRAINERS.register
class nnUNetTrainerAdam(nnUNetTrainer):
    """AdamW with AMSGrad, poly schedule."""

    optimizer_name = "AdamW"
    optimizer_kwargs = {"amsgrad": True}


@TRAINERS.register
class nnUNetTrainerAdam1en3(nnUNetTrainerAdam):
    initial_lr = 1e-3


@TRAINERS.register
class nnUNetTrainerAdam3en4(nnUNetTrainerAdam):
    initial_lr = 3e-4


@TRAINERS.register
class nnUNetTrainerVanillaAdam(nnUNetTrainer):
    """Adam with L2 weight decay, poly schedule."""

    optimizer_name = "Adam"


@TRAINERS.register
class nnUNetTrainerVanillaAdam1en3(nnUNetTrainerVanillaAdam):
    initial_lr = 1e-3


@TRAINERS.register
class nnUNetTrainerVanillaAdam3en4(nnUNetTrainerVanillaAdam):
    initial_lr = 3e-4


@TRAINERS.register
class nnUNetTrainerAdan(nnUNetTrainer):
    optimizer_name = "Adan"


@TRAINERS.register
class nnUNetTrainerAdan1en3(nnUNetTrainerAdan):
    initial_lr = 1e-3


@TRAINERS.register
class nnUNetTrainerAdan3en4(nnUNetTrainerAdan):
    initial_lr = 3e-4


@TRAINERS.register
class nnUNetTrainerAdan1en1(nnUNetTrainerAdan):
    initial_lr = 1e-1  # diverges (NaN losses) in nnU-Net's experience; shipped for completeness


@TRAINERS.register
class nnUNetTrainerAdanCosAnneal(nnUNetTrainerAdan):
    lr_schedule = "cosine"


@TRAINERS.register
class nnUNetTrainerCosAnneal(nnUNetTrainer):
    """SGD with cosine annealing of the learning rate to 0 over the epochs."""

    lr_schedule = "cosine"


@TRAINERS.register
class nnUNetTrainer_warmup(nnUNetTrainer):
    """Linear warm-up of the learning rate over the first 50 epochs, then the poly decay over the rest (the
    optimizer and its momentum are kept across the switch)."""

    lr_schedule = "warmup_poly"
    warmup_duration_whole_net = 50
