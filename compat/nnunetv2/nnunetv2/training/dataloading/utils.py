"""nnU-Net 2.8.1's ``unpack_dataset`` on :func:`nnunet.preprocessing.storage.unpack_npz`."""
from __future__ import annotations

from nnunet.preprocessing.storage import unpack_npz
from nnunetv2.configuration import default_num_processes

__all__ = ["unpack_dataset"]


def unpack_dataset(folder: str, unpack_segmentation: bool = True, overwrite_existing: bool = False,
                   num_processes: int = default_num_processes, verify: bool = False) -> None:
    """Write ``{ID}.npy`` and ``{ID}_seg.npy`` next to each ``{ID}.npz`` of ``folder`` (in this process; each file
    is written completely or not at all, so ``verify`` has nothing to check). The segmentation is always unpacked:
    ``unpack_segmentation=False`` is accepted and writes it too."""
    unpack_npz(folder, None, overwrite_existing)
