"""``run_training``: the Python API behind ``nnUNet_train``.

Finds the trainer class by name, constructs it from the preprocessed plans and dataset.json, resumes or loads
pretrained weights as asked, trains, and runs the final validation. With ``num_gpus > 1`` one process per GPU
is spawned (DDP; gloo backend when training on the CPU).
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable

import torch

from nnunet.errors import ConfigurationError, NnunetError
from nnunet.io.naming import preprocessed_dataset_folder
from nnunet.planning.plans import Plans
from nnunet.training.checkpoint import load_checkpoint_file, strip_module_prefixes
from nnunet.training.wandb_logger import wandb_enabled
from nnunet.utils.json import load_json


def parse_fold(fold: int | str) -> int | str:
    """``"all"`` stays a string; anything else must be a non-negative integer."""
    if fold == "all":
        return fold
    try:
        value = int(fold)
    except (TypeError, ValueError):
        raise ConfigurationError(f"fold must be an integer or 'all', got {fold!r}.") from None
    if value < 0:
        raise ConfigurationError(f"fold must be >= 0, got {value}.")
    return value


def trainer_class(name: str) -> type:
    """The trainer class registered (or found in ``nnUNet_extTrainer`` folders) under ``name``."""
    from nnunet.registry import TRAINERS
    from nnunet.training.trainer import nnUNetTrainer

    cls = TRAINERS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, nnUNetTrainer)):
        raise ConfigurationError(f"{name!r} is not a subclass of nnUNetTrainer and cannot be used with -tr.")
    return cls


def get_trainer_from_args(dataset_name_or_id: int | str, configuration: str, fold: int | str,
                          trainer_name: str = "nnUNetTrainer", plans_identifier: str = "nnUNetPlans",
                          device: torch.device = torch.device("cuda")):
    """Construct the trainer for a dataset/configuration/fold from the files in ``nnUNet_preprocessed``."""
    cls = trainer_class(trainer_name)
    folder = preprocessed_dataset_folder(dataset_name_or_id)
    plans_file = folder / f"{plans_identifier}.json"
    if not plans_file.is_file():
        raise ConfigurationError(f"Plans file {plans_file} not found. Run nnUNet_plan_and_preprocess first, or "
                                 f"check -p.")
    plans = Plans.load(plans_file, dataset_name=folder.name).data  # refuses another dataset's or malformed plans
    if configuration not in plans.get("configurations", {}):
        raise ConfigurationError(f"Configuration {configuration!r} is not in {plans_file}. Available: "
                                 f"{', '.join(plans.get('configurations', {}))}.")
    dataset_json_file = folder / "dataset.json"
    if not dataset_json_file.is_file():
        raise ConfigurationError(f"{dataset_json_file} not found; it is written by nnUNet_plan_experiment.")
    return cls(plans=plans, configuration=configuration, fold=parse_fold(fold),
               dataset_json=load_json(dataset_json_file), device=device)


#: substrings of state-dict keys that are never transferred from pretrained weights (the segmentation heads,
#: whose shape depends on the number of classes)
PRETRAINED_SKIP_KEYS = (".seg_layers.",)


def _is_skipped(key: str) -> bool:
    return any(s in key for s in PRETRAINED_SKIP_KEYS)


def load_pretrained_weights(network: torch.nn.Module, path: str | os.PathLike, verbose: bool = False,
                            log: Callable[[str], Any] = print) -> list[str]:
    """Copy all weights except the segmentation heads from a checkpoint (``-pretrained_weights``).

    Rules (as nnU-Net): keys containing ``.seg_layers.`` are skipped; every other key of the network must be in
    the checkpoint's ``network_weights`` with the same shape, otherwise nothing is loaded. Keys of the checkpoint
    that the network does not have are ignored. ``module.``/``_orig_mod.`` prefixes (DDP, torch.compile) are
    removed from the checkpoint's keys first.

    Returns:
        The transferred keys.

    Raises:
        NnunetError: unreadable file, no ``network_weights``, or missing/mis-shaped keys (all listed with shapes).
    """
    from nnunet.networks.from_plans import unwrap

    checkpoint = load_checkpoint_file(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("network_weights"), dict):
        raise NnunetError(f"{path} is not an nnU-Net checkpoint: it has no 'network_weights' state dict.")
    pretrained = strip_module_prefixes(checkpoint["network_weights"])
    module = unwrap(network)
    own = module.state_dict()
    missing, mismatched = [], []
    for key, value in own.items():
        if _is_skipped(key):
            continue
        if key not in pretrained:
            missing.append(f"  {key} {tuple(value.shape)}: missing in the checkpoint")
        elif tuple(pretrained[key].shape) != tuple(value.shape):
            mismatched.append(f"  {key}: checkpoint {tuple(pretrained[key].shape)}, network {tuple(value.shape)}")
    if missing or mismatched:
        problems = mismatched + missing
        shown = problems[:40]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise NnunetError(
            f"The pretrained weights in {path} do not fit this network ({len(mismatched)} key(s) with another "
            f"shape, {len(missing)} missing; segmentation heads '.seg_layers.' are exempt). Pretraining must use "
            f"the same plans (architecture, patch size, input channels); see nnUNet_move_plans_between_datasets.\n"
            + "\n".join(shown) + more)
    transferred = {k: v for k, v in pretrained.items() if k in own and not _is_skipped(k)}
    own.update(transferred)
    log(f"Pretrained weights from {path}: {len(transferred)} tensors transferred, segmentation heads left "
        f"freshly initialised.")
    if verbose:
        log("Transferred tensors:\n" + "\n".join(f"  {k} {tuple(v.shape)}" for k, v in transferred.items()))
    module.load_state_dict(own)
    return list(transferred)


def maybe_load_checkpoint(trainer, continue_training: bool, validation_only: bool,
                          pretrained_weights: str | None = None) -> None:
    """Resume (final > latest > best), load the final checkpoint for ``--val``, or load pretrained weights."""
    if continue_training and pretrained_weights is not None:
        raise ConfigurationError("Cannot both continue a training (--c) and start from pretrained weights.")
    folder = trainer.output_folder
    checkpoint = None
    if continue_training:
        for name in ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth"):
            if (folder / name).is_file():
                checkpoint = folder / name
                break
        if checkpoint is None:
            trainer.print_to_log_file("WARNING: Cannot continue training because there seems to be no checkpoint "
                                      "available to continue from. Starting a new training...")
    elif validation_only:
        checkpoint = folder / "checkpoint_final.pth"
        if not checkpoint.is_file():
            raise NnunetError(f"Cannot run validation because the training is not finished yet ({checkpoint} does "
                              f"not exist).")
    elif pretrained_weights is not None:
        if not trainer.was_initialized:
            trainer.initialize()
        load_pretrained_weights(trainer.network, pretrained_weights, verbose=True, log=trainer.print_to_log_file)
    if checkpoint is not None:
        trainer.print_to_log_file(f"Loading {checkpoint}")
        trainer.load_checkpoint(checkpoint)


def _train_and_validate(trainer, continue_training: bool, only_run_validation: bool, pretrained_weights: str | None,
                        val_with_best: bool, export_validation_probabilities: bool, run_validation: bool) -> None:
    maybe_load_checkpoint(trainer, continue_training, only_run_validation, pretrained_weights)
    if not only_run_validation:
        trainer.run_training()
    if val_with_best:
        trainer.load_checkpoint(trainer.output_folder / "checkpoint_best.pth")
    if run_validation:
        trainer.perform_actual_validation(export_validation_probabilities)


def run_training(dataset_name_or_id: int | str, configuration: str, fold: int | str,
                 trainer_class_name: str = "nnUNetTrainer", plans_identifier: str = "nnUNetPlans",
                 pretrained_weights: str | None = None, num_gpus: int = 1,
                 export_validation_probabilities: bool = False, continue_training: bool = False,
                 only_run_validation: bool = False, disable_checkpointing: bool = False, val_with_best: bool = False,
                 device: torch.device | str = torch.device("cuda"), run_validation: bool = True) -> None:
    """Train one fold (and validate it), like ``nnUNetv2_train``.

    Args:
        dataset_name_or_id: ``DatasetXXX_Name`` or its integer id.
        configuration: configuration name from the plans.
        fold: 0..k or ``"all"``.
        trainer_class_name: registered trainer (``-tr``).
        plans_identifier: plans file name without ``.json`` (``-p``).
        pretrained_weights: checkpoint to initialise from (fresh runs only).
        num_gpus: processes for DDP training.
        export_validation_probabilities: also save validation probabilities (``--npz``).
        continue_training: resume from the newest checkpoint (``--c``).
        only_run_validation: skip training, validate ``checkpoint_final.pth`` (``--val``).
        disable_checkpointing: write no checkpoints.
        val_with_best: validate with ``checkpoint_best.pth``.
        device: ``cuda``, ``cpu`` or ``mps``.
        run_validation: run the full-case validation at the end (our addition; default True as in nnU-Net).
    """
    fold = parse_fold(fold)
    device = torch.device(device)
    if continue_training and only_run_validation:
        raise ConfigurationError("--c and --val cannot be used together.")
    if val_with_best and disable_checkpointing:
        raise ConfigurationError("--val_best cannot be used with --disable_checkpointing (no checkpoint_best.pth).")
    if pretrained_weights is not None and not Path(pretrained_weights).is_file():
        raise NnunetError(f"Pretrained weights file {pretrained_weights} does not exist.")
    wandb_enabled()  # a malformed nnUNet_wandb_enabled fails here, before any work
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NnunetError("CUDA was requested but is not available on this machine; use -device cpu.")
    if plans_identifier == "nnUNetPlans":
        print("Using the default nnUNetPlans. The residual-encoder presets (nnUNetResEncUNet{M,L,XL}Plans) are "
              "recommended for better results; see the ResEnc documentation.")
    args = (dataset_name_or_id, configuration, fold, trainer_class_name, plans_identifier, pretrained_weights,
            export_validation_probabilities, continue_training, only_run_validation, disable_checkpointing,
            val_with_best, device, run_validation)
    if num_gpus > 1:
        if device.type == "cuda" and torch.cuda.device_count() < num_gpus:
            raise NnunetError(f"-num_gpus {num_gpus} requested but only {torch.cuda.device_count()} GPUs are "
                              f"visible.")
        os.environ.setdefault("MASTER_ADDR", "localhost")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        import torch.multiprocessing as mp

        mp.spawn(_ddp_worker, args=(num_gpus, *args), nprocs=num_gpus, join=True)
        return
    _run_single(*args)


def _run_single(dataset_name_or_id, configuration, fold, trainer_class_name, plans_identifier, pretrained_weights,
                export_validation_probabilities, continue_training, only_run_validation, disable_checkpointing,
                val_with_best, device, run_validation) -> Any:
    trainer = get_trainer_from_args(dataset_name_or_id, configuration, fold, trainer_class_name, plans_identifier,
                                    device)
    if disable_checkpointing:
        trainer.disable_checkpointing = True
    if wandb_enabled():
        trainer.enable_wandb(resume=continue_training)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
    _train_and_validate(trainer, continue_training, only_run_validation, pretrained_weights, val_with_best,
                        export_validation_probabilities, run_validation)
    return trainer


def _ddp_worker(rank: int, world_size: int, *args) -> None:
    import torch.distributed as dist

    device = args[11]
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        if device.type == "cuda":
            torch.cuda.set_device(torch.device("cuda", rank))
        _run_single(*args)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]
