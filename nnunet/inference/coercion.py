"""What programs hand the predictor, turned into the values the engine works with, and checked.

Programs written for nnU-Net assign plans and configurations in several forms (a dict, a name, nnU-Net's
PlansManager / ConfigurationManager), pass devices as strings, and hand in arrays and lists of them; here they
become :class:`~nnunet.planning.plans.Plans`, :class:`~nnunet.planning.plans.Configuration`, torch devices and
:class:`~nnunet.inference.engine.WindowSettings`, and what cannot work is refused with one clear message before
anything runs. torch is imported only where a torch device is made.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from nnunet.errors import NnunetError
from nnunet.inference import engine
from nnunet.inference.backends import device_type
from nnunet.io.labels import LabelManager
from nnunet.planning.plans import Configuration, Plans

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def check_settings(tile_step_size: float, max_ram_gb: float | None) -> None:
    if not 0 < tile_step_size <= 1:
        raise NnunetError(f"The step size must be in (0, 1], got {tile_step_size}.")
    if max_ram_gb is not None and max_ram_gb <= 0:
        raise NnunetError(f"max_ram_gb must be positive, got {max_ram_gb}.")


def torch_device(device: torch.device | str) -> torch.device:
    """``device`` as a torch device; CUDA must be available if asked for."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NnunetError("CUDA was requested but is not available on this machine; use -device cpu "
                          "(or device='cpu').")
    return device


def prediction_device(device: torch.device | str, on_torch: bool,
                      perform_everything_on_device: bool) -> tuple[torch.device | str, bool]:
    """The device to predict on (a torch device for the torch backend; the CPU runtimes need no torch, so their
    device stays as given) and whether the accumulators stay on it (only on CUDA)."""
    if on_torch:
        device = torch_device(device)
    if device_type(device) == "cuda":
        import torch

        torch.backends.cudnn.benchmark = True
    elif perform_everything_on_device:
        logger.info("perform_everything_on_device only applies to CUDA devices; accumulating on the CPU.")
        perform_everything_on_device = False
    return device, perform_everything_on_device


def as_plans(value: Any) -> Any:
    """A Plans from what a program assigns to ``plans_manager``; unknown objects are kept as they are."""
    if value is None or isinstance(value, Plans):
        return value
    if isinstance(value, dict):
        return Plans(value)
    data = getattr(value, "plans", None)  # nnU-Net's PlansManager keeps the plans dict in .plans
    return Plans(data) if isinstance(data, dict) else value


def as_configuration(value: Any, plans: Plans | None) -> Any:
    """A Configuration from what a program assigns to ``configuration_manager``; unknown objects (a
    namespace with a ``patch_size``) are kept as they are."""
    if value is None or isinstance(value, Configuration):
        return value
    if isinstance(value, str):
        if not isinstance(plans, Plans):
            raise NnunetError(f"configuration_manager = {value!r} names a configuration: assign plans_manager "
                              f"first.")
        return plans.configuration(value)
    data = value if isinstance(value, dict) else getattr(value, "configuration", None)
    if not isinstance(data, dict):
        return value
    return Configuration(_configuration_name(data, plans), data)


def _configuration_name(data: dict[str, Any], plans: Plans | None) -> str:
    """The name of the plans' configuration equal to ``data`` (a ConfigurationManager knows only its dict)."""
    if isinstance(plans, Plans):
        for name in plans.available_configurations:
            if plans.configuration(name).data == data or plans.data["configurations"][name] == data:
                return name
    return str(data.get("data_identifier", "configuration"))


def window_settings(configuration: Configuration, label_manager: LabelManager, tile_step_size: float,
                    use_gaussian: bool, mirror_axes: Sequence[int] | None,
                    accumulation_dtype: Any) -> engine.WindowSettings:
    """The sliding window's settings; ``mirror_axes`` None or empty: no mirroring."""
    return engine.WindowSettings(tuple(int(p) for p in configuration.patch_size),
                                 label_manager.num_segmentation_heads, tile_step_size, use_gaussian,
                                 tuple(mirror_axes) if mirror_axes else None, engine.dtype_name(accumulation_dtype))


def check_part(num_parts: int, part_id: int) -> None:
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise NnunetError(f"part_id must be in [0, num_parts): got part_id={part_id}, num_parts={num_parts} "
                          f"(parts are counted from 0).")


def check_array(image: Any, properties: dict[str, Any], channels: int, what: str) -> None:
    """An image handed in as an array: 4-D numpy (C, X, Y, Z) with ``channels`` channels, and a spacing."""
    if not isinstance(image, np.ndarray) or image.ndim != 4:
        raise NnunetError(f"{what} must be a 4-D numpy array (C, X, Y, Z) as the plans' reader returns it; "
                          f"got {getattr(image, 'shape', type(image))}.")
    if image.shape[0] != channels:
        raise NnunetError(f"{what} has {image.shape[0]} channels but the model expects {channels}.")
    if "spacing" not in properties or len(properties["spacing"]) != 3:
        raise NnunetError(f"The properties of {what} need 'spacing' (3 values in array axis order).")


def check_previous_stage(configuration: Configuration, missing: bool, what: str) -> None:
    """A cascade stage needs the previous stage's segmentation; ``missing``: one was not given."""
    if configuration.previous_stage_name is not None and missing:
        raise NnunetError(f"Configuration {configuration.name!r} is a cascade stage: pass {what}.")


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def array_cases(images: Any, segmentations: Any, properties: Any, names: Any) -> tuple[list, list, list, list]:
    """The arguments of ``predict_from_list_of_npy_arrays`` (one value or a list each) as four lists of one
    length; None segmentations or names: None for every image."""
    images, properties = _as_list(images), _as_list(properties)
    segmentations = [None] * len(images) if segmentations is None else _as_list(segmentations)
    names = ([names] if isinstance(names, (str, os.PathLike)) else
             (names if names is not None else [None] * len(images)))
    if not len(images) == len(properties) == len(segmentations) == len(names):
        raise NnunetError(f"Got {len(images)} images, {len(properties)} properties, {len(segmentations)} "
                          f"previous-stage segmentations and {len(names)} output names; they must match.")
    return images, segmentations, properties, names
