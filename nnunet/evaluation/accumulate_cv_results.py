"""Merge the validation predictions of a model's folds into one folder and evaluate them."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from nnunet import paths
from nnunet.errors import NnunetError
from nnunet.evaluation.evaluate import compute_metrics_on_folder, evaluated_labels, files_with_ending
from nnunet.io.dataset_json import label_manager
from nnunet.io.readers import reader_class
from nnunet.utils.files import copy_file
from nnunet.utils.json import load_json


def folds_to_string(folds: Sequence[int | str]) -> str:
    """``(0, 1, 2)`` -> ``"0_1_2"`` (used in folder names such as ``crossval_results_folds_0_1_2``)."""
    if not folds:
        raise NnunetError("At least one fold is needed.")
    return "_".join(str(f) for f in folds)


def default_merged_folder(trained_model_folder: str | os.PathLike, folds: Sequence[int | str]) -> Path:
    return Path(trained_model_folder) / f"crossval_results_folds_{folds_to_string(folds)}"


def ground_truth_folder(dataset_name: str) -> Path:
    """``nnUNet_raw/{dataset}/labelsTr`` if it exists, else ``nnUNet_preprocessed/{dataset}/gt_segmentations``."""
    raw = os.environ.get(paths.RAW)
    if raw and (Path(raw) / dataset_name / "labelsTr").is_dir():
        return Path(raw) / dataset_name / "labelsTr"
    return paths.preprocessed_root() / dataset_name / "gt_segmentations"


def _folds_hint(model: Path) -> str:
    """Point to ``-f`` with the folds that do have validation results (one fold is enough to compare models)."""
    done = sorted((p.name[len("fold_"):] for p in model.glob("fold_*") if (p / "validation").is_dir()),
                  key=lambda f: (not f.isdigit(), int(f) if f.isdigit() else 0, f))
    if not done:
        return "."
    return (f", or choose among the models with the folds they have: -f {' '.join(done)} (folds with validation "
            f"results in {model.name}).")


def accumulate_cv_results(trained_model_folder: str | os.PathLike, merged_output_folder: str | os.PathLike,
                          folds: Sequence[int | str], num_processes: int | None = None, overwrite: bool = True,
                          gt_folder: str | os.PathLike | None = None, show_progress: bool = False) -> Path:
    """Copy every ``fold_k/validation`` segmentation into ``merged_output_folder`` and write its summary.json.

    Args:
        trained_model_folder: ``nnUNet_results/{dataset}/{trainer}__{plans}__{configuration}``.
        merged_output_folder: target folder; recreated when ``overwrite`` is True.
        folds: folds to merge; each must have a ``validation`` folder.
        num_processes: worker processes for the evaluation.
        overwrite: start from an empty folder (two folds predicting the same case is then an error); otherwise
            only missing cases are copied and the summary is recomputed only if something was copied.
        gt_folder: reference segmentations; default: :func:`ground_truth_folder` of the plans' dataset.
        show_progress: show a progress bar.

    Returns:
        The merged folder.
    """
    model = Path(trained_model_folder)
    merged = Path(merged_output_folder)
    for name in ("dataset.json", "plans.json"):
        if not (model / name).is_file():
            raise NnunetError(f"{model / name} not found; is {model} a trained model folder?")
    if overwrite and merged.is_dir():
        shutil.rmtree(merged)
    merged.mkdir(parents=True, exist_ok=True)
    dataset_json = load_json(model / "dataset.json")
    plans = load_json(model / "plans.json")
    copy_file(model / "dataset.json", merged / "dataset.json")
    copy_file(model / "plans.json", merged / "plans.json")

    copied = False
    for fold in folds:
        validation = model / f"fold_{fold}" / "validation"
        if not validation.is_dir():
            raise NnunetError(f"Fold {fold} of {model} is missing ({validation} does not exist). Train it (and run "
                              f"its validation) first{_folds_hint(model)}")
        for name in files_with_ending(validation, dataset_json["file_ending"]):
            target = merged / name
            if overwrite and target.is_file():
                raise NnunetError(f"More than one fold has a validation prediction for {name} (second one in fold "
                                  f"{fold} of {model}); the folds must not overlap.")
            if overwrite or not target.is_file():
                copy_file(validation / name, target)
                copied = True

    if copied or not (merged / "summary.json").is_file():
        lm = label_manager(dataset_json)
        reference = Path(gt_folder) if gt_folder is not None else ground_truth_folder(plans["dataset_name"])
        compute_metrics_on_folder(reference, merged, merged / "summary.json",
                                  reader_class(plans["image_reader_writer"])(), dataset_json["file_ending"],
                                  evaluated_labels(lm), lm.ignore_label, num_processes, show_progress=show_progress)
    return merged
