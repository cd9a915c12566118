"""nnU-Net 2.8.1's ``accumulate_cv_results``: :func:`nnunet.evaluation.accumulate_cv_results.accumulate_cv_results`."""
from __future__ import annotations

from typing import List, Tuple, Union

from nnunet.evaluation import accumulate_cv_results as _accumulate
from nnunetv2.configuration import default_num_processes

__all__ = ["accumulate_cv_results"]


def accumulate_cv_results(trained_model_folder, merged_output_folder: str, folds: Union[List[int], Tuple[int, ...]],
                          num_processes: int = default_num_processes, overwrite: bool = True):
    """Copy the folds' validation predictions into ``merged_output_folder`` and evaluate them (summary.json)."""
    _accumulate.accumulate_cv_results(trained_model_folder, merged_output_folder, folds, num_processes, overwrite)
