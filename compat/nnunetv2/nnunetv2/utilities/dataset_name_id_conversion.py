"""nnU-Net 2.8.1's ``nnunetv2.utilities.dataset_name_id_conversion`` on :mod:`nnunet.io.naming`.

The differences: an id without a dataset folder, or with several, raises our DatasetError (a RuntimeError in
2.8.1), whose message lists where it looked.
"""
from __future__ import annotations

import re

import numpy as np

from nnunet.errors import DatasetError
from nnunet.io import naming as _naming

__all__ = ["convert_dataset_name_to_id", "convert_id_to_dataset_name", "find_candidate_datasets",
           "maybe_convert_to_dataset_name"]


def find_candidate_datasets(dataset_id: int):
    """Names of the ``DatasetXXX_*`` folders with this id in nnUNet_preprocessed, nnUNet_raw and nnUNet_results."""
    return np.unique([name for _, name in _naming.dataset_folders_with_id(int(dataset_id))])


def convert_id_to_dataset_name(dataset_id: int):
    return _naming.dataset_name_from_id(int(dataset_id))


def convert_dataset_name_to_id(dataset_name: str):
    """``Dataset004_Hippocampus`` -> 4."""
    match = re.match(r"^Dataset(\d{3})_.+$", dataset_name)
    if not match:
        raise DatasetError(f"{dataset_name!r} is not a dataset name of the form DatasetXXX_Name (XXX = three digits).")
    return int(match.group(1))


def maybe_convert_to_dataset_name(dataset_name_or_id):
    """``4``, ``"4"`` or ``"Dataset004_Hippocampus"`` -> ``"Dataset004_Hippocampus"``."""
    return _naming.resolve_dataset_name(dataset_name_or_id)
