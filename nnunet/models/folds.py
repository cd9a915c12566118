"""The folds of a model folder: ``fold_X`` sub-folders, and the folds a user asks for (``-f 0 1``, ``-f all``)."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterable

from nnunet.errors import ConfigurationError

logger = logging.getLogger(__name__)


def available_folds(model_folder: str | os.PathLike, checkpoint_name: str = "checkpoint_final.pth") -> list[int]:
    """Integer folds ``fold_X`` of a model folder that contain ``checkpoint_name`` (``fold_all`` excluded)."""
    folds = []
    for sub in Path(model_folder).glob("fold_*"):
        m = re.fullmatch(r"fold_(\d+)", sub.name)
        if m and (sub / checkpoint_name).is_file():
            folds.append(int(m.group(1)))
    return sorted(folds)


def normalize_folds(use_folds: Iterable[int | str] | int | str | None, model_folder: str | os.PathLike,
                    checkpoint_name: str) -> list[int | str]:
    """Fold list with ints and ``'all'``; None -> every fold found (:func:`available_folds`)."""
    if use_folds is None:
        folds: list[int | str] = list(available_folds(model_folder, checkpoint_name))
        if not folds:
            raise ConfigurationError(f"No fold_X/{checkpoint_name} found in the model folder {model_folder}.")
        logger.info("Using the folds found in %s: %s", model_folder, folds)
        return folds
    if isinstance(use_folds, (str, int)):
        use_folds = [use_folds]
    return parse_folds(use_folds)


def parse_folds(values: Iterable[int | str]) -> list[int | str]:
    """Folds as given by a user (``-f 0 1``, ``-f all``): integers and ``'all'``; anything else is an error."""
    folds: list[int | str] = []
    for f in values:
        if str(f) == "all":
            folds.append("all")
            continue
        try:
            folds.append(int(f))
        except ValueError:
            raise ConfigurationError(f"Invalid fold {f!r} (-f): folds are integers or 'all'.") from None
    return folds


def describe_checkpoints(model_folder: Path) -> str:
    """``fold_0 (checkpoint_final.pth); fold_1 (no checkpoint)``: what a model folder contains."""
    found = []
    for sub in sorted(Path(model_folder).glob("fold_*")):
        names = sorted(p.name for p in sub.glob("*.pth"))
        found.append(f"{sub.name} ({', '.join(names) or 'no checkpoint'})")
    return "; ".join(found) or "no fold_* folders"
