"""Evaluate a folder of predicted segmentations against a folder of reference segmentations (summary.json)."""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

from nnunet.constants import default_num_processes
from nnunet.errors import DatasetError, NnunetError
from nnunet.evaluation.metrics import (LabelOrRegion, case_metrics, foreground_mean, label_key, mean_per_label,
                                       parse_label_key)
from nnunet.io.readers import AUTO_ORDER, BaseReaderWriter, reader_class, reader_for_dataset
from nnunet.planning.plans import Plans
from nnunet.registry import READERS
from nnunet.utils.json import load_json, save_json
from nnunet.utils.pool import run_parallel


def files_with_ending(folder: str | os.PathLike, file_ending: str) -> list[str]:
    """Sorted names (not paths) of the regular files in ``folder`` that end with ``file_ending``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NnunetError(f"Folder not found: {folder}")
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.endswith(file_ending)
                  and not p.name.startswith("."))


def compute_metrics(reference_file: str, prediction_file: str, reader: BaseReaderWriter,
                    labels_or_regions: Sequence[LabelOrRegion], ignore_label: int | None = None) -> dict[str, Any]:
    """Metrics of one case, read from files.

    Returns:
        ``{"reference_file", "prediction_file", "metrics": {label_or_region: {metric: value}}}``.
    """
    if not os.path.isfile(reference_file):
        raise DatasetError(f"No reference segmentation for the prediction {prediction_file}: "
                           f"{reference_file} does not exist.")
    reference, _ = reader.read_seg(reference_file)
    prediction, _ = reader.read_seg(prediction_file)
    if reference.shape != prediction.shape:
        raise DatasetError(f"Prediction {prediction_file} has shape {tuple(prediction.shape[1:])} but its reference "
                           f"{reference_file} has shape {tuple(reference.shape[1:])}.")
    metrics = case_metrics(reference, prediction, labels_or_regions, ignore_label)
    return {"reference_file": reference_file, "prediction_file": prediction_file, "metrics": metrics}


def summarize(per_case: list[dict[str, Any]], labels_or_regions: Sequence[LabelOrRegion]) -> dict[str, Any]:
    """Per-label means and the foreground mean of per-case results (keys stay ints/tuples)."""
    means = mean_per_label([c["metrics"] for c in per_case], list(labels_or_regions))
    return {"metric_per_case": per_case, "mean": means, "foreground_mean": foreground_mean(means)}


def _check_output_file(output_file: str | os.PathLike | None) -> None:
    if output_file is not None and not str(output_file).endswith(".json"):
        raise NnunetError(f"The output file must end with .json, got {output_file}")


def compute_metrics_on_folder(folder_ref: str | os.PathLike, folder_pred: str | os.PathLike,
                              output_file: str | os.PathLike | None, reader: BaseReaderWriter, file_ending: str,
                              regions_or_labels: Sequence[LabelOrRegion], ignore_label: int | None = None,
                              num_processes: int | None = None, chill: bool = True,
                              show_progress: bool = False) -> dict[str, Any]:
    """Evaluate every prediction in ``folder_pred`` (files ending in ``file_ending``) against ``folder_ref``.

    The reference of a prediction is the file of the same name in ``folder_ref``.

    Args:
        folder_ref: folder with the reference segmentations.
        folder_pred: folder with the predictions.
        output_file: where to write summary.json (must end with .json), or None to write nothing.
        reader: reader/writer instance used for both folders.
        file_ending: e.g. ``".nii.gz"``.
        regions_or_labels: foreground labels (ints) or regions (tuples) to evaluate.
        ignore_label: reference value whose voxels are excluded from all counts.
        num_processes: worker processes (None: ``nnUNet_def_n_proc`` or 8).
        chill: if False, every reference file must have a prediction.
        show_progress: show a progress bar.

    Returns:
        The summary with int/tuple keys (what :func:`load_summary_json` returns for the written file).

    Raises:
        NnunetError: no predictions, a missing reference, or (``chill=False``) a missing prediction.
    """
    _check_output_file(output_file)
    regions_or_labels = list(regions_or_labels)
    if not regions_or_labels:
        raise NnunetError("Nothing to evaluate: the list of labels/regions is empty.")
    pred_names = files_with_ending(folder_pred, file_ending)
    if not chill:
        missing = sorted(set(files_with_ending(folder_ref, file_ending)) - set(pred_names))
        if missing:
            raise NnunetError(f"{len(missing)} reference file(s) in {folder_ref} have no prediction in {folder_pred}: "
                              f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}. "
                              f"Use --chill to evaluate only the cases that were predicted.")
    if not pred_names:
        raise NnunetError(f"No predictions ending in {file_ending!r} found in {folder_pred}.")
    no_ref = [n for n in pred_names if not os.path.isfile(os.path.join(str(folder_ref), n))]
    if no_ref:
        raise NnunetError(f"These predictions have no reference file in {folder_ref}: "
                          f"{', '.join(no_ref[:10])}{' ...' if len(no_ref) > 10 else ''}.")
    if num_processes is None:
        num_processes = default_num_processes()
    jobs = [(os.path.join(str(folder_ref), n), os.path.join(str(folder_pred), n), reader, regions_or_labels,
             ignore_label) for n in pred_names]
    per_case = run_parallel(compute_metrics, jobs, num_processes, desc="evaluating", show_progress=show_progress)
    summary = summarize(per_case, regions_or_labels)
    if output_file is not None:
        save_summary_json(summary, output_file)
    return summary


def save_summary_json(summary: dict[str, Any], output_file: str | os.PathLike) -> None:
    """Write a summary with label/region keys converted to text (``"1"``, ``"(1, 2)"``), sorted keys, indent 4."""
    out = copy.deepcopy(summary)
    out["mean"] = {label_key(k): v for k, v in summary["mean"].items()}
    for case in out["metric_per_case"]:
        case["metrics"] = {label_key(k): v for k, v in case["metrics"].items()}
    save_json(out, output_file, sort_keys=True, indent=4, allow_nan=True)  # nnU-Net: NaN Dice for absent labels


def load_summary_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read summary.json, turning its label/region keys back into ints and tuples."""
    summary = load_json(path)
    summary["mean"] = {parse_label_key(k): v for k, v in summary["mean"].items()}
    for case in summary.get("metric_per_case", []):
        case["metrics"] = {parse_label_key(k): v for k, v in case["metrics"].items()}
    return summary


