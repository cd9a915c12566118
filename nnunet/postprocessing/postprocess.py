"""Choose (``determine_postprocessing``) and apply (``apply_postprocessing_to_folder``) postprocessing.

The only operation is "keep the largest connected component". It is tried first on the union of all foreground
labels, then on each label or region in declaration order, and kept only when it strictly improves the
cross-validation Dice (see :func:`determine_postprocessing` for the exact rule).
"""
from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nnunet.constants import default_num_processes
from nnunet.errors import NnunetError
from nnunet.evaluation.evaluate import (compute_metrics_on_folder, evaluated_labels, files_with_ending,
                                        load_summary_json)
from nnunet.io.dataset_json import label_manager
from nnunet.io.readers import BaseReaderWriter, reader_class
from nnunet.postprocessing.components import remove_all_but_largest_component_from_segmentation
from nnunet.postprocessing.pp_file import postprocessing_json, save_postprocessing_json, save_postprocessing_pkl
from nnunet.utils.files import copy_file, publish
from nnunet.utils.json import load_json
from nnunet.utils.pool import run_parallel, shared_pool

logger = logging.getLogger(__name__)

PostprocessingFns = list[Callable[..., np.ndarray]]


def write_seg_atomic(writer: BaseReaderWriter, segmentation: np.ndarray, output_file: str | os.PathLike,
                     properties: dict[str, Any]) -> None:
    """Write a segmentation so that ``output_file`` (and any sidecar the writer adds) appears only when complete
    (see :func:`nnunet.utils.files.publish`)."""
    with publish(output_file) as tmp:
        writer.write_seg(segmentation, tmp, properties)


def apply_postprocessing(segmentation: np.ndarray, pp_fns: Sequence[Callable], pp_fn_kwargs: Sequence[dict]
                         ) -> np.ndarray:
    """Run the postprocessing functions on one segmentation, in order."""
    for fn, kwargs in zip(pp_fns, pp_fn_kwargs):
        segmentation = fn(segmentation, **kwargs)
    return segmentation


def load_postprocess_save(segmentation_file: str, output_file: str, reader: BaseReaderWriter,
                          pp_fns: Sequence[Callable], pp_fn_kwargs: Sequence[dict]) -> None:
    """Read one segmentation, postprocess it and write it (worker function)."""
    seg, properties = reader.read_seg(segmentation_file)
    seg = apply_postprocessing(seg[0], pp_fns, pp_fn_kwargs)
    write_seg_atomic(reader, seg, output_file, properties)


def _load_dict(file_or_dict: str | os.PathLike | dict | None, folder: str | os.PathLike, filename: str,
               hint: str) -> dict:
    if isinstance(file_or_dict, dict):
        return file_or_dict
    if file_or_dict is None:
        file_or_dict = Path(folder) / filename
        if not Path(file_or_dict).is_file():
            raise NnunetError(f"{file_or_dict} not found. {hint}")
    return load_json(file_or_dict)


def _context(folder: str | os.PathLike, plans_file_or_dict, dataset_json_file_or_dict) -> tuple[dict, dict]:
    hint = ("nnUNet_predict copies plans.json and dataset.json into its output folder; for other folders (an "
            "ensemble, for instance) pass -plans_json/-dataset_json.")
    plans = _load_dict(plans_file_or_dict, folder, "plans.json", hint)
    dataset_json = _load_dict(dataset_json_file_or_dict, folder, "dataset.json", hint)
    for key, source in (("image_reader_writer", "plans"), ("file_ending", "dataset.json"),
                        ("labels", "dataset.json")):
        if key not in (plans if source == "plans" else dataset_json):
            raise NnunetError(f"The {source} used for postprocessing has no {key!r} entry.")
    return plans, dataset_json


def _label_manager(dataset_json: dict):
    return label_manager(dataset_json)


def _apply_to_files(names: list[str], source: str, target: str, reader: BaseReaderWriter, pp_fns: list,
                    pp_fn_kwargs: list, num_processes: int, show_progress: bool, desc: str) -> None:
    os.makedirs(target, exist_ok=True)
    jobs = [(os.path.join(source, n), os.path.join(target, n), reader, pp_fns, pp_fn_kwargs) for n in names]
    run_parallel(load_postprocess_save, jobs, num_processes, desc=desc, show_progress=show_progress)


