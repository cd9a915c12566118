"""nnU-Net 2.8.1's ``nnunetv2.training.nnUNetTrainer.nnUNetTrainer``: our trainer class itself.

A trainer file written for nnU-Net subclasses it unchanged: the constructor (plans dict, configuration, fold,
dataset.json, device), the attributes set there (``num_epochs``, ``initial_lr``, ``plans_manager``,
``configuration_manager``, ``label_manager``, ...) and the hooks (``_build_loss``, ``build_network_architecture``,
``configure_optimizers``, ``get_training_transforms``, ``train_step``, ``on_epoch_end``, ...) carry 2.8.1's
names and arguments. Put the file in a folder named by ``nnUNet_extTrainer`` (or import it) and give its class
name to ``nnUNet_train -tr``.
"""
from __future__ import annotations

from nnunet.training.trainer import nnUNetTrainer

__all__ = ["nnUNetTrainer"]
