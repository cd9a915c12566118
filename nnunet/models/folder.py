"""A trained model folder's files: ``plans.json``, ``dataset.json`` and ``fold_X/<checkpoint>``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from nnunet.errors import ConfigurationError
from nnunet.io.dataset_json import load_dataset_json
from nnunet.models.folds import describe_checkpoints, normalize_folds
from nnunet.planning.plans import Plans


def check_folder(folder: Path, folds: list[int | str], checkpoint_name: str) -> None:
    """Raise a ConfigurationError naming what is missing (and what the folder does contain)."""
    if not folder.is_dir():
        raise ConfigurationError(f"Model folder {folder} does not exist.")
    for name in ("plans.json", "dataset.json"):
        if not (folder / name).is_file():
            raise ConfigurationError(f"Model folder {folder} has no {name}; is it a trained model folder "
                                     f"(it should contain plans.json, dataset.json and fold_X/)?")
    missing = [f for f in folds if not (folder / f"fold_{f}" / checkpoint_name).is_file()]
    if missing:
        raise ConfigurationError(
            f"Model folder {folder} has no {', '.join(f'fold_{f}/{checkpoint_name}' for f in missing)}. "
            f"It contains: {describe_checkpoints(folder)}. Choose folds with -f (and the checkpoint with -chk).")


def read_folder(model_folder: str | os.PathLike, use_folds: Iterable[int | str] | int | str | None,
                checkpoint_name: str) -> tuple[Plans, dict[str, Any], list[Path]]:
    """Plans, dataset.json and the checkpoint paths of the folds, after checking that all of them exist."""
    folder = Path(model_folder)
    if not folder.is_dir():
        raise ConfigurationError(f"Model folder {folder} does not exist.")
    folds = normalize_folds(use_folds, folder, checkpoint_name)
    check_folder(folder, folds, checkpoint_name)
    dataset_json = load_dataset_json(folder / "dataset.json")
    plans = Plans.load(folder / "plans.json")
    return plans, dataset_json, [folder / f"fold_{f}" / checkpoint_name for f in folds]
