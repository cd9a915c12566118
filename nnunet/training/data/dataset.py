"""Read-only access to a preprocessed folder during training: a view of some of its cases.

The format itself (which files make a case, how they are opened, when a folder is complete) belongs to
:mod:`nnunet.preprocessing.storage`; this module only selects cases and adds the cascade's previous-stage
segmentations (``{ID}.b2nd`` in ``folder_with_segs_from_previous_stage``, 3-D, no channel axis).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from nnunet.errors import DatasetError
from nnunet.planning.plans import Plans
from nnunet.preprocessing.staging import configuration_settings
from nnunet.preprocessing.storage import read_marker
from nnunet.utils.json import load_json
from nnunet.preprocessing.storage import (PreprocessedDataError, load_case, load_previous_stage_seg,
                                          load_properties, require_complete, save_previous_stage_seg, scan_folder,
                                          unpack_npz)

__all__ = ["PreprocessedDataset", "case_identifiers", "dataset_format", "unpack_npz", "save_previous_stage_seg"]


def dataset_format(folder: str | os.PathLike) -> str:
    """``"b2nd"`` or ``"npz"`` depending on the data files in ``folder``; a mixture is an error."""
    contents = scan_folder(folder)
    if not contents.complete and not contents.partial:
        raise PreprocessedDataError(f"No preprocessed cases (.b2nd or .npz) in {folder}. Run nnUNet_preprocess for "
                                    f"this configuration.")
    return contents.format


def case_identifiers(folder: str | os.PathLike) -> list[str]:
    """The cases training may use: refuses a folder that preprocessing did not complete (see
    :func:`~nnunet.preprocessing.storage.require_complete`), checked against the plans and dataset.json found
    next to the folder."""
    folder = Path(folder)
    cases = require_complete(folder, _current_settings(folder), _num_training(folder))
    if not cases:
        raise PreprocessedDataError(f"No preprocessed cases (.b2nd or .npz) in {folder}. Run nnUNet_preprocess for "
                                    f"this configuration.")
    return cases


def _num_training(folder: Path) -> int | None:
    path = folder.parent / "dataset.json"
    try:
        n = load_json(path).get("numTraining") if path.is_file() else None
    except Exception:  # noqa: BLE001 - a broken dataset.json is reported where it is used, not here
        return None
    return n if isinstance(n, int) else None


def _current_settings(folder: Path) -> dict[str, Any] | None:
    """The preprocessing settings that the plans file recorded in the folder's completion marker has now."""
    marker = read_marker(folder)
    if marker is None or not marker.get("plans_file") or not marker.get("configuration"):
        return None
    plans_file = folder.parent / marker["plans_file"]
    if not plans_file.is_file():
        return None
    plans = Plans.load(plans_file)
    if marker["configuration"] not in plans.available_configurations:
        return None
    return configuration_settings(plans, plans.configuration(marker["configuration"]))


class PreprocessedDataset:
    """The cases of one preprocessed folder (optionally a subset) with lazy, memory-mapped loading.

    Args:
        folder: ``nnUNet_preprocessed/DatasetXXX/{data_identifier}``.
        identifiers: subset of cases; all complete cases of the folder if None.
        folder_with_segs_from_previous_stage: cascade only, the previous stage's ``predicted_next_stage`` folder.
    """

    def __init__(self, folder: str | os.PathLike, identifiers: Sequence[str] | None = None,
                 folder_with_segs_from_previous_stage: str | os.PathLike | None = None):
        self.folder = Path(folder)
        contents = scan_folder(self.folder)
        if not contents.complete and not contents.partial:
            raise PreprocessedDataError(f"No preprocessed cases (.b2nd or .npz) in {self.folder}.")
        self.format = contents.format
        if identifiers is None:
            identifiers = contents.complete
        else:
            missing = sorted(set(identifiers) - set(contents.complete))
            if missing:
                raise DatasetError(f"Cases {', '.join(missing[:10])} are not (completely) preprocessed in "
                                   f"{self.folder}. Re-run nnUNet_preprocess for this configuration.")
        self.identifiers = list(identifiers)
        self.prev_stage_folder = (Path(folder_with_segs_from_previous_stage)
                                  if folder_with_segs_from_previous_stage is not None else None)

    def __len__(self) -> int:
        return len(self.identifiers)

    def load_properties(self, identifier: str) -> dict[str, Any]:
        return load_properties(self.folder, identifier)

    def load_case(self, identifier: str) -> tuple[Any, Any, Any | None, dict[str, Any]]:
        """``(data, seg, seg_prev, properties)``; arrays are memory-mapped (blosc2 NDArray or np.memmap)."""
        data, seg, properties = load_case(self.folder, identifier, self.format)
        seg_prev = None
        if self.prev_stage_folder is not None:
            seg_prev = load_previous_stage_seg(self.prev_stage_folder, identifier)
            if seg_prev is None:
                raise DatasetError(f"The previous stage has no prediction for case {identifier} in "
                                   f"{self.prev_stage_folder}. Train all folds of the previous stage first (its "
                                   f"validation writes these files).")
        return data, seg, seg_prev, properties
