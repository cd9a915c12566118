"""The default experiment planner: from a dataset fingerprint to ``nnUNetPlans.json``.

The planner reads ``nnUNet_preprocessed/DatasetXXX/dataset_fingerprint.json``, the raw ``dataset.json`` and the
first training image (only to pick the image reader), and writes the plans file. All numbers follow nnU-Net v2.8,
including Python's round-half-to-even, so that the plans are identical to the reference's.

Variants change class attributes (network, reference memory values, batch cap, plans name) or override one of the
small ``determine_*`` / ``*_exceeds_budget`` methods; see :mod:`nnunet.planning.resenc`.
"""
from __future__ import annotations

import logging
import warnings
from copy import deepcopy
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnunet.constants import ANISO_THRESHOLD
from nnunet.errors import ConfigurationError, DatasetError, NnunetError
from nnunet.io.dataset_json import load_dataset_json, training_cases
from nnunet.io.naming import preprocessed_dataset_folder, raw_dataset_folder, resolve_dataset_name
from nnunet.planning.plans import default_layer_kwargs, write_plans
from nnunet.planning.rules import (CHANNEL_NAME_TO_NORMALIZATION, DEFAULT_NORMALIZATION,  # noqa: F401 - re-exported
                                   MASK_CAPABLE_NORMALIZATIONS, MASK_MAX_RELATIVE_SIZE, axis_to_shrink,
                                   batch_size_for, copy_splits_file, fullres_target_spacing, lowres_spacing_step,
                                   check_target_spacing, json_numbers, normalization_scheme_for_channel,
                                   resampled_shape, transpose_for_spacing)
from nnunet.planning.topology import (UNLIMITED_POOLING, Topology, features_per_stage, get_pool_and_conv_props,
                                      initial_patch_size)
from nnunet.planning.vram import feature_map_size
from nnunet.registry import PLANNERS
from nnunet.utils.files import copy_file
from nnunet.utils.json import load_json

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "dataset_fingerprint.json"

# ---------------------------------------------------------------------------------------------------------------
# planner
# ---------------------------------------------------------------------------------------------------------------

