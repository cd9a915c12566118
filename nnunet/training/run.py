"""``run_training``: the Python API behind ``nnUNet_train``.

Finds the trainer class by name, constructs it from the preprocessed plans and dataset.json, resumes or loads
pretrained weights as asked, trains, and runs the final validation. With ``num_gpus > 1`` one process per GPU
is spawned (DDP; gloo backend when training on the CPU). Started by torchrun (RANK / WORLD_SIZE / LOCAL_RANK set),
every process joins torchrun's group instead, on as many nodes as torchrun spans, and a group that torchrun's
elastic agent restarted continues from the newest checkpoint by itself (see documentation/multi_node.md).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

from nnunet.errors import ConfigurationError, Interrupted, NnunetError
from nnunet.io.naming import preprocessed_dataset_folder
from nnunet.models.checkpoint import read_network_weights
from nnunet.models.folder import model_folder_name
from nnunet.networks.from_plans import network_class_exists, unwrap
from nnunet.paths import results_root
from nnunet.planning.plans import Plans
from nnunet.planning.plans_rules import num_image_channels
from nnunet.registry import TRAINERS
from nnunet.training import ddp
from nnunet.training.data.splits import SPLITS_FILE
from nnunet.training.resume import checkpoint_to_continue, interrupt_note
from nnunet.training.wandb_logger import wandb_enabled
from nnunet.utils.json import load_json
from nnunet.utils.lifeline import exit_with_parent

logger = logging.getLogger(__name__)


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
    from nnunet.training.trainer import nnUNetTrainer  # the trainer's stack (augmentation, losses) only when used

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
    dataset_json_file = folder / "dataset.json"
    if not dataset_json_file.is_file():
        raise ConfigurationError(f"{dataset_json_file} not found; it is written by nnUNet_plan_experiment.")
    dataset_json = load_json(dataset_json_file)
    channels = num_image_channels(dataset_json)
    plans = Plans.load(plans_file, dataset_name=folder.name)
    if configuration not in plans.available_configurations:
        raise ConfigurationError(f"Configuration {configuration!r} is not in {plans_file}. Available: "
                                 f"{', '.join(plans.available_configurations)}.")
    # every problem of a hand-edited configuration now, in one message, rather than a KeyError mid-training
    plans.checked_configuration(configuration, "train", channels, plans_network=cls.builds_network_from_plans(),
                                network_class_exists=network_class_exists)
    return cls(plans=plans.data, configuration=configuration, fold=parse_fold(fold), dataset_json=dataset_json,
               device=device)


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
    pretrained = read_network_weights(path)
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


def _rank0_choice(choose: Callable[[], Any]) -> Any:
    """``choose()`` evaluated on rank 0 only and shared with all ranks, so that every rank acts on the same file
    even where a shared file system shows the ranks different views for a moment."""
    return ddp.broadcast_object(choose() if ddp.rank_and_world()[0] == 0 else None)


def maybe_load_checkpoint(trainer, continue_training: bool, validation_only: bool,
                          pretrained_weights: str | None = None, elastic_restart: bool = False) -> None:
    """Resume (final > latest > best), load the final checkpoint for ``--val``, or load pretrained weights.

    ``elastic_restart``: torchrun restarted the workers; continue like ``--c`` when a checkpoint exists, else start
    as the original command did (with its pretrained weights).
    """
    if continue_training and pretrained_weights is not None:
        raise ConfigurationError("Cannot both continue a training (--c) and start from pretrained weights.")
    if trainer.output_folder is None:
        results_root()  # raises the error that names nnUNet_results and how to set it
    folder = trainer.output_folder
    checkpoint = None
    if validation_only:
        checkpoint = folder / "checkpoint_final.pth"
        if not checkpoint.is_file():
            where = "" if folder.is_dir() else f" (there is no training output in {folder} at all: check -tr, -p, " \
                                               f"the fold and nnUNet_results)"
            raise NnunetError(f"Cannot run validation because the training is not finished yet ({checkpoint} does "
                              f"not exist){where}.")
    elif continue_training or elastic_restart:
        checkpoint = _rank0_choice(lambda: checkpoint_to_continue(folder))
        if checkpoint is None and continue_training:
            trainer.print_to_log_file("WARNING: Cannot continue training because there seems to be no checkpoint "
                                      "available to continue from. Starting a new training...")
        elif checkpoint is None:
            trainer.print_to_log_file("No checkpoint to continue from yet: starting the training from the beginning.")
    if checkpoint is None and pretrained_weights is not None:
        if not trainer.was_initialized:
            trainer.initialize()
        load_pretrained_weights(trainer.network, pretrained_weights, verbose=True, log=trainer.print_to_log_file)
    if checkpoint is not None:
        trainer.print_to_log_file(f"Loading {checkpoint}")
        trainer.load_checkpoint(checkpoint)


def _train_and_validate(trainer, continue_training: bool, only_run_validation: bool, pretrained_weights: str | None,
                        val_with_best: bool, export_validation_probabilities: bool, run_validation: bool,
                        elastic_restart: bool = False) -> None:
    phase = "validation" if only_run_validation else "training"
    first_epoch = None
    try:
        maybe_load_checkpoint(trainer, continue_training, only_run_validation, pretrained_weights, elastic_restart)
        first_epoch = trainer.current_epoch
        if not only_run_validation:
            trainer.run_training()
        phase = "validation"
        if val_with_best:
            trainer.load_checkpoint(trainer.output_folder / "checkpoint_best.pth")
        if run_validation:
            trainer.perform_actual_validation(export_validation_probabilities)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        continued = continue_training or only_run_validation or elastic_restart
        finished_an_epoch = first_epoch is not None and trainer.current_epoch > first_epoch
        raise Interrupted(interrupt_note(trainer.output_folder, phase, ours=continued or finished_an_epoch,
                                         checkpointing=not trainer.disable_checkpointing)) from None


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
        num_gpus: processes for DDP training on this node (under torchrun: 1; torchrun sets the processes).
        export_validation_probabilities: also save validation probabilities (``--npz``).
        continue_training: resume from the newest checkpoint (``--c``).
        only_run_validation: skip training, validate ``checkpoint_final.pth`` (``--val``).
        disable_checkpointing: write no checkpoints.
        val_with_best: validate with ``checkpoint_best.pth``.
        device: ``cuda``, ``cpu`` or ``mps``.
        run_validation: run the full-case validation at the end (our addition; default True as in nnU-Net).

    Raises:
        Interrupted: on Ctrl-C, with a note naming what can be continued (``--c``), redone (``--val``) or not.
    """
    fold = parse_fold(fold)
    device = torch.device(device)
    if continue_training and only_run_validation:
        raise ConfigurationError("--c and --val cannot be used together.")
    if val_with_best and disable_checkpointing:
        raise ConfigurationError("--val_best cannot be used with --disable_checkpointing (no checkpoint_best.pth).")
    if pretrained_weights is not None and not Path(pretrained_weights).is_file():
        raise NnunetError(f"Pretrained weights file {pretrained_weights} does not exist.")
    results_root()  # every mode reads or writes the model folder: a missing nnUNet_results is one clear line
    wandb_enabled()  # a malformed nnUNet_wandb_enabled fails here, before any work
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NnunetError("CUDA was requested but is not available on this machine; use -device cpu.")
    torchrun = ddp.launched_by_torchrun()
    if torchrun and num_gpus > 1:
        raise ConfigurationError(f"-num_gpus {num_gpus} cannot be used under torchrun: torchrun starts the processes "
                                 f"(--nproc-per-node per node); leave -num_gpus at 1.")
    if plans_identifier == "nnUNetPlans" and os.environ.get("RANK", "0") == "0":
        logger.info("Using the default nnUNetPlans. The residual-encoder presets (nnUNetResEncUNet{M,L,XL}Plans) "
                    "are recommended for better results; see the ResEnc documentation.")
    request = TrainingRequest(dataset_name_or_id, configuration, fold, trainer_class_name, plans_identifier,
                              pretrained_weights, export_validation_probabilities, continue_training,
                              only_run_validation, disable_checkpointing, val_with_best, device, run_validation)
    if torchrun:
        _run_distributed(request)
    elif num_gpus > 1:
        _spawn(num_gpus, request)
    else:
        _run_single(request)


