"""Model sharing and plans transfer commands (each also under its ``nnUNetv2_*`` name):

* ``nnUNet_move_plans_between_datasets -s SOURCE -t TARGET -sp PLANS [-tp NEW_PLANS]``
* ``nnUNet_export_model_to_zip -d DATASET -o FILE.zip [-c ...] [-tr ...] [-p ...] [-f ...] [-chk ...]``
* ``nnUNet_install_pretrained_model_from_zip FILE.zip``
* ``nnUNet_download_pretrained_model_by_url URL``
"""
from __future__ import annotations

import argparse
from typing import Sequence

from nnunet.cli.common import cli_entry, console


def build_move_plans_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_move_plans_between_datasets",
        description="Copy a plans file to another dataset (e.g. to pre-train on that dataset with the same "
                    "network). Only the dataset name, plans name, data identifiers and image reader/writer are "
                    "adapted; everything else (including the intensity normalization) is kept.")
    parser.add_argument("-s", type=str, required=True, help="source dataset name or id")
    parser.add_argument("-t", type=str, required=True, help="target dataset name or id")
    parser.add_argument("-sp", type=str, required=True,
                        help="source plans identifier (file name without .json, e.g. nnUNetPlans)")
    parser.add_argument("-tp", type=str, default=None,
                        help="target plans identifier (default: the source identifier; better choose a new name such "
                             "as nnUNetPlans_from_DatasetXXX so the target's own plans stay untouched)")
    return parser


@cli_entry
def move_plans_main(argv: Sequence[str] | None = None) -> int:
    args = build_move_plans_parser().parse_args(argv)
    from nnunet.planning.move_plans import move_plans_between_datasets

    move_plans_between_datasets(args.s, args.t, args.sp, args.tp)
    return 0


def build_export_parser() -> argparse.ArgumentParser:
    from nnunet.sharing.export import DEFAULT_CONFIGURATIONS, DEFAULT_FOLDS

    parser = argparse.ArgumentParser(
        prog="nnUNet_export_model_to_zip",
        description="Pack trained models of a dataset (checkpoints, plans, dataset.json, validation summaries, "
                    "ensembles, inference instructions) into a zip that nnUNet_install_pretrained_model_from_zip "
                    "installs elsewhere.")
    parser.add_argument("-d", type=str, required=True, help="dataset name or id")
    parser.add_argument("-o", type=str, required=True, help="output zip file (must not exist)")
    parser.add_argument("-c", nargs="+", type=str, default=list(DEFAULT_CONFIGURATIONS),
                        help="configurations to export (default: %(default)s)")
    parser.add_argument("-tr", type=str, default="nnUNetTrainer", help="trainer class (default: %(default)s)")
    parser.add_argument("-p", type=str, default="nnUNetPlans", help="plans identifier (default: %(default)s)")
    parser.add_argument("-f", nargs="+", type=str, default=[str(f) for f in DEFAULT_FOLDS],
                        help="folds to export, integers or 'all' (default: %(default)s)")
    parser.add_argument("-chk", nargs="+", type=str, default=["checkpoint_final.pth"],
                        help="checkpoint files to export per fold (default: %(default)s)")
    parser.add_argument("--not_strict", action="store_true",
                        help="skip missing configurations, folds and checkpoints instead of failing")
    parser.add_argument("--exp_cv_preds", action="store_true",
                        help="also export the cross-validation predictions (not the .npz/.pkl probabilities)")
    return parser


@cli_entry
def export_main(argv: Sequence[str] | None = None) -> int:
    args = build_export_parser().parse_args(argv)
    from nnunet.sharing.export import export_pretrained_model

    export_pretrained_model(args.d, args.o, configurations=args.c, trainer=args.tr, plans_identifier=args.p,
                            folds=args.f, strict=not args.not_strict, save_checkpoints=args.chk,
                            export_crossval_predictions=args.exp_cv_preds)
    return 0


def _add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing files in nnUNet_results that differ from the zip (default: refuse and "
                             "write nothing)")


def build_install_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_install_pretrained_model_from_zip",
        description="Install a model zip (made by nnUNet_export_model_to_zip) into $nnUNet_results. Zips with "
                    "entries that would land outside nnUNet_results are refused.")
    parser.add_argument("zip", type=str, help="zip file")
    _add_overwrite(parser)
    return parser


@cli_entry
def install_main(argv: Sequence[str] | None = None) -> int:
    args = build_install_parser().parse_args(argv)
    from nnunet.sharing.install import install_model_from_zip_file

    install_model_from_zip_file(args.zip, overwrite=args.overwrite)
    return 0


def build_download_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_download_pretrained_model_by_url",
        description="Download a model zip and install it into $nnUNet_results (the download is deleted "
                    "afterwards). Check the license of the data the model was trained on before using it.")
    parser.add_argument("url", type=str, help="URL of the model zip (http, https, ftp or file)")
    _add_overwrite(parser)
    parser.add_argument("--no_pbar", action="store_true", help="do not show a progress bar")
    return parser


@cli_entry
def download_main(argv: Sequence[str] | None = None) -> int:
    args = build_download_parser().parse_args(argv)
    from nnunet.sharing.install import download_and_install_from_url

    download_and_install_from_url(args.url, overwrite=args.overwrite, show_progress=not args.no_pbar)
    return 0


move_plans_console = console(move_plans_main)
export_console = console(export_main)
install_console = console(install_main)
download_console = console(download_main)
