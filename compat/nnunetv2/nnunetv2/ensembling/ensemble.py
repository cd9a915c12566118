"""nnU-Net 2.8.1's ``nnunetv2.ensembling.ensemble`` on :mod:`nnunet.ensembling.ensemble`."""
from __future__ import annotations

from typing import List, Tuple

from nnunet.cli.ensemble import ensemble_main as _ensemble_main
from nnunet.ensembling import ensemble as _ensemble
from nnunetv2._entry import run_command as _run_command
from nnunetv2.configuration import default_num_processes

__all__ = ["average_probabilities", "ensemble_crossvalidations", "ensemble_folders", "entry_point_ensemble_folders",
           "merge_files"]


def average_probabilities(list_of_files: List[str]):
    return _ensemble.average_probabilities(list_of_files)


def merge_files(list_of_files, output_filename_truncated: str, output_file_ending: str, image_reader_writer,
                label_manager, save_probabilities: bool = False):
    _ensemble.merge_files(list_of_files, output_filename_truncated, output_file_ending, image_reader_writer,
                          label_manager, save_probabilities)


def ensemble_folders(list_of_input_folders: List[str], output_folder: str, save_merged_probabilities: bool = False,
                     num_processes: int = default_num_processes, dataset_json_file_or_dict: str = None,
                     plans_json_file_or_dict: str = None):
    """Average the probabilities (.npz) of the cases every folder has and write the segmentations."""
    _ensemble.ensemble_folders(list_of_input_folders, output_folder, save_merged_probabilities, num_processes,
                               dataset_json_file_or_dict, plans_json_file_or_dict)


def ensemble_crossvalidations(list_of_trained_model_folders: List[str], output_folder: str,
                              folds: Tuple[int, ...] = (0, 1, 2, 3, 4), num_processes: int = default_num_processes,
                              overwrite: bool = True) -> None:
    _ensemble.ensemble_crossvalidations(list_of_trained_model_folders, output_folder, folds, num_processes, overwrite)


def entry_point_ensemble_folders():
    _run_command(_ensemble_main)
