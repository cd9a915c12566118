"""nnU-Net 2.8.1's preprocessed-dataset classes on :class:`nnunet.training.data.dataset.PreprocessedDataset`.

Ours reads both formats (``.b2nd`` and the legacy ``.npz``/``.npy``), so ``nnUNetDatasetBlosc2`` and
``nnUNetDatasetNumpy`` differ only by name; ``infer_dataset_class`` picks one from the files of a folder, as a
trainer's own ``get_tr_and_val_datasets`` does in 2.8.1. Writing cases (``save_case``/``save_seg``) is
preprocessing's job here and not offered.
"""
from __future__ import annotations

from typing import List, Type, Union

from nnunet.preprocessing.storage import case_ids
from nnunet.training.data.dataset import PreprocessedDataset, dataset_format
from nnunetv2.configuration import default_num_processes
from nnunetv2.training.dataloading.utils import unpack_dataset as _unpack_dataset

__all__ = ["file_ending_dataset_mapping", "infer_dataset_class", "nnUNetBaseDataset", "nnUNetDatasetBlosc2",
           "nnUNetDatasetNumpy"]


class nnUNetBaseDataset(PreprocessedDataset):  # noqa: N801 - nnU-Net's name
    def __init__(self, folder: str, identifiers: List[str] = None, folder_with_segs_from_previous_stage: str = None):
        super().__init__(folder, None if identifiers is None else sorted(identifiers),
                         folder_with_segs_from_previous_stage)

    @property
    def source_folder(self) -> str:
        return str(self.folder)

    @property
    def folder_with_segs_from_previous_stage(self) -> str | None:
        return None if self.prev_stage_folder is None else str(self.prev_stage_folder)

    def __getitem__(self, identifier: str):
        return self.load_case(identifier)

    @staticmethod
    def get_identifiers(folder: str) -> List[str]:
        return case_ids(folder)

    @staticmethod
    def unpack_dataset(folder: str, overwrite_existing: bool = False, num_processes: int = default_num_processes,
                       verify: bool = True):
        _unpack_dataset(folder, True, overwrite_existing, num_processes, verify)


class nnUNetDatasetNumpy(nnUNetBaseDataset):  # noqa: N801 - nnU-Net's name
    pass


class nnUNetDatasetBlosc2(nnUNetBaseDataset):  # noqa: N801 - nnU-Net's name
    pass


file_ending_dataset_mapping = {"npz": nnUNetDatasetNumpy, "b2nd": nnUNetDatasetBlosc2}


def infer_dataset_class(folder: str) -> Union[Type[nnUNetDatasetBlosc2], Type[nnUNetDatasetNumpy]]:
    """The class for the format of the preprocessed cases in ``folder`` (a mixture of formats is an error)."""
    return file_ending_dataset_mapping[dataset_format(folder)]
