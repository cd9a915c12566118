"""nnU-Net 2.8.1's ``ExperimentPlanner``: ours (:class:`nnunet.planning.planner.ExperimentPlanner`).

``gpu_memory_target_in_gb=None`` and ``plans_name=None`` mean the class's defaults, 2.8.1's (8 GB,
``nnUNetPlans``).
"""
from __future__ import annotations

from nnunet.planning.planner import ExperimentPlanner

__all__ = ["ExperimentPlanner"]
