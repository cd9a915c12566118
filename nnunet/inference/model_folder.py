"""Loading a trained model folder: folds, checkpoints and the network the trainer that made them builds.

A model folder holds ``plans.json``, ``dataset.json`` and ``fold_X/<checkpoint>``; the checkpoints are in
nnU-Net's format (``network_weights``, ``trainer_name``, ``init_args['configuration']``,
``inference_allowed_mirroring_axes``), so folders trained by either implementation load here.

The network is built by the trainer class named in the checkpoint (its static ``build_network_architecture``,
deep supervision off), exactly as training built it: BatchNorm, Primus or a user's trainer predict with their
own network. The trainer is found by name like ``nnUNet_train -tr`` finds it (registered variants, dotted
paths, the folders of ``nnUNet_extTrainer``); nnU-Net also refuses to predict when it cannot find the trainer.
"""
from __future__ import annotations

import difflib
import inspect
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from nnunet.errors import ConfigurationError, NnunetError
from nnunet.inference.runners import find_cached_export
from nnunet.io.dataset_json import load_dataset_json
from nnunet.planning.plans import Configuration, Plans
from nnunet.planning.plans_rules import num_image_channels
from nnunet.registry import TRAINERS

if TYPE_CHECKING:
    import torch

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
    for sub in sorted(model_folder.glob("fold_*")):
        names = sorted(p.name for p in sub.glob("*.pth"))
        found.append(f"{sub.name} ({', '.join(names) or 'no checkpoint'})")
    return "; ".join(found) or "no fold_* folders"


def num_input_channels(plans: Plans, configuration: Configuration, dataset_json: dict[str, Any]) -> int:
    """Image channels, plus one per foreground label for cascaded configurations."""
    channels = dataset_json.get("channel_names", dataset_json.get("modality"))
    n = len(channels)
    if configuration.previous_stage_name is not None:
        n += len(plans.label_manager(dataset_json).foreground_labels)
    return n


def find_trainer_class(trainer_name: str, checkpoint: str | os.PathLike) -> type:
    """The trainer class called ``trainer_name`` (as ``nnUNet_train -tr`` finds it); one clear line if absent."""
    try:
        trainer = TRAINERS.get(trainer_name)
        if not (inspect.isclass(trainer) and hasattr(trainer, "build_network_architecture")):
            raise ConfigurationError(f"{trainer_name!r} is not a trainer class")
        return trainer
    except ConfigurationError:
        close = difflib.get_close_matches(trainer_name, TRAINERS.names(), n=3)
        hint = f" Similar trainers: {', '.join(close)}." if close else ""
        raise ConfigurationError(
            f"{checkpoint} was trained with the trainer {trainer_name!r}, which is not available here, so its "
            f"network cannot be rebuilt.{hint} Put the file defining {trainer_name} in a folder listed in "
            f"nnUNet_extTrainer (now {os.environ.get('nnUNet_extTrainer', 'unset')!r}).") from None


def build_inference_network(trainer: type, plans: Plans, configuration: Configuration, input_channels: int,
                            output_channels: int) -> torch.nn.Module:
    """The trainer's ``build_network_architecture`` with deep supervision off (old signatures too)."""
    build = trainer.build_network_architecture
    if "plans_manager" in inspect.signature(build).parameters:
        return build(plans, configuration, input_channels, output_channels, enable_deep_supervision=False)
    # before nnU-Net 2.6 the hook took the architecture block's parts instead of the plans objects
    logger.warning("Trainer %s uses the old build_network_architecture signature (architecture class name, "
                   "kwargs, kwargs requiring import, ...).", trainer.__name__)
    return build(configuration.network_class_name, configuration.arch_kwargs,
                 configuration.arch_kwargs_requiring_import, input_channels, output_channels,
                 enable_deep_supervision=False)


@dataclass
class LoadedModel:
    """Everything :meth:`nnUNetPredictor.manual_initialization` needs, read from a model folder.

    From :func:`load_cached_model`: no network and no parameters, but the folds' checked ``onnx_files``.
    """

    network: torch.nn.Module | None
    plans: Plans
    configuration: Configuration
    parameters: list[dict[str, Any]] | None
    dataset_json: dict[str, Any]
    trainer_name: str
    mirror_axes: tuple[int, ...] | None
    checkpoint_files: list[Path]
    onnx_files: list[Path] | None = None


def _check_folder(folder: Path, folds: list[int | str], checkpoint_name: str) -> None:
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


