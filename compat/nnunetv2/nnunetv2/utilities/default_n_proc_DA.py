"""nnU-Net 2.8.1's ``get_allowed_n_proc_DA``: the number of augmentation workers (``nnUNet_n_proc_DA``)."""
from __future__ import annotations

from nnunet.training.data.workers import num_processes_for_augmentation as get_allowed_n_proc_DA

__all__ = ["get_allowed_n_proc_DA"]
