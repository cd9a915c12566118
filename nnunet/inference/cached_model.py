"""A model folder as a CPU runtime needs it when every fold's conversion is cached: no checkpoint, no torch."""
from __future__ import annotations

import os
from typing import Iterable

from nnunet.inference.runners import find_cached_export
from nnunet.models.folder import ModelFolder
from nnunet.models.network import LoadedModel, num_input_channels
from nnunet.planning.plans_rules import num_image_channels


def load_cached_model(model_folder: str | os.PathLike, use_folds: Iterable[int | str] | int | str | None = None,
                      checkpoint_name: str = "checkpoint_final.pth") -> LoadedModel | None:
    """The model as a CPU runtime needs it, without loading a checkpoint or importing torch; None unless every
    fold has a current cached conversion (see :func:`nnunet.inference.runners.find_cached_export`).

    Raises what :func:`nnunet.models.load_model_folder` raises for a folder that lacks plans, dataset.json or
    folds.
    """
    folder = ModelFolder.read(model_folder, use_folds, checkpoint_name)
    plans, dataset_json, files = folder.plans, folder.dataset_json, folder.checkpoint_files

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
