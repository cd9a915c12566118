"""nnU-Net 2.8.1's ``nnunetv2.experiment_planning.plan_and_preprocess_api``, by position and keyword.

Work done by :func:`nnunet.fingerprint.extract.extract_fingerprints`, :mod:`nnunet.planning.api` and
:mod:`nnunet.preprocessing.api`; classes are found by name as ``-pl`` / ``-fpe`` find them (our registries,
dotted paths). Functions that take a class (``extract_fingerprint_dataset``, ``plan_experiment_dataset``) accept
ours or any importable subclass.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Type, Union

from nnunet.fingerprint import extract as _extract
from nnunet.planning import api as _planning
from nnunet.preprocessing import api as _preprocessing
from nnunet.registry import FINGERPRINT_EXTRACTORS as _FINGERPRINT_EXTRACTORS
from nnunet.registry import PLANNERS as _PLANNERS
from nnunetv2.configuration import default_num_processes
from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import DatasetFingerprintExtractor
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

__all__ = ["extract_fingerprint_dataset", "extract_fingerprints", "plan_experiment_dataset", "plan_experiments",
           "preprocess", "preprocess_dataset"]


def _name_for(registry, cls: type) -> str:
    """How our registry finds ``cls``: its name when that is registered to it, else its dotted path."""
    if registry.find(cls.__name__) is cls:
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def extract_fingerprint_dataset(dataset_id: int,
                                fingerprint_extractor_class: Type[DatasetFingerprintExtractor] = DatasetFingerprintExtractor,
                                num_processes: int = default_num_processes, check_dataset_integrity: bool = False,
                                clean: bool = True, verbose: bool = True, show_progress_bar: bool = True):
    """Fingerprint one dataset (and save it); returns the fingerprint dict."""
    return extract_fingerprints([dataset_id], _name_for(_FINGERPRINT_EXTRACTORS, fingerprint_extractor_class),
                                num_processes, check_dataset_integrity, clean, verbose, show_progress_bar)[0]


def extract_fingerprints(dataset_ids: List[int], fingerprint_extractor_class_name: str = "DatasetFingerprintExtractor",
                         num_processes: int = default_num_processes, check_dataset_integrity: bool = False,
                         clean: bool = True, verbose: bool = True, show_progress_bar: bool = True):
    """Fingerprint each dataset. ``clean=False`` keeps fingerprints that exist. Returns the fingerprints (2.8.1:
    None)."""
    return _extract.extract_fingerprints(dataset_ids, fingerprint_extractor_class_name, num_processes,
                                         check_integrity=check_dataset_integrity, clean=clean, verbose=verbose,
                                         show_progress=show_progress_bar)


def plan_experiment_dataset(dataset_id: int, experiment_planner_class: Type[ExperimentPlanner] = ExperimentPlanner,
                            gpu_memory_target_in_gb: float = None, preprocess_class_name: str = "DefaultPreprocessor",
                            overwrite_target_spacing: Optional[Tuple[float, ...]] = None,
                            overwrite_plans_name: Optional[str] = None) -> Tuple[dict, str]:
    """Plan one dataset with ``experiment_planner_class``; returns ``(plans, plans_identifier)``."""
    return _planning.plan_experiment_dataset(dataset_id, _name_for(_PLANNERS, experiment_planner_class),
                                             gpu_memory_target_in_gb, preprocess_class_name,
                                             overwrite_target_spacing, overwrite_plans_name)


def plan_experiments(dataset_ids: List[int], experiment_planner_class_name: str = "ExperimentPlanner",
                     gpu_memory_target_in_gb: float = None, preprocess_class_name: str = "DefaultPreprocessor",
                     overwrite_target_spacing: Optional[Tuple[float, ...]] = None,
                     overwrite_plans_name: Optional[str] = None):
    """Plan each dataset; returns the plans identifier."""
    return _planning.plan_experiments(dataset_ids, experiment_planner_class_name, gpu_memory_target_in_gb,
                                      preprocess_class_name, overwrite_target_spacing, overwrite_plans_name)


def preprocess_dataset(dataset_id: int, plans_identifier: str = "nnUNetPlans",
                       configurations: Union[Tuple[str], List[str]] = ("2d", "3d_fullres", "3d_lowres"),
                       num_processes: Union[int, Tuple[int, ...], List[int]] = (8, 4, 8), verbose: bool = False,
                       show_progress_bar: bool = True) -> None:
    """Preprocess the configurations of one dataset (those missing from the plans are skipped)."""
    _preprocessing.preprocess_dataset(dataset_id, plans_identifier, configurations, _counts(num_processes),
                                      verbose, show_progress=show_progress_bar)


def preprocess(dataset_ids: List[int], plans_identifier: str = "nnUNetPlans",
               configurations: Union[Tuple[str], List[str]] = ("2d", "3d_fullres", "3d_lowres"),
               num_processes: Union[int, Tuple[int, ...], List[int]] = (8, 4, 8), verbose: bool = False,
               show_progress_bar: bool = True):
    _preprocessing.preprocess(dataset_ids, plans_identifier, configurations, _counts(num_processes), verbose,
                              show_progress=show_progress_bar)


def _counts(num_processes):
    return num_processes if isinstance(num_processes, int) else list(num_processes)
