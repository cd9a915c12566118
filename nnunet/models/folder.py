"""A trained model folder: ``plans.json``, ``dataset.json`` and ``fold_X/<checkpoint>``, and its name.

Training writes to ``nnUNet_results/<dataset>/<trainer>__<plans>__<configuration>``; that name is built by
:func:`model_folder_name` and read back by :func:`parse_model_folder_name`, nowhere else. A folder given to
prediction may have any name (a shared model, a renamed copy): what trained it is read from its checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from nnunet.errors import ConfigurationError
from nnunet.io.dataset_json import load_dataset_json
from nnunet.models.folds import describe_checkpoints, normalize_folds
from nnunet.planning.plans import Plans

#: between the trainer, the plans and the configuration in a model folder's name
NAME_SEPARATOR = "__"


def model_folder_name(trainer: str, plans: str, configuration: str) -> str:
    """``{trainer}__{plans}__{configuration}``: the folder a training writes to (under its dataset)."""
    return NAME_SEPARATOR.join((trainer, plans, configuration))


def parse_model_folder_name(name: str | os.PathLike) -> tuple[str, str, str]:
    """``(trainer, plans, configuration)`` of a model folder name or path; ConfigurationError otherwise."""
    parts = os.path.basename(str(name).rstrip("/")).split(NAME_SEPARATOR)
    if len(parts) != 3 or not all(parts):
        raise ConfigurationError(f"{str(name)!r} is not a model folder name of the form "
                                 f"TRAINER{NAME_SEPARATOR}PLANS{NAME_SEPARATOR}CONFIGURATION.")
    return parts[0], parts[1], parts[2]


def check_folder(folder: Path, folds: list[int | str], checkpoint_name: str) -> None:
    """Raise a ConfigurationError naming what an existing model folder lacks (and what it does contain)."""
    for name in ("plans.json", "dataset.json"):
        if not (folder / name).is_file():
            raise ConfigurationError(f"Model folder {folder} has no {name}; is it a trained model folder "
                                     f"(it should contain plans.json, dataset.json and fold_X/)?")
    missing = [f for f in folds if not (folder / f"fold_{f}" / checkpoint_name).is_file()]
    if missing:
        raise ConfigurationError(
            f"Model folder {folder} has no {', '.join(f'fold_{f}/{checkpoint_name}' for f in missing)}. "
            f"It contains: {describe_checkpoints(folder)}. Choose folds with -f (and the checkpoint with -chk).")


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: its plans, dataset.json and the folds chosen, each with its checkpoint.

    ``trainer``, ``plans_name`` and ``configuration`` are what the folder's name says (None when the name is
    not ``trainer__plans__configuration``); the checkpoints say what actually trained the folds.
    """

    path: Path
    plans: Plans
    dataset_json: dict[str, Any]
    folds: tuple[int | str, ...]
    checkpoint_name: str = "checkpoint_final.pth"

    @classmethod
    def read(cls, model_folder: str | os.PathLike, use_folds: Iterable[int | str] | int | str | None = None,
             checkpoint_name: str = "checkpoint_final.pth") -> ModelFolder:
        """Read plans and dataset.json after checking that every fold's checkpoint exists (None: the folds
        found)."""
        folder = Path(model_folder)
        if not folder.is_dir():
            raise ConfigurationError(f"Model folder {folder} does not exist.")
        folds = normalize_folds(use_folds, folder, checkpoint_name)
        check_folder(folder, folds, checkpoint_name)
        return cls(folder, Plans.load(folder / "plans.json"), load_dataset_json(folder / "dataset.json"),
                   tuple(folds), checkpoint_name)

    @property
    def checkpoint_files(self) -> list[Path]:
        return [self.path / f"fold_{f}" / self.checkpoint_name for f in self.folds]

    def _name_part(self, index: int) -> str | None:
        try:
            return parse_model_folder_name(self.path.name)[index]
        except ConfigurationError:
            return None

    @property
    def trainer(self) -> str | None:
        return self._name_part(0)

    @property
    def plans_name(self) -> str | None:
        return self._name_part(1)

    @property
    def configuration(self) -> str | None:
        return self._name_part(2)

