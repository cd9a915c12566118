"""nnU-Net 2.8.1's ``nnunetv2.inference.export_prediction`` on :mod:`nnunet.inference.export`.

``num_threads_torch`` is accepted and not used (our export resamples with numpy/scipy).
"""
from __future__ import annotations

import os
from typing import Union

import numpy as np
import torch

from nnunet.inference import export as _export
from nnunet.inference.predictor import as_configuration as _as_configuration
from nnunet.inference.predictor import as_plans as _as_plans
from nnunet.io.dataset_json import load_dataset_json as _load_dataset_json
from nnunetv2.configuration import default_num_processes

__all__ = ["convert_predicted_logits_to_segmentation_with_correct_shape", "export_prediction_from_logits"]


def convert_predicted_logits_to_segmentation_with_correct_shape(predicted_logits: Union[torch.Tensor, np.ndarray],
                                                                plans_manager, configuration_manager, label_manager,
                                                                properties_dict: dict,
                                                                return_probabilities: bool = False,
                                                                num_threads_torch: int = default_num_processes):
    plans = _as_plans(plans_manager)
    return _export.convert_predicted_logits_to_segmentation_with_correct_shape(
        predicted_logits, plans, _as_configuration(configuration_manager, plans), label_manager, properties_dict,
        return_probabilities)


def export_prediction_from_logits(predicted_array_or_file: Union[np.ndarray, torch.Tensor], properties_dict: dict,
                                  configuration_manager, plans_manager, dataset_json_dict_or_file: Union[dict, str],
                                  output_file_truncated: str, save_probabilities: bool = False,
                                  num_threads_torch: int = default_num_processes):
    plans = _as_plans(plans_manager)
    dataset_json = dataset_json_dict_or_file
    if isinstance(dataset_json, (str, os.PathLike)):
        dataset_json = _load_dataset_json(dataset_json)
    _export.export_prediction_from_logits(predicted_array_or_file, properties_dict,
                                          _as_configuration(configuration_manager, plans), plans, dataset_json,
                                          output_file_truncated, save_probabilities)
