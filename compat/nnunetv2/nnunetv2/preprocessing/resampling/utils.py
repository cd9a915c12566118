"""nnU-Net 2.8.1's resampling-function lookup by name, on our registry of resampling functions."""
from __future__ import annotations

from typing import Callable

from nnunet.registry import RESAMPLERS

__all__ = ["recursive_find_resampling_fn_by_name"]


def recursive_find_resampling_fn_by_name(resampling_fn: str) -> Callable:
    found = RESAMPLERS.find(resampling_fn)
    if found is None:
        raise RuntimeError(f"Unable to find resampling function named {resampling_fn!r}; known: "
                           f"{', '.join(sorted(RESAMPLERS.names()))}")
    return found
