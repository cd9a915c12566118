"""``nnUNet_predict`` and ``nnUNet_predict_from_modelfolder`` (aliases ``nnUNetv2_predict``,
``nnUNetv2_predict_from_modelfolder``): segment images with a trained model."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Iterator, Sequence

from nnunet.cli.common import cli_entry, console, messages_to_console
from nnunet.errors import Interrupted, NnunetError

DEVICES = ("cuda", "cpu", "mps")
BACKENDS = ("torch", "openvino", "onnxruntime")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise NnunetError(f"Environment variable {name} must be an integer, got {value!r}.") from None


def _add_common_args(parser: argparse.ArgumentParser, default_npp: int, default_nps: int) -> None:
    parser.add_argument("-i", required=True, help="input folder with CASE_XXXX<ending> files (one per channel)")
    parser.add_argument("-o", required=True, help="output folder (created if needed)")
    parser.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"],
                        help="folds to ensemble (default: 0 1 2 3 4; 'all' for a model trained on all cases)")
    parser.add_argument("-step_size", type=float, default=0.5,
                        help="sliding-window step as a fraction of the patch size (default: %(default)s; larger is "
                             "faster and slightly less accurate)")
    parser.add_argument("--disable_tta", action="store_true", help="no mirroring test-time augmentation (faster)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print more information, and a line per case with its time and peak memory")
    parser.add_argument("--save_probabilities", action="store_true",
                        help="also write CASE.npz (key 'probabilities') and CASE.pkl, needed for ensembling")
    parser.add_argument("-chk", default="checkpoint_final.pth",
                        help="checkpoint file name in every fold folder (default: %(default)s)")
    parser.add_argument("-npp", type=int, default=default_npp,
                        help="preprocessing processes (default: %(default)s; 0 = in this process)")
    parser.add_argument("-nps", type=int, default=default_nps,
                        help="segmentation export processes (default: %(default)s; 0 = in this process)")
    parser.add_argument("-prev_stage_predictions", default=None,
                        help="folder with the previous stage's predictions (required for cascade configurations)")
    parser.add_argument("-device", default=None,
                        help="cuda, cpu or mps (default: cuda when this machine has it, else cpu)")
    parser.add_argument("-backend", default="torch", choices=BACKENDS,
                        help="what runs the network: torch (default, any device), or openvino / onnxruntime, "
                             "faster on the CPU (optional packages: pip install 'nnunet-fast[openvino]')")
    parser.add_argument("--max_ram_gb", type=float, default=None,
                        help="memory one case may use; larger cases are predicted and exported in slabs "
                             "(default: 70%% of the memory available when the case starts)")
    parser.add_argument("--disable_progress_bar", action="store_true", help="no progress bars")
    parser.add_argument("--not_on_device", action="store_true",
                        help="keep the image and the accumulated logits in CPU memory (for very large images)")


def build_predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_predict",
        description="Segment images with a model in nnUNet_results/DATASET/TRAINER__PLANS__CONFIGURATION.")
    parser.add_argument("-d", required=True, help="dataset id or name")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default: %(default)s)")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer class used for training (default: %(default)s)")
    parser.add_argument("-c", required=True, help="configuration, e.g. 3d_fullres")
    _add_common_args(parser, _env_int("nnUNet_npp", 3), _env_int("nnUNet_nps", 3))
    parser.add_argument("--continue_prediction", action="store_true",
                        help="keep existing outputs and predict only the missing cases")
    parser.add_argument("-num_parts", type=int, default=1,
                        help="split the cases into this many parts, e.g. one per GPU (default: %(default)s)")
    parser.add_argument("-part_id", type=int, default=0,
                        help="which part this call predicts, counting from 0 (default: %(default)s)")
    return parser


def build_predict_from_modelfolder_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnUNet_predict_from_modelfolder",
                                     description="Segment images with a trained model folder (plans.json, "
                                                 "dataset.json, fold_X/).")
    parser.add_argument("-m", required=True, help="model folder containing plans.json, dataset.json and fold_X/")
    _add_common_args(parser, 3, 3)
    parser.add_argument("--continue_prediction", "--c", action="store_true",
                        help="keep existing outputs and predict only the missing cases")
    return parser


def _check_device(device: str | None) -> None:
    if device is not None and device not in DEVICES:
        raise NnunetError(f"-device must be one of {', '.join(DEVICES)}, got {device!r}.")


def _check_args(args: argparse.Namespace) -> None:
    _check_device(args.device)
    if args.max_ram_gb is not None and args.max_ram_gb <= 0:
        raise NnunetError(f"--max_ram_gb must be a positive number of GB, got {args.max_ram_gb}.")


@contextlib.contextmanager
def messages_to_stderr(verbose: bool) -> Iterator[None]:
    """The package's log messages on stderr, one plain line each: warnings always, info with --verbose."""
    with messages_to_console(logging.INFO if verbose else logging.WARNING, info_stream=sys.stderr):
        yield


def _start_compiling(args: argparse.Namespace, model: str) -> None:
    """Head start for a fast CPU backend: compile the folds' cached conversions while torch is being imported."""
    if args.backend == "torch":
        return
    from pathlib import Path

    from nnunet.inference.runners import prediction_threads, start_compiling_cached

    start_compiling_cached(args.backend, [Path(model) / f"fold_{f}" / args.chk for f in args.f],
                           prediction_threads())


def _run(args: argparse.Namespace, model: str, num_parts: int = 1, part_id: int = 0) -> int:
    _start_compiling(args, model)  # first: the imports below take a while (and load torch unless all is cached)
    from nnunet.inference.api import CITATION, predict_from_model_folder
    from nnunet.models import parse_folds

    print(CITATION)
    try:
        with messages_to_stderr(args.verbose):
            predict_from_model_folder(args.i, args.o, model, parse_folds(args.f), args.chk, args.step_size,
                                      use_mirroring=not args.disable_tta,
                                      save_probabilities=args.save_probabilities,
                                      continue_prediction=args.continue_prediction,
                                      num_processes_preprocessing=args.npp, num_processes_segmentation_export=args.nps,
                                      prev_stage_predictions=args.prev_stage_predictions, num_parts=num_parts,
                                      part_id=part_id, device=args.device,
                                      perform_everything_on_device=not args.not_on_device, verbose=args.verbose,
                                      show_progress=not args.disable_progress_bar, backend=args.backend,
                                      max_ram_gb=args.max_ram_gb)
    except KeyboardInterrupt:
        raise Interrupted("The predictions written so far are complete: add --continue_prediction to the same "
                          "command to predict only the missing cases.") from None
    return 0


@cli_entry
def predict_main(argv: Sequence[str] | None = None) -> int:
    args = build_predict_parser().parse_args(argv)
    _check_args(args)
    if args.num_parts < 1 or not 0 <= args.part_id < args.num_parts:
        raise NnunetError(f"-part_id must be between 0 and -num_parts - 1 (parts are counted from 0); got "
                          f"-part_id {args.part_id} with -num_parts {args.num_parts}.")
    from nnunet.inference.api import model_folder

    folder = model_folder(args.d, args.tr, args.p, args.c)
    return _run(args, str(folder), args.num_parts, args.part_id)


@cli_entry
def predict_from_modelfolder_main(argv: Sequence[str] | None = None) -> int:
    args = build_predict_from_modelfolder_parser().parse_args(argv)
    _check_args(args)
    return _run(args, args.m)


predict_console = console(predict_main, fast_exit=True)
predict_from_modelfolder_console = console(predict_from_modelfolder_main, fast_exit=True)
