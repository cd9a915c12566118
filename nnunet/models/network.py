"""The network a model folder's trainer builds for inference, and a loaded model.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from nnunet.errors import ConfigurationError
from nnunet.io.dataset_json import channel_names
from nnunet.models.checkpoint import mirror_axes_of, read_checkpoint
from nnunet.models.folder import ModelFolder
from nnunet.planning.plans import Configuration, Plans
from nnunet.planning.plans_rules import num_image_channels
from nnunet.registry import TRAINERS

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def num_input_channels(plans: Plans, configuration: Configuration, dataset_json: dict[str, Any]) -> int:
    """Image channels, plus one per foreground label for cascaded configurations."""
    channels = channel_names(dataset_json)
    if channels is None:
        raise ConfigurationError("dataset.json has no 'channel_names'.")
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
        failures = f" {TRAINERS.import_failures()}" if TRAINERS.import_failures() else ""
        raise ConfigurationError(
            f"{checkpoint} was trained with the trainer {trainer_name!r}, which is not available here, so its "
            f"network cannot be rebuilt.{failures}{hint} Put the file defining {trainer_name} in a folder listed in "
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

    From :func:`nnunet.inference.cached_model.load_cached_model`: no network and no parameters, but the folds'
    checked ``onnx_files``.
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


def load_model_folder(model_folder: str | os.PathLike, use_folds: Iterable[int | str] | int | str | None = None,
                      checkpoint_name: str = "checkpoint_final.pth") -> LoadedModel:
    """Read plans, dataset.json and the checkpoints of ``use_folds`` (None: all folds found); build the network
    with the first fold's trainer and configuration and load the first fold's weights into it (strictly).

    Raises:
        ConfigurationError: missing files or folds (the message lists what the folder does contain), an
            unreadable checkpoint, an unknown trainer, weights that do not fit the network.
    """
    folder = ModelFolder.read(model_folder, use_folds, checkpoint_name)
    plans, dataset_json, files = folder.plans, folder.dataset_json, folder.checkpoint_files
    # both import torch: only once a checkpoint is to be read
    from nnunet.networks.checkpoint_files import strip_module_prefixes
    from nnunet.networks.from_plans import network_class_exists

    parameters, first = [], None
    for path in files:
        checkpoint = read_checkpoint(path)
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
    return LoadedModel(network, plans, configuration, parameters, dataset_json, first["trainer_name"],
                       mirror_axes_of(first), files)
