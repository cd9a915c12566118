"""nnU-Net 2.8.1's raw-folder listing helpers on :mod:`nnunet.io.naming` and :mod:`nnunet.io.dataset_json`
(paths as strings, as 2.8.1 gives them)."""
from __future__ import annotations

import os
from typing import List

import numpy as np

from nnunet.io.dataset_json import load_dataset_json, training_cases
from nnunet.io.naming import case_identifiers, channel_files

__all__ = ["create_lists_from_splitted_dataset_folder", "create_paths_fn",
           "get_filenames_of_train_images_and_targets", "get_identifiers_from_splitted_dataset_folder"]


def get_identifiers_from_splitted_dataset_folder(folder: str, file_ending: str) -> np.ndarray:
    """The sorted case ids of the ``{ID}_{XXXX}{file_ending}`` files of ``folder``."""
    return np.array(case_identifiers(folder, file_ending))


def create_paths_fn(folder, files, file_ending, f) -> List[str]:
    """The channel files of case ``f`` among ``files``, joined to ``folder``."""
    return [str(p) for p in channel_files(folder, f, file_ending, list(files))]


def create_lists_from_splitted_dataset_folder(folder: str, file_ending: str, identifiers: List[str] = None,
                                              num_processes: int = 12) -> List[List[str]]:
    """One list of channel files per case (all cases of ``folder`` unless ``identifiers``); listing a folder
    needs no worker processes, so ``num_processes`` is accepted and unused."""
    if identifiers is None:
        identifiers = case_identifiers(folder, file_ending)
    files = os.listdir(folder)
    return [create_paths_fn(folder, files, file_ending, i) for i in identifiers]


def get_filenames_of_train_images_and_targets(raw_dataset_folder: str, dataset_json: dict = None) -> dict:
    """``{case: {"images": [...], "label": ...}}`` from dataset.json's ``dataset`` key or imagesTr/labelsTr."""
    if dataset_json is None:
        dataset_json = load_dataset_json(os.path.join(raw_dataset_folder, "dataset.json"))
    cases = training_cases(raw_dataset_folder, dataset_json)
    return {k: {"images": [os.path.abspath(p) for p in v["images"]], "label": os.path.abspath(v["label"])}
            for k, v in cases.items()}
