"""nnU-Net 2.8.1's ``nnunetv2.configuration``: constants read once, at import, as 2.8.1 reads them.

``default_num_processes`` is an int here (``nnUNet_def_n_proc``, else 8); :func:`nnunet.constants.default_num_processes`
is the function behind it, which reads the variable at every call.
"""
from __future__ import annotations

from nnunet.constants import ANISO_THRESHOLD
from nnunet.constants import default_num_processes as _default_num_processes
from nnunet.training.data.workers import num_processes_for_augmentation as _num_processes_for_augmentation

__all__ = ["ANISO_THRESHOLD", "default_n_proc_DA", "default_num_processes"]

default_num_processes: int = _default_num_processes()

#: data-augmentation workers (``nnUNet_n_proc_DA``, else 12, at most the CPU count)
default_n_proc_DA: int = _num_processes_for_augmentation()
