"""Reading a checkpoint (nnU-Net's format) and checking that it is one."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nnunet.errors import ConfigurationError, NnunetError


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's dict; a ConfigurationError for an unreadable file or one that is not a checkpoint."""
    from nnunet.networks.checkpoint_files import load_checkpoint_file  # imports torch: only when a checkpoint is read

    try:
        checkpoint = load_checkpoint_file(path)
    except NnunetError as e:
        raise ConfigurationError(f"{e} Is the file complete (copy or download it again)?") from None
    if not isinstance(checkpoint, dict):
        raise ConfigurationError(f"{path} is not an nnU-Net checkpoint (it holds a {type(checkpoint).__name__}).")
    for key in ("network_weights", "trainer_name", "init_args"):
        if key not in checkpoint:
            raise ConfigurationError(f"{path} is not an nnU-Net checkpoint (no {key!r}).")
    return checkpoint


def mirror_axes_of(checkpoint: dict[str, Any]) -> tuple[int, ...] | None:
    """The checkpoint's ``inference_allowed_mirroring_axes`` as a tuple (None: the checkpoint does not say)."""
    axes = checkpoint.get("inference_allowed_mirroring_axes")
    return tuple(axes) if axes is not None else None


def read_network_weights(path: Path) -> dict[str, Any]:
    """Only the network weights of a checkpoint (as pretrained weights are read), without the ``module.`` and
    ``_orig_mod.`` prefixes of DDP and torch.compile; a ConfigurationError for a file without them."""
    from nnunet.networks.checkpoint_files import load_checkpoint_file, strip_module_prefixes  # imports torch

    checkpoint = load_checkpoint_file(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("network_weights"), dict):
        raise ConfigurationError(f"{path} is not an nnU-Net checkpoint: it has no 'network_weights' state dict.")
    return strip_module_prefixes(checkpoint["network_weights"])
