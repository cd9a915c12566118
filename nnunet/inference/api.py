"""Prediction as plain functions (what the nnUNet_predict commands call)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

from nnunet import paths
from nnunet.errors import ConfigurationError
from nnunet.inference.backends import runs_on_torch
from nnunet.inference.inputs import check_output_folder
from nnunet.io.naming import resolve_dataset_name
from nnunet.models.folder import model_folder_name

logger = logging.getLogger(__name__)

CITATION = ("If you use nnU-Net in your work, please cite: Isensee, F., Jaeger, P. F., Kohl, S. A. A., Petersen, J. "
            "and Maier-Hein, K. H. (2021). nnU-Net: a self-configuring method for deep learning-based biomedical "
            "image segmentation. Nature Methods, 18(2), 203-211.")


def model_folder(dataset_name_or_id: str | int, trainer: str = "nnUNetTrainer", plans: str = "nnUNetPlans",
                 configuration: str = "3d_fullres") -> Path:
    """``nnUNet_results/{dataset}/{trainer}__{plans}__{configuration}``; raises if it does not exist."""
    dataset = resolve_dataset_name(dataset_name_or_id)
    folder = paths.results_root() / dataset / model_folder_name(trainer, plans, configuration)
    if not folder.is_dir():
        parent = folder.parent
        others = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        raise ConfigurationError(
            f"No trained model {folder.name} for {dataset} in nnUNet_results ({folder} does not exist). "
            f"Check -tr, -p and -c. Trained models found for this dataset: {', '.join(others) or 'none'}.")
    return folder


def choose_device(device: str | None, backend: str = "torch") -> str:
    """``device`` as given; None or ``"auto"``: CUDA when this machine has it, else the CPU (said in one line).

    The CPU runtimes (``backend`` openvino or onnxruntime) choose the CPU without asking torch."""
    if device not in (None, "auto"):
        return device
    if not runs_on_torch(backend):
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    logger.warning("CUDA is not available on this machine: predicting on the CPU (choose with -device).")
    return "cpu"


def predict_from_model_folder(input_folder: str | os.PathLike, output_folder: str | os.PathLike,
                              model_training_output_dir: str | os.PathLike,
                              folds: Sequence[int | str] | None = (0, 1, 2, 3, 4),
                              checkpoint_name: str = "checkpoint_final.pth", step_size: float = 0.5,
                              use_mirroring: bool = True, save_probabilities: bool = False,
                              continue_prediction: bool = False, num_processes_preprocessing: int = 3,
                              num_processes_segmentation_export: int = 3,
                              prev_stage_predictions: str | os.PathLike | None = None, num_parts: int = 1,
                              part_id: int = 0, device: str | None = "auto", perform_everything_on_device: bool = True,
                              verbose: bool = False, show_progress: bool = True, backend: str = "torch",
                              max_ram_gb: float | None = None) -> list[Any]:
    """Predict every case of ``input_folder`` with a trained model folder and write the results.

    ``device`` None or ``"auto"``: CUDA if available, else the CPU. ``backend``: ``torch``, ``openvino`` or
    ``onnxruntime`` (CPU). ``max_ram_gb``: memory a case may use before it is predicted in slabs (None: 70 %
    of the available memory).
    """
    from nnunet.inference.predictor import nnUNetPredictor

    check_output_folder(input_folder, output_folder)
    device = choose_device(device, backend)
    if device == "cuda":  # the GPU does the work; more CPU threads only compete with the workers
        import torch

        torch.set_num_threads(1)
    predictor = nnUNetPredictor(tile_step_size=step_size, use_gaussian=True, use_mirroring=use_mirroring,
                                perform_everything_on_device=perform_everything_on_device, device=device,
                                verbose=verbose, verbose_preprocessing=verbose, allow_tqdm=show_progress,
                                backend=backend, max_ram_gb=max_ram_gb)
    predictor.initialize_from_trained_model_folder(model_training_output_dir, folds, checkpoint_name)
    return predictor.predict_from_files(input_folder, output_folder, save_probabilities=save_probabilities,
                                        overwrite=not continue_prediction,
                                        num_processes_preprocessing=num_processes_preprocessing,
                                        num_processes_segmentation_export=num_processes_segmentation_export,
                                        folder_with_segs_from_prev_stage=prev_stage_predictions,
                                        num_parts=num_parts, part_id=part_id)
