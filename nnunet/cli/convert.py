"""``nnUNet_convert_MSD_dataset`` (alias ``nnUNetv2_convert_MSD_dataset``)."""
from __future__ import annotations

import argparse
from typing import Sequence

from nnunet.cli.common import cli_entry, console
from nnunet.constants import default_num_processes


def build_convert_msd_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_convert_MSD_dataset",
        description="Convert a Medical Segmentation Decathlon task folder (TaskXX_Name) into "
                    "$nnUNet_raw/DatasetXXX_Name.")
    parser.add_argument("-i", type=str, required=True,
                        help="extracted MSD task folder, e.g. /data/Task05_Prostate (with dataset.json, imagesTr, "
                             "labelsTr and optionally imagesTs)")
    parser.add_argument("-overwrite_id", type=int, default=None,
                        help="dataset id of the result (default: the task number, e.g. 5 for Task05)")
    parser.add_argument("-np", type=int, default=default_num_processes(),
                        help="number of worker processes (default: %(default)s)")
    parser.add_argument("--no_pbar", action="store_true", help="do not show a progress bar")
    return parser


def _convert_msd(argv: Sequence[str] | None = None) -> int:
    args = build_convert_msd_parser().parse_args(argv)
    from nnunet.io.msd import convert_msd_dataset

    convert_msd_dataset(args.i, args.overwrite_id, args.np, show_progress=not args.no_pbar)
    return 0


convert_msd_main = cli_entry(_convert_msd)
convert_msd_console = console(convert_msd_main)


def build_convert_old_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_convert_old_nnUNet_dataset",
        description="Convert a raw nnU-Net v1 task folder (TaskXXX_Name) into $nnUNet_raw/DatasetXXX_Name: the "
                    "image and label folders are copied unchanged, dataset.json is converted.")
    parser.add_argument("input_folder", type=str,
                        help="the v1 task folder itself, e.g. /old/nnUNet_raw_data_base/nnUNet_raw_data/Task017_Liver "
                             "(the folder with imagesTr/, labelsTr/ and dataset.json); a task name alone is not "
                             "enough")
    parser.add_argument("output_dataset_name", type=str,
                        help="name (not path) of the new dataset, DatasetXXX_Name, e.g. Dataset017_Liver; it is "
                             "written into $nnUNet_raw and must not exist yet")
    return parser


def _convert_old(argv: Sequence[str] | None = None) -> int:
    args = build_convert_old_parser().parse_args(argv)
    from nnunet.io.v1_conversion import convert_v1_dataset

    convert_v1_dataset(args.input_folder, args.output_dataset_name)
    return 0


convert_old_main = cli_entry(_convert_old)
convert_old_console = console(convert_old_main)
