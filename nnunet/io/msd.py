"""Convert a Medical Segmentation Decathlon task folder (``TaskXX_Name``) into a raw dataset ``DatasetXXX_Name``.

Images become one file per channel (``{ID}_0000.nii.gz``, ``{ID}_0001.nii.gz``, ...): 3-D images are copied
unchanged, 4-D (multi-channel) images are split with their geometry reduced to the three spatial axes. Labels
are copied, and dataset.json is rewritten (``modality`` -> ``channel_names``, labels inverted to name -> value,
``file_ending``; the ``training``/``test`` lists are dropped). The result is built in a hidden folder next to
the target and renamed only when complete, so an interrupted run leaves no half-converted dataset behind.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from nnunet import paths
from nnunet.constants import default_num_processes
from nnunet.errors import DatasetError, NnunetError
from nnunet.io.naming import dataset_folders_with_id, staged_raw_dataset
from nnunet.io.readers.simpleitk import itk_path, write_image
from nnunet.utils.files import copy_file
from nnunet.utils.json import load_json, save_json
from nnunet.utils.pool import run_parallel

logger = logging.getLogger(__name__)

MSD_ENDING = ".nii.gz"
_TASK_RE = re.compile(r"^Task(\d+)_(.+)$")
_DROPPED_KEYS = ("training", "test", "modality")


def convert_msd_dataset(source_folder: str | os.PathLike, overwrite_id: int | None = None,
                        num_processes: int | None = None, show_progress: bool = True) -> Path:
    """Convert an extracted MSD task folder into ``nnUNet_raw/DatasetXXX_Name`` and return that folder.

    Args:
        source_folder: e.g. ``/data/Task05_Prostate`` with dataset.json, imagesTr, labelsTr (imagesTs optional).
        overwrite_id: dataset id to use instead of the task number.
        num_processes: worker processes (default: ``default_num_processes()``).
        show_progress: show a progress bar.

    Raises:
        DatasetError: the source is not an MSD task folder, a file cannot be read, or the target id is taken.
    """
    source = Path(source_folder).resolve()
    task_id, name = _parse_task_name(source, overwrite_id)
    target_id = task_id if overwrite_id is None else int(overwrite_id)
    target_name = f"Dataset{target_id:03d}_{name}"
    msd_json = _check_source(source)
    _check_target_free(target_id, target_name)
    with staged_raw_dataset(target_name) as staging:
        num_training = _convert_files(source, staging, num_processes, show_progress)
        save_json(convert_dataset_json(msd_json, num_training), staging / "dataset.json", sort_keys=False)
    target = paths.raw_root() / target_name
    logger.info(f"Converted {source.name} into {target} ({num_training} training cases).")
    return target


def _parse_task_name(source: Path, overwrite_id: int | None) -> tuple[int, str]:
    m = _TASK_RE.match(source.name)
    if m:
        return int(m.group(1)), m.group(2)
    if overwrite_id is not None:
        return int(overwrite_id), source.name
    raise DatasetError(f"{source.name!r} is not an MSD task folder name (TaskXX_Name, e.g. Task05_Prostate). "
                       f"Rename it or give the dataset id with -overwrite_id.")


def _check_source(source: Path) -> dict[str, Any]:
    if not source.is_dir():
        raise DatasetError(f"MSD task folder {source} does not exist.")
    missing = [n for n in ("dataset.json", "imagesTr", "labelsTr") if not (source / n).exists()]
    if missing:
        raise DatasetError(f"{source} is not an MSD task folder: {missing} missing (expected dataset.json, "
                           f"imagesTr/, labelsTr/ and optionally imagesTs/).")
    try:
        msd_json = load_json(source / "dataset.json")
    except NnunetError as e:
        raise DatasetError(str(e)) from None
    if not isinstance(msd_json, dict) or not isinstance(msd_json.get("modality"), dict) \
            or not isinstance(msd_json.get("labels"), dict):
        raise DatasetError(f"{source / 'dataset.json'}: an MSD dataset.json needs 'modality' and 'labels' objects "
                           f"(e.g. \"modality\": {{\"0\": \"MRI\"}}, \"labels\": {{\"0\": \"background\"}}).")
    bad = [k for k in msd_json["labels"] if not str(k).strip().lstrip("-").isdigit()]
    if bad:
        raise DatasetError(f"{source / 'dataset.json'}: MSD 'labels' keys must be label values (\"0\", \"1\", ...), "
                           f"got {bad}.")
    return msd_json


def _check_target_free(target_id: int, target_name: str) -> None:
    taken = sorted({f"{var}: {name}" for var, name in dataset_folders_with_id(target_id)})
    if taken:
        raise DatasetError(f"Cannot create {target_name}: dataset id {target_id} is already used by {taken}. "
                           f"Nothing was changed. Choose another id with -overwrite_id, or remove the existing "
                           f"dataset first.")


def _visible_niftis(folder: Path) -> list[Path]:
    """The .nii.gz files of a folder, without hidden files and macOS resource forks (``._name``)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.endswith(MSD_ENDING) and not p.name.startswith((".", "_")))


