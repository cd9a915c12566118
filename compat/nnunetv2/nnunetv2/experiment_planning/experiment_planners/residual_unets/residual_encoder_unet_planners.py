"""nnU-Net 2.8.1's residual-encoder planners: ours (:mod:`nnunet.planning.resenc`).

``gpu_memory_target_in_gb=None`` and ``plans_name=None`` mean each class's defaults, 2.8.1's (M: 8 GB
``nnUNetResEncUNetMPlans``, L: 24 GB ``nnUNetResEncUNetLPlans``, XL: 40 GB ``nnUNetResEncUNetXLPlans``).
"""
from __future__ import annotations

from nnunet.planning.resenc import (ResEncUNetPlanner, nnUNetPlannerResEncL, nnUNetPlannerResEncM,
                                    nnUNetPlannerResEncXL)

__all__ = ["ResEncUNetPlanner", "nnUNetPlannerResEncL", "nnUNetPlannerResEncM", "nnUNetPlannerResEncXL"]
