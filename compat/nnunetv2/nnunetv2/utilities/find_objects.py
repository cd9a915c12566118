"""nnU-Net 2.8.1's ``recursive_find_trainer_class_by_name``: a trainer class by name, as ``nnUNet_train -tr``
finds it (our trainers and variants, ``nnUNet_extTrainer`` folders, dotted paths)."""
from __future__ import annotations

from nnunet.training.run import trainer_class

__all__ = ["recursive_find_trainer_class_by_name"]


def recursive_find_trainer_class_by_name(trainer_name: str):
    """The trainer class; an unknown name raises our one-line ConfigurationError with close matches."""
    return trainer_class(trainer_name)
