"""nnU-Net 2.8.1's ``convert_msd_dataset`` on :func:`nnunet.io.msd.convert_msd_dataset`."""
from __future__ import annotations

from pathlib import Path

from nnunet.cli.convert import convert_msd_main as _convert_msd_main
from nnunet.io import msd as _msd
from nnunetv2._entry import run_command as _run_command
from nnunetv2.configuration import default_num_processes

__all__ = ["convert_msd_dataset", "entry_point", "split_4d_nifti"]


def split_4d_nifti(filename, output_folder):
    """Split a 4-D MSD image ``CASE.nii.gz`` into ``CASE_0000.nii.gz``, ... in ``output_folder``."""
    name = Path(filename).name
    case_id = name[:-len(".nii.gz")] if name.endswith(".nii.gz") else Path(filename).stem
    Path(output_folder).mkdir(parents=True, exist_ok=True)
    _msd.split_4d_image(Path(filename), Path(output_folder), case_id)


def convert_msd_dataset(source_folder: str, overwrite_target_id=None, num_processes: int = default_num_processes) -> None:
    """Convert an extracted MSD task folder (``TaskXX_Name``) into ``nnUNet_raw/DatasetXXX_Name``."""
    _msd.convert_msd_dataset(source_folder, overwrite_target_id, num_processes)


def entry_point():
    _run_command(_convert_msd_main)
