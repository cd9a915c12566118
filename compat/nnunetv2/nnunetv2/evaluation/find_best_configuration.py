"""nnU-Net 2.8.1's ``nnunetv2.evaluation.find_best_configuration`` on :mod:`nnunet.ensembling.model_selection`.

``strict``: accepted. In 2.8.1 (and here) a requested model whose configuration is in the plans but that has no
output folder is an error whatever ``strict`` says; configurations absent from the plans are skipped.
"""
from __future__ import annotations

from typing import List, Tuple, Union

from nnunet.cli.ensemble import find_best_configuration_main as _find_best_configuration_main
from nnunet.cli.evaluate import accumulate_crossval_results_main as _accumulate_crossval_results_main
from nnunet.ensembling import model_selection as _selection
from nnunetv2._entry import run_command as _run_command
from nnunetv2.configuration import default_num_processes

__all__ = ["accumulate_crossval_results_entry_point", "default_trained_models",
           "dumb_trainer_config_plans_to_trained_models_dict", "find_best_configuration",
           "find_best_configuration_entry_point"]

default_trained_models = tuple(_selection.candidate_models(["nnUNetTrainer"], _selection.DEFAULT_CONFIGURATIONS,
                                                           ["nnUNetPlans"]))


def find_best_configuration(dataset_name_or_id,
                            allowed_trained_models: Union[List[dict], Tuple[dict, ...]] = default_trained_models,
                            allow_ensembling: bool = True, num_processes: int = default_num_processes,
                            overwrite: bool = True, folds: Union[List[int], Tuple[int, ...]] = (0, 1, 2, 3, 4),
                            strict: bool = False):
    """Pick the best model (or pair ensemble) by cross-validation Dice and write inference_information.json
    and inference_instructions.txt; returns the inference information dict."""
    return _selection.find_best_configuration(dataset_name_or_id, allowed_trained_models, allow_ensembling,
                                              num_processes, overwrite, folds)


def dumb_trainer_config_plans_to_trained_models_dict(trainers: List[str], configs: List[str], plans: List[str]):
    """Every trainer x configuration x plans combination as ``{"plans", "configuration", "trainer"}`` dicts."""
    return tuple(_selection.candidate_models(trainers, configs, plans))


def find_best_configuration_entry_point():
    _run_command(_find_best_configuration_main)


def accumulate_crossval_results_entry_point():
    _run_command(_accumulate_crossval_results_main)