@PLANNERS.register
class ExperimentPlanner:
    """nnU-Net's default planner (PlainConvUNet, plans ``nnUNetPlans``, 8 GB).

    Args:
        dataset_name_or_id: e.g. ``4`` or ``"Dataset004_Hippocampus"``.
        gpu_memory_target_in_gb: GPU memory the plans should fit; ``None`` -> the class default
            (:attr:`default_gpu_memory_target_in_gb`, 8 for this class).
        preprocessor_name: preprocessor class written into every configuration.
        plans_name: plans identifier / file name; ``None`` -> :attr:`default_plans_name` (``nnUNetPlans``).
        overwrite_target_spacing: three floats (untransposed array order) replacing the computed 3d_fullres target
            spacing; like nnU-Net it also drives the transpose and the 2d configuration.
        suppress_transpose: keep the axis order ``[0, 1, 2]``.

    Raises:
        NnunetError: the fingerprint is missing, or the arguments are invalid.
    """

    default_plans_name = "nnUNetPlans"
    default_gpu_memory_target_in_gb: float = 8
    #: warn when a non-default GPU target is used (the ResEnc presets are calibrated for their target)
    warn_on_nondefault_gpu_target = False

    network_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
    encoder_blocks_kwarg = "n_conv_per_stage"
    encoder_blocks_per_stage: tuple[int, ...] = (2,) * 14
    decoder_convs_per_stage: tuple[int, ...] = (2,) * 13
    base_num_features = 32
    max_features_2d = 512
    max_features_3d = 320
    min_feature_map_size = 4

    #: feature-map elements that fit the reference GPU at the reference batch size
    reference_vram_3d = 560_000_000
    reference_vram_2d = 85_000_000
    reference_vram_gb: float = 8
    reference_batch_size_3d = 2
    reference_batch_size_2d = 12
    min_batch_size = 2
    #: at most this fraction of the (approximate) dataset voxels in one batch
    max_dataset_covered = 0.05

    lowres_creation_threshold = 0.25
    lowres_spacing_increase = 1.03
    anisotropy_threshold = ANISO_THRESHOLD

    #: plans name whose 2d/3d_fullres data this planner reuses (None: its own plans name for everything)
    shared_data_plans_name: str | None = None
    #: configurations that reuse :attr:`shared_data_plans_name` data
    shared_data_configurations = ("2d", "3d_fullres")

    resampling_function = "resample_data_or_seg_to_shape"

    def __init__(self, dataset_name_or_id: str | int, gpu_memory_target_in_gb: float | None = None,
                 preprocessor_name: str = "DefaultPreprocessor", plans_name: str | None = None,
                 overwrite_target_spacing: Sequence[float] | None = None, suppress_transpose: bool = False):
        if gpu_memory_target_in_gb is None:
            gpu_memory_target_in_gb = self.default_gpu_memory_target_in_gb
        if not gpu_memory_target_in_gb > 0:
            raise ConfigurationError(f"The GPU memory target must be positive, got {gpu_memory_target_in_gb}.")
        if self.warn_on_nondefault_gpu_target and gpu_memory_target_in_gb != self.default_gpu_memory_target_in_gb:
            warnings.warn(f"{type(self).__name__} is calibrated for {self.default_gpu_memory_target_in_gb} GB; planning "
                          f"for {gpu_memory_target_in_gb} GB instead (fine if intended).", stacklevel=2)
        self.gpu_memory_target_in_gb = gpu_memory_target_in_gb
        self.preprocessor_name = preprocessor_name
        self.plans_identifier = plans_name or self.default_plans_name
        self.overwrite_target_spacing = check_target_spacing(overwrite_target_spacing)
        self.suppress_transpose = suppress_transpose

        self.dataset_name = resolve_dataset_name(dataset_name_or_id)
        self.raw_dataset_folder = raw_dataset_folder(self.dataset_name)
        self.preprocessed_folder = preprocessed_dataset_folder(self.dataset_name)
        self.dataset_json = load_dataset_json(self.raw_dataset_folder)
        fingerprint_file = self.preprocessed_folder / FINGERPRINT_FILE
        if not fingerprint_file.is_file():
            raise NnunetError(f"The dataset fingerprint {fingerprint_file} is missing. Run "
                              f"'nnUNet_extract_fingerprint -d {self.dataset_name}' (or nnUNet_plan_and_preprocess) "
                              f"first.")
        self.fingerprint = load_json(fingerprint_file)
        self._check_fingerprint(fingerprint_file)
        self.plans: dict[str, Any] | None = None
        self._estimate_cache: dict[tuple, int] = {}

        splits = self.raw_dataset_folder / "splits_final.json"
        if splits.is_file():
            copy_splits_file(splits, self.preprocessed_folder / "splits_final.json")

    # -- small overridable decisions ---------------------------------------------------------------------------

    @property
    def num_input_channels(self) -> int:
        return len(self.dataset_json["channel_names"])

    @property
    def num_output_channels_for_estimate(self) -> int:
        # nnU-Net counts every entry of "labels" (background, ignore and region entries included)
        return len(self.dataset_json["labels"])

    def determine_reader_writer(self) -> str:
        """Name of the image reader/writer for this dataset (chosen with the first training image)."""
        from nnunet.io.readers import reader_for_dataset

        cases = training_cases(self.raw_dataset_folder, self.dataset_json)
        if not cases:
            raise DatasetError(f"No training cases found in {self.raw_dataset_folder}.")
        first = next(iter(cases.values()))
        return reader_for_dataset(self.dataset_json, first["images"][0]).__name__

    def determine_fullres_target_spacing(self) -> np.ndarray:
        if self.overwrite_target_spacing is not None:
            return np.array(self.overwrite_target_spacing, dtype=np.float64)
        return fullres_target_spacing(self.fingerprint["spacings"], self.fingerprint["shapes_after_crop"],
                                      self.anisotropy_threshold)

    def determine_transpose(self) -> tuple[list[int], list[int]]:
        if self.suppress_transpose:
            return [0, 1, 2], [0, 1, 2]
        return transpose_for_spacing(self.determine_fullres_target_spacing())

    def determine_normalization_schemes(self) -> tuple[list[str], list[bool]]:
        """Normalization class name and ``use_mask_for_norm`` flag per input channel."""
        schemes = [normalization_scheme_for_channel(n) for n in self.dataset_json["channel_names"].values()]
        cropped_a_lot = self.fingerprint["median_relative_size_after_cropping"] < MASK_MAX_RELATIVE_SIZE
        use_mask = [cropped_a_lot and s in MASK_CAPABLE_NORMALIZATIONS for s in schemes]
        return schemes, use_mask

    def determine_resampling(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """``{"data"|"seg"|"probabilities": (function name, kwargs)}`` written into every configuration."""
        fn = self.resampling_function
        return {
            "data": (fn, {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}),
            "seg": (fn, {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None}),
            "probabilities": (fn, {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}),
        }

    def generate_data_identifier(self, configuration_name: str) -> str:
        """Name of the preprocessed-data folder of a configuration."""
        if self.shared_data_plans_name is not None and configuration_name in self.shared_data_configurations:
            return f"{self.shared_data_plans_name}_{configuration_name}"
        return f"{self.plans_identifier}_{configuration_name}"

    def reference_vram(self, dim: int) -> float:
        """Feature-map budget for ``dim``-D networks at this planner's GPU memory target."""
        value = self.reference_vram_2d if dim == 2 else self.reference_vram_3d
        return value * (self.gpu_memory_target_in_gb / self.reference_vram_gb)

    def reference_batch_size(self, dim: int) -> int:
        return self.reference_batch_size_2d if dim == 2 else self.reference_batch_size_3d

    def exceeds_budget(self, estimate: int, reference: float, reference_batch_size: int) -> bool:
        """Whether the patch must shrink. The default planner tests a batch of 2 against the reference."""
        return estimate / reference_batch_size * 2 > reference

    def build_architecture(self, dim: int, topology: Topology) -> dict[str, Any]:
        """The plans ``architecture`` block for a topology."""
        n = topology.n_stages
        max_features = self.max_features_2d if dim == 2 else self.max_features_3d
        return {
            "network_class_name": self.network_class_name,
            "arch_kwargs": {
                "n_stages": n,
                "features_per_stage": list(features_per_stage(n, max_features, self.base_num_features)),
                "conv_op": f"torch.nn.modules.conv.Conv{dim}d",
                "kernel_sizes": [list(k) for k in topology.kernel_sizes],
                "strides": [list(s) for s in topology.strides],
                self.encoder_blocks_kwarg: list(self.encoder_blocks_per_stage[:n]),
                "n_conv_per_stage_decoder": list(self.decoder_convs_per_stage[:n - 1]),
                **default_layer_kwargs(dim),
            },
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        }

    def estimate_vram(self, patch_size: Sequence[int], architecture: dict[str, Any]) -> int:
        """Feature-map elements of one sample (cached per patch size and strides)."""
        kwargs = architecture["arch_kwargs"]
        key = (tuple(patch_size), tuple(map(tuple, kwargs["strides"])))
        if key not in self._estimate_cache:
            self._estimate_cache[key] = feature_map_size(architecture["network_class_name"], kwargs, patch_size,
                                                         self.num_input_channels,
                                                         self.num_output_channels_for_estimate)
        return self._estimate_cache[key]

    # -- configurations ----------------------------------------------------------------------------------------

    def _topology(self, spacing: Sequence[float], patch_size: Sequence[float]) -> Topology:
        return get_pool_and_conv_props(spacing, patch_size, self.min_feature_map_size, UNLIMITED_POOLING)

    def get_plans_for_configuration(self, spacing: Sequence[float], median_shape: Sequence[float],
                                    data_identifier: str, approximate_n_voxels_dataset: float) -> dict[str, Any]:
        """Plan one configuration: patch size, topology, batch size, normalization and resampling."""
        spacing = np.asarray(spacing, dtype=np.float64)
        if not np.all(spacing > 0):
            raise ConfigurationError(f"Every target spacing must be > 0, got {spacing.tolist()}.")
        dim = len(spacing)
        median = list(median_shape)[:dim]
        topology = self._topology(spacing, initial_patch_size(spacing, median))
        architecture = self.build_architecture(dim, topology)
        estimate = self.estimate_vram(topology.patch_size, architecture)
        reference = self.reference_vram(dim)
        ref_bs = self.reference_batch_size(dim)

        while self.exceeds_budget(estimate, reference, ref_bs):
            patch = list(topology.patch_size)
            axis = axis_to_shrink(patch, median)
            # step by the divisor of the provisionally reduced patch, so valid sizes such as 224 (between 256 and
            # 192 at divisor 32/64) are not skipped
            provisional = list(patch)
            provisional[axis] -= topology.divisor[axis]
            step = self._topology(spacing, provisional).divisor[axis]
            patch[axis] -= step
            if patch[axis] < 1:
                raise ConfigurationError(
                    f"Cannot fit even the smallest patch into a GPU memory target of {self.gpu_memory_target_in_gb} "
                    f"GB for {data_identifier}. Use a larger -gpu_memory_target.")
            topology = self._topology(spacing, patch)
            architecture = self.build_architecture(dim, topology)
            estimate = self.estimate_vram(topology.patch_size, architecture)

        batch_size = batch_size_for(reference, estimate, ref_bs, approximate_n_voxels_dataset,
                                    self.max_dataset_covered, topology.patch_size, self.min_batch_size)
        schemes, use_mask = self.determine_normalization_schemes()
        resampling = self.determine_resampling()
        return {
            "data_identifier": data_identifier,
            "preprocessor_name": self.preprocessor_name,
            "batch_size": batch_size,
            "patch_size": [int(p) for p in topology.patch_size],
            "median_image_size_in_voxels": json_numbers(median_shape),
            "spacing": [float(s) for s in spacing],
            "normalization_schemes": schemes,
            "use_mask_for_norm": use_mask,
            "resampling_fn_data": resampling["data"][0],
            "resampling_fn_seg": resampling["seg"][0],
            "resampling_fn_data_kwargs": deepcopy(resampling["data"][1]),
            "resampling_fn_seg_kwargs": deepcopy(resampling["seg"][1]),
            "resampling_fn_probabilities": resampling["probabilities"][0],
            "resampling_fn_probabilities_kwargs": deepcopy(resampling["probabilities"][1]),
            "architecture": architecture,
        }

    def plan_lowres(self, fullres: dict[str, Any], median_shape: np.ndarray) -> dict[str, Any] | None:
        """Coarsen the fullres spacing by 1.03 per step until the patch covers >= 25 % of the median image.

        While some axis is more than 2x finer than the coarsest, only those axes grow. Returns None when the
        fullres patch already covers enough, or when the resulting images are less than half the fullres size.
        """
        fullres_spacing = np.array(fullres["spacing"], dtype=np.float64)
        spacing = fullres_spacing.copy()
        median_voxels = np.prod(median_shape, dtype=np.float64)
        patch_voxels = np.prod(fullres["patch_size"], dtype=np.float64)
        plan = None
        while patch_voxels / median_voxels < self.lowres_creation_threshold:
            spacing = lowres_spacing_step(spacing, self.lowres_spacing_increase)
            scaled_shape = fullres_spacing / spacing * median_shape
            median_voxels = np.prod(scaled_shape, dtype=np.float64)
            plan = self.get_plans_for_configuration(
                spacing, [round(s) for s in scaled_shape], self.generate_data_identifier("3d_lowres"),
                float(median_voxels * self.dataset_json["numTraining"]))
            patch_voxels = np.prod(plan["patch_size"], dtype=np.int64)
            logger.debug("3d_lowres attempt: spacing %s, patch %s", spacing.tolist(), plan["patch_size"])
        if np.prod(median_shape, dtype=np.float64) / median_voxels < 2:
            if plan is not None:
                logger.info("Dropping 3d_lowres: its images would be less than half the size of 3d_fullres.")
            return None
        return plan

    def plan_experiment(self) -> dict[str, Any]:
        """Plan all configurations, write ``{plans_name}.json`` (keeping custom configurations) and return it."""
        transpose_forward, transpose_backward = self.determine_transpose()
        target = self.determine_fullres_target_spacing()
        fullres_spacing = target[transpose_forward]
        new_shapes = [resampled_shape(sh, sp, target) for sp, sh in
                      zip(self.fingerprint["spacings"], self.fingerprint["shapes_after_crop"])]
        median_shape = np.median(new_shapes, 0)[transpose_forward]
        approx_voxels = float(np.prod(median_shape, dtype=np.float64) * self.dataset_json["numTraining"])

        fullres = lowres = None
        if median_shape[0] != 1:
            fullres = self.get_plans_for_configuration(fullres_spacing, median_shape,
                                                       self.generate_data_identifier("3d_fullres"), approx_voxels)
            lowres = self.plan_lowres(fullres, median_shape)
            if lowres is not None:
                lowres["batch_dice"] = False
            fullres["batch_dice"] = lowres is not None
        plan_2d = self.get_plans_for_configuration(fullres_spacing[1:], median_shape[1:],
                                                   self.generate_data_identifier("2d"), approx_voxels)
        plan_2d["batch_dice"] = True

        configurations: dict[str, Any] = {"2d": plan_2d}
        if lowres is not None:
            configurations["3d_lowres"] = lowres
            if fullres is not None:
                lowres["next_stage"] = "3d_cascade_fullres"
        if fullres is not None:
            configurations["3d_fullres"] = fullres
            if lowres is not None:
                configurations["3d_cascade_fullres"] = {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}

        spacings = np.array(self.fingerprint["spacings"], dtype=np.float64)
        shapes = np.array(self.fingerprint["shapes_after_crop"], dtype=np.float64)
        plans = {
            "dataset_name": self.dataset_name,
            "plans_name": self.plans_identifier,
            "original_median_spacing_after_transp": [float(s) for s in np.median(spacings, 0)[transpose_forward]],
            "original_median_shape_after_transp": [int(round(s)) for s in np.median(shapes, 0)[transpose_forward]],
            "image_reader_writer": self.determine_reader_writer(),
            "transpose_forward": [int(a) for a in transpose_forward],
            "transpose_backward": [int(a) for a in transpose_backward],
            "configurations": configurations,
            "experiment_planner_used": type(self).__name__,
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel":
                deepcopy(self.fingerprint["foreground_intensity_properties_per_channel"]),
        }
        copy_file(self.raw_dataset_folder / "dataset.json", self.preprocessed_folder / "dataset.json")
        self.plans = self.save_plans(plans)
        return self.plans

    @property
    def plans_file(self) -> Path:
        return self.preprocessed_folder / f"{self.plans_identifier}.json"

    def save_plans(self, plans: dict[str, Any]) -> dict[str, Any]:
        """Write the plans, keeping configurations that only the existing file has. Returns the written plans."""
        written = write_plans(plans, self.plans_file)
        logger.info("Plans written to %s", self.plans_file)
        return written

    # -- helpers -----------------------------------------------------------------------------------------------

    def _check_fingerprint(self, path: Path) -> None:
        required = ("spacings", "shapes_after_crop", "median_relative_size_after_cropping",
                    "foreground_intensity_properties_per_channel")
        missing = [k for k in required if k not in self.fingerprint]
        if missing:
            raise DatasetError(f"{path} lacks {missing}; re-run nnUNet_extract_fingerprint with --clean.")
        if not self.fingerprint["spacings"] or len(self.fingerprint["spacings"]) != len(
                self.fingerprint["shapes_after_crop"]):
            raise DatasetError(f"{path}: 'spacings' and 'shapes_after_crop' must list the same, non-zero number of "
                               f"cases; re-run nnUNet_extract_fingerprint with --clean.")
