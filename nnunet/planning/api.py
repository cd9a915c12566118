"""Python API of the planning stage: plan one or several datasets with a planner chosen by class name."""
from __future__ import annotations

import logging
from typing import Any, Sequence

from nnunet.errors import NnunetError
from nnunet.planning.plans import Plans
from nnunet.registry import PLANNERS

logger = logging.getLogger(__name__)

RESENC_HINT = ("Note: ExperimentPlanner is nnU-Net's original default; the residual-encoder presets "
               "(-pl nnUNetPlannerResEncM/L/XL) are now recommended.")


def plan_experiment_dataset(dataset_name_or_id: str | int, planner_name: str = "ExperimentPlanner",
                            gpu_memory_target: float | None = None, preprocessor_name: str = "DefaultPreprocessor",
                            overwrite_target_spacing: Sequence[float] | None = None,
                            overwrite_plans_name: str | None = None) -> tuple[dict[str, Any], str]:
    """Plan one dataset. Returns ``(plans, plans_identifier)``.

    ``gpu_memory_target`` and ``overwrite_plans_name`` are only passed on when given, so each planner keeps its
    own defaults (e.g. 24 GB and ``nnUNetResEncUNetLPlans`` for ``nnUNetPlannerResEncL``).
    """
    planner_class = PLANNERS.get(planner_name)
    kwargs: dict[str, Any] = {}
    if gpu_memory_target is not None:
        kwargs["gpu_memory_target_in_gb"] = gpu_memory_target
    if overwrite_plans_name is not None:
        kwargs["plans_name"] = overwrite_plans_name
    planner = planner_class(dataset_name_or_id, preprocessor_name=preprocessor_name,
                            overwrite_target_spacing=overwrite_target_spacing, suppress_transpose=False, **kwargs)
    plans = planner.plan_experiment()
    return plans, planner.plans_identifier


def plan_experiments(dataset_ids: Sequence[str | int], planner_name: str = "ExperimentPlanner",
                     gpu_memory_target: float | None = None, preprocessor_name: str = "DefaultPreprocessor",
                     overwrite_target_spacing: Sequence[float] | None = None,
                     overwrite_plans_name: str | None = None) -> str:
    """Plan every dataset in ``dataset_ids`` and return the plans identifier (e.g. ``nnUNetPlans``).

    Raises:
        NnunetError: unknown planner, missing fingerprint, bad arguments.
    """
    planner_class = PLANNERS.get(planner_name)  # fail on a typo before touching any dataset
    if planner_class.__name__ == "ExperimentPlanner":
        logger.info(RESENC_HINT)
    plans_identifier = None
    for dataset in dataset_ids:
        plans, plans_identifier = plan_experiment_dataset(dataset, planner_name, gpu_memory_target,
                                                          preprocessor_name, overwrite_target_spacing,
                                                          overwrite_plans_name)
        configs = ", ".join(plans["configurations"])
        logger.info("%s: wrote %s.json (%s)", plans["dataset_name"], plans_identifier, configs)
        for line in configuration_summary(plans):
            logger.info("  %s", line)
    return plans_identifier


def configuration_summary(plans: dict[str, Any]) -> list[str]:
    """One line per configuration that has its own patch: patch size, batch size, spacing (inherited values
    resolved, so a cascade stage shows what it trains with)."""
    resolved = Plans(plans)
    lines = []
    for name in resolved.available_configurations:
        try:
            c = resolved.configuration(name)
            lines.append(f"{name}: patch size {c.patch_size}, batch size {c.batch_size}, "
                         f"spacing {[round(s, 4) for s in c.spacing]}")
        except (NnunetError, KeyError, TypeError, ValueError):
            lines.append(f"{name}: (incomplete configuration)")
    return lines
