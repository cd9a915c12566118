"""nnU-Net 2.8.1's ``nnunetv2.postprocessing.remove_connected_components`` on :mod:`nnunet.postprocessing`.

``remove_all_but_largest_component_from_segmentation`` is ours itself, so postprocessing.pkl files written by
2.8.1 (which name it by this module's path) load and apply here.
"""
from __future__ import annotations

from typing import Callable, List, Union

import numpy as np

from nnunet.cli.postprocess import apply_postprocessing_main as _apply_postprocessing_main
from nnunet.cli.postprocess import determine_postprocessing_main as _determine_postprocessing_main
from nnunet.postprocessing import postprocess as _postprocess
from nnunet.postprocessing.components import remove_all_but_largest_component_from_segmentation
from nnunetv2._entry import run_command as _run_command
from nnunetv2.configuration import default_num_processes

__all__ = ["apply_postprocessing", "apply_postprocessing_to_folder", "determine_postprocessing",
           "entry_point_apply_postprocessing", "entry_point_determine_postprocessing_folder",
           "load_postprocess_save", "remove_all_but_largest_component_from_segmentation"]


def apply_postprocessing(segmentation: np.ndarray, pp_fns: List[Callable], pp_fn_kwargs: List[dict]):
    return _postprocess.apply_postprocessing(segmentation, pp_fns, pp_fn_kwargs)


def load_postprocess_save(segmentation_file: str, output_fname: str, image_reader_writer, pp_fns: List[Callable],
                          pp_fn_kwargs: List[dict]):
    _postprocess.load_postprocess_save(segmentation_file, output_fname, image_reader_writer, pp_fns, pp_fn_kwargs)


def determine_postprocessing(folder_predictions: str, folder_ref: str, plans_file_or_dict: Union[str, dict],
                             dataset_json_file_or_dict: Union[str, dict], num_processes: int = default_num_processes,
                             keep_postprocessed_files: bool = True):
    """Decide which connected-component steps improve the Dice; writes postprocessing.pkl/.json. Returns
    ``(pp_fns, pp_fn_kwargs)``."""
    return _postprocess.determine_postprocessing(folder_predictions, folder_ref, plans_file_or_dict,
                                                 dataset_json_file_or_dict, num_processes, keep_postprocessed_files)


def apply_postprocessing_to_folder(input_folder: str, output_folder: str, pp_fns: List[Callable],
                                   pp_fn_kwargs: List[dict], plans_file_or_dict: Union[str, dict] = None,
                                   dataset_json_file_or_dict: Union[str, dict] = None,
                                   num_processes=8) -> None:
    _postprocess.apply_postprocessing_to_folder(input_folder, output_folder, pp_fns, pp_fn_kwargs,
                                                plans_file_or_dict, dataset_json_file_or_dict, num_processes)


def entry_point_determine_postprocessing_folder():
    _run_command(_determine_postprocessing_main)


def entry_point_apply_postprocessing():
    _run_command(_apply_postprocessing_main)
