"""Planner variants that resample with ``torch.nn.functional.interpolate`` (``resample_torch_fornnunet``).

The default planner's variant lives here; the ResEnc variants (``nnUNetPlannerResEnc*_torchres``) are in
:mod:`nnunet.planning.resenc` and use the same :func:`torch_resampling_settings`.
"""
from __future__ import annotations

from typing import Any

from nnunet.constants import ANISO_THRESHOLD
from nnunet.planning.planner import ExperimentPlanner
from nnunet.registry import PLANNERS


@PLANNERS.register
class nnUNetPlanner_torchres(ExperimentPlanner):
    """Default planner with torch-based resampling (no separate-z handling). Plans ``nnUNetPlans_torchres``."""

    default_plans_name = "nnUNetPlans_torchres"

    def determine_resampling(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return torch_resampling_settings(separate_z=False)


def torch_resampling_settings(separate_z: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    """Resampling entries of the torch-resampling planner variants (``separate_z``: the ``_sepz`` flavour)."""
    fn = "resample_torch_fornnunet"
    out = {}
    for kind, is_seg in (("data", False), ("seg", True), ("probabilities", False)):
        if separate_z:
            kwargs = {"is_seg": is_seg, "force_separate_z": None, "memefficient_seg_resampling": False,
                      "separate_z_anisotropy_threshold": ANISO_THRESHOLD}
        else:
            kwargs = {"is_seg": is_seg, "force_separate_z": False, "memefficient_seg_resampling": False}
        out[kind] = (fn, kwargs)
    return out
