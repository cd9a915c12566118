"""``export_pretrained_model``: pack trained models of one dataset into a zip (``nnUNet_export_model_to_zip``).

The zip holds paths relative to ``nnUNet_results`` (``DatasetXXX_Name/TRAINER__PLANS__CONFIG/fold_0/...``), so
installing it is a plain extraction into another ``nnUNet_results``. Per configuration and fold it takes what
inference and model selection need: the requested checkpoints, ``debug.json``, ``progress.png``,
``network_architecture.pdf`` and the validation ``summary.json`` (or, with ``export_crossval_predictions``, every
validation file except the ``.npz``/``.pkl`` probabilities); then the model's ``plans.json``, ``dataset.json``,
``dataset_fingerprint.json`` and its cross-validation results; then the ensembles made only of exported models,
and ``inference_information.json``/``.txt``.
"""
from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Sequence

from nnunet import paths
from nnunet.ensembling.model_selection import parse_ensemble_identifier
from nnunet.errors import ConfigurationError, NnunetError
from nnunet.io.naming import resolve_dataset_name
from nnunet.models.folder import model_folder_name, parse_model_folder_name
from nnunet.utils.files import publish

logger = logging.getLogger(__name__)

DEFAULT_CONFIGURATIONS = ("3d_lowres", "3d_fullres", "2d", "3d_cascade_fullres")
DEFAULT_FOLDS = (0, 1, 2, 3, 4)
#: files of a cross-validation or ensemble folder exported without ``export_crossval_predictions``
RESULT_FILES = ("summary.json", "postprocessing.pkl", "postprocessing.json")


def parse_folds(folds: Sequence[int | str]) -> list[int | str]:
    """``["0", "all"]`` -> ``[0, "all"]``; anything else raises."""
    out = []
    for f in folds:
        if f == "all":
            out.append("all")
            continue
        try:
            out.append(int(f))
        except (TypeError, ValueError):
            raise ConfigurationError(f"Fold {f!r} is neither an integer nor 'all'.") from None
    return out


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


