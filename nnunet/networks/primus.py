"""Primus transformer networks (dynamic_network_architectures) for nnU-Net's Primus trainers, importable on a
CPU-only machine.

Primus needs timm, and timm imports torchvision. On a machine with the CPU build of torch, pip installs
PyPI's torchvision wheel, which is built against CUDA: its C extension cannot load, and torchvision then fails
at import time with ``RuntimeError: operator torchvision::nms does not exist`` (two of its fake-tensor
registrations assume the extension loaded). Neither timm nor Primus uses any torchvision operator, so when
that happens :func:`import_primus` declares the two missing operator schemas (without kernels) and imports
torchvision again. Nothing is downloaded and no installed file is changed; with a working torchvision
(a GPU machine, or a CPU build of torchvision) the import is left alone.

Primus embeds 8x8x8 voxel patches, so it is 3-D only and every patch-size axis must be divisible by 8.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Sequence

import torch

from nnunet.errors import ConfigurationError

PATCH_EMBED_SIZE = (8, 8, 8)
#: schemas of the torchvision operators whose fake-tensor registration runs unconditionally at import time
_TORCHVISION_SCHEMAS = {"nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                        "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"}
_keep_alive: list[Any] = []


def _torchvision_ops_missing(error: RuntimeError) -> bool:
    return "torchvision::" in str(error) and "does not exist" in str(error)


def _declare_torchvision_schemas() -> None:
    library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _TORCHVISION_SCHEMAS.values():
        try:
            library.define(schema)
        except RuntimeError:  # already declared (by the extension or an earlier call)
            pass
    _keep_alive.append(library)  # the schemas live as long as the library object


def import_torchvision() -> None:
    """Import torchvision; if its C extension cannot load beside this torch, declare the operator schemas its
    import needs and import it again (see the module docstring)."""
    try:
        importlib.import_module("torchvision")
    except RuntimeError as e:
        if not _torchvision_ops_missing(e):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _declare_torchvision_schemas()
        importlib.import_module("torchvision")


def import_primus():
    """The ``dynamic_network_architectures.architectures.primus`` module."""
    import_torchvision()
    return importlib.import_module("dynamic_network_architectures.architectures.primus")


def check_primus_patch_size(patch_size: Sequence[int], configuration_name: str = "") -> None:
    """Primus is 3-D with 8x8x8 patch embedding: refuse other patch sizes with one clear line."""
    where = f" of configuration {configuration_name!r}" if configuration_name else ""
    if len(patch_size) != 3:
        raise ConfigurationError(f"Primus trainers need a 3-D configuration; the patch size{where} is "
                                 f"{list(patch_size)}. Use a 3d configuration (e.g. 3d_fullres).")
    if any(p % e for p, e in zip(patch_size, PATCH_EMBED_SIZE)):
        raise ConfigurationError(f"Primus embeds 8x8x8 patches, so every patch-size axis must be divisible by 8; "
                                 f"the patch size{where} is {list(patch_size)}. Edit the plans' patch_size.")


def build_primus(architecture: str, architecture_kwargs: dict[str, Any], num_input_channels: int,
                 num_output_channels: int, patch_size: Sequence[int], configuration_name: str = "") -> torch.nn.Module:
    """A Primus network as nnU-Net's Primus trainers build it.

    Args:
        architecture: class name in dynamic_network_architectures' primus module (``Primus``, ``PrimusV2S``,
            ``PrimusV3M``, ...).
        architecture_kwargs: for ``Primus``, its size (``embed_dim``, ``eva_depth``, ``eva_numheads``); empty
            for the sized V2/V3 classes.
        patch_size: the configuration's patch size (3-D, divisible by 8).
    """
    check_primus_patch_size(patch_size, configuration_name)
    cls = getattr(import_primus(), architecture, None)
    if cls is None:
        raise ConfigurationError(f"dynamic_network_architectures has no {architecture}; Primus V3 needs a newer "
                                 f"dynamic-network-architectures (pip install -U dynamic-network-architectures).")
    common = {"drop_path_rate": 0.2, "scale_attn_inner": True, "init_values": 0.1}
    shape = tuple(int(p) for p in patch_size)
    if architecture == "Primus":
        kw = architecture_kwargs
        return cls(num_input_channels, kw["embed_dim"], PATCH_EMBED_SIZE, num_output_channels, kw["eva_depth"],
                   kw["eva_numheads"], shape, **common)
    return cls(num_input_channels, num_output_channels, patch_embed_size=PATCH_EMBED_SIZE, input_shape=shape,
               **common, **architecture_kwargs)