def _fg_step_improves(baseline: dict, candidate: dict) -> bool:
    """Whole-foreground rule: the foreground-mean Dice rises strictly and no label/region mean Dice drops."""
    if not candidate["foreground_mean"]["Dice"] > baseline["foreground_mean"]["Dice"]:
        return False
    return not any(candidate["mean"][k]["Dice"] < baseline["mean"][k]["Dice"] for k in candidate["mean"])


def _class_step_improves(baseline: dict, candidate: dict, label_or_region) -> bool:
    """Per-label/region rule: that label's mean Dice rises strictly (the others are not looked at)."""
    return candidate["mean"][label_or_region]["Dice"] > baseline["mean"][label_or_region]["Dice"]


def determine_postprocessing(folder_predictions: str | os.PathLike, folder_ref: str | os.PathLike,
                             plans_file_or_dict: str | os.PathLike | dict | None = None,
                             dataset_json_file_or_dict: str | os.PathLike | dict | None = None,
                             num_processes: int | None = None, keep_postprocessed_files: bool = True,
                             show_progress: bool = False) -> tuple[PostprocessingFns, list[dict]]:
    """Decide which "keep the largest component" steps improve the predictions in ``folder_predictions``.

    1. Evaluate the folder if it has no summary.json (an existing one is trusted).
    2. Keep the largest component of the union of all foreground *labels* (also for region datasets); accept
       if the foreground-mean Dice rises strictly and no label/region mean Dice falls.
    3. With more than one label/region: for each in declaration order, keep its largest component (applied on
       top of the steps accepted so far); accept if its own mean Dice rises strictly.

    Writes ``postprocessing.pkl`` (nnU-Net's format), ``postprocessing.json`` and, unless
    ``keep_postprocessed_files`` is False, the postprocessed segmentations and their summary.json in
    ``folder_predictions/postprocessed``.

    Args:
        folder_predictions: predicted segmentations (cross-validation results).
        folder_ref: reference segmentations.
        plans_file_or_dict: plans (for the reader/writer); default ``folder_predictions/plans.json``.
        dataset_json_file_or_dict: default ``folder_predictions/dataset.json``.
        num_processes: worker processes (None: ``nnUNet_def_n_proc`` or 8).
        keep_postprocessed_files: keep ``folder_predictions/postprocessed``.
        show_progress: show progress bars.

    Returns:
        ``(functions, kwargs)`` of the accepted steps, as stored in postprocessing.pkl.
    """
    num_processes = default_num_processes() if num_processes is None else num_processes
    with shared_pool(num_processes):  # one worker pool for the ~10 apply/evaluate rounds
        return _determine(str(folder_predictions), str(folder_ref), plans_file_or_dict, dataset_json_file_or_dict,
                          num_processes, keep_postprocessed_files, show_progress)


