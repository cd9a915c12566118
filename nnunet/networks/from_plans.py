"""Instantiate the network that a plans ``architecture`` block describes.

The block names a class by dotted path (``network_class_name``), its keyword arguments (``arch_kwargs``) and
which of those arguments are themselves dotted paths (``_kw_requires_import``: conv/norm/dropout/nonlinearity
classes). The network is built with ``input_channels``, ``num_classes`` and optionally ``deep_supervision``,
then the class's own ``initialize`` is applied to every module. dynamic_network_architectures networks
initialise He-normal (negative slope 1e-2) and zero the last norm of every residual block, so a network built
here has the same modules, state-dict keys and initialisation as nnU-Net's.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any, Sequence

import torch

from nnunet.errors import ConfigurationError

logger = logging.getLogger(__name__)

ARCHITECTURES_PACKAGE = "dynamic_network_architectures.architectures"


def locate(dotted: str) -> Any:
    """The object named by a dotted path (``package.module.Name``), or None if it cannot be imported."""
    parts = dotted.split(".")
    # try the longest importable module prefix, then walk attributes (covers nested names such as torch.nn.X)
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def find_architecture_class(short_name: str, package: str = ARCHITECTURES_PACKAGE) -> type | None:
    """Search ``package`` (recursively) for a class called ``short_name``; used when a dotted path moved."""
    root = importlib.import_module(package)
    if hasattr(root, short_name):
        return getattr(root, short_name)
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # an optional dependency of an unrelated architecture must not stop the search
            continue
        if isinstance(getattr(module, short_name, None), type):
            return getattr(module, short_name)
    return None


def network_class_exists(network_class_name: str) -> bool:
    """Whether :func:`resolve_network_class` finds a class for ``network_class_name`` (for the plans check)."""
    return (locate(network_class_name) is not None
            or find_architecture_class(network_class_name.rsplit(".", 1)[-1]) is not None)


def resolve_network_class(network_class_name: str) -> type:
    """The class for ``network_class_name``; falls back to a search by short name in the architectures package."""
    cls = locate(network_class_name)
    if cls is None:
        cls = find_architecture_class(network_class_name.rsplit(".", 1)[-1])
        if cls is None:
            raise ConfigurationError(
                f"Network class {network_class_name!r} from the plans cannot be imported, and no class of that "
                f"name exists in {ARCHITECTURES_PACKAGE}. Check 'network_class_name' in the plans file.")
        logger.warning("Network class %s not found; using %s.%s instead.", network_class_name, cls.__module__,
                       cls.__name__)
    return cls


def resolve_arch_kwargs(arch_kwargs: dict[str, Any], requires_import: Sequence[str]) -> dict[str, Any]:
    """Copy of ``arch_kwargs`` with the entries named in ``requires_import`` replaced by the objects they name."""
    kwargs = dict(arch_kwargs)
    for key in requires_import:
        if key not in kwargs:
            raise ConfigurationError(f"'_kw_requires_import' lists {key!r}, which is not in 'arch_kwargs'.")
        if kwargs[key] is None:
            continue
        obj = locate(kwargs[key])
        if obj is None:
            raise ConfigurationError(f"Cannot import {kwargs[key]!r} (architecture argument {key!r} in the plans).")
        kwargs[key] = obj
    return kwargs


def get_network_from_plans(arch_class_name: str, arch_kwargs: dict[str, Any], arch_kwargs_req_import: Sequence[str],
                           input_channels: int, output_channels: int, allow_init: bool = True,
                           deep_supervision: bool | None = None) -> torch.nn.Module:
    """Build (and by default initialise) the network of a plans architecture block.

    Args:
        arch_class_name: dotted path of the network class.
        arch_kwargs: constructor keyword arguments as stored in the plans.
        arch_kwargs_req_import: names of ``arch_kwargs`` entries that are dotted paths to import.
        input_channels: number of input channels.
        output_channels: number of segmentation heads (``num_classes``).
        allow_init: apply the class's ``initialize`` to all modules when it has one.
        deep_supervision: passed as ``deep_supervision`` unless None.

    Returns:
        The network (on the CPU, in training mode).

    Example:
        >>> net = get_network_from_plans(cfg.network_class_name, cfg.arch_kwargs, cfg.arch_kwargs_requiring_import,
        ...                              1, 3, deep_supervision=True)
    """
    cls = resolve_network_class(arch_class_name)
    kwargs = resolve_arch_kwargs(arch_kwargs, arch_kwargs_req_import)
    if deep_supervision is not None:
        kwargs["deep_supervision"] = deep_supervision
    try:
        network = cls(input_channels=input_channels, num_classes=output_channels, **kwargs)
    except TypeError as e:
        raise ConfigurationError(f"The plans' arch_kwargs do not fit {cls.__name__}: {e}") from None
    if allow_init and hasattr(network, "initialize"):
        network.apply(network.initialize)
    return network


def network_from_architecture(architecture: dict[str, Any], num_input_channels: int, num_output_channels: int,
                              enable_deep_supervision: bool = True) -> torch.nn.Module:
    """:func:`get_network_from_plans` for a plans ``architecture`` block (initialised)."""
    return get_network_from_plans(architecture["network_class_name"], architecture["arch_kwargs"],
                                  architecture.get("_kw_requires_import", ()), num_input_channels,
                                  num_output_channels, allow_init=True, deep_supervision=enable_deep_supervision)


def build_network_for_configuration(configuration, num_input_channels: int, num_output_channels: int,
                                    enable_deep_supervision: bool = True) -> torch.nn.Module:
    """:func:`network_from_architecture` for a :class:`nnunet.planning.plans.Configuration`."""
    return network_from_architecture(configuration.architecture, num_input_channels, num_output_channels,
                                     enable_deep_supervision)


#: normalisation layers a trainer can put in place of the plans' (``norm_op`` attribute), per conv dimension
NORM_OPS = {"batch": {1: "torch.nn.modules.batchnorm.BatchNorm1d", 2: "torch.nn.modules.batchnorm.BatchNorm2d",
                      3: "torch.nn.modules.batchnorm.BatchNorm3d"},
            "instance": {1: "torch.nn.modules.instancenorm.InstanceNorm1d",
                         2: "torch.nn.modules.instancenorm.InstanceNorm2d",
                         3: "torch.nn.modules.instancenorm.InstanceNorm3d"}}


def architecture_with_norm(architecture: dict[str, Any], norm: str) -> dict[str, Any]:
    """Copy of a plans architecture block whose ``norm_op`` is the ``norm`` layer matching its ``conv_op``
    dimension, with ``norm_op_kwargs = {eps: 1e-5, affine: True}`` (nnUNetTrainerBN). The plans are not changed."""
    kwargs = dict(architecture.get("arch_kwargs", {}))
    if norm not in NORM_OPS:
        raise ConfigurationError(f"Unknown norm_op {norm!r}; choose one of {', '.join(NORM_OPS)}.")
    if "norm_op" not in kwargs or "conv_op" not in kwargs:
        raise ConfigurationError(f"The architecture {architecture.get('network_class_name')!r} has no norm_op/conv_op "
                                 f"arguments, so its normalisation cannot be replaced by {norm} normalisation; this "
                                 f"trainer only works with nnU-Net's U-Net architectures.")
    conv = kwargs["conv_op"] if isinstance(kwargs["conv_op"], str) else f"{kwargs['conv_op'].__module__}." \
        f"{kwargs['conv_op'].__name__}"
    dim = {"Conv1d": 1, "Conv2d": 2, "Conv3d": 3}.get(conv.rsplit(".", 1)[-1])
    if dim is None:
        raise ConfigurationError(f"Cannot tell the dimension of conv_op {conv!r} to choose a {norm} norm layer.")
    kwargs.update(norm_op=NORM_OPS[norm][dim], norm_op_kwargs={"eps": 1e-5, "affine": True})
    return {**architecture, "arch_kwargs": kwargs}


def set_deep_supervision(network: torch.nn.Module, enabled: bool) -> None:
    """Switch deep supervision of a (possibly DDP-wrapped or compiled) dynamic_network_architectures UNet."""
    module = unwrap(network)
    decoder = getattr(module, "decoder", None)
    if decoder is None or not hasattr(decoder, "deep_supervision"):
        raise ConfigurationError(f"{type(module).__name__} has no decoder.deep_supervision switch; override "
                                 f"set_deep_supervision_enabled in your trainer.")
    decoder.deep_supervision = enabled


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if isinstance(network, torch.nn.parallel.DistributedDataParallel):
            network = network.module
        elif hasattr(network, "_orig_mod"):
            network = network._orig_mod
        else:
            return network
