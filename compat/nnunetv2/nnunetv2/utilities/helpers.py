"""nnU-Net 2.8.1's small helpers."""
from __future__ import annotations

from contextlib import nullcontext as dummy_context

import torch

__all__ = ["dummy_context", "empty_cache", "softmax_helper_dim0", "softmax_helper_dim1"]


def softmax_helper_dim0(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, 0)


def softmax_helper_dim1(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, 1)


def empty_cache(device: torch.device) -> None:
    """Return cached GPU memory to the driver (CUDA, MPS); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
