"""``nnUNet_plot_overlay_pngs`` (alias ``nnUNetv2_plot_overlay_pngs``): one overlay PNG per training case."""
from __future__ import annotations

import argparse
from typing import Sequence

from nnunet.cli.common import cli_entry, console
from nnunet.constants import default_num_processes


def build_overlay_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnUNet_plot_overlay_pngs",
        description="Write {ID}.png for every training case: the slice with the most foreground, with the labels "
                    "painted over the image. Spacing is ignored (one voxel = one pixel).")
    parser.add_argument("-d", type=str, required=True, help="dataset name or id")
    parser.add_argument("-o", type=str, required=True, help="output folder (created if needed)")
    parser.add_argument("-np", type=int, default=default_num_processes(),
                        help="number of worker processes (default: %(default)s)")
    parser.add_argument("-channel_idx", type=int, default=0,
                        help="input channel shown (0 = _0000) (default: %(default)s)")
    parser.add_argument("--use_raw", action="store_true",
                        help="use the raw dataset instead of the preprocessed data")
    parser.add_argument("-p", type=str, default="nnUNetPlans",
                        help="plans identifier, preprocessed data only (default: %(default)s)")
    parser.add_argument("-c", type=str, default=None,
                        help="configuration, preprocessed data only (default: 3d_fullres if the plans have it, "
                             "else 2d)")
    parser.add_argument("-overlay_intensity", type=float, default=0.6,
                        help="weight of the label colours; higher = more opaque (default: %(default)s)")
    parser.add_argument("--no_pbar", action="store_true", help="do not show a progress bar")
    return parser


def _overlay(argv: Sequence[str] | None = None) -> int:
    args = build_overlay_parser().parse_args(argv)
    from nnunet.visualization.overlay import generate_overlays_from_preprocessed, generate_overlays_from_raw

    if args.use_raw:
        written = generate_overlays_from_raw(args.d, args.o, args.np, args.channel_idx, args.overlay_intensity,
                                             show_progress=not args.no_pbar)
    else:
        written = generate_overlays_from_preprocessed(args.d, args.o, args.np, args.channel_idx, args.c, args.p,
                                                      args.overlay_intensity, show_progress=not args.no_pbar)
    print(f"Wrote {len(written)} overlay PNGs to {args.o}.")
    return 0


overlay_main = cli_entry(_overlay)
overlay_console = console(overlay_main)