class _ZipPlan:
    """The list of files to export, collected before the zip is written (so errors leave no half zip)."""

    def __init__(self, root: Path):
        self.root = root
        self.files: list[Path] = []
        self.notes: list[str] = []

    def add(self, path: Path) -> None:
        if path not in self.files:
            self.files.append(path)

    def add_if_present(self, path: Path, note_if_missing: bool = False) -> None:
        if path.is_file():
            self.add(path)
        elif note_if_missing:
            self.notes.append(f"{path} not found; exported without it")

    def arcname(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()


def _add_results(plan: _ZipPlan, folder: Path, with_predictions: bool) -> None:
    """A cross-validation or ensemble folder: every file, or only its summary and postprocessing files."""
    if with_predictions:
        for f in _files(folder):
            plan.add(f)
    else:
        for name in RESULT_FILES:
            plan.add_if_present(folder / name)


def _collect_model(plan: _ZipPlan, model_folder: Path, folds: list[int | str], checkpoints: Sequence[str],
                   strict: bool, export_crossval_predictions: bool) -> bool:
    """Add one trained model folder; returns whether anything of it was exported."""
    fold_folders = [model_folder / f"fold_{f}" for f in folds]
    missing_folds = [f.name for f in fold_folders if not f.is_dir()]
    if missing_folds and strict:
        raise ConfigurationError(f"{model_folder} lacks {', '.join(missing_folds)} (requested folds: "
                                 f"{' '.join(map(str, folds))}). Choose the folds with -f, or pass --not_strict to "
                                 f"skip missing ones.")
    for name in ("plans.json", "dataset.json"):
        if not (model_folder / name).is_file():
            raise ConfigurationError(f"{model_folder / name} is missing; {model_folder} is not a complete trained "
                                     f"model folder.")
    exported_folds = 0
    for fold_folder in fold_folders:
        if not fold_folder.is_dir():
            plan.notes.append(f"{fold_folder} not found; skipped")
            continue
        missing_checkpoints = [c for c in checkpoints if not (fold_folder / c).is_file()]
        if missing_checkpoints:
            if strict:
                raise ConfigurationError(f"{fold_folder} has no {', '.join(missing_checkpoints)}. Is the training "
                                         f"finished? Choose checkpoints with -chk, or pass --not_strict to skip "
                                         f"this fold.")
            plan.notes.append(f"{fold_folder} has no {', '.join(missing_checkpoints)}; fold skipped")
            continue
        plan.add_if_present(fold_folder / "debug.json")
        for checkpoint in checkpoints:
            plan.add(fold_folder / checkpoint)
        plan.add_if_present(fold_folder / "progress.png", note_if_missing=True)
        plan.add_if_present(fold_folder / "network_architecture.pdf")
        validation = fold_folder / "validation"
        if export_crossval_predictions:
            for f in _files(validation):
                if not f.name.endswith((".npz", ".pkl")):
                    plan.add(f)
        else:
            plan.add_if_present(validation / "summary.json", note_if_missing=True)
        exported_folds += 1
    if not exported_folds:
        return False
    from nnunet.evaluation.accumulate_cv_results import default_merged_folder

    _add_results(plan, default_merged_folder(model_folder, folds), export_crossval_predictions)
    plan.add(model_folder / "plans.json")
    plan.add(model_folder / "dataset.json")
    plan.add_if_present(model_folder / "dataset_fingerprint.json", note_if_missing=True)
    return True


def _collect_ensembles(plan: _ZipPlan, dataset_folder: Path, trainer: str, plans_identifier: str,
                       exported_configurations: list[str], export_crossval_predictions: bool) -> None:
    ensembles = dataset_folder / "ensembles"
    if not ensembles.is_dir():
        return
    for folder in sorted(p for p in ensembles.iterdir() if p.is_dir()):
        try:
            members, _ = parse_ensemble_identifier(folder.name)
            parsed = [parse_model_folder_name(m) for m in members]
        except NnunetError:
            continue
        if not all(t == trainer and p == plans_identifier and c in exported_configurations for t, p, c in parsed):
            continue
        logger.info("Exporting ensemble %s", folder.name)
        _add_results(plan, folder, export_crossval_predictions)


def export_pretrained_model(dataset_name_or_id: int | str, output_file: str | os.PathLike,
                            configurations: Sequence[str] = DEFAULT_CONFIGURATIONS, trainer: str = "nnUNetTrainer",
                            plans_identifier: str = "nnUNetPlans", folds: Sequence[int | str] = DEFAULT_FOLDS,
                            strict: bool = True, save_checkpoints: Sequence[str] = ("checkpoint_final.pth",),
                            export_crossval_predictions: bool = False) -> Path:
    """Write the trained models of a dataset into ``output_file`` (a new zip).

    Args:
        dataset_name_or_id: dataset in ``nnUNet_results``.
        output_file: zip to create; an existing file is never overwritten.
        configurations: configurations to export (each is ``{trainer}__{plans_identifier}__{configuration}``).
        trainer: trainer class name of the models.
        plans_identifier: plans identifier of the models.
        folds: folds to export (integers or ``"all"``).
        strict: missing configurations, folds or checkpoints are errors; otherwise they are skipped (with a note).
        save_checkpoints: checkpoint file names to include per fold.
        export_crossval_predictions: also include the validation predictions (not the probabilities).

    Returns:
        The path of the written zip.
    """
    dataset = resolve_dataset_name(dataset_name_or_id)
    root = paths.results_root()
    dataset_folder = root / dataset
    output_file = Path(output_file)
    if output_file.exists():
        raise NnunetError(f"{output_file} already exists; it is not overwritten. Delete it or choose another -o.")
    if not output_file.parent.is_dir():
        raise NnunetError(f"The folder of the output file ({output_file.parent}) does not exist.")
    if not save_checkpoints:
        raise ConfigurationError("At least one checkpoint name (-chk) is needed.")
    folds = parse_folds(folds)
    if not folds:
        raise ConfigurationError("At least one fold (-f) is needed.")

    plan = _ZipPlan(root)
    exported_configurations = []
    for configuration in configurations:
        model_folder = dataset_folder / model_folder_name(trainer, plans_identifier, configuration)
        if not model_folder.is_dir():
            if strict:
                available = sorted(p.name for p in dataset_folder.iterdir() if p.is_dir()) \
                    if dataset_folder.is_dir() else []
                raise ConfigurationError(
                    f"{dataset} has no trained model for configuration {configuration} ({model_folder} does not "
                    f"exist). Choose configurations with -c (and -tr/-p), or pass --not_strict to skip missing ones. "
                    f"Found: {', '.join(available) or 'nothing'}.")
            plan.notes.append(f"no trained model {model_folder.name}; configuration {configuration} skipped")
            continue
        logger.info("Configuration %s", configuration)
        if _collect_model(plan, model_folder, folds, save_checkpoints, strict, export_crossval_predictions):
            exported_configurations.append(configuration)
    if not exported_configurations:
        raise ConfigurationError(f"Nothing to export for {dataset} (trainer {trainer}, plans {plans_identifier}, "
                                 f"configurations {' '.join(configurations)}, folds {' '.join(map(str, folds))}).")
    _collect_ensembles(plan, dataset_folder, trainer, plans_identifier, exported_configurations,
                       export_crossval_predictions)
    for name in ("inference_information.json", "inference_information.txt"):
        plan.add_if_present(dataset_folder / name)

    _write_zip(plan, output_file)
    for note in plan.notes:
        logger.info("Note: %s", note)
    logger.info(f"Exported {len(plan.files)} files ({', '.join(exported_configurations)}) to {output_file}")
    return output_file


def _write_zip(plan: _ZipPlan, output_file: Path) -> None:
    """Write the zip under a temporary name and rename it when complete (a full disk leaves no half zip).

    Every checkpoint is checked first: one that does not load as data (damaged, or holding objects a checkpoint
    never holds) would be refused by whoever installs the zip, so it is refused here.
    """
    from tqdm import tqdm

    from nnunet.networks.checkpoint_files import verify_checkpoint_file

    for path in plan.files:
        if path.suffix == ".pth":
            verify_checkpoint_file(path)
    with publish(output_file) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in tqdm(plan.files, desc="Writing zip", unit="file", disable=len(plan.files) < 20):
                zf.write(path, plan.arcname(path))
        if output_file.exists():
            raise NnunetError(f"{output_file} appeared while exporting; it is not overwritten.")
