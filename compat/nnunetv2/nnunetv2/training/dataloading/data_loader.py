"""nnU-Net 2.8.1's ``nnUNetDataLoader``: our :class:`~nnunet.training.data.loader.PatchLoader` (the loader our trainer
builds), constructed from 2.8.1's arguments."""
from __future__ import annotations

from typing import List, Tuple, Union

import numpy as np

from nnunet.io.labels import LabelManager
from nnunet.training.data.dataset import PreprocessedDataset
from nnunet.training.data.loader import PatchLoader

__all__ = ["nnUNetDataLoader"]


class nnUNetDataLoader(PatchLoader):  # noqa: N801 - nnU-Net's name
    def __init__(self, data: PreprocessedDataset, batch_size: int,
                 patch_size: Union[List[int], Tuple[int, ...], np.ndarray],
                 final_patch_size: Union[List[int], Tuple[int, ...], np.ndarray], label_manager: LabelManager,
                 oversample_foreground_percent: float = 0.0,
                 sampling_probabilities: Union[List[int], Tuple[int, ...], np.ndarray] = None,
                 pad_sides: Union[List[int], Tuple[int, ...]] = None, probabilistic_oversampling: bool = False,
                 transforms=None):
        if pad_sides is not None:
            raise NotImplementedError("nnUNetDataLoader(pad_sides=...) is not provided by nnunet-fast's nnunetv2 "
                                      "namespace (the padding follows from patch_size - final_patch_size)")
        super().__init__(data, batch_size, patch_size, final_patch_size, label_manager,
                         oversample_foreground_percent, sampling_probabilities, probabilistic_oversampling,
                         transforms)
