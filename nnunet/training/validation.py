"""Full-case validation after training (spec 8.11).

The trainer's in-memory network predicts every validation case of its fold with the sliding-window predictor
(step 0.5, Gaussian weighting, mirroring over the trainer's axes). Predictions are exported in the original
geometry to ``fold_x/validation`` (``--npz``: probabilities too) and scored against
``nnUNet_preprocessed/DatasetXXX/gt_segmentations`` into ``validation/summary.json``. For configurations with a
next stage (3d_lowres -> 3d_cascade_fullres) the logits are also resampled to that stage's preprocessed shape and
saved as label maps in ``predicted_next_stage/{next}/{ID}.b2nd``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nnunet.constants import default_num_processes
from nnunet.errors import NnunetError
from nnunet.training import ddp
from nnunet.training.data.dataset import PreprocessedDataset, save_previous_stage_seg
from nnunet.utils.pool import BoundedPool

if TYPE_CHECKING:
    from nnunet.training.trainer import nnUNetTrainer


def one_hot_previous_stage(seg_prev: np.ndarray, foreground_labels: list[int]) -> np.ndarray:
    """(X, Y, Z) label map -> (len(foreground_labels), X, Y, Z) float32 one-hot channels."""
    seg_prev = np.asarray(seg_prev)
    return np.stack([(seg_prev == lab) for lab in foreground_labels]).astype(np.float32)


def resample_logits_for_next_stage(logits: np.ndarray, target_shape: list[int], configuration,
                                   label_manager) -> np.ndarray:
    """Logits of this stage -> label map in the next stage's preprocessed shape (spacing of this stage)."""
    from nnunet.inference.export import logits_to_label_map

    spacing = configuration.spacing
    resample = configuration.resampling_fn("probabilities")
    resampled = resample(logits, target_shape, spacing, spacing)
    seg = logits_to_label_map(np.asarray(resampled), label_manager)
    return seg.astype(np.uint8 if len(label_manager.foreground_labels) < 255 else np.uint16)


def run_final_validation(trainer: "nnUNetTrainer", save_probabilities: bool = False) -> dict[str, Any] | None:
    """Predict, export and evaluate the validation cases of the trainer's fold. Returns the summary (rank 0)."""
    from nnunet.evaluation.evaluate import compute_metrics_on_folder, evaluated_labels
    from nnunet.inference.export import export_prediction_from_logits
    from nnunet.inference.predictor import nnUNetPredictor
    from nnunet.io.readers import reader_class
    from nnunet.networks.from_plans import unwrap

    trainer.set_deep_supervision_enabled(False)
    trainer.network.eval()
    plans, configuration, lm = trainer.plans_manager, trainer.configuration_manager, trainer.label_manager
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=True, device=trainer.device, verbose=False,
                                allow_tqdm=False)
    predictor.manual_initialization(unwrap(trainer.network), plans, configuration, None, trainer.dataset_json,
                                    type(trainer).__name__, trainer.inference_allowed_mirroring_axes)
    output_folder = trainer.output_folder / "validation"
    output_folder.mkdir(parents=True, exist_ok=True)
    _, val_keys = trainer.do_split()
    rank, world = ddp.rank_and_world()
    val_keys = val_keys[rank::world]
    dataset = PreprocessedDataset(trainer.preprocessed_dataset_folder, val_keys,
                                  trainer.folder_with_segs_from_previous_stage)
    num_export_processes = default_num_processes()
    with BoundedPool(num_export_processes if num_export_processes > 1 else 0, "validation export",
                     "set nnUNet_def_n_proc to a smaller number") as exports:
        for i, key in enumerate(val_keys):
            data, _, seg_prev, properties = dataset.load_case(key)
            data = np.asarray(data[:])
            if trainer.is_cascaded:
                data = np.concatenate((data, one_hot_previous_stage(seg_prev[:], lm.foreground_labels)))
            trainer.print_to_log_file(f"predicting {key}")
            logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).float().numpy()
            exports.submit(export_prediction_from_logits, logits, properties, configuration, plans,
                           trainer.dataset_json, str(output_folder / key), save_probabilities)
            _save_next_stage_predictions(trainer, key, logits)
            if world > 1 and (i + 1) % 20 == 0:
                ddp.barrier()
    ddp.barrier()
    summary = None
    if trainer.local_rank == 0:
        gt_folder = trainer.preprocessed_dataset_folder_base / "gt_segmentations"
        if not gt_folder.is_dir():
            raise NnunetError(f"{gt_folder} does not exist; it is written by preprocessing and needed to evaluate "
                              f"the validation predictions.")
        summary = compute_metrics_on_folder(gt_folder, output_folder, output_folder / "summary.json",
                                            reader_class(plans.image_reader_writer)(),
                                            trainer.dataset_json["file_ending"], evaluated_labels(lm),
                                            lm.ignore_label, num_processes=default_num_processes(), chill=True)
        for label, metrics in summary["mean"].items():
            trainer.logger.log_summary(f"final_val/class_{label}_dice", metrics["Dice"])
        trainer.logger.log_summary("final_val/foreground_dice", summary["foreground_mean"]["Dice"])
        trainer.print_to_log_file("Validation complete", also_print_to_console=True)
        trainer.print_to_log_file("Mean Validation Dice: ", summary["foreground_mean"]["Dice"],
                                  also_print_to_console=True)
    trainer.set_deep_supervision_enabled(True)
    return summary


def _save_next_stage_predictions(trainer: "nnUNetTrainer", key: str, logits: np.ndarray) -> None:
    for next_stage in trainer.configuration_manager.next_stage_names:
        next_config = trainer.plans_manager.configuration(next_stage)
        folder = trainer.preprocessed_dataset_folder_base / next_config.data_identifier
        try:
            next_data, _, _, _ = PreprocessedDataset(folder, [key]).load_case(key)
        except NnunetError:
            trainer.print_to_log_file(f"Predicting the next stage {next_stage} failed for case {key}: its "
                                      f"preprocessed data is not in {folder}. Run the preprocessing for "
                                      f"{next_stage} first. Skipping.")
            continue
        seg = resample_logits_for_next_stage(logits, list(next_data.shape[1:]), trainer.configuration_manager,
                                             trainer.label_manager)
        target = trainer.output_folder_base / "predicted_next_stage" / next_stage / f"{key}.b2nd"
        save_previous_stage_seg(seg, target)


def validation_done(output_folder: str | os.PathLike) -> bool:
    return (Path(output_folder) / "validation" / "summary.json").is_file()
