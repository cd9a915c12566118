"""``nnUNet_train DATASET CONFIGURATION FOLD`` (alias ``nnUNetv2_train``): train one fold of a configuration."""
from __future__ import annotations

import argparse
import os
from typing import Sequence

from nnunet.cli.common import cli_entry, console
from nnunet.errors import ConfigurationError, Interrupted


def build_train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnUNet_train", description="Train one fold of an nnU-Net configuration.")
    parser.add_argument("dataset_name_or_id", help="dataset name (DatasetXXX_Name) or id")
    parser.add_argument("configuration", help="configuration from the plans, e.g. 2d, 3d_fullres, 3d_lowres, "
                                              "3d_cascade_fullres")
    parser.add_argument("fold", help="fold: 0-4 (or any index of your splits_final.json), or 'all'")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer class name (default: %(default)s); custom "
                        "classes are found in folders listed in $nnUNet_extTrainer or as package.module.Class")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default: %(default)s)")
    parser.add_argument("-pretrained_weights", default=None,
                        help="checkpoint to initialise the network from (all weights except the segmentation "
                             "heads; fresh trainings only)")
    parser.add_argument("-num_gpus", type=int, default=1,
                        help="number of GPUs (DDP) on this node (default: %(default)s); for several nodes start "
                             "nnUNet_train with torchrun instead (documentation/multi_node.md)")
    parser.add_argument("--npz", action="store_true", help="save the validation probabilities (.npz) too; needed "
                                                           "for ensembling in model selection")
    parser.add_argument("--c", action="store_true", help="continue the training from its newest checkpoint (under "
                        "torchrun, restarted workers continue without it)")
    parser.add_argument("--val", action="store_true", help="only run the validation (training must be finished)")
    parser.add_argument("--val_best", action="store_true", help="validate with checkpoint_best.pth instead of the "
                                                                 "final checkpoint")
    parser.add_argument("--disable_checkpointing", action="store_true",
                        help="write no checkpoints (for testing)")
    parser.add_argument("-device", default="cuda", choices=["cuda", "cpu", "mps"],
                        help="device to train on (default: %(default)s); select GPUs with CUDA_VISIBLE_DEVICES")
    return parser


def threads_from_environment() -> int | None:
    """``OMP_NUM_THREADS`` as a thread count (its first level when it lists several), or None when unset."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not value:
        return None
    try:
        threads = int(value.split(",")[0])
    except ValueError:
        threads = 0
    if threads < 1:
        raise ConfigurationError(f"OMP_NUM_THREADS must be a positive integer (the threads torch may use per "
                                 f"process), got {value!r}. Set it to a number such as 4, or unset it.")
    return threads


def _set_threads(device: str) -> None:
    """Torch's intra-op threads: ``OMP_NUM_THREADS`` when set (nnU-Net overrides it); otherwise, as nnU-Net, one
    per core on the CPU and one (plus one inter-op thread) with CUDA."""
    import torch

    threads = threads_from_environment()
    if device == "cpu":
        torch.set_num_threads(threads or os.cpu_count() or 1)
    elif device == "cuda":
        torch.set_num_threads(threads or 1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set (or parallel work already started) in this process
            pass
    elif threads is not None:
        torch.set_num_threads(threads)


@cli_entry
def train_main(argv: Sequence[str] | None = None) -> int:
    args = build_train_parser().parse_args(argv)
    from nnunet.training.run import run_training

    _set_threads(args.device)
    try:
        run_training(args.dataset_name_or_id, args.configuration, args.fold, args.tr, args.p,
                     args.pretrained_weights, args.num_gpus, args.npz, args.c, args.val, args.disable_checkpointing,
                     args.val_best, args.device)
    except Interrupted:
        raise  # run_training's note names what is on disk: --c, --val, or nothing to continue from
    except KeyboardInterrupt:
        raise Interrupted("The training had not started yet; nothing was written. Run the same command again.") \
            from None
    return 0


train_console = console(train_main)

if __name__ == "__main__":  # torchrun's target: torchrun ... -m nnunet.cli.train DATASET CONFIGURATION FOLD
    train_console()
