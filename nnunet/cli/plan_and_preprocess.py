"""``nnUNet_plan_and_preprocess`` (alias ``nnUNetv2_plan_and_preprocess``): fingerprint, plan, preprocess."""
from __future__ import annotations

import argparse
from typing import Sequence

from nnunet.cli.common import add_progress_args, cli_entry, console
from nnunet.cli.fingerprint import add_fingerprint_args
from nnunet.cli.plan import add_planner_args
from nnunet.cli.preprocess import add_preprocessing_args


def build_plan_and_preprocess_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnUNet_plan_and_preprocess",
                                     description="Extract the fingerprint, plan the experiment and preprocess.")
    parser.add_argument("-d", nargs="+", required=True, help="dataset ids or names")
    add_fingerprint_args(parser, np_flag="-npfp")
    parser.add_argument("--no_pp", action="store_true", help="plan only, do not preprocess")
    add_planner_args(parser)
    add_preprocessing_args(parser)
    add_progress_args(parser)
    return parser


@cli_entry
def plan_and_preprocess_main(argv: Sequence[str] | None = None) -> int:
    args, unknown = build_plan_and_preprocess_parser().parse_known_args(argv)
    if unknown:
        print(f"nnunet: warning: ignoring unknown arguments {unknown}")
    from nnunet.preprocessing.api import processes_per_configuration
    from nnunet.utils.pool import shared_pool

    show_progress = not args.no_pbar
    # a bad -np fails here, before the fingerprint is computed
    preprocessing_processes = 0 if args.no_pp else min(processes_per_configuration(args.c, args.np))
    same_pool = preprocessing_processes == args.num_processes_fingerprint
    # one worker pool for fingerprinting and preprocessing when their process counts agree; otherwise the
    # fingerprint's workers are shut down before preprocessing starts its own
    with shared_pool(args.num_processes_fingerprint):
        plans_identifier = _plan(args, show_progress)
        if same_pool and not args.no_pp:
            _preprocess(args, plans_identifier, show_progress)
    if not same_pool and not args.no_pp:
        with shared_pool(preprocessing_processes):
            _preprocess(args, plans_identifier, show_progress)
    return 0


def _plan(args: argparse.Namespace, show_progress: bool) -> str:
    from nnunet.fingerprint.extract import extract_fingerprints
    from nnunet.planning.api import plan_experiments

    extract_fingerprints(args.d, args.fpe, args.num_processes_fingerprint, args.verify_dataset_integrity,
                         args.clean, args.verbose, show_progress=show_progress)
    return plan_experiments(args.d, args.pl, args.gpu_memory_target, args.preprocessor_name,
                            args.overwrite_target_spacing, args.overwrite_plans_name)


def _preprocess(args: argparse.Namespace, plans_identifier: str, show_progress: bool) -> None:
    from nnunet.preprocessing.api import preprocess

    preprocess(args.d, plans_identifier, args.c, args.np, args.verbose, show_progress=show_progress,
               num_parts=args.num_parts, part_id=args.part_id)


plan_and_preprocess_console = console(plan_and_preprocess_main)
