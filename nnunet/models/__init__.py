"""The model layer: a trained model folder, its checkpoints' metadata and the network for inference.

Torch-free at import (see documentation/layers.md): a CLI parser, a CPU runtime with a cached conversion and
the model-folder checks load this package without torch; torch comes in only when a checkpoint is read or a
network is built. Training and inference both use it; it imports neither of them (the trainer class is found
by name through :data:`nnunet.registry.TRAINERS`).

- :mod:`~nnunet.models.folds`: the folds of a model folder (``fold_X``, ``-f``).
- :mod:`~nnunet.models.folder`: the folder's name ``trainer__plans__configuration`` and its files.
- :mod:`~nnunet.models.checkpoint`: reading a checkpoint and what it says about its training.
- :mod:`~nnunet.models.network`: the trainer class and the network it builds, a loaded model.
"""
from nnunet.models.checkpoint import read_checkpoint
from nnunet.models.folder import ModelFolder, check_folder, model_folder_name, parse_model_folder_name
from nnunet.models.folds import available_folds, describe_checkpoints, normalize_folds, parse_folds
from nnunet.models.network import (LoadedModel, build_inference_network, find_trainer_class, load_model_folder,
                                   num_input_channels)

__all__ = ["LoadedModel", "ModelFolder", "available_folds", "build_inference_network", "check_folder",
           "describe_checkpoints", "find_trainer_class", "load_model_folder", "model_folder_name", "normalize_folds",
           "num_input_channels", "parse_folds", "parse_model_folder_name", "read_checkpoint"]