def _determine(folder_predictions: str, folder_ref: str, plans_file_or_dict, dataset_json_file_or_dict,
               num_processes: int, keep_postprocessed_files: bool, show_progress: bool
               ) -> tuple[PostprocessingFns, list[dict]]:
    plans, dataset_json = _context(folder_predictions, plans_file_or_dict, dataset_json_file_or_dict)
    reader = reader_class(plans["image_reader_writer"])()
    lm = _label_manager(dataset_json)
    # nnU-Net's label manager yields labels as numpy int64 (regions as tuples of ints); using the same types makes
    # our postprocessing.pkl byte-identical to nnU-Net's
    foreground_labels = [np.int64(v) for v in lm.foreground_labels]
    labels_or_regions = evaluated_labels(lm) if lm.has_regions else foreground_labels
    ending = dataset_json["file_ending"]
    output_folder = os.path.join(folder_predictions, "postprocessed")
    temp = os.path.join(output_folder, "temp")

    predicted = files_with_ending(folder_predictions, ending)
    if not predicted:
        raise NnunetError(f"No predictions ending in {ending!r} in {folder_predictions}.")
    references = files_with_ending(folder_ref, ending)
    if not set(references) <= set(predicted):
        covered = len(set(references) & set(predicted))
        warnings.warn(f"only {covered} of the {len(references)} reference cases in {folder_ref} have a prediction in "
                      f"{folder_predictions} (e.g. fewer than 5 cross-validation folds): the postprocessing is "
                      f"determined on those cases only.", stacklevel=2)

    def evaluate(folder: str) -> dict:
        return compute_metrics_on_folder(folder_ref, folder, os.path.join(folder, "summary.json"), reader, ending,
                                         labels_or_regions, lm.ignore_label, num_processes,
                                         show_progress=show_progress)

    if not os.path.isfile(os.path.join(folder_predictions, "summary.json")):
        evaluate(folder_predictions)

    pp_fns: PostprocessingFns = []
    pp_fn_kwargs: list[dict] = []
    fn = remove_all_but_largest_component_from_segmentation

    # step A: the whole foreground
    candidate = os.path.join(temp, "keep_largest_fg")
    kwargs = {"labels_or_regions": foreground_labels}
    _apply_to_files(predicted, folder_predictions, candidate, reader, [fn], [kwargs], num_processes, show_progress,
                    "keep largest foreground component")
    evaluate(candidate)
    baseline = load_summary_json(os.path.join(folder_predictions, "summary.json"))
    result = load_summary_json(os.path.join(candidate, "summary.json"))
    before, after = baseline["foreground_mean"]["Dice"], result["foreground_mean"]["Dice"]
    if _fg_step_improves(baseline, result):
        logger.info(f"Keeping only the largest foreground component improves the mean Dice: {before:.5f} -> {after:.5f}")
        source = candidate
        pp_fns.append(fn)
        pp_fn_kwargs.append(kwargs)
    else:
        logger.info(f"Keeping only the largest foreground component does not help (mean Dice {before:.5f} -> "
              f"{after:.5f}).")
        source = folder_predictions

    # step B: each label or region on its own
    if len(labels_or_regions) > 1:
        best = os.path.join(temp, "keep_largest_perClassOrRegion_currentBest")
        for lr in labels_or_regions:
            candidate = os.path.join(temp, "keep_largest_perClassOrRegion")
            kwargs = {"labels_or_regions": lr}
            _apply_to_files(predicted, source, candidate, reader, [fn], [kwargs], num_processes, show_progress,
                            f"keep largest component of {lr}")
            evaluate(candidate)
            baseline = load_summary_json(os.path.join(source, "summary.json"))
            result = load_summary_json(os.path.join(candidate, "summary.json"))
            before, after = baseline["mean"][lr]["Dice"], result["mean"][lr]["Dice"]
            if _class_step_improves(baseline, result, lr):
                logger.info(f"Keeping only the largest component of {lr} improves its Dice: {before:.5f} -> {after:.5f}")
                shutil.rmtree(best, ignore_errors=True)
                shutil.move(candidate, best)
                source = best
                pp_fns.append(fn)
                pp_fn_kwargs.append(kwargs)
            else:
                logger.info(f"Keeping only the largest component of {lr} does not help (Dice {before:.5f} -> "
                      f"{after:.5f}).")

    for entry in sorted(os.listdir(source)):
        path = os.path.join(source, entry)
        if os.path.isfile(path):
            copy_file(path, os.path.join(output_folder, entry))
    save_postprocessing_pkl(pp_fns, pp_fn_kwargs, os.path.join(folder_predictions, "postprocessing.pkl"))
    content = postprocessing_json(load_summary_json(os.path.join(folder_predictions, "summary.json")),
                                  load_summary_json(os.path.join(output_folder, "summary.json")), pp_fns,
                                  pp_fn_kwargs)
    save_postprocessing_json(content, os.path.join(folder_predictions, "postprocessing.json"))
    shutil.rmtree(temp)
    if not keep_postprocessed_files:
        shutil.rmtree(output_folder)
    return pp_fns, pp_fn_kwargs


def apply_postprocessing_to_folder(input_folder: str | os.PathLike, output_folder: str | os.PathLike,
                                   pp_fns: Sequence[Callable], pp_fn_kwargs: Sequence[dict],
                                   plans_file_or_dict: str | os.PathLike | dict | None = None,
                                   dataset_json_file_or_dict: str | os.PathLike | dict | None = None,
                                   num_processes: int | None = None, show_progress: bool = False) -> list[str]:
    """Postprocess every segmentation of ``input_folder`` (files with the dataset's ending) into ``output_folder``.

    plans.json and dataset.json default to the copies inside ``input_folder``.

    Returns:
        The names of the written files.
    """
    num_processes = default_num_processes() if num_processes is None else num_processes
    plans, dataset_json = _context(input_folder, plans_file_or_dict, dataset_json_file_or_dict)
    reader = reader_class(plans["image_reader_writer"])()
    names = files_with_ending(input_folder, dataset_json["file_ending"])
    if not names:
        raise NnunetError(f"No segmentations ending in {dataset_json['file_ending']!r} in {input_folder}.")
    _apply_to_files(names, str(input_folder), str(output_folder), reader, list(pp_fns), list(pp_fn_kwargs),
                    num_processes, show_progress, "postprocessing")
    return names
