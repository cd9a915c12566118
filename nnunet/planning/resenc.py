"""Residual-encoder U-Net planners (the ResEnc M/L/XL presets) and their resampling variants.

They differ from the default planner only in class attributes (network, blocks per stage, reference memory values
and GPU size, batch cap, plans name) and in the patch-shrinking test, which compares the estimate itself with the
reference. Their ``2d`` and ``3d_fullres`` configurations reuse the preprocessed data of ``nnUNetPlans``.
"""
from __future__ import annotations

from typing import Any

from nnunet.planning.planner import ExperimentPlanner
from nnunet.planning.torchres import torch_resampling_settings
from nnunet.registry import PLANNERS


@PLANNERS.register
class ResEncUNetPlanner(ExperimentPlanner):
    """ResidualEncoderUNet with blocks (1, 3, 4, 6, 6, ...), one decoder conv per stage, 8 GB, 5 % batch cap."""

    default_plans_name = "nnUNetResEncUNetPlans"
    network_class_name = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    encoder_blocks_kwarg = "n_blocks_per_stage"
    encoder_blocks_per_stage = (1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6)
    decoder_convs_per_stage = (1,) * 12
    reference_vram_3d = 680_000_000
    reference_vram_2d = 135_000_000
    shared_data_plans_name = "nnUNetPlans"

    def exceeds_budget(self, estimate: int, reference: float, reference_batch_size: int) -> bool:
        # the ResEnc reference values were calibrated for the batch the estimate is compared with
        return estimate > reference


@PLANNERS.register
class nnUNetPlannerResEncM(ResEncUNetPlanner):
    """ResEnc M: about 9-11 GB of GPU memory, no dataset-fraction batch cap."""

    default_plans_name = "nnUNetResEncUNetMPlans"
    default_gpu_memory_target_in_gb = 8
    reference_vram_gb = 8
    warn_on_nondefault_gpu_target = True
    max_dataset_covered = 1


@PLANNERS.register
class nnUNetPlannerResEncL(ResEncUNetPlanner):
    """ResEnc L: about 24 GB of GPU memory (the recommended preset)."""

    default_plans_name = "nnUNetResEncUNetLPlans"
    default_gpu_memory_target_in_gb = 24
    reference_vram_gb = 24
    reference_vram_3d = 2_100_000_000
    reference_vram_2d = 380_000_000
    warn_on_nondefault_gpu_target = True
    max_dataset_covered = 1


@PLANNERS.register
class nnUNetPlannerResEncXL(ResEncUNetPlanner):
    """ResEnc XL: about 40 GB of GPU memory."""

    default_plans_name = "nnUNetResEncUNetXLPlans"
    default_gpu_memory_target_in_gb = 40
    reference_vram_gb = 40
    reference_vram_3d = 3_600_000_000
    reference_vram_2d = 560_000_000
    warn_on_nondefault_gpu_target = True
    max_dataset_covered = 1


@PLANNERS.register
class nnUNetPlannerResEncL_torchres(nnUNetPlannerResEncL):
    """ResEnc L with torch-based resampling (own data for every configuration)."""

    default_plans_name = "nnUNetResEncUNetLPlans_torchres"
    shared_data_plans_name = None

    def determine_resampling(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return torch_resampling_settings(separate_z=False)


@PLANNERS.register
class nnUNetPlannerResEncL_torchres_sepz(nnUNetPlannerResEncL):
    """ResEnc L with torch-based resampling that treats anisotropic axes separately."""

    default_plans_name = "nnUNetResEncUNetLPlans_torchres_sepz"
    shared_data_plans_name = None

    def determine_resampling(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return torch_resampling_settings(separate_z=True)


@PLANNERS.register
class nnUNetPlannerResEncL_noResampling(nnUNetPlannerResEncL):
    """ResEnc L that never resamples (images keep their own spacing; a 3d_lowres is still planned)."""

    default_plans_name = "nnUNetResEncUNetLPlans_noResampling"
    shared_data_plans_name = None

    def determine_resampling(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {kind: ("no_resampling_hack", {}) for kind in ("data", "seg", "probabilities")}
