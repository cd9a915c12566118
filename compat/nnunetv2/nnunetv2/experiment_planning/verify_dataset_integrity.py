"""nnU-Net 2.8.1's ``verify_dataset_integrity(folder, num_processes)``: ours (:mod:`nnunet.io.integrity`), which
raises one error listing every problem."""
from __future__ import annotations

from nnunet.io.integrity import verify_dataset_integrity as _verify

__all__ = ["verify_dataset_integrity"]


def verify_dataset_integrity(folder: str, num_processes: int = 8) -> None:
    _verify(folder, num_processes)
