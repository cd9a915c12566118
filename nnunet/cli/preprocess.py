"""``nnUNet_preprocess`` (alias ``nnUNetv2_preprocess``): preprocessed data for configurations of a plans file."""
from __future__ import annotations

import argparse
from typing import Sequence

from nnunet.cli.common import add_progress_args, cli_entry, console


def add_preprocessing_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", nargs="+", default=["2d", "3d_fullres", "3d_lowres"],
                        help="configurations to preprocess (default: %(default)s); 3d_cascade_fullres needs none")
    parser.add_argument("-np", type=int, nargs="+", default=None,
                        help="processes: one value, or one per configuration (default: 8 for 2d and 3d_lowres, "
                             "4 otherwise). The configurations are preprocessed in one pass over the cases, with the "
                             "smallest of these values. Large images need a lot of RAM per process: lower it if you "
                             "run out")
    parser.add_argument("-num_parts", type=int, default=1,
                        help="split the cases into this many parts, e.g. one per node, all writing into the same "
                             "nnUNet_preprocessed folder (default: %(default)s)")
    parser.add_argument("-part_id", type=int, default=0,
                        help="which part this run preprocesses: 0 ... num_parts-1. The part that completes the "
                             "last case swaps the new data in; running a part again skips its finished cases")


def build_preprocess_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnUNet_preprocess",
                                     description="Preprocess (crop, normalize, resample) the training cases.")
    parser.add_argument("-d", nargs="+", required=True, help="dataset ids or names")
    parser.add_argument("-plans_name", default="nnUNetPlans", help="plans identifier (default: %(default)s)")
    add_preprocessing_args(parser)
    add_progress_args(parser)
    return parser


@cli_entry
def preprocess_main(argv: Sequence[str] | None = None) -> int:
    args, unknown = build_preprocess_parser().parse_known_args(argv)
    if unknown:
        print(f"nnunet: warning: ignoring unknown arguments {unknown}")
    from nnunet.preprocessing.api import preprocess, processes_per_configuration
    from nnunet.utils.pool import shared_pool

    # configurations run together with the smallest of their process counts; one pool serves every dataset
    with shared_pool(min(processes_per_configuration(args.c, args.np))):
        preprocess(args.d, args.plans_name, args.c, args.np, args.verbose, show_progress=not args.no_pbar,
                   num_parts=args.num_parts, part_id=args.part_id)
    return 0


preprocess_console = console(preprocess_main)
