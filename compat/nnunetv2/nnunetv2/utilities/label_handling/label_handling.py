"""nnU-Net 2.8.1's label handling: our :class:`~nnunet.io.labels.LabelManager` (with 2.8.1's methods) and the
helpers trainer files import."""
from __future__ import annotations

from typing import Union

import numpy as np

from nnunet.io.labels import LabelManager as _LabelManager
from nnunet.planning.plans import Configuration, Plans

__all__ = ["LabelManager", "convert_labelmap_to_one_hot", "determine_num_input_channels",
           "get_labelmanager_class_from_plans"]


class LabelManager(_LabelManager):
    """2.8.1's constructor: the ``labels`` dict, ``regions_class_order`` (``force_use_labels`` and
    ``inference_nonlin`` are accepted; the nonlinearity follows from regions or labels, as 2.8.1's default)."""

    def __init__(self, label_dict: dict, regions_class_order=None, force_use_labels: bool = False,
                 inference_nonlin=None):
        if force_use_labels or inference_nonlin is not None:
            raise NotImplementedError("LabelManager(force_use_labels=..., inference_nonlin=...) is not provided "
                                      "by nnunet-fast's nnunetv2 namespace")
        super().__init__(label_dict, regions_class_order)


def get_labelmanager_class_from_plans(plans: dict) -> type:
    return LabelManager


def convert_labelmap_to_one_hot(segmentation, all_labels, output_dtype=None):
    """(...) label map -> (len(all_labels), ...) one-hot, numpy or torch as given."""
    if type(segmentation).__module__.startswith("torch"):
        import torch

        labels = torch.as_tensor(list(all_labels), device=segmentation.device)
        onehot = segmentation[None] == labels.view(-1, *([1] * segmentation.ndim))
        return onehot.to(output_dtype if output_dtype is not None else torch.uint8)
    labels = np.asarray(list(all_labels)).reshape(-1, *([1] * segmentation.ndim))
    return (segmentation[None] == labels).astype(output_dtype if output_dtype is not None else np.uint8)


def determine_num_input_channels(plans_manager: Plans, configuration_or_config_manager: Union[str, Configuration],
                                 dataset_json: dict) -> int:
    """Image channels, plus one per foreground label for a cascade's second stage."""
    configuration = (plans_manager.get_configuration(configuration_or_config_manager)
                     if isinstance(configuration_or_config_manager, str) else configuration_or_config_manager)
    channels = len(dataset_json.get("channel_names", dataset_json.get("modality", {})))
    if configuration.previous_stage_name is not None:
        channels += len(plans_manager.get_label_manager(dataset_json).foreground_labels)
    return channels
