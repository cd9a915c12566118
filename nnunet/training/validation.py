"""Full-case validation after training, from explicit inputs (:class:`ValidationJob`).

The network predicts every validation case of the fold with the sliding-window predictor (step 0.5, Gaussian
weighting, mirroring over the trainer's axes). Predictions are exported in the original geometry to
``fold_x/validation`` (``--npz``: probabilities too) and scored against
``nnUNet_preprocessed/DatasetXXX/gt_segmentations`` into ``validation/summary.json``. For configurations with a
next stage (3d_lowres -> 3d_cascade_fullres) the logits are also resampled to that stage's preprocessed shape and
saved as label maps in ``predicted_next_stage/{next}/{ID}.b2nd``.

What we add to nnU-Net's validation:

* a progress bar with the case count and an ETA;
* resume: ``validation/.validation_state.json`` records a fingerprint of the weights that produced the exports.
  A later validation with the same weights (``--c`` after an interruption, or ``--val``) keeps the cases whose
  files are already there (exports are written atomically, so a present file is complete) and predicts the rest;
  other weights predict every case again;
* DDP cannot hang on an uneven split: every rank passes the same number of periodic barriers, counted from the
  smallest share of cases (nnU-Net's rule), so the last barrier of the larger shares is never waited for alone.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from nnunet.constants import default_num_processes
from nnunet.errors import NnunetError
from nnunet.evaluation.evaluate import compute_metrics_on_folder, evaluated_labels
# training calls the inference engine for its validation (never the other way round: documentation/layers.md)
from nnunet.inference.export import export_prediction_from_logits, logits_to_label_map
from nnunet.inference.predictor import nnUNetPredictor
from nnunet.io.readers import reader_class
from nnunet.networks.from_plans import unwrap
from nnunet.planning.plans import Configuration, Plans
from nnunet.training import ddp
from nnunet.training.data.dataset import PreprocessedDataset, save_previous_stage_seg
from nnunet.utils.files import atomic_write_bytes
from nnunet.utils.pool import BoundedPool

STATE_FILE = ".validation_state.json"

logger = logging.getLogger(__name__)


def log_to_logger(*parts: Any, also_print_to_console: bool = True, **_: Any) -> None:
    """The default ``ValidationJob.log`` when no trainer log is given: the package logger, at info level for
    what a trainer would show on the console and at debug level for what it would only write to its file."""
    logger.log(logging.INFO if also_print_to_console else logging.DEBUG, " ".join(str(p) for p in parts))


@dataclass
class ValidationJob:
    """Everything the final validation reads; the trainer fills it in (``perform_actual_validation``).

    Attributes:
        network: the trained network, in eval mode with deep supervision off.
        case_keys: all validation cases of the fold, in the same order on every DDP rank.
        preprocessed_root: ``nnUNet_preprocessed/DatasetXXX`` (cases, ``gt_segmentations``, next-stage data).
        fold_folder: ``nnUNet_results/DatasetXXX/{trainer}__{plans}__{configuration}/fold_x``.
        previous_stage_folder: cascades only, the previous stage's predictions for this configuration.
        barrier_every: DDP ranks meet every this many cases (keeps NCCL from timing out on long validations).
        log: ``log(*parts, also_print_to_console=...)``, the trainer's log file.
    """

    network: torch.nn.Module
    plans: Plans
    configuration: Configuration
    dataset_json: dict[str, Any]
    trainer_name: str
    mirror_axes: Sequence[int] | None
    device: torch.device
    case_keys: list[str]
    preprocessed_root: Path
    fold_folder: Path
    previous_stage_folder: Path | None = None
    save_probabilities: bool = False
    barrier_every: int = 20
    log: Callable[..., None] = log_to_logger

    @property
    def output_folder(self) -> Path:
        return self.fold_folder / "validation"

    def next_stage_file(self, next_stage: str, key: str) -> Path:
        return self.fold_folder.parent / "predicted_next_stage" / next_stage / f"{key}.b2nd"


def one_hot_previous_stage(seg_prev: np.ndarray, foreground_labels: list[int]) -> np.ndarray:
    """(X, Y, Z) label map -> (len(foreground_labels), X, Y, Z) float32 one-hot channels."""
    seg_prev = np.asarray(seg_prev)
    return np.stack([(seg_prev == lab) for lab in foreground_labels]).astype(np.float32)


def resample_logits_for_next_stage(logits: np.ndarray, target_shape: list[int], configuration,
                                   label_manager) -> np.ndarray:
    """Logits of this stage -> label map in the next stage's preprocessed shape (spacing of this stage)."""
    spacing = configuration.spacing
    resample = configuration.resampling_fn("probabilities")
    resampled = resample(logits, target_shape, spacing, spacing)
    seg = logits_to_label_map(np.asarray(resampled), label_manager)
    return seg.astype(np.uint8 if len(label_manager.foreground_labels) < 255 else np.uint16)


def barrier_positions(num_cases: int, world_size: int, every: int) -> set[int]:
    """Case positions (within a rank's share) after which all ranks meet. Counted up to the smallest share
    (``num_cases // world_size``) so that every rank reaches each of them."""
    smallest_share = num_cases // world_size
    return {i for i in range(smallest_share) if (i + 1) % every == 0}