def _convert_files(source: Path, target: Path, num_processes: int | None, show_progress: bool) -> int:
    jobs = []
    for sub_in, sub_out in (("imagesTr", "imagesTr"), ("imagesTs", "imagesTs")):
        if (source / sub_in).is_dir():
            (target / sub_out).mkdir(parents=True, exist_ok=True)
            jobs += [("image", str(p), str(target / sub_out)) for p in _visible_niftis(source / sub_in)]
    (target / "labelsTr").mkdir(parents=True, exist_ok=True)
    labels = _visible_niftis(source / "labelsTr")
    jobs += [("label", str(p), str(target / "labelsTr")) for p in labels]
    n = default_num_processes() if num_processes is None else num_processes
    run_parallel(convert_file, jobs, n, desc="Converting", show_progress=show_progress)
    return len(labels)


def convert_file(kind: str, source_file: str, target_folder: str) -> None:
    """Copy a label, copy a 3-D image as ``_0000`` or split a 4-D image into one file per channel."""
    src = Path(source_file)
    case_id = src.name[: -len(MSD_ENDING)]
    if kind == "label":
        copy_file(src, Path(target_folder) / src.name)
        return
    if _dimension(src) == 4:
        split_4d_image(src, Path(target_folder), case_id)
    else:
        copy_file(src, Path(target_folder) / f"{case_id}_0000{MSD_ENDING}")


def _dimension(path: Path) -> int:
    reader = sitk.ImageFileReader()
    reader.SetFileName(itk_path(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise DatasetError(f"Could not read {path}: {str(e).strip().splitlines()[-1]}") from None
    return reader.GetDimension()


def split_4d_image(path: Path, target_folder: Path, case_id: str) -> None:
    """Write channel ``c`` of a 4-D image as ``{case_id}_{c:04d}.nii.gz`` with 3-D spacing, origin, direction."""
    try:
        img = sitk.ReadImage(itk_path(path))
    except RuntimeError as e:
        raise DatasetError(f"Could not read {path}: {str(e).strip().splitlines()[-1]}") from None
    arr = sitk.GetArrayFromImage(img)  # (C, Z, Y, X): the 4th physical axis is the first array axis
    spacing, origin = img.GetSpacing()[:3], img.GetOrigin()[:3]
    direction = np.reshape(img.GetDirection(), (4, 4))[:3, :3].ravel().tolist()
    for c in range(arr.shape[0]):
        channel = sitk.GetImageFromArray(arr[c])
        channel.SetSpacing(spacing)
        channel.SetOrigin(origin)
        channel.SetDirection(direction)
        write_image(channel, target_folder / f"{case_id}_{c:04d}{MSD_ENDING}")  # fails on a full disk


def convert_dataset_json(msd_json: dict[str, Any], num_training: int) -> dict[str, Any]:
    """The nnU-Net dataset.json of an MSD one (key order kept; ``file_ending`` and ``channel_names`` appended)."""
    out: dict[str, Any] = {}
    for key, value in msd_json.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "labels":
            value = {name: int(v) for v, name in value.items()}
        elif key == "numTraining":
            value = num_training
        out[key] = value
    out.setdefault("numTraining", num_training)
    out["file_ending"] = MSD_ENDING
    out["channel_names"] = dict(msd_json["modality"])
    return out