def evaluated_labels(label_manager) -> list[LabelOrRegion]:
    """Foreground regions for region datasets, otherwise foreground labels (background is never evaluated)."""
    return list(label_manager.foreground_regions) if label_manager.has_regions else list(
        label_manager.foreground_labels)


def evaluate_folder(folder_ref: str | os.PathLike, folder_pred: str | os.PathLike,
                    dataset_json_file: str | os.PathLike, plans_file: str | os.PathLike,
                    output_file: str | os.PathLike | None = None, num_processes: int | None = None,
                    chill: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate with labels/regions and ignore label from dataset.json (``nnUNet_evaluate_folder``).

    The reader comes from dataset.json (``overwrite_image_reader_writer`` or auto-detection on the first
    reference file). The output defaults to ``folder_pred/summary.json``.
    """
    dataset_json = load_json(dataset_json_file)
    plans = Plans.load(plans_file)
    file_ending = dataset_json["file_ending"]
    ref_files = files_with_ending(folder_ref, file_ending)
    if not ref_files:
        raise NnunetError(f"No reference files ending in {file_ending!r} found in {folder_ref}.")
    reader = reader_for_dataset(dataset_json, os.path.join(str(folder_ref), ref_files[0]))()
    if output_file is None:
        output_file = os.path.join(str(folder_pred), "summary.json")
    lm = plans.label_manager(dataset_json)
    return compute_metrics_on_folder(folder_ref, folder_pred, output_file, reader, file_ending, evaluated_labels(lm),
                                     lm.ignore_label, num_processes, chill=chill, show_progress=show_progress)


def reader_for_any_file(example_file: str | os.PathLike) -> type[BaseReaderWriter]:
    """A reader/writer that can read ``example_file``, whatever its ending.

    ``nnUNet_evaluate_simple`` takes the ending from the last dot (``.gz`` for ``.nii.gz``), which no class
    claims, so classes are tried on the file itself: first those whose endings match the file name, then the
    others, each group in the auto-detection order. (nnU-Net tries all classes in that order; starting with the
    matching ones gives the same class for every format we know and avoids noisy failed reads.)
    """
    name = Path(example_file).name.lower()
    names = [n for n in AUTO_ORDER if n in READERS]
    claiming = [n for n in names if any(name.endswith(e) for e in reader_class(n).supported_file_endings)]
    tried = []
    for cls_name in claiming + [n for n in names if n not in claiming]:
        cls = reader_class(cls_name)
        try:
            with warnings.catch_warnings():  # imaging libraries warn loudly on files they cannot read
                warnings.simplefilter("ignore")
                cls().read_seg(example_file)
            return cls
        except Exception as e:  # unreadable by this class: try the next one
            tried.append(f"{cls_name}: {e}")
    raise NnunetError(f"No reader/writer can read {example_file}. Tried: {'; '.join(tried)}.")


def evaluate_simple(folder_ref: str | os.PathLike, folder_pred: str | os.PathLike, labels: Sequence[int],
                    output_file: str | os.PathLike | None = None, num_processes: int | None = None,
                    ignore_label: int | None = None, chill: bool = False,
                    show_progress: bool = True) -> dict[str, Any]:
    """Evaluate with an explicit label list (``nnUNet_evaluate_simple``).

    The file ending is the last extension of the first file in ``folder_ref`` (``.gz`` for ``.nii.gz``) and the
    reader is the first class that can read that file.
    """
    folder = Path(folder_ref)
    if not folder.is_dir():
        raise NnunetError(f"Folder not found: {folder}")
    ref_files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not ref_files:
        raise NnunetError(f"The reference folder {folder_ref} is empty.")
    example = os.path.join(str(folder_ref), ref_files[0])
    file_ending = os.path.splitext(example)[1]
    reader = reader_for_any_file(example)()
    if output_file is None:
        output_file = os.path.join(str(folder_pred), "summary.json")
    return compute_metrics_on_folder(folder_ref, folder_pred, output_file, reader, file_ending, list(labels),
                                     ignore_label=ignore_label, num_processes=num_processes, chill=chill,
                                     show_progress=show_progress)
