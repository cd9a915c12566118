"""Reading, validating and writing dataset.json, and listing the training cases of a raw dataset."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from nnunet.errors import DatasetError
from nnunet.io.labels import LabelManager
from nnunet.io.naming import case_identifiers, channel_files
from nnunet.utils.json import load_json, save_json

REQUIRED_KEYS = ("labels", "channel_names", "numTraining", "file_ending")


def load_dataset_json(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a dataset.json (a file, or a dataset folder containing one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "dataset.json"
    if not path.is_file():
        raise DatasetError(f"dataset.json not found: {path}")
    try:
        ds = load_json(path)
    except Exception as e:  # NnunetError from load_json carries the parse position
        raise DatasetError(str(e)) from None
    if not isinstance(ds, dict):
        raise DatasetError(f"{path}: the top level must be a JSON object.")
    validate_dataset_json(ds, path)
    return ds


def validate_dataset_json(ds: dict[str, Any], path: str | os.PathLike = "dataset.json") -> None:
    """Check keys and value types; rename the legacy ``modality`` key to ``channel_names``."""
    if "channel_names" not in ds and "modality" in ds:
        warnings.warn(f"{path}: 'modality' is deprecated, use 'channel_names'.", stacklevel=2)
        ds["channel_names"] = ds.pop("modality")
    missing = [k for k in REQUIRED_KEYS if k not in ds]
    if missing:
        raise DatasetError(f"{path} is missing the required key(s) {missing}. Required: {list(REQUIRED_KEYS)}; "
                           f"present: {sorted(ds)}.")
    channels = ds["channel_names"]
    if not isinstance(channels, dict) or not channels:
        raise DatasetError(f"{path}: 'channel_names' must be a non-empty object like {{\"0\": \"CT\"}}.")
    expected = [str(i) for i in range(len(channels))]
    if sorted(channels, key=lambda k: int(k) if str(k).isdigit() else -1) != expected:
        raise DatasetError(f"{path}: 'channel_names' keys must be \"0\"..\"{len(channels) - 1}\", got {list(channels)}.")
    if not isinstance(ds["numTraining"], int) or isinstance(ds["numTraining"], bool) or ds["numTraining"] < 1:
        raise DatasetError(f"{path}: 'numTraining' must be a positive integer, got {ds['numTraining']!r}.")
    ending = ds["file_ending"]
    if not isinstance(ending, str) or not ending.startswith("."):
        raise DatasetError(f"{path}: 'file_ending' must be a string starting with '.', e.g. \".nii.gz\", got {ending!r}.")
    try:
        label_manager(ds)
    except DatasetError as e:
        raise DatasetError(f"{path}: {e}") from None


def label_manager(ds: dict[str, Any]) -> LabelManager:
    """The labels (and regions) of a dataset.json; every other module gets its LabelManager here."""
    return LabelManager(ds["labels"], ds.get("regions_class_order"))


def channel_names(ds: dict[str, Any]) -> dict[str, str] | None:
    """``channel_names``, or ``modality`` of a dataset.json older than nnU-Net v2 (None when it has neither)."""
    return ds.get("channel_names", ds.get("modality"))


def training_cases(raw_folder: str | os.PathLike, ds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{case_id: {"images": [paths per channel], "label": path}}`` of a raw dataset.

    Uses the ``dataset`` key when present, else the imagesTr/labelsTr convention. Paths are not checked
    for existence here (the integrity check does that).
    """
    raw_folder = Path(raw_folder)
    if "dataset" in ds:
        cases = {}
        for case_id, entry in ds["dataset"].items():
            cases[case_id] = {
                "images": [_resolve(raw_folder, p) for p in entry["images"]],
                "label": _resolve(raw_folder, entry["label"]),
            }
        return cases
    images, labels = raw_folder / "imagesTr", raw_folder / "labelsTr"
    for folder in (images, labels):
        if not folder.is_dir():
            raise DatasetError(f"{folder} does not exist (a raw dataset needs imagesTr/ and labelsTr/).")
    ending = ds["file_ending"]
    all_files = os.listdir(images)
    return {
        case_id: {"images": channel_files(images, case_id, ending, all_files), "label": labels / f"{case_id}{ending}"}
        for case_id in case_identifiers(images, ending)
    }


def _resolve(raw_folder: Path, p: str) -> Path:
    p = Path(os.path.expandvars(p))
    return p if p.is_absolute() else raw_folder / p


def generate_dataset_json(output_folder: str | os.PathLike, channel_names: dict, labels: dict,
                          num_training_cases: int, file_ending: str, regions_class_order: list[int] | None = None,
                          dataset_name: str | None = None, **extra: Any) -> dict[str, Any]:
    """Write a dataset.json (keys in the conventional order, no key sorting) and return it."""
    ds: dict[str, Any] = {
        "channel_names": {str(k): v for k, v in channel_names.items()},
        "labels": {k: (tuple(int(i) for i in v) if isinstance(v, (list, tuple)) else int(v)) for k, v in labels.items()},
        "numTraining": int(num_training_cases),
        "file_ending": file_ending,
    }
    if regions_class_order is not None:
        ds["regions_class_order"] = list(regions_class_order)
    if dataset_name is not None:
        ds["name"] = dataset_name
    ds["licence"] = extra.pop("licence", "unspecified: state the licence before sharing this dataset")
    ds["converted_by"] = extra.pop("converted_by", "unspecified")
    ds.update(extra)
    validate_dataset_json(ds)
    save_json(ds, Path(output_folder) / "dataset.json", sort_keys=False)
    return ds
