"""nnU-Net 2.8.1's Primus trainers (``nnUNet_Primus_S_Trainer``, ...): ours, from the trainer registry."""
from __future__ import annotations

from nnunet.registry import TRAINERS


def __getattr__(name: str):
    found = TRAINERS.find(name) if not name.startswith("__") else None
    if found is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return found
