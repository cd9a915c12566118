"""Typed, read-only views of plans.json, with configuration inheritance resolved.

plans.json stays the on-disk format (so plans move freely between this package and nnU-Net); these views only
give names to its keys. ``Plans.configuration(name)`` resolves ``inherits_from`` chains.
"""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Callable

from nnunet.errors import ConfigurationError
from nnunet.io.dataset_json import label_manager as dataset_label_manager
from nnunet.io.labels import LabelManager
from nnunet.planning.plans_rules import check_configuration, check_plans_file
from nnunet.registry import PLANNERS, PREPROCESSORS, READERS, RESAMPLERS
from nnunet.utils.json import load_json, save_json

#: keys of the pre-2.3 configuration format that describe the network instead of an ``architecture`` block
LEGACY_ARCHITECTURE_KEYS = ("UNet_class_name", "UNet_base_num_features", "n_conv_per_stage_encoder",
                            "n_conv_per_stage_decoder", "num_pool_per_axis", "pool_op_kernel_sizes",
                            "conv_kernel_sizes", "unet_max_num_features")

_LEGACY_NETWORK_CLASSES = {
    "PlainConvUNet": ("dynamic_network_architectures.architectures.unet.PlainConvUNet", "n_conv_per_stage"),
    "ResidualEncoderUNet": ("dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet",
                            "n_blocks_per_stage"),
}



