"""``nnUNet_ensemble``: average the saved probabilities of several prediction folders.

Each input folder holds, per case, ``CASE.npz`` (key ``probabilities``, shape ``(C, X, Y, Z)`` in the original
image geometry) and ``CASE.pkl`` (the image properties the writer needs), as written by prediction with
``--save_probabilities``. Configurations are ensembled on probabilities (folds of one model average logits).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from nnunet.constants import default_num_processes
from nnunet.errors import NnunetError
from nnunet.io.dataset_json import label_manager
from nnunet.io.labels import LabelManager
from nnunet.io.readers import BaseReaderWriter, reader_class
from nnunet.postprocessing.postprocess import write_seg_atomic
from nnunet.utils.files import copy_file, publish
from nnunet.utils.json import load_json, load_pickle, save_json, save_pickle
from nnunet.utils.pool import run_parallel


def average_probabilities(files: Sequence[str | os.PathLike]) -> np.ndarray:
    """Mean of the ``probabilities`` arrays of the given .npz files, accumulated in float32 in the given order."""
    if not files:
        raise ValueError("average_probabilities needs at least one file")
    total = None
    for f in files:
        try:
            with np.load(f) as npz:
                probs = npz["probabilities"]
        except KeyError:
            raise NnunetError(f"{f} has no 'probabilities' array; was it written with --save_probabilities?") from None
        except (OSError, ValueError) as e:
            raise NnunetError(f"Could not read {f}: {e}") from None
        if total is None:
            total = probs.astype(np.float32, copy=probs.dtype != np.float32)
        elif probs.shape != total.shape:
            raise NnunetError(f"{f} has probabilities of shape {probs.shape}, but {files[0]} has {total.shape}.")
        else:
            total += probs
    total /= len(files)
    return total


def save_npz_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """np.savez_compressed, complete or absent (see :func:`nnunet.utils.files.publish`)."""
    with publish(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def merge_files(files: Sequence[str], output_truncated: str, file_ending: str, writer: BaseReaderWriter,
                label_manager: LabelManager, save_probabilities: bool = False) -> None:
    """Average one case's probabilities, write the segmentation (and with ``save_probabilities`` the .npz/.pkl).

    The properties come from the .pkl next to the first file.
    """
    pkl = files[0][:-len(".npz")] + ".pkl"
    if not os.path.isfile(pkl):
        raise NnunetError(f"{pkl} is missing: every .npz needs its .pkl with the image properties.")
    properties = load_pickle(pkl)
    probabilities = average_probabilities(files)
    segmentation = label_manager.to_label_map(probabilities)
    write_seg_atomic(writer, segmentation, output_truncated + file_ending, properties)
    if save_probabilities:
        save_npz_atomic(output_truncated + ".npz", probabilities=probabilities)
        save_pickle(properties, output_truncated + ".pkl")


def _npz_names(folder: str) -> set[str]:
    if not os.path.isdir(folder):
        raise NnunetError(f"Input folder not found: {folder}")
    return {n for n in os.listdir(folder) if n.endswith(".npz") and not n.startswith(".")
            and os.path.isfile(os.path.join(folder, n))}


def common_cases(folders: Sequence[str]) -> list[str]:
    """The .npz names present in every folder; an error lists what each folder lacks."""
    per_folder = [_npz_names(f) for f in folders]
    union = set().union(*per_folder)
    if not union:
        raise NnunetError(f"No .npz files in {', '.join(folders)}. Predict with --save_probabilities to ensemble.")
    problems = [f"{folder} lacks {', '.join(sorted(union - names)[:5])}"
                f"{' ...' if len(union - names) > 5 else ''}"
                for folder, names in zip(folders, per_folder) if union - names]
    if problems:
        raise NnunetError("Not all folders contain the same cases: " + "; ".join(problems) + ".")
    return sorted(union)


def ensemble_folders(list_of_input_folders: Sequence[str | os.PathLike], output_folder: str | os.PathLike,
                     save_merged_probabilities: bool = False, num_processes: int | None = None,
                     dataset_json_file_or_dict: str | os.PathLike | dict | None = None,
                     plans_json_file_or_dict: str | os.PathLike | dict | None = None,
                     show_progress: bool = True) -> list[str]:
    """Average the probabilities of every case over the input folders and export the segmentations.

    Args:
        list_of_input_folders: folders predicted with ``--save_probabilities``; all must hold the same cases.
        output_folder: where segmentations (and dataset.json) are written.
        save_merged_probabilities: also write the averaged ``.npz`` and the ``.pkl``.
        num_processes: worker processes (None: ``nnUNet_def_n_proc`` or 8).
        dataset_json_file_or_dict: default: dataset.json of the first folder.
        plans_json_file_or_dict: default: plans.json of the first folder (gives the reader/writer).
        show_progress: show a progress bar.

    Returns:
        The case identifiers written.
    """
    folders = [str(f) for f in list_of_input_folders]
    if not folders:
        raise NnunetError("Give at least one input folder to ensemble.")
    num_processes = default_num_processes() if num_processes is None else num_processes
    dataset_json = _json_arg(dataset_json_file_or_dict, folders[0], "dataset.json")
    plans = _json_arg(plans_json_file_or_dict, folders[0], "plans.json")
    names = common_cases(folders)
    writer = reader_class(plans["image_reader_writer"])()
    lm = label_manager(dataset_json)
    os.makedirs(output_folder, exist_ok=True)
    save_json(dataset_json, os.path.join(output_folder, "dataset.json"), sort_keys=False)
    jobs = [([os.path.join(f, n) for f in folders], os.path.join(str(output_folder), n[:-len(".npz")]),
             dataset_json["file_ending"], writer, lm, save_merged_probabilities) for n in names]
    run_parallel(merge_files, jobs, num_processes, desc="ensembling", show_progress=show_progress)
    return [n[:-len(".npz")] for n in names]


def _json_arg(file_or_dict: str | os.PathLike | dict | None, folder: str, filename: str) -> dict:
    if isinstance(file_or_dict, dict):
        return file_or_dict
    path = Path(file_or_dict) if file_or_dict is not None else Path(folder) / filename
    if not path.is_file():
        raise NnunetError(f"{path} not found; the first input folder must contain {filename} (prediction copies "
                          f"it there).")
    return load_json(path)


def ensemble_crossvalidations(list_of_trained_model_folders: Sequence[str | os.PathLike],
                              output_folder: str | os.PathLike, folds: Sequence[int | str] = (0, 1, 2, 3, 4),
                              num_processes: int | None = None, overwrite: bool = True,
                              show_progress: bool = False) -> list[str]:
    """Ensemble the per-fold validation probabilities of several trained models (their splits may differ).

    Every model must have the ``.npz`` of every case predicted by any model (exactly once over its folds).
    plans.json and dataset.json of the first model are copied into ``output_folder``.

    Returns:
        The case identifiers written (without those skipped because ``overwrite`` is False and they exist).
    """
    models = [Path(m) for m in list_of_trained_model_folders]
    if not models:
        raise NnunetError("Give at least one trained model folder to ensemble.")
    num_processes = default_num_processes() if num_processes is None else num_processes
    dataset_json = _json_arg(None, str(models[0]), "dataset.json")
    plans = _json_arg(None, str(models[0]), "plans.json")

    locations: list[dict[str, str]] = []
    for model in models:
        where: dict[str, str] = {}
        for fold in folds:
            validation = model / f"fold_{fold}" / "validation"
            if not validation.is_dir():
                raise NnunetError(f"{validation} does not exist: train all requested folds of {model}.")
            names = sorted(_npz_names(str(validation)))
            if not names:
                raise NnunetError(f"No .npz files in {validation}. Rerun the validation with probabilities: "
                                  f"nnUNet_train ... --val --npz.")
            for name in names:
                if name in where:
                    raise NnunetError(f"Case {name} is in more than one fold of {model}.")
                where[name] = str(validation / name)
        locations.append(where)
    all_cases = set().union(*locations)
    missing = [f"{model} lacks {', '.join(sorted(all_cases - set(where))[:5])}"
               for model, where in zip(models, locations) if all_cases - set(where)]
    if missing:
        raise NnunetError("Not every model has validation probabilities for every case: " + "; ".join(missing))

    os.makedirs(output_folder, exist_ok=True)
    ending = dataset_json["file_ending"]
    cases = sorted(all_cases)
    if not overwrite:
        cases = [c for c in cases if not os.path.isfile(os.path.join(str(output_folder), c[:-len(".npz")] + ending))]
    writer = reader_class(plans["image_reader_writer"])()
    lm = label_manager(dataset_json)
    jobs = [([where[c] for where in locations], os.path.join(str(output_folder), c[:-len(".npz")]), ending, writer,
             lm, False) for c in cases]
    run_parallel(merge_files, jobs, num_processes, desc="ensembling", show_progress=show_progress)
    copy_file(models[0] / "plans.json", Path(output_folder) / "plans.json")
    copy_file(models[0] / "dataset.json", Path(output_folder) / "dataset.json")
    return [c[:-len(".npz")] for c in cases]
