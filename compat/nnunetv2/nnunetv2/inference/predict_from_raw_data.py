"""nnU-Net 2.8.1's ``nnunetv2.inference.predict_from_raw_data``.

``nnUNetPredictor`` is :class:`nnunet.inference.predictor.nnUNetPredictor` itself (the same class): its
constructor and ``predict_*`` methods take 2.8.1's arguments (plus ``use_cropped_logits_resampling``, accepted
and without effect, see :mod:`nnunet.inference.predictor`), and ``plans_manager`` / ``configuration_manager``
may be assigned.

Trainers named in a checkpoint are found as ``nnUNet_predict -tr`` finds them; a name that is not found there
is passed to the lookup functions of this module, looked up when needed so that programs that replace them here
are honoured: ``recursive_find_trainer_class_by_name`` (2.8.1's, when a program has replaced it) and
``recursive_find_python_class`` (what versions before 2.6 called, and what TotalSegmentator and MONAI patch),
with 2.8.1's arguments: the folder ``nnunetv2/training/nnUNetTrainer`` and the module
``nnunetv2.training.nnUNetTrainer``.
"""
from __future__ import annotations

import os
import sys

import nnunetv2
from nnunet.cli.predict import predict_from_modelfolder_main as _predict_from_modelfolder_main
from nnunet.cli.predict import predict_main as _predict_main
from nnunet.inference.predictor import nnUNetPredictor
from nnunet.registry import TRAINERS as _TRAINERS
from nnunetv2._entry import run_command as _run_command
from nnunetv2.configuration import default_num_processes
from nnunetv2.inference.export_prediction import (convert_predicted_logits_to_segmentation_with_correct_shape,
                                                  export_prediction_from_logits)
from nnunetv2.inference.sliding_window_prediction import compute_gaussian, compute_steps_for_sliding_window
from nnunetv2.utilities.file_path_utilities import get_output_folder
from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

__all__ = ["compute_gaussian", "compute_steps_for_sliding_window",
           "convert_predicted_logits_to_segmentation_with_correct_shape", "default_num_processes",
           "export_prediction_from_logits", "get_output_folder", "nnUNetPredictor", "predict_entry_point",
           "predict_entry_point_modelfolder", "recursive_find_python_class",
           "recursive_find_trainer_class_by_name"]

_TRAINER_MODULE = "nnunetv2.training.nnUNetTrainer"


_ORIGINAL_BY_NAME = recursive_find_trainer_class_by_name


def _trainer_by_patched_lookup(trainer_name: str):
    """The trainer as this module's (possibly replaced) lookup functions find it, or None."""
    module = sys.modules[__name__]
    by_name = getattr(module, "recursive_find_trainer_class_by_name")
    if by_name is not _ORIGINAL_BY_NAME:  # replaced by a program; the original is our registry, already asked
        try:
            found = by_name(trainer_name)
        except Exception:  # 2.8.1's raises when it finds nothing
            found = None
        if found is not None:
            return found
    lookup = getattr(module, "recursive_find_python_class")
    return lookup(os.path.join(nnunetv2.__path__[0], "training", "nnUNetTrainer"), trainer_name, _TRAINER_MODULE)


_TRAINERS.add_fallback(_trainer_by_patched_lookup)


def predict_entry_point():
    """``nnUNetv2_predict`` (arguments from ``sys.argv``); the output folder may not be the input folder."""
    _run_command(_predict_main)


def predict_entry_point_modelfolder():
    """``nnUNetv2_predict_from_modelfolder`` (arguments from ``sys.argv``)."""
    _run_command(_predict_from_modelfolder_main)