class TrainingRequest(NamedTuple):
    """The arguments of :func:`run_training`, as handed to every process."""

    dataset_name_or_id: int | str
    configuration: str
    fold: int | str
    trainer_class_name: str
    plans_identifier: str
    pretrained_weights: str | None
    export_validation_probabilities: bool
    continue_training: bool
    only_run_validation: bool
    disable_checkpointing: bool
    val_with_best: bool
    device: torch.device
    run_validation: bool

    def fold_folder(self) -> Path | None:
        """The fold folder the training writes to, without building a trainer (None when it cannot be worked
        out)."""
        try:
            folder = preprocessed_dataset_folder(self.dataset_name_or_id)
            plans = load_json(folder / f"{self.plans_identifier}.json")
            tag = model_folder_name(trainer_class(self.trainer_class_name).__name__, plans["plans_name"],
                                    self.configuration)
            return results_root() / folder.name / tag / f"fold_{self.fold}"
        except (NnunetError, OSError, KeyError, ValueError):
            return None


def _run_single(request: TrainingRequest, elastic_restart: bool = False) -> Any:
    r = request
    trainer = get_trainer_from_args(r.dataset_name_or_id, r.configuration, r.fold, r.trainer_class_name,
                                    r.plans_identifier, r.device)
    if r.disable_checkpointing:
        trainer.disable_checkpointing = True
    if elastic_restart and not r.only_run_validation:
        trainer.print_to_log_file("torchrun restarted the processes of this training (elastic restart): resuming from "
                                  "the newest checkpoint instead of starting over.")
    if wandb_enabled():
        trainer.enable_wandb(resume=r.continue_training or elastic_restart)
    if r.device.type == "cuda":
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
    _agree_on_inputs(trainer)
    _train_and_validate(trainer, r.continue_training, r.only_run_validation, r.pretrained_weights, r.val_with_best,
                        r.export_validation_probabilities, r.run_validation, elastic_restart)
    return trainer


