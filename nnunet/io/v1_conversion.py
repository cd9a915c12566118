"""Convert a raw nnU-Net v1 task (``TaskXXX_Name``) into a raw dataset of this package (``DatasetXXX_Name``).

nnU-Net v1 already used the ``{ID}_XXXX.nii.gz`` file naming, so the image and label folders (``imagesTr``,
``labelsTr`` and, where present, ``imagesTs``, ``labelsTs``, ``imagesVal``, ``labelsVal``) are copied as they
are. Only dataset.json changes: ``modality`` becomes ``channel_names``, ``labels`` is turned around from
``{"1": "liver"}`` to ``{"liver": 1}``, ``file_ending`` is set to ``.nii.gz``, and the v1 bookkeeping keys
(``tensorImageSize``, ``numTest``, ``training``, ``test``) are dropped. Everything else (``numTraining``,
``name``, ``description``, ...) is kept in its order.

The new dataset is assembled in a hidden folder inside ``nnUNet_raw`` and renamed into place only when it is
complete, so an interrupted conversion never leaves a half-written dataset behind.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from nnunet import paths
from nnunet.errors import DatasetError, NnunetError
from nnunet.io.naming import dataset_folders_with_id, staged_raw_dataset
from nnunet.utils.json import load_json, save_json

logger = logging.getLogger(__name__)

#: sub-folders copied when present (``imagesTr`` and ``labelsTr`` are required)
COPIED_FOLDERS = ("imagesTr", "labelsTr", "imagesTs", "labelsTs", "imagesVal", "labelsVal")
REQUIRED_FOLDERS = ("imagesTr", "labelsTr")
V1_FILE_ENDING = ".nii.gz"
#: keys of a v1 dataset.json that have no meaning for the new format
DROPPED_KEYS = ("tensorImageSize", "numTest", "training", "test")
_DATASET_NAME_RE = re.compile(r"^Dataset(\d{3})_(.+)$")


def convert_v1_dataset(source_folder: str | os.PathLike, target_dataset_name: str) -> Path:
    """Copy a v1 task folder into ``nnUNet_raw/target_dataset_name`` with a converted dataset.json.

    Args:
        source_folder: the v1 task folder itself (e.g. ``/old/nnUNet_raw_data/Task017_Liver``), i.e. the folder
            holding dataset.json, imagesTr and labelsTr.
        target_dataset_name: ``DatasetXXX_Name`` (a name, not a path).

    Returns:
        The new raw dataset folder.

    Raises:
        DatasetError: the source is not a v1 task folder, its dataset.json cannot be converted, the target name
            is malformed, or the target (or another dataset with its id) already exists.
    """
    source = Path(source_folder).expanduser().resolve()
    target_id = _check_target_name(target_dataset_name)
    v1_json = _check_source(source)
    new_json = convert_v1_dataset_json(v1_json, source / "dataset.json")
    target = paths.raw_root() / target_dataset_name
    _check_target_free(target, target_id)
    with staged_raw_dataset(target_dataset_name) as staging:
        for sub in COPIED_FOLDERS:
            if (source / sub).is_dir():
                shutil.copytree(source / sub, staging / sub)
        save_json(new_json, staging / "dataset.json", sort_keys=False)
    copied = [sub for sub in COPIED_FOLDERS if (target / sub).is_dir()]
    logger.info(f"Converted {source.name} into {target} (copied {', '.join(copied)}).")
    return target


def _check_target_name(name: str) -> int:
    if os.sep in name or (os.altsep and os.altsep in name):
        raise DatasetError(f"The output must be a dataset name like Dataset017_Liver, not a path ({name!r}); the "
                           f"dataset is always written into $nnUNet_raw.")
    m = _DATASET_NAME_RE.match(name)
    if not m:
        raise DatasetError(f"{name!r} is not a valid dataset name: it must be Dataset + a three-digit id + _ + a "
                           f"name, e.g. Dataset017_Liver for a v1 task Task017_Liver.")
    return int(m.group(1))


def _check_source(source: Path) -> dict[str, Any]:
    if not source.is_dir():
        raise DatasetError(f"nnU-Net v1 task folder {source} does not exist. Give the path of the task folder "
                           f"itself (the one holding imagesTr/ and labelsTr/), not just the task name.")
    missing = [n for n in REQUIRED_FOLDERS if not (source / n).is_dir()]
    if not (source / "dataset.json").is_file():
        missing.append("dataset.json")
    if missing:
        raise DatasetError(f"{source} is not an nnU-Net v1 task folder: {', '.join(missing)} missing (expected "
                           f"dataset.json, imagesTr/, labelsTr/ and optionally imagesTs/).")
    try:
        v1_json = load_json(source / "dataset.json")
    except NnunetError as e:
        raise DatasetError(str(e)) from None
    if not isinstance(v1_json, dict):
        raise DatasetError(f"{source / 'dataset.json'} must hold a JSON object.")
    return v1_json


def _check_target_free(target: Path, target_id: int) -> None:
    if target.exists():
        raise DatasetError(f"{target} already exists; nothing was changed. Delete it first if you really want to "
                           f"convert again, or choose another dataset name.")
    others = sorted({f"{var}: {name}" for var, name in dataset_folders_with_id(target_id) if name != target.name})
    if others:
        raise DatasetError(f"Cannot create {target.name}: dataset id {target_id} is already used by {others}, and "
                           f"two datasets with one id cannot be told apart. Nothing was changed; choose another id.")


def convert_v1_dataset_json(v1_json: dict[str, Any], path: str | os.PathLike = "dataset.json") -> dict[str, Any]:
    """The new-format dataset.json of a v1 one (key order kept; ``channel_names`` and ``file_ending`` appended).

    Raises:
        DatasetError: ``modality`` or ``labels`` is missing or not of the v1 form.
    """
    modality, labels = v1_json.get("modality"), v1_json.get("labels")
    if not isinstance(modality, dict) or not isinstance(labels, dict):
        hint = (" It looks like a dataset.json of the new format already (channel_names present); copy the dataset "
                "instead of converting it." if "channel_names" in v1_json else "")
        raise DatasetError(f"{path}: a v1 dataset.json needs 'modality' and 'labels' objects (e.g. \"modality\": "
                           f"{{\"0\": \"CT\"}}, \"labels\": {{\"0\": \"background\", \"1\": \"liver\"}}).{hint}")
    inverted: dict[str, int] = {}
    for value, name in labels.items():
        try:
            int_value = int(str(value).strip())
        except ValueError:
            raise DatasetError(f"{path}: v1 'labels' keys must be label values (\"0\", \"1\", ...), got {value!r}. "
                               f"Is this dataset.json already in the new format?") from None
        if name in inverted:
            raise DatasetError(f"{path}: label name {name!r} is used for both {inverted[name]} and {int_value}; "
                               f"the new format maps each name to one value.")
        inverted[str(name)] = int_value
    out: dict[str, Any] = {}
    for key, value in v1_json.items():
        if key in DROPPED_KEYS or key == "modality":
            continue
        out[key] = inverted if key == "labels" else value
    out["channel_names"] = dict(modality)  # keeps the position of an existing key, else appended
    out["file_ending"] = V1_FILE_ENDING
    return out
