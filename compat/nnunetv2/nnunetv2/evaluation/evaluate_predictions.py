"""nnU-Net 2.8.1's ``nnunetv2.evaluation.evaluate_predictions`` on :mod:`nnunet.evaluation`.

The summary.json written is 2.8.1's (same keys and values, tested against 2.8.1's in tests/evaluation).
"""
from __future__ import annotations

from typing import List, Tuple, Union

import numpy as np

from nnunet.cli.evaluate import evaluate_folder_main as _evaluate_folder_main
from nnunet.cli.evaluate import evaluate_simple_main as _evaluate_simple_main
from nnunet.evaluation import evaluate as _evaluate
from nnunet.evaluation import metrics as _metrics
from nnunetv2._entry import run_command as _run_command
from nnunetv2.configuration import default_num_processes

__all__ = ["compute_metrics", "compute_metrics_on_folder", "compute_metrics_on_folder2",
           "compute_metrics_on_folder_simple", "compute_tp_fp_fn_tn", "evaluate_folder_entry_point",
           "evaluate_simple_entry_point", "key_to_label_or_region", "label_or_region_to_key",
           "labels_to_list_of_regions", "load_summary_json", "region_or_label_to_mask", "save_summary_json"]


def label_or_region_to_key(label_or_region: Union[int, Tuple[int]]):
    return _metrics.label_key(label_or_region)


def key_to_label_or_region(key: str):
    return _metrics.parse_label_key(key)


def save_summary_json(results: dict, output_file: str):
    _evaluate.save_summary_json(results, output_file)


def load_summary_json(filename: str):
    return _evaluate.load_summary_json(filename)


def labels_to_list_of_regions(labels: List[int]):
    return [(i,) for i in labels]


def region_or_label_to_mask(segmentation: np.ndarray, region_or_label: Union[int, Tuple[int, ...]]) -> np.ndarray:
    return _metrics.label_mask(segmentation, region_or_label)


def compute_tp_fp_fn_tn(mask_ref: np.ndarray, mask_pred: np.ndarray, ignore_mask: np.ndarray = None):
    """Voxel counts of two boolean masks (voxels under ``ignore_mask`` not counted)."""
    use = np.ones_like(mask_ref, dtype=bool) if ignore_mask is None else ~ignore_mask
    tp = int(np.sum(mask_ref & mask_pred & use))
    fp = int(np.sum(~mask_ref & mask_pred & use))
    fn = int(np.sum(mask_ref & ~mask_pred & use))
    tn = int(np.sum(~mask_ref & ~mask_pred & use))
    return tp, fp, fn, tn


def compute_metrics(reference_file: str, prediction_file: str, image_reader_writer,
                    labels_or_regions: Union[List[int], List[Union[int, Tuple[int, ...]]]],
                    ignore_label: int = None) -> dict:
    return _evaluate.compute_metrics(reference_file, prediction_file, image_reader_writer, labels_or_regions,
                                     ignore_label)


def compute_metrics_on_folder(folder_ref: str, folder_pred: str, output_file: str, image_reader_writer,
                              file_ending: str, regions_or_labels: Union[List[int], List[Union[int, Tuple[int, ...]]]],
                              ignore_label: int = None, num_processes: int = default_num_processes,
                              chill: bool = True) -> dict:
    return _evaluate.compute_metrics_on_folder(folder_ref, folder_pred, output_file, image_reader_writer, file_ending,
                                               regions_or_labels, ignore_label, num_processes, chill)


def compute_metrics_on_folder2(folder_ref: str, folder_pred: str, dataset_json_file: str, plans_file: str,
                               output_file: str = None, num_processes: int = default_num_processes,
                               chill: bool = False):
    return _evaluate.evaluate_folder(folder_ref, folder_pred, dataset_json_file, plans_file, output_file,
                                     num_processes, chill)


def compute_metrics_on_folder_simple(folder_ref: str, folder_pred: str, labels: Union[Tuple[int, ...], List[int]],
                                     output_file: str = None, num_processes: int = default_num_processes,
                                     ignore_label: int = None, chill: bool = False):
    return _evaluate.evaluate_simple(folder_ref, folder_pred, labels, output_file, num_processes, ignore_label,
                                     chill)


def evaluate_folder_entry_point():
    _run_command(_evaluate_folder_main)


def evaluate_simple_entry_point():
    _run_command(_evaluate_simple_main)