def _agree_on_inputs(trainer) -> None:
    """With DDP: rank 0 runs the trainer's split first (it may create splits_final.json) while the others wait, so
    that only rank 0 writes it; then all ranks check that they read the same plans, dataset.json and split file
    (nodes that do not share nnUNet_preprocessed would otherwise train on different data without noticing)."""
    if not ddp.is_ddp():
        return
    if ddp.rank_and_world()[0] == 0:
        trainer.do_split()
    ddp.barrier()
    split_file = trainer.preprocessed_dataset_folder_base / SPLITS_FILE
    mine = {"the plans": _digest(json.dumps(trainer.plans_manager.data, sort_keys=True).encode()),
            "dataset.json": _digest(json.dumps(trainer.dataset_json, sort_keys=True).encode()),
            SPLITS_FILE: _digest(split_file.read_bytes()) if split_file.is_file() else None}
    everyone = ddp.gather_objects((socket.gethostname(), mine))
    differing = [what for what in mine if any(seen[what] != everyone[0][1][what] for _, seen in everyone)]
    if differing:
        others = [f"{rank} ({host})" for rank, (host, seen) in enumerate(everyone) if seen != everyone[0][1]]
        raise NnunetError(f"The processes of this training read different {' and '.join(differing)}: rank(s) "
                          f"{', '.join(others[:8])} differ from rank 0 ({everyone[0][0]}). nnUNet_preprocessed must "
                          f"be the same shared folder on every node (documentation/multi_node.md).")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run_distributed(request: TrainingRequest) -> None:
    """One process of a DDP group whose RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* are in the environment."""
    if ddp.launcher_world_size() <= 1:  # torchrun with one process: no group needed, restarts still resume
        _run_single(request, elastic_restart=ddp.elastic_restart_count() > 0)
        return
    ddp.check_elastic_store()
    ddp.init_process_group(request.device)
    try:
        # torchrun restarts the workers of healthy nodes with TORCHELASTIC_RESTART_COUNT unchanged (a membership
        # change, not a failure of theirs): one restarted rank decides for all
        restarted = ddp.any_rank(ddp.elastic_restart_count() > 0)
        _run_single(request, elastic_restart=restarted)
        ddp.barrier()  # gloo aborts a rank whose group is torn down while another rank still uses it
    finally:
        ddp.destroy_process_group()


def _spawn(num_gpus: int, request: TrainingRequest) -> None:
    if request.device.type == "cuda" and torch.cuda.device_count() < num_gpus:
        raise NnunetError(f"-num_gpus {num_gpus} requested but only {torch.cuda.device_count()} GPUs are visible.")
    os.environ.setdefault("MASTER_ADDR", "localhost")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    import torch.multiprocessing as mp

    started_at = time.time()
    try:
        mp.spawn(_ddp_worker, args=(num_gpus, request), nprocs=num_gpus, join=True)
    except KeyboardInterrupt:
        continued = request.continue_training or request.only_run_validation
        # the workers' files are all there is to go by: checkpoints this run continued from or wrote count as its own
        raise Interrupted(interrupt_note(request.fold_folder(), None, ours=True if continued else None,
                                         started_at=started_at, checkpointing=not request.disable_checkpointing)) \
            from None


def _ddp_worker(rank: int, world_size: int, request: TrainingRequest) -> None:
    """A process of ``-num_gpus``: the environment torchrun would set, then the same path as under torchrun."""
    exit_with_parent()  # a killed launcher must not leave its training processes running
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_WORLD_SIZE": str(world_size)})
    if request.device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))  # share the cores between processes
    _run_distributed(request)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]
