"""Cross-validation splits (``splits_final.json``): creation, manual files and fold selection.

The file is a JSON list with one ``{"train": [ids], "val": [ids]}`` entry per fold. nnU-Net creates five folds
with scikit-learn's shuffled KFold (seed 12345) over the sorted case identifiers; users may provide any number of
folds in the same format.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nnunet.errors import ConfigurationError, DatasetError
from nnunet.utils.json import load_json, save_json

logger = logging.getLogger(__name__)

SPLITS_FILE = "splits_final.json"
SPLIT_SEED = 12345


def generate_crossval_split(identifiers: Sequence[str], seed: int = SPLIT_SEED, n_splits: int = 5) -> list[dict]:
    """K-fold split of the sorted identifiers: ``[{"train": [...], "val": [...]}, ...]``."""
    from sklearn.model_selection import KFold

    keys = np.sort(np.asarray(list(identifiers)))
    if len(keys) < n_splits:
        raise DatasetError(f"Cannot make {n_splits} cross-validation folds from {len(keys)} training cases. Use "
                           f"fold 'all' or provide your own splits_final.json.")
    kfold = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [{"train": [str(k) for k in keys[tr]], "val": [str(k) for k in keys[va]]}
            for tr, va in kfold.split(keys)]


def random_80_20_split(identifiers: Sequence[str], fold: int) -> tuple[list[str], list[str]]:
    """The seeded 80:20 split used for fold indices beyond the splits file."""
    keys = sorted(identifiers)
    rnd = np.random.RandomState(SPLIT_SEED + fold)
    idx_tr = rnd.choice(len(keys), int(len(keys) * 0.8), replace=False)
    chosen = set(int(i) for i in idx_tr)
    train = [keys[i] for i in idx_tr]
    val = [keys[i] for i in range(len(keys)) if i not in chosen]
    return train, val


def load_or_create_splits(preprocessed_dataset_folder: str | os.PathLike, identifiers: Sequence[str],
                          log: Callable[[str], None] = logger.info) -> list[dict]:
    """Read ``splits_final.json`` from the dataset folder, creating the 5-fold default when it is absent."""
    path = Path(preprocessed_dataset_folder) / SPLITS_FILE
    if not path.is_file():
        log("Creating new 5-fold cross-validation split...")
        splits = generate_crossval_split(identifiers)
        save_json(splits, path)
        return splits
    log(f"Using splits from existing split file: {path}")
    splits = load_json(path)
    if not isinstance(splits, list) or not all(isinstance(s, dict) and "train" in s and "val" in s for s in splits):
        raise DatasetError(f"{path} must be a JSON list of {{\"train\": [...], \"val\": [...]}} objects.")
    return splits


def train_val_keys(preprocessed_dataset_folder: str | os.PathLike, fold: int | str, identifiers: Sequence[str],
                   log: Callable[[str], None] = logger.info) -> tuple[list[str], list[str]]:
    """Training and validation case identifiers for ``fold`` (an int or ``"all"``).

    ``all`` trains and validates on every case. A fold index beyond the splits file gets a seeded random 80:20
    split. Identifiers named by the splits file but missing from the preprocessed data raise a DatasetError.
    """
    if fold == "all":
        keys = sorted(identifiers)
        return keys, list(keys)
    if not isinstance(fold, (int, np.integer)) or fold < 0:
        raise ConfigurationError(f"fold must be a non-negative integer or 'all', got {fold!r}.")
    splits = load_or_create_splits(preprocessed_dataset_folder, identifiers, log)
    log(f"The split file contains {len(splits)} splits.")
    if fold < len(splits):
        train, val = list(splits[fold]["train"]), list(splits[fold]["val"])
        log(f"Desired fold for training: {fold}")
    else:
        log(f"INFO: You requested fold {fold} for training but splits contain only {len(splits)} folds. I am now "
            f"creating a random (but seeded) 80:20 split!")
        train, val = random_80_20_split(identifiers, fold)
    log(f"This split has {len(train)} training and {len(val)} validation cases.")
    if fold < len(splits):
        check_splits_against_data(splits, identifiers, preprocessed_dataset_folder, log)
    if set(train) & set(val):
        log("WARNING: Some validation cases are also in the training set. Please check the splits.json or ignore "
            "if this is intentional.")
    return train, val


def _some(cases: Sequence[str], limit: int = 10) -> str:
    return ", ".join(cases[:limit]) + (f" ... ({len(cases)} in all)" if len(cases) > limit else "")


def check_splits_against_data(splits: list[dict], identifiers: Sequence[str],
                              preprocessed_dataset_folder: str | os.PathLike,
                              log: Callable[[str], None] = logger.info) -> None:
    """Compare every fold of the splits file with the preprocessed cases.

    Cases the splits name but the data lacks are an error (they cannot be trained on). Preprocessed cases that no
    fold uses are reported by name: typically the splits file was written for an earlier, smaller version of the
    dataset, and every fold would silently keep training on the old subset.
    """
    path = Path(preprocessed_dataset_folder) / SPLITS_FILE
    named = {case for split in splits for part in ("train", "val") for case in split[part]}
    available = set(identifiers)
    missing = sorted(named - available)
    if missing:
        raise DatasetError(f"{path} names cases that are not in the preprocessed data: {_some(missing)}. Remove "
                           f"them from the splits, or delete {SPLITS_FILE} to create new 5-fold splits of the "
                           f"current cases (or re-run preprocessing if they should be there).")
    unused = sorted(available - named)
    if unused:
        log(f"WARNING: {len(unused)} preprocessed case(s) are in no fold of {path}: {_some(unused)}. They are never "
            f"trained or validated on. If the dataset grew, delete {SPLITS_FILE} (new 5-fold splits are created) or "
            f"add them to the splits.")
