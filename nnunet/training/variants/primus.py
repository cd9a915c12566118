"""Primus transformer trainers (nnU-Net's ``training/nnUNetTrainer/primus``; Wald, Roy, Isensee et al. 2025,
"Primus: Enforcing attention usage for 3d medical image segmentation", arXiv:2503.01835).

All use AdamW (lr 3e-4, weight decay 5e-2, betas (0.9, 0.98), fused), a 50-epoch linear warm-up followed by
the poly decay, gradient clipping at norm 1 and no deep supervision, on top of regular nnU-Net plans: the
network replaces the plans' U-Net (3-D configurations only, patch size divisible by 8;
:mod:`nnunet.networks.primus`). Inference builds the same network through the trainer class named in the
checkpoint.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from nnunet.errors import ConfigurationError
from nnunet.networks.primus import build_primus
from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer
from nnunet.training.variants.optimizer import nnUNetTrainer_warmup

# ruff: noqa: N801


@TRAINERS.register
class AbstractPrimus(nnUNetTrainer_warmup):
    """Base of the Primus trainers; names no network itself."""

    initial_lr = 3e-4
    weight_decay = 5e-2
    enable_deep_supervision = False
    optimizer_name = "AdamW"
    optimizer_kwargs = {"amsgrad": False, "betas": (0.9, 0.98), "fused": True}
    grad_clip_norm = 1.0
    #: class in dynamic_network_architectures' primus module, and its size arguments (Primus only)
    primus_architecture: str | None = None
    primus_kwargs: dict[str, Any] = {}

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True) -> nn.Module:
        if cls.primus_architecture is None:
            raise ConfigurationError(f"{cls.__name__} is the base class of the Primus trainers and names no network; "
                                     f"use e.g. nnUNet_Primus_M_Trainer or nnUNet_PrimusV2M_Trainer.")
        return build_primus(cls.primus_architecture, cls.primus_kwargs, num_input_channels, num_output_channels,
                            configuration_manager.patch_size, configuration_manager.name)

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        pass  # Primus has a single output


@TRAINERS.register
class nnUNet_Primus_S_Trainer(AbstractPrimus):
    primus_architecture = "Primus"
    primus_kwargs = {"embed_dim": 396, "eva_depth": 12, "eva_numheads": 6}


@TRAINERS.register
class nnUNet_Primus_B_Trainer(AbstractPrimus):
    primus_architecture = "Primus"
    primus_kwargs = {"embed_dim": 792, "eva_depth": 12, "eva_numheads": 12}


@TRAINERS.register
class nnUNet_Primus_M_Trainer(AbstractPrimus):
    primus_architecture = "Primus"
    primus_kwargs = {"embed_dim": 864, "eva_depth": 16, "eva_numheads": 12}


@TRAINERS.register
class nnUNet_Primus_L_Trainer(AbstractPrimus):
    primus_architecture = "Primus"
    primus_kwargs = {"embed_dim": 1056, "eva_depth": 24, "eva_numheads": 16}


@TRAINERS.register
class nnUNet_PrimusV2S_Trainer(AbstractPrimus):
    primus_architecture = "PrimusV2S"


@TRAINERS.register
class nnUNet_PrimusV2B_Trainer(AbstractPrimus):
    primus_architecture = "PrimusV2B"


@TRAINERS.register
class nnUNet_PrimusV2M_Trainer(AbstractPrimus):
    primus_architecture = "PrimusV2M"


@TRAINERS.register
class nnUNet_PrimusV2L_Trainer(AbstractPrimus):
    primus_architecture = "PrimusV2L"


@TRAINERS.register
class nnUNet_PrimusV3S_Trainer(AbstractPrimus):
    primus_architecture = "PrimusV3S"


@TRAINERS.register
class nnUNet_PrimusV3B_Trainer(AbstractPrimus):
    primus_architecture = "PrimusV3B"


@TRAINERS.register
class nnUNet_PrimusV3M_Trainer(AbstractPrimus):
    primus_architecture = "PrimusV3M"


@TRAINERS.register
class nnUNet_PrimusV3L_Trainer(AbstractPrimus):
    primus_architecture = "PrimusV3L"


@TRAINERS.register
class nnUNet_Primus_M_Trainer_BS8(nnUNet_Primus_M_Trainer):
    configuration_batch_size = 8


@TRAINERS.register
class nnUNet_Primus_M_Trainer_BS8_2e4(nnUNet_Primus_M_Trainer):
    configuration_batch_size = 8
    initial_lr = 2e-4


@TRAINERS.register
class nnUNet_Trainer_BS8(nnUNetTrainer):
    """The default trainer with batch size 8 (whatever the plans say)."""

    configuration_batch_size = 8


@TRAINERS.register
class _Primus_S_96_BS1(nnUNet_Primus_S_Trainer):
    """Primus-S with the patch size of the Primus paper (96^3, batch 1; written into the copied plans)."""

    configuration_patch_size = (96, 96, 96)
    configuration_batch_size = 1


@TRAINERS.register
class _Primus_B_96_BS1(nnUNet_Primus_B_Trainer):
    configuration_patch_size = (96, 96, 96)
    configuration_batch_size = 1


@TRAINERS.register
class _Primus_M_96_BS1(nnUNet_Primus_M_Trainer):
    configuration_patch_size = (96, 96, 96)
    configuration_batch_size = 1


@TRAINERS.register
class _Primus_L_48_BS1(nnUNet_Primus_L_Trainer):
    configuration_patch_size = (48, 48, 48)
    configuration_batch_size = 1