def default_layer_kwargs(dim: int) -> dict[str, Any]:
    """The layer settings every planned U-Net shares (instance norm, leaky ReLU, no dropout), in plans key order."""
    return {
        "conv_bias": True,
        "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dim}d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }

def convert_legacy_configuration(config: dict[str, Any], name: str = "?") -> dict[str, Any]:
    """Return ``config`` with the old network keys replaced by an ``architecture`` block (new format).

    Configurations that already have ``architecture`` (or have no ``UNet_class_name`` either, such as an
    unresolved child configuration) are returned unchanged. Only PlainConvUNet and ResidualEncoderUNet can be
    converted; anything else raises a ConfigurationError.
    """
    if "architecture" in config or "UNet_class_name" not in config:
        return config
    class_name = config.get("UNet_class_name")
    if class_name not in _LEGACY_NETWORK_CLASSES:
        raise ConfigurationError(
            f"Configuration {name!r} has neither an 'architecture' block nor a convertible old-format network "
            f"(UNet_class_name={class_name!r}; only PlainConvUNet and ResidualEncoderUNet can be converted). "
            f"Re-run nnUNet_plan_experiment for this dataset.")
    missing = [k for k in LEGACY_ARCHITECTURE_KEYS if k not in config and k != "num_pool_per_axis"]
    if missing or "patch_size" not in config:
        raise ConfigurationError(f"Old-format configuration {name!r} lacks {missing or ['patch_size']}; "
                                 f"re-run nnUNet_plan_experiment for this dataset.")
    warnings.warn(f"Configuration {name!r} uses the old plans format; its network description was converted. "
                  f"Re-run nnUNet_plan_experiment if this fails or if you use a custom architecture.", stacklevel=3)
    network_class_name, blocks_key = _LEGACY_NETWORK_CLASSES[class_name]
    dim = len(config["patch_size"])
    n_stages = len(config["n_conv_per_stage_encoder"])
    architecture = {
        "network_class_name": network_class_name,
        "arch_kwargs": {
            "n_stages": n_stages,
            "features_per_stage": [min(config["UNet_base_num_features"] * 2 ** i, config["unet_max_num_features"])
                                   for i in range(n_stages)],
            "conv_op": f"torch.nn.modules.conv.Conv{dim}d",
            "kernel_sizes": copy.deepcopy(config["conv_kernel_sizes"]),
            "strides": copy.deepcopy(config["pool_op_kernel_sizes"]),
            blocks_key: copy.deepcopy(config["n_conv_per_stage_encoder"]),
            "n_conv_per_stage_decoder": copy.deepcopy(config["n_conv_per_stage_decoder"]),
            **default_layer_kwargs(dim),
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }
    converted = {k: v for k, v in config.items() if k not in LEGACY_ARCHITECTURE_KEYS}
    converted["architecture"] = architecture
    return converted


def merge_plans(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """``new`` plus the configurations of ``old`` that ``new`` does not define (custom ones survive re-planning).

    Generated configurations replace their old versions; kept ones are appended after them in their old order.
    """
    merged = copy.deepcopy(new)
    if old:
        for name, config in old.get("configurations", {}).items():
            if name not in merged["configurations"]:
                merged["configurations"][name] = copy.deepcopy(config)
    return merged


def write_plans(plans: dict[str, Any], path: str | os.PathLike, keep_existing_configurations: bool = True) -> dict:
    """Write a plans file (no key sorting, indent 4), merging with an existing file first. Returns what was written."""
    path = Path(path)
    if keep_existing_configurations and path.is_file():
        plans = merge_plans(plans, load_json(path))
    save_json(plans, path, sort_keys=False, indent=4)
    return plans


#: configuration keys that change the preprocessed data (a configuration differing in one of them needs its own
#: data_identifier; configurations agreeing on all of them can share a case's arrays)
PREPROCESSING_KEYS = ("preprocessor_name", "spacing", "normalization_schemes", "use_mask_for_norm",
                      "resampling_fn_data", "resampling_fn_data_kwargs", "resampling_fn_seg",
                      "resampling_fn_seg_kwargs")


def check_plans_dataset(data: dict[str, Any], dataset_name: str, path: Any = None) -> None:
    """Refuse plans whose ``dataset_name`` is not the dataset asked for (before anything is written)."""
    planned_for = data.get("dataset_name")
    if planned_for != dataset_name:
        raise ConfigurationError(
            f"{path} was planned for {planned_for!r}, not for {dataset_name!r}: it would use that dataset's "
            f"settings and folders. Plan this dataset (nnUNet_plan_experiment -d {dataset_name}) or transfer the "
            f"plans with nnUNet_move_plans_between_datasets.")


class Configuration:
    """One resolved configuration (``2d``, ``3d_fullres``, ... or a user-defined one).

    Old-format configurations (network described by ``UNet_class_name``, ``pool_op_kernel_sizes``, ...) are
    converted to the current ``architecture`` block on construction, with a warning.
    """

    def __init__(self, name: str, data: dict[str, Any]):
        self.name = name
        self.data = convert_legacy_configuration(data, name)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def data_identifier(self) -> str:
        return self.data["data_identifier"]

    @property
    def preprocessor_name(self) -> str:
        return self.data.get("preprocessor_name", "DefaultPreprocessor")

    @property
    def batch_size(self) -> int:
        return int(self.data["batch_size"])

    @property
    def patch_size(self) -> list[int]:
        return [int(p) for p in self.data["patch_size"]]

    @property
    def spacing(self) -> list[float]:
        return [float(s) for s in self.data["spacing"]]

    @property
    def median_image_size_in_voxels(self) -> list[float]:
        return self.data["median_image_size_in_voxels"]

    @property
    def normalization_schemes(self) -> list[str]:
        return self.data["normalization_schemes"]

    @property
    def use_mask_for_norm(self) -> list[bool]:
        return self.data["use_mask_for_norm"]

    @property
    def architecture(self) -> dict[str, Any]:
        return self.data["architecture"]

    @property
    def network_class_name(self) -> str:
        return self.data["architecture"]["network_class_name"]

    @property
    def arch_kwargs(self) -> dict[str, Any]:
        return self.data["architecture"]["arch_kwargs"]

    @property
    def arch_kwargs_requiring_import(self) -> list[str]:
        return self.data["architecture"]["_kw_requires_import"]

    @property
    def pool_op_kernel_sizes(self) -> list[list[int]]:
        return self.arch_kwargs["strides"]

    @property
    def batch_dice(self) -> bool:
        return bool(self.data["batch_dice"])

    @property
    def previous_stage_name(self) -> str | None:
        return self.data.get("previous_stage")

    @property
    def next_stage_names(self) -> list[str]:
        nxt = self.data.get("next_stage")
        if nxt is None:
            return []
        return [nxt] if isinstance(nxt, str) else list(nxt)

    # ---- nnU-Net 2.8.1's ConfigurationManager names (trainer files and the nnunetv2 namespace read them) ----
    @property
    def configuration(self) -> dict[str, Any]:
        return self.data

    @property
    def network_arch_class_name(self) -> str:
        return self.network_class_name

    @property
    def network_arch_init_kwargs(self) -> dict[str, Any]:
        return self.arch_kwargs

    @property
    def network_arch_init_kwargs_req_import(self) -> list[str]:
        return self.arch_kwargs_requiring_import

    @property
    def conv_kernel_sizes(self) -> list[list[int]]:
        return self.arch_kwargs["kernel_sizes"]

    @property
    def preprocessor_class(self) -> type:
        return PREPROCESSORS.get(self.preprocessor_name)

    @property
    def resampling_fn_data(self):
        return self.resampling_fn("data")

    @property
    def resampling_fn_seg(self):
        return self.resampling_fn("seg")

    @property
    def resampling_fn_probabilities(self):
        return self.resampling_fn("probabilities")

    def resampling_fn(self, kind: str):
        """The resampling function for ``kind`` in ``data``, ``seg`` or ``probabilities``, with its kwargs bound."""
        import functools

        fn = RESAMPLERS.get(self.data[f"resampling_fn_{kind}"])
        return functools.partial(fn, **self.data[f"resampling_fn_{kind}_kwargs"])


class Plans:
    """A plans.json file."""

    def __init__(self, data: dict[str, Any], source: str | os.PathLike | None = None):
        self.data = data
        self.source = source

    @classmethod
    def load(cls, path: str | os.PathLike, dataset_name: str | None = None) -> "Plans":
        """Read a plans file that any stage can start from (a JSON object with ``configurations``); with
        ``dataset_name``, refuse plans made for another dataset. Each stage then checks what it needs with
        :meth:`checked_configuration`."""
        path = Path(path)
        if not path.is_file():
            raise ConfigurationError(f"Plans file not found: {path}. Run nnUNet_plan_experiment (or "
                                     f"nnUNet_plan_and_preprocess) first, or check -p/-plans_name.")
        data = load_json(path)
        check_plans_file(data, path)
        if dataset_name is not None:
            check_plans_dataset(data, dataset_name, path)
        return cls(data, path)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def dataset_name(self) -> str:
        return self.data["dataset_name"]

    @property
    def plans_name(self) -> str:
        return self.data["plans_name"]

    @property
    def transpose_forward(self) -> list[int]:
        return self.data["transpose_forward"]

    @property
    def transpose_backward(self) -> list[int]:
        return self.data["transpose_backward"]

    @property
    def image_reader_writer(self) -> str:
        return self.data["image_reader_writer"]

    @property
    def foreground_intensity_properties_per_channel(self) -> dict[str, dict[str, float]]:
        props = self.data.get("foreground_intensity_properties_per_channel")
        if props is None:  # plans written by older nnU-Net versions
            props = self.data["foreground_intensity_properties_by_modality"]
        return props

    @property
    def available_configurations(self) -> list[str]:
        return list(self.data["configurations"])

    def configuration(self, name: str) -> Configuration:
        """Resolve ``name`` (following ``inherits_from``; the child's keys win)."""
        return Configuration(name, self._resolve(name, [])[0])

    def checked_configuration(self, name: str, stage: str, num_channels: int | None = None,
                              plans_network: bool = True,
                              network_class_exists: Callable[[str], bool] | None = None) -> Configuration:
        """Resolve ``name`` and refuse it, one line per problem, if ``stage`` cannot use it (the rules are in
        :mod:`nnunet.planning.plans_rules`; ``plans_network=False`` for trainers that build their own network,
        ``network_class_exists`` where the stage builds it)."""
        config, origins = self._resolve(name, [])
        check_configuration(self.data, name, config, origins, self.source or "the plans", stage, num_channels,
                            plans_network, network_class_exists)
        return Configuration(name, config)

    def _resolve(self, name: str, chain: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
        """The configuration's keys with its parents' filled in, and for each key the configuration it is
        written in."""
        configs = self.data["configurations"]
        if name not in configs:
            via = f" (named by inherits_from of {chain[-1]!r})" if chain else ""
            raise ConfigurationError(f"Configuration {name!r}{via} is not in the plans"
                                     f"{f' {self.source}' if self.source else ''}. "
                                     f"Available: {', '.join(configs)}.")
        if name in chain:
            where = f" {self.source}" if self.source else ""
            raise ConfigurationError(f"Circular inherits_from in the plans{where}: {' -> '.join(chain + [name])}. "
                                     f"A configuration may not inherit from itself, directly or through others.")
        own = copy.deepcopy(configs[name])
        parent_name = own.get("inherits_from")
        if parent_name is None:
            return own, dict.fromkeys(own, name)
        resolved, origins = self._resolve(parent_name, chain + [name])
        resolved.update(own)
        origins.update(dict.fromkeys(own, name))
        return resolved, origins

    def label_manager(self, dataset_json: dict[str, Any]) -> LabelManager:
        return dataset_label_manager(dataset_json)

    # ---- nnU-Net 2.8.1's PlansManager names (trainer files and the nnunetv2 namespace read them) ----
    @property
    def plans(self) -> dict[str, Any]:
        return self.data

    def get_configuration(self, configuration_name: str) -> Configuration:
        return self.configuration(configuration_name)

    def get_label_manager(self, dataset_json: dict[str, Any], **kwargs) -> LabelManager:
        """``kwargs`` (2.8.1 passes them on to the label manager class) are accepted and unused."""
        return self.label_manager(dataset_json)

    @property
    def label_manager_class(self) -> type:
        return LabelManager

    @property
    def original_median_spacing_after_transp(self) -> list[float]:
        return self.data["original_median_spacing_after_transp"]

    @property
    def original_median_shape_after_transp(self) -> list[float]:
        return self.data["original_median_shape_after_transp"]

    @property
    def image_reader_writer_class(self) -> type:
        return READERS.get(self.image_reader_writer)

    @property
    def experiment_planner_name(self) -> str:
        return self.data["experiment_planner_used"]

    @property
    def experiment_planner_class(self) -> type | None:
        """The registered planner named by ``experiment_planner_name``; None when we have none of that name."""
        return PLANNERS.find(self.experiment_planner_name)
