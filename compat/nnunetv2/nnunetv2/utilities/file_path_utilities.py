"""nnU-Net 2.8.1's ``nnunetv2.utilities.file_path_utilities``: names of model and ensemble folders.

The folder names are :mod:`nnunet.ensembling.model_selection`'s; :func:`get_output_folder` only builds the
path (it does not check that the folder exists, as in 2.8.1).
"""
from __future__ import annotations

import os
from typing import List, Tuple, Union

from nnunet import paths as _paths
from nnunet.ensembling import model_selection as _selection
from nnunet.evaluation.accumulate_cv_results import folds_to_string as _folds_to_string
from nnunet.io.naming import resolve_dataset_name as _resolve_dataset_name
from nnunet.training.run import parse_fold as _parse_fold

__all__ = ["convert_ensemble_folder_to_model_identifiers_and_folds", "convert_identifier_to_trainer_plans_config",
           "convert_trainer_plans_config_to_identifier", "folds_string_to_tuple", "folds_tuple_to_string",
           "get_ensemble_name", "get_output_folder", "maybe_convert_to_dataset_name",
           "parse_dataset_trainer_plans_configuration_from_path"]

maybe_convert_to_dataset_name = _resolve_dataset_name


def convert_trainer_plans_config_to_identifier(trainer_name, plans_identifier, configuration):
    return _selection.model_identifier(trainer_name, plans_identifier, configuration)


def convert_identifier_to_trainer_plans_config(identifier: str):
    """``[trainer, plans, configuration]`` of a model folder name or path."""
    return list(_selection.parse_model_identifier(identifier))


def get_output_folder(dataset_name_or_id: Union[str, int], trainer_name: str = "nnUNetTrainer",
                      plans_identifier: str = "nnUNetPlans", configuration: str = "3d_fullres",
                      fold: Union[str, int] = None) -> str:
    """``$nnUNet_results/{dataset}/{trainer}__{plans}__{configuration}[/fold_{fold}]`` as a string."""
    folder = _paths.results_root() / _resolve_dataset_name(dataset_name_or_id) / \
        _selection.model_identifier(trainer_name, plans_identifier, configuration)
    if fold is not None:
        folder = folder / f"fold_{_parse_fold(fold)}"
    return str(folder)


def parse_dataset_trainer_plans_configuration_from_path(path: str):
    """``(dataset, trainer, plans, configuration)`` of a path ``.../DatasetXXX_Name/TR__PLANS__CONF[/fold_X]``."""
    parts = [p for p in os.path.normpath(str(path)).split(os.sep) if p]
    for i, part in enumerate(parts[:-1]):
        if part.startswith("Dataset"):
            return (part, *_selection.parse_model_identifier(parts[i + 1]))
    raise ValueError(f"{path} has no DatasetXXX_Name/TRAINER__PLANS__CONFIGURATION part.")


def get_ensemble_name(model1_folder, model2_folder, folds: Tuple[int, ...]):
    return _selection.ensemble_identifier(model1_folder, model2_folder, folds)


def convert_ensemble_folder_to_model_identifiers_and_folds(ensemble_folder: str):
    return _selection.parse_ensemble_identifier(ensemble_folder)


def folds_tuple_to_string(folds: Union[List[int], Tuple[int, ...]]):
    return _folds_to_string(folds)


def folds_string_to_tuple(folds_string: str):
    """``"0_1_all"`` -> ``[0, 1, "all"]``."""
    return [int(f) if f.lstrip("-").isdigit() else f for f in folds_string.split("_")]
