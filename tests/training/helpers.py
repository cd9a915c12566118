"""Tiny preprocessed datasets and plans for training tests (no reference installation needed).

Cases are written in the preprocessed format (``.b2nd`` + ``.pkl``) from synthetic arrays: a noisy image with
a bright ellipsoid (label 1) and its brighter core (label 2, optional). Plans are hand-written dicts with tiny
networks so that CPU training takes seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk

from nnunet.io.labels import LabelManager
from nnunet.preprocessing.class_locations import class_location_keys, sample_class_locations
from nnunet.preprocessing.storage import save_case
from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer


def architecture(dim: int, features: Sequence[int], strides: Sequence[Sequence[int]] | None = None,
                 kernels: Sequence[Sequence[int]] | None = None, residual: bool = False) -> dict[str, Any]:
    n = len(features)
    strides = strides or [[1] * dim] + [[2] * dim] * (n - 1)
    kernels = kernels or [[3] * dim] * n
    kwargs = {"n_stages": n, "features_per_stage": list(features), "conv_op": f"torch.nn.modules.conv.Conv{dim}d",
              "kernel_sizes": [list(k) for k in kernels], "strides": [list(s) for s in strides],
              "n_conv_per_stage_decoder": [1] * (n - 1), "conv_bias": True,
              "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dim}d",
              "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
              "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}
    if residual:
        kwargs["n_blocks_per_stage"] = [1] * n
        cls = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    else:
        kwargs["n_conv_per_stage"] = [1] * n
        cls = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
    return {"network_class_name": cls, "arch_kwargs": kwargs,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}


def configuration(name: str, patch_size: Sequence[int], batch_size: int, features: Sequence[int],
                  batch_dice: bool = False, **arch_kwargs) -> dict[str, Any]:
    dim = len(patch_size)
    return {
        "data_identifier": f"nnUNetPlans_{name}", "preprocessor_name": "DefaultPreprocessor",
        "batch_size": batch_size, "patch_size": list(patch_size), "median_image_size_in_voxels": list(patch_size),
        "spacing": [1.0] * dim, "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "architecture": architecture(dim, features, **arch_kwargs), "batch_dice": batch_dice,
    }


def plans(dataset_name: str, configurations: dict[str, dict], shape: Sequence[int]) -> dict[str, Any]:
    return {
        "dataset_name": dataset_name, "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": list(shape), "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2], "configurations": configurations,
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {
            "0": {"max": 3.0, "mean": 1.0, "median": 1.0, "min": -1.0, "percentile_00_5": -1.0,
                  "percentile_99_5": 3.0, "std": 0.5}},
    }


def dataset_json(labels: dict[str, Any] | None = None, regions_class_order: list[int] | None = None) -> dict:
    ds = {"channel_names": {"0": "MRI"}, "labels": labels or {"background": 0, "blob": 1, "core": 2},
          "numTraining": 0, "file_ending": ".nii.gz"}
    if regions_class_order is not None:
        ds["regions_class_order"] = regions_class_order
    return ds


def synthetic_case(rng: np.random.Generator, shape: Sequence[int], with_core: bool = True) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """(1, *shape) float32 image and (1, *shape) int16 seg: an ellipsoid (1) with a core (2)."""
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"))
    center = np.array([rng.uniform(0.35 * s, 0.65 * s) for s in shape]).reshape(-1, *[1] * len(shape))
    radii = np.array([max(1.5, rng.uniform(0.2 * s, 0.3 * s)) for s in shape]).reshape(-1, *[1] * len(shape))
    dist = np.sqrt((((grid - center) / radii) ** 2).sum(0))
    seg = np.zeros(shape, dtype=np.int16)
    seg[dist < 1] = 1
    if with_core:
        seg[dist < 0.5] = 2
    image = (seg.astype(np.float32) * 1.5 + rng.normal(0, 0.3, shape)).astype(np.float32)
    return image[None], seg[None]


def write_preprocessed(root: Path, dataset_name: str, plans_dict: dict, ds_json: dict, config_name: str,
                       shapes: Sequence[Sequence[int]], seed: int = 0, with_core: bool = True,
                       seg_transform=None, original_shape: Sequence[int] | None = None,
                       write_gt: bool = True) -> Path:
    """Write plans, dataset.json and one case per shape into ``root/dataset_name/{data_identifier}``."""
    base = root / dataset_name
    folder = base / plans_dict["configurations"][config_name]["data_identifier"]
    folder.mkdir(parents=True, exist_ok=True)
    (base / "nnUNetPlans.json").write_text(json.dumps(plans_dict, indent=1))
    (base / "dataset.json").write_text(json.dumps(ds_json, indent=1))
    lm = LabelManager(ds_json["labels"], ds_json.get("regions_class_order"))
    rng = np.random.default_rng(seed)
    patch = plans_dict["configurations"][config_name]["patch_size"]
    for i, shape in enumerate(shapes):
        image, seg = synthetic_case(rng, shape, with_core)
        if seg_transform is not None:
            seg = seg_transform(seg, rng)
        orig = list(original_shape or shape)
        props = {"spacing": [1.0] * 3, "shape_before_cropping": orig, "bbox_used_for_cropping":
                 [[0, s] for s in orig], "shape_after_cropping_and_before_resampling": orig,
                 "class_locations": sample_class_locations(seg, class_location_keys(lm)),
                 "sitk_stuff": {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
                                "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}}
        save_case(folder, f"case_{i:03d}", image, seg, props, patch)
        if not write_gt:
            continue
        gt = base / "gt_segmentations"
        gt.mkdir(exist_ok=True)
        sitk.WriteImage(sitk.GetImageFromArray(np.maximum(seg[0], 0).astype(np.uint8)),
                        str(gt / f"case_{i:03d}.nii.gz"))
    return base


def make_3d_dataset(root: Path, name: str = "Dataset901_Tiny", n_cases: int = 5, shape=(20, 20, 20),
                    patch=(16, 16, 16), batch_size: int = 2, features=(4, 8, 16), **kwargs) -> Path:
    p = plans(name, {"3d_fullres": configuration("3d_fullres", patch, batch_size, features)}, shape)
    return write_preprocessed(root, name, p, dataset_json(), "3d_fullres", [shape] * n_cases, **kwargs)


def make_2d_dataset(root: Path, name: str = "Dataset902_Tiny2d", n_cases: int = 5, shape=(3, 24, 24),
                    patch=(16, 16), batch_size: int = 4, features=(4, 8, 16), **kwargs) -> Path:
    p = plans(name, {"2d": configuration("2d", patch, batch_size, features)}, shape)
    return write_preprocessed(root, name, p, dataset_json(), "2d", [shape] * n_cases, **kwargs)


class TinyTestTrainer(nnUNetTrainer):
    """Short schedule for CPU tests."""

    num_epochs = 2
    num_iterations_per_epoch = 4
    num_val_iterations_per_epoch = 2
    plot_progress = False


class SlowTinyTestTrainer(TinyTestTrainer):
    """Four epochs with a pause in each, so a test can kill the process mid-run."""

    num_epochs = 4
    num_iterations_per_epoch = 2
    num_val_iterations_per_epoch = 1

    def on_epoch_end(self) -> None:
        import time

        super().on_epoch_end()
        time.sleep(0.5)  # the injected slowness itself, not a wait


class OddValidationTrainer(TinyTestTrainer):
    """One short epoch; DDP ranks meet after every validation case, so an uneven split of the validation cases
    over the ranks would leave one rank waiting at a barrier the other never reaches."""

    num_epochs = 1
    num_iterations_per_epoch = 2
    num_val_iterations_per_epoch = 1
    validation_barrier_every = 1


class SlowValidationTrainer(TinyTestTrainer):
    """Pauses before predicting each validation case, so a test can kill the process mid-validation."""

    num_epochs = 1

    def perform_actual_validation(self, save_probabilities: bool = False):
        import time

        log = self.print_to_log_file

        def slow_log(*args, **kwargs):
            if args and str(args[0]).startswith("predicting "):
                time.sleep(0.7)  # the injected slowness itself, not a wait
            log(*args, **kwargs)

        self.print_to_log_file = slow_log
        try:
            return super().perform_actual_validation(save_probabilities)
        finally:
            self.print_to_log_file = log


#: the trainers of this module, registered by nobody at import. A test that names one (``-tr TinyTestTrainer``,
#: a checkpoint that names it) registers it for itself with the ``register`` fixture,
#: ``register(TRAINERS, *TEST_TRAINERS)``; the entry code of a subprocess calls :func:`register_test_trainers`.
#: A dotted path (``-tr tests.training.helpers.TinyTestTrainer``) finds them without either.
TEST_TRAINERS = (TinyTestTrainer, SlowTinyTestTrainer, OddValidationTrainer, SlowValidationTrainer)


def register_test_trainers() -> None:
    """Register :data:`TEST_TRAINERS` for the rest of this process: for a subprocess's entry code only (in the
    test process the ``register`` fixture does it for one test)."""
    for trainer in TEST_TRAINERS:
        TRAINERS.register(trainer)


#: the reference nnU-Net 2.8.1 (tests that use it skip without it)
REF_PYTHON = Path("/work/ref/.venv-ref/bin/python")


def run_reference_trainer_script(script: str, folder: Path) -> subprocess.CompletedProcess:
    """Run ``script`` with the reference's python, its nnU-Net folders all set to ``folder``.

    The reference infers its dataset class from the preprocessed folder while a trainer initialises, so a
    placeholder case of the b2nd format is put where it looks.
    """
    pre = folder / "Dataset251_InferTiny" / "nnUNetPlans_3d_fullres"
    pre.mkdir(parents=True, exist_ok=True)
    (pre / "placeholder.b2nd").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    # the worker processes that these tests are about would not start for their tiny jobs
    env["nnUNet_small_job_mb"] = "0"
    env.update(nnUNet_results=str(folder), nnUNet_preprocessed=str(folder), nnUNet_raw=str(folder),
               OMP_NUM_THREADS="1")
    return subprocess.run([str(REF_PYTHON), "-c", script], capture_output=True, text=True, env=env, timeout=300)


#: Primus sizes too large to build for real in a test (compared on the meta device)
HEAVY = ("Primus_B", "Primus_M", "Primus_L", "PrimusV2B", "PrimusV2M", "PrimusV2L", "PrimusV3B", "PrimusV3M",
         "PrimusV3L", "_96_", "_48_")


def is_heavy(name: str) -> bool:
    return any(h in name for h in HEAVY)
