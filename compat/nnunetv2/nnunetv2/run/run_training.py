"""nnU-Net 2.8.1's ``nnunetv2.run.run_training`` on :mod:`nnunet.training.run`."""
from __future__ import annotations

import os
from typing import Optional, Union

import torch

from nnunet.cli.train import train_main as _train_main
from nnunet.training import ddp as _ddp
from nnunet.training import run as _run
from nnunetv2._entry import run_command as _run_command

__all__ = ["cleanup_ddp", "find_free_network_port", "get_trainer_from_args", "maybe_load_checkpoint", "run_training",
           "run_training_entry", "setup_ddp"]

find_free_network_port = _run._free_port


def setup_ddp(rank: int, world_size: int) -> None:
    """Join the process group as ``rank`` of ``world_size`` (NCCL; GPU ``rank``), as 2.8.1's spawned workers do
    (MASTER_ADDR/MASTER_PORT as set by the caller)."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size)})
    _ddp.init_process_group(torch.device("cuda"))


def cleanup_ddp() -> None:
    _ddp.destroy_process_group()


def get_trainer_from_args(dataset_name_or_id: Union[int, str], configuration: str, fold: int,
                          trainer_name: str = "nnUNetTrainer", plans_identifier: str = "nnUNetPlans",
                          continue_training: bool = False, device: torch.device = torch.device("cuda")):
    """The trainer, constructed from the files in nnUNet_preprocessed (``continue_training`` is accepted: 2.8.1
    only hands it to the trainer, which ignores it)."""
    return _run.get_trainer_from_args(dataset_name_or_id, configuration, fold, trainer_name, plans_identifier,
                                      device=device)


def maybe_load_checkpoint(nnunet_trainer, continue_training: bool, validation_only: bool,
                          pretrained_weights_file: str = None) -> None:
    _run.maybe_load_checkpoint(nnunet_trainer, continue_training, validation_only, pretrained_weights_file)


def run_training(dataset_name_or_id: Union[str, int], configuration: str, fold: Union[int, str],
                 trainer_class_name: str = "nnUNetTrainer", plans_identifier: str = "nnUNetPlans",
                 pretrained_weights: Optional[str] = None, num_gpus: int = 1,
                 export_validation_probabilities: bool = False, continue_training: bool = False,
                 only_run_validation: bool = False, disable_checkpointing: bool = False, val_with_best: bool = False,
                 device: torch.device = torch.device("cuda")) -> None:
    _run.run_training(dataset_name_or_id, configuration, fold, trainer_class_name, plans_identifier,
                      pretrained_weights, num_gpus, export_validation_probabilities, continue_training,
                      only_run_validation, disable_checkpointing, val_with_best, device)


def run_training_entry() -> None:
    """``nnUNetv2_train`` (arguments from ``sys.argv``)."""
    _run_command(_train_main)
