"""nnU-Net 2.8.1's preprocessing iterators on :mod:`nnunet.inference.data_iterators`.

They yield ``{"data", "data_properties", "ofile"}`` in order, as 2.8.1's do, for
``nnUNetPredictor.predict_from_data_iterator``. ``data`` is a numpy array (a tensor in 2.8.1; the predictor
takes both). ``pin_memory`` is accepted and not used. 2.8.1's adapter classes (``PreprocessAdapter``,
``PreprocessAdapterFromNpy``) and queue workers are not provided.
"""
from __future__ import annotations

from typing import List, Union

import numpy as np

from nnunet.inference import data_iterators as _iterators
from nnunet.inference.predictor import as_configuration as _as_configuration
from nnunet.inference.predictor import as_plans as _as_plans

__all__ = ["preprocessing_iterator_fromfiles", "preprocessing_iterator_fromnpy"]


def _managers(plans_manager, configuration_manager):
    plans = _as_plans(plans_manager)
    return plans, _as_configuration(configuration_manager, plans)


def preprocessing_iterator_fromfiles(list_of_lists: List[List[str]],
                                     list_of_segs_from_prev_stage_files: Union[None, List[str]],
                                     output_filenames_truncated: Union[None, List[str]], plans_manager,
                                     dataset_json: dict, configuration_manager, num_processes: int,
                                     pin_memory: bool = False, verbose: bool = False):
    plans, configuration = _managers(plans_manager, configuration_manager)
    previous = list_of_segs_from_prev_stage_files or [None] * len(list_of_lists)
    ofiles = output_filenames_truncated or [None] * len(list_of_lists)
    jobs = [(files, prev, plans, configuration, dataset_json, verbose) for files, prev in zip(list_of_lists, previous)]
    return _iterators.iterate_in_order(_iterators.preprocess_files, jobs, ofiles, num_processes)


def preprocessing_iterator_fromnpy(list_of_images: List[np.ndarray],
                                   list_of_segs_from_prev_stage: Union[List[np.ndarray], None],
                                   list_of_image_properties: List[dict], truncated_ofnames: Union[List[str], None],
                                   plans_manager, dataset_json: dict, configuration_manager, num_processes: int,
                                   pin_memory: bool = False, verbose: bool = False):
    plans, configuration = _managers(plans_manager, configuration_manager)
    previous = list_of_segs_from_prev_stage or [None] * len(list_of_images)
    ofiles = truncated_ofnames or [None] * len(list_of_images)
    jobs = [(image, prev, props, plans, configuration, dataset_json, verbose)
            for image, prev, props in zip(list_of_images, previous, list_of_image_properties)]
    return _iterators.iterate_in_order(_iterators.preprocess_arrays, jobs, ofiles, num_processes)
