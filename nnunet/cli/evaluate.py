"""``nnUNet_evaluate_folder`` and ``nnUNet_evaluate_simple`` (aliases ``nnUNetv2_*``): write summary.json."""
from __future__ import annotations

import argparse
from typing import Sequence

from nnunet.cli.common import cli_entry, console
from nnunet.constants import default_num_processes


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gt_folder", help="folder with the reference segmentations")
    parser.add_argument("pred_folder", help="folder with the predicted segmentations")
    parser.add_argument("-o", default=None, help="output .json file (default: PRED_FOLDER/summary.json)")
    parser.add_argument("-np", type=int, default=default_num_processes(),
                        help="number of processes (default: %(default)s)")
    parser.add_argument("--chill", action="store_true",
                        help="evaluate only the predicted cases instead of failing when a reference has no "
                             "prediction")
    parser.add_argument("--no_pbar", action="store_true", help="do not show a progress bar")


def build_evaluate_folder_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_evaluate_folder",
        description="Dice, IoU and voxel counts of every prediction against its reference, with the labels or "
                    "regions and the ignore label of dataset.json.")
    _add_common(parser)
    parser.add_argument("-djfile", required=True, help="dataset.json file")
    parser.add_argument("-pfile", required=True, help="plans.json file")
    return parser


def build_evaluate_simple_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_evaluate_simple",
        description="Dice, IoU and voxel counts of every prediction against its reference, for the given labels.")
    _add_common(parser)
    parser.add_argument("-l", type=int, nargs="+", required=True, help="labels to evaluate")
    parser.add_argument("-il", type=int, default=None, help="ignore label (default: none)")
    return parser


def _print_result(summary: dict, output_file: str) -> None:
    dice = summary["foreground_mean"]["Dice"]
    per_label = ", ".join(f"{k}: {v['Dice']:.4f}" for k, v in summary["mean"].items())
    print(f"Mean Dice per label/region: {per_label}")
    print(f"Foreground mean Dice: {dice:.4f} ({len(summary['metric_per_case'])} cases). Written to {output_file}")


def _output_file(args: argparse.Namespace) -> str:
    import os

    return args.o if args.o is not None else os.path.join(args.pred_folder, "summary.json")


def _evaluate_folder(argv: Sequence[str] | None = None) -> int:
    args = build_evaluate_folder_parser().parse_args(argv)
    from nnunet.evaluation.evaluate import evaluate_folder

    output = _output_file(args)
    summary = evaluate_folder(args.gt_folder, args.pred_folder, args.djfile, args.pfile, output, args.np,
                              chill=args.chill, show_progress=not args.no_pbar)
    _print_result(summary, output)
    return 0


def _evaluate_simple(argv: Sequence[str] | None = None) -> int:
    args = build_evaluate_simple_parser().parse_args(argv)
    from nnunet.evaluation.evaluate import evaluate_simple

    output = _output_file(args)
    summary = evaluate_simple(args.gt_folder, args.pred_folder, args.l, output, args.np, ignore_label=args.il,
                              chill=args.chill, show_progress=not args.no_pbar)
    _print_result(summary, output)
    return 0


evaluate_folder_main = cli_entry(_evaluate_folder)
evaluate_simple_main = cli_entry(_evaluate_simple)
evaluate_folder_console = console(evaluate_folder_main)
evaluate_simple_console = console(evaluate_simple_main)


def build_accumulate_crossval_results_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_accumulate_crossval_results",
        description="Copy the validation predictions of all folds of a trained model into one folder and "
                    "evaluate them.")
    parser.add_argument("dataset_name_or_id", help="dataset name or id")
    parser.add_argument("-c", required=True, help="configuration")
    parser.add_argument("-o", default=None,
                        help="output folder (default: MODEL_FOLDER/crossval_results_folds_F0_F1_...); must be empty "
                             "or absent")
    parser.add_argument("-f", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="folds (default: 0 1 2 3 4)")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default: %(default)s)")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer class (default: %(default)s)")
    parser.add_argument("-np", type=int, default=default_num_processes(),
                        help="number of processes (default: %(default)s)")
    return parser


def _accumulate(argv: Sequence[str] | None = None) -> int:
    args = build_accumulate_crossval_results_parser().parse_args(argv)
    import os

    from nnunet import paths
    from nnunet.errors import NnunetError
    from nnunet.evaluation.accumulate_cv_results import accumulate_cv_results, default_merged_folder
    from nnunet.evaluation.evaluate import load_summary_json
    from nnunet.io.naming import resolve_dataset_name
    from nnunet.models.folder import model_folder_name

    dataset = resolve_dataset_name(args.dataset_name_or_id)
    model = paths.results_root() / dataset / model_folder_name(args.tr, args.p, args.c)
    if args.o is None:
        merged = default_merged_folder(model, args.f)
    else:
        merged = args.o
        if os.path.isdir(merged) and os.listdir(merged):
            raise NnunetError(f"Output folder {merged} exists and is not empty; give an empty or new folder.")
    merged = accumulate_cv_results(model, merged, args.f, args.np)
    dice = load_summary_json(merged / "summary.json")["foreground_mean"]["Dice"]
    print(f"Cross-validation foreground mean Dice: {dice:.4f}. Results in {merged}")
    return 0


accumulate_crossval_results_main = cli_entry(_accumulate)
accumulate_crossval_results_console = console(accumulate_crossval_results_main)