def _read_checkpoint(path: Path) -> dict[str, Any]:
    from nnunet.networks.checkpoint_files import load_checkpoint_file  # imports torch: only when a checkpoint is read

    try:
        checkpoint = load_checkpoint_file(path)
    except NnunetError as e:
        raise ConfigurationError(f"{e} Is the file complete (copy or download it again)?") from None
    if not isinstance(checkpoint, dict):
        raise ConfigurationError(f"{path} is not an nnU-Net checkpoint (it holds a {type(checkpoint).__name__}).")
    for key in ("network_weights", "trainer_name", "init_args"):
        if key not in checkpoint:
            raise ConfigurationError(f"{path} is not an nnU-Net checkpoint (no {key!r}).")
    return checkpoint


def _read_folder(model_folder: str | os.PathLike, use_folds: Iterable[int | str] | int | str | None,
                 checkpoint_name: str) -> tuple[Plans, dict[str, Any], list[Path]]:
    """Plans, dataset.json and the checkpoint paths of the folds, after checking that all of them exist."""
    folder = Path(model_folder)
    if not folder.is_dir():
        raise ConfigurationError(f"Model folder {folder} does not exist.")
    folds = normalize_folds(use_folds, folder, checkpoint_name)
    _check_folder(folder, folds, checkpoint_name)
    dataset_json = load_dataset_json(folder / "dataset.json")
    plans = Plans.load(folder / "plans.json")
    return plans, dataset_json, [folder / f"fold_{f}" / checkpoint_name for f in folds]


def load_model_folder(model_folder: str | os.PathLike, use_folds: Iterable[int | str] | int | str | None = None,
                      checkpoint_name: str = "checkpoint_final.pth") -> LoadedModel:
    """Read plans, dataset.json and the checkpoints of ``use_folds`` (None: all folds found); build the network
    with the first fold's trainer and configuration and load the first fold's weights into it (strictly).

    Raises:
        ConfigurationError: missing files or folds (the message lists what the folder does contain), an
            unreadable checkpoint, an unknown trainer, weights that do not fit the network.
    """
    plans, dataset_json, files = _read_folder(model_folder, use_folds, checkpoint_name)
    from nnunet.networks.checkpoint_files import strip_module_prefixes
    from nnunet.networks.from_plans import network_class_exists

    parameters, first = [], None
    for path in files:
        checkpoint = _read_checkpoint(path)
        first = first or checkpoint
        parameters.append(strip_module_prefixes(checkpoint["network_weights"]))
        del checkpoint
    trainer = find_trainer_class(first["trainer_name"], files[0])
    configuration = plans.checked_configuration(first["init_args"]["configuration"], "predict",
                                                num_image_channels(dataset_json),
                                                plans_network=trainer.builds_network_from_plans(),
                                                network_class_exists=network_class_exists)
    network = build_inference_network(trainer, plans, configuration,
                                      num_input_channels(plans, configuration, dataset_json),
                                      plans.label_manager(dataset_json).num_segmentation_heads)
    try:
        network.load_state_dict(parameters[0])
    except RuntimeError as e:
        raise ConfigurationError(f"The weights in {files[0]} do not fit the network that {first['trainer_name']} "
                                 f"builds for {configuration.name}: {str(e).splitlines()[0]}") from None
    mirror_axes = first.get("inference_allowed_mirroring_axes")
    return LoadedModel(network, plans, configuration, parameters, dataset_json, first["trainer_name"],
                       tuple(mirror_axes) if mirror_axes is not None else None, files)


def load_cached_model(model_folder: str | os.PathLike, use_folds: Iterable[int | str] | int | str | None = None,
                      checkpoint_name: str = "checkpoint_final.pth") -> LoadedModel | None:
    """The model as a CPU runtime needs it, without loading a checkpoint or importing torch; None unless every
    fold has a current cached conversion (see :func:`nnunet.inference.runners.find_cached_export`).

    Raises what :func:`load_model_folder` raises for a folder that lacks plans, dataset.json or folds.
    """
    plans, dataset_json, files = _read_folder(model_folder, use_folds, checkpoint_name)

    def input_shape(configuration: str) -> tuple[int, ...]:
        # the export holds the network, so only what the sliding window and the export read is checked
        config = plans.checked_configuration(configuration, "predict", num_image_channels(dataset_json),
                                             plans_network=False)
        return (num_input_channels(plans, config, dataset_json), *config.patch_size)

    found = [find_cached_export(path, input_shape) for path in files]
    if any(f is None for f in found):
        return None
    first = found[0][1]
    if any(info["configuration"] != first["configuration"] for _, info in found):
        return None  # folds of different configurations: let the checkpoints speak (load_model_folder)
    mirror_axes = first.get("inference_allowed_mirroring_axes")
    return LoadedModel(None, plans, plans.configuration(first["configuration"]), None, dataset_json,
                       first["trainer_name"], tuple(mirror_axes) if mirror_axes is not None else None, files,
                       [f for f, _ in found])