def weights_fingerprint(network: torch.nn.Module, mirror_axes: Sequence[int] | None) -> str:
    """Hash of the parameters and buffers (and the test-time mirroring), naming the weights that made an export.
    Taken of the plain module, so that a compiled and an eager network with the same weights hash alike."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(None if mirror_axes is None else tuple(int(a) for a in mirror_axes)).encode())
    for key, tensor in unwrap(network).state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _case_done(job: ValidationJob, key: str) -> bool:
    base = job.output_folder / key
    if not Path(f"{base}{job.dataset_json['file_ending']}").is_file():
        return False
    if job.save_probabilities and not Path(f"{base}.npz").is_file():
        return False
    return all(job.next_stage_file(n, key).is_file() for n in job.configuration.next_stage_names)


def cases_to_skip(job: ValidationJob, fingerprint: str, keys: Sequence[str]) -> set[str]:
    """The cases of ``keys`` already exported with the same weights (none if the weights differ)."""
    state_file = job.output_folder / STATE_FILE
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(state, dict) or state.get("weights") != fingerprint:
        return set()
    return {k for k in keys if _case_done(job, k)}


def run_final_validation(job: ValidationJob) -> dict[str, Any] | None:
    """Predict, export and evaluate the validation cases. Returns the summary on rank 0 (None elsewhere)."""
    rank, world = ddp.rank_and_world()
    job.output_folder.mkdir(parents=True, exist_ok=True)
    keys = job.case_keys[rank::world]
    fingerprint = weights_fingerprint(job.network, job.mirror_axes)
    done = cases_to_skip(job, fingerprint, keys)
    ddp.barrier()  # every rank has read the old state before rank 0 replaces it
    if rank == 0:
        atomic_write_bytes(job.output_folder / STATE_FILE, json.dumps({"weights": fingerprint}).encode())
    if done:
        job.log(f"Validation: {len(done)} of {len(keys)} cases were already exported with these weights; "
                f"predicting the other {len(keys) - len(done)}.")
    _predict_cases(job, keys, done, barrier_positions(len(job.case_keys), world, job.barrier_every))
    ddp.barrier()
    return _evaluate(job) if rank == 0 else None


def _predictor(job: ValidationJob):
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=True, device=job.device, verbose=False,
                                allow_tqdm=False)
    predictor.manual_initialization(job.network, job.plans, job.configuration, None, job.dataset_json,
                                    job.trainer_name, job.mirror_axes)
    return predictor


def _predict_cases(job: ValidationJob, keys: list[str], done: set[str], barriers: set[int]) -> None:
    predictor = _predictor(job)
    dataset = PreprocessedDataset(job.preprocessed_root / job.configuration.data_identifier, keys,
                                  job.previous_stage_folder)
    label_manager = job.plans.label_manager(job.dataset_json)
    processes = default_num_processes()
    bar = tqdm(total=len(keys), initial=len(done), desc="Validation", unit="case",
               disable=ddp.rank_and_world()[0] != 0)
    with bar, BoundedPool(processes if processes > 1 else 0, "validation export",
                          "set nnUNet_def_n_proc to a smaller number") as exports:
        for i, key in enumerate(keys):
            if key not in done:
                job.log(f"predicting {key}", also_print_to_console=False)
                data, _, seg_prev, properties = dataset.load_case(key)
                data = np.asarray(data[:])
                if seg_prev is not None:
                    data = np.concatenate((data, one_hot_previous_stage(seg_prev[:], label_manager.foreground_labels)))
                logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).float().numpy()
                exports.submit(export_prediction_from_logits, logits, properties, job.configuration, job.plans,
                               job.dataset_json, str(job.output_folder / key), job.save_probabilities)
                _save_next_stage_predictions(job, key, logits, label_manager)
                bar.update()
            if i in barriers:
                ddp.barrier()


def _save_next_stage_predictions(job: ValidationJob, key: str, logits: np.ndarray, label_manager) -> None:
    for next_stage in job.configuration.next_stage_names:
        next_config = job.plans.configuration(next_stage)
        folder = job.preprocessed_root / next_config.data_identifier
        try:
            next_data, _, _, _ = PreprocessedDataset(folder, [key]).load_case(key)
        except NnunetError:
            job.log(f"Predicting the next stage {next_stage} failed for case {key}: its preprocessed data is not "
                    f"in {folder}. Run the preprocessing for {next_stage} first. Skipping.")
            continue
        seg = resample_logits_for_next_stage(logits, list(next_data.shape[1:]), job.configuration, label_manager)
        save_previous_stage_seg(seg, job.next_stage_file(next_stage, key))


def _evaluate(job: ValidationJob) -> dict[str, Any]:
    gt_folder = job.preprocessed_root / "gt_segmentations"
    if not gt_folder.is_dir():
        raise NnunetError(f"{gt_folder} does not exist; it is written by preprocessing and needed to evaluate the "
                          f"validation predictions.")
    label_manager = job.plans.label_manager(job.dataset_json)
    summary = compute_metrics_on_folder(gt_folder, job.output_folder, job.output_folder / "summary.json",
                                        reader_class(job.plans.image_reader_writer)(),
                                        job.dataset_json["file_ending"], evaluated_labels(label_manager),
                                        label_manager.ignore_label, num_processes=default_num_processes(), chill=True)
    job.log("Validation complete", also_print_to_console=True)
    job.log("Mean Validation Dice: ", summary["foreground_mean"]["Dice"], also_print_to_console=True)
    return summary
