"""The default trainer: a short hook-based epoch loop over small, replaceable components.

Hyper-parameters are class attributes, so a variant is a two-line subclass::

    @TRAINERS.register
    class MyTrainer(nnUNetTrainer):
        num_epochs = 100

Attribute and method names follow nnU-Net's trainer (``num_epochs``, ``initial_lr``, ``_build_loss``,
``configure_optimizers``, ``train_step``, ``on_epoch_end``, ...), so custom trainers port by changing imports.
Data loading lives in :mod:`nnunet.training.data`, augmentation in :mod:`nnunet.training.augmentation`, losses
in :mod:`nnunet.training.loss`, checkpoint files in :mod:`nnunet.training.checkpoint`, logging in
:mod:`nnunet.training.logger` and the final validation in :mod:`nnunet.training.validation`.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnunet.errors import ConfigurationError, NnunetError
from nnunet.networks.from_plans import build_network_for_configuration, set_deep_supervision, unwrap
from nnunet.planning.plans import Configuration, Plans
from nnunet.registry import TRAINERS
from nnunet.training import ddp
from nnunet.training.augmentation import (configure_spatial_augmentation, deep_supervision_scales,
                                          get_training_transforms, get_validation_transforms)
from nnunet.training.checkpoint import (add_rng_states, capture_rng_state, gather_rng_states, load_checkpoint_file,
                                        restore_rng_state, rng_state_for_rank, save_checkpoint_file,
                                        strip_module_prefixes)
from nnunet.training.data.dataset import PreprocessedDataset, case_identifiers, dataset_format, unpack_npz
from nnunet.training.data.loader import PatchLoader
from nnunet.training.data.splits import train_val_keys
from nnunet.training.data.workers import background_loader, num_processes_for_augmentation
from nnunet.training.logger import MetricsLogger, TrainingLogFile, log_file_name
from nnunet.training.loss import DeepSupervisionLoss, DiceBCELoss, DiceCELoss, SoftDiceLoss, deep_supervision_weights
from nnunet.training.lr_schedule import PolyLRScheduler


def tp_fp_fn(onehot_prediction: torch.Tensor, target: torch.Tensor, axes: tuple[int, ...],
             mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hard true/false positives and false negatives per channel, summed over ``axes``.

    ``target`` is a label map (B, 1, ...) or already one-hot/regions with the prediction's shape; ``mask``
    (B, 1, ...) excludes voxels.
    """
    with torch.no_grad():
        if target.shape != onehot_prediction.shape:
            gt = torch.zeros(onehot_prediction.shape, device=onehot_prediction.device, dtype=torch.bool)
            gt.scatter_(1, target.long(), 1)
        else:
            gt = target.bool()
        pred = onehot_prediction.bool()
        tp, fp, fn = pred & gt, pred & ~gt, ~pred & gt
        if mask is not None:
            m = mask.bool()
            tp, fp, fn = tp & m, fp & m, fn & m
        return tp.sum(axes), fp.sum(axes), fn.sum(axes)


@TRAINERS.register
class nnUNetTrainer:  # noqa: N801 - nnU-Net's class name, kept so that users' trainers port unchanged
    """Trains one fold of one configuration.

    Args:
        plans: the plans dict (contents of ``nnUNetPlans.json``).
        configuration: configuration name (``2d``, ``3d_fullres``, ``3d_lowres``, ``3d_cascade_fullres``, ...).
        fold: fold index or ``"all"``.
        dataset_json: the dataset.json dict.
        device: torch device to train on.
    """

    # ---- hyper-parameters (override in subclasses) ----
    initial_lr: float = 1e-2
    weight_decay: float = 3e-5
    momentum: float = 0.99
    poly_lr_exponent: float = 0.9
    grad_clip_norm: float = 12.0
    num_epochs: int = 1000
    num_iterations_per_epoch: int = 250
    num_val_iterations_per_epoch: int = 50
    oversample_foreground_percent: float = 0.33
    probabilistic_oversampling: bool = False
    enable_deep_supervision: bool = True
    #: loss = weight_ce * CE (BCE for regions) + weight_dice * soft Dice (smooth ``dice_smooth``)
    loss_weight_ce: float = 1.0
    loss_weight_dice: float = 1.0
    dice_smooth: float = 1e-5
    #: dummy-2-D augmentation for anisotropic 3-D patches
    allow_dummy_2d_data_aug: bool = True
    #: mirror augmentation (and mirroring at inference); False also stores None as the inference mirror axes
    use_mirroring: bool = True
    #: checkpoint_latest.pth is written every ``save_every`` epochs; 1 (nnU-Net: 50) so that a killed run loses at
    #: most one epoch. The file is replaced atomically.
    save_every: int = 1
    #: redraw progress.png after every epoch (a large figure: about a second per epoch)
    plot_progress: bool = True
    #: write checkpoints at all (``--disable_checkpointing`` sets this to True for one run)
    disable_checkpointing: bool = False

    def __init__(self, plans: dict, configuration: str, fold: int | str, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        # nnU-Net's launcher smuggles a transient flag in the plans; it is not part of the plans
        plans = {k: v for k, v in plans.items() if k != "continue_training"}
        self.my_init_kwargs = {"plans": plans, "configuration": configuration, "fold": fold,
                               "dataset_json": dataset_json, "device": device}
        self.is_ddp = ddp.is_ddp()
        self.local_rank = ddp.rank_and_world()[0]
        self.device = self._resolve_device(torch.device(device))
        self.plans_manager = Plans(plans)
        self.configuration_manager: Configuration = self.plans_manager.configuration(configuration)
        self.configuration_name = configuration
        self.dataset_json = dataset_json
        self.fold = fold
        self.label_manager = self.plans_manager.label_manager(dataset_json)
        self.is_cascaded = self.configuration_manager.previous_stage_name is not None
        self._set_folders()

        self.batch_size = self.configuration_manager.batch_size
        self.inference_allowed_mirroring_axes: tuple[int, ...] | None = None
        self.network: nn.Module | None = None
        self.optimizer = self.lr_scheduler = self.loss = None
        self.grad_scaler = torch.amp.GradScaler("cuda") if self.device.type == "cuda" else None
        self.dataloader_train = self.dataloader_val = None
        self.was_initialized = False
        self.current_epoch = 0
        self._best_ema: float | None = None
        self.logger = MetricsLogger()
        self.timestamp = datetime.now()
        self.log_file = (self.output_folder / log_file_name(self.timestamp)
                         if self.output_folder is not None else None)
        self.print_to_log_file = TrainingLogFile(self.log_file if self.local_rank == 0 else None,
                                                 echo=self.local_rank == 0)

    # ------------------------------------------------------------------ set-up helpers
    def _resolve_device(self, device: torch.device) -> torch.device:
        # the GPU of this process on its node (LOCAL_RANK; the global rank would be wrong beyond one node)
        return ddp.device_for_rank(device)

    def _set_folders(self) -> None:
        name = self.plans_manager.dataset_name
        tag = f"{type(self).__name__}__{self.plans_manager.plans_name}__{self.configuration_name}"
        results = os.environ.get("nnUNet_results")
        preprocessed = os.environ.get("nnUNet_preprocessed")
        self.output_folder_base = Path(results) / name / tag if results else None
        self.output_folder = (self.output_folder_base / f"fold_{self.fold}"
                              if self.output_folder_base is not None else None)
        self.preprocessed_dataset_folder_base = Path(preprocessed) / name if preprocessed else None
        self.preprocessed_dataset_folder = (self.preprocessed_dataset_folder_base
                                            / self.configuration_manager.data_identifier
                                            if self.preprocessed_dataset_folder_base is not None else None)
        prev = self.configuration_manager.previous_stage_name
        self.folder_with_segs_from_previous_stage = (
            Path(results) / name / f"{type(self).__name__}__{self.plans_manager.plans_name}__{prev}"
            / "predicted_next_stage" / self.configuration_name if prev is not None and results else None)

    def _require_folders(self) -> None:
        if self.output_folder is None:
            raise NnunetError("The environment variable nnUNet_results is not set; it is needed for training.")
        if self.preprocessed_dataset_folder is None:
            raise NnunetError("The environment variable nnUNet_preprocessed is not set; it is needed for training.")

    def initialize(self) -> None:
        """Build network, optimizer, scheduler and loss (once)."""
        if self.was_initialized:
            raise RuntimeError("initialize() was already called on this trainer.")
        self._set_batch_size_and_oversample()
        self.num_input_channels = self.determine_num_input_channels()
        self.network = self.build_network_architecture(
            self.plans_manager, self.configuration_manager, self.num_input_channels,
            self.label_manager.num_segmentation_heads, self.enable_deep_supervision).to(self.device)
        if self._do_i_compile():
            self.print_to_log_file("Using torch.compile...")
            self.network = torch.compile(self.network)
        self.optimizer, self.lr_scheduler = self.configure_optimizers()
        if self.is_ddp:
            self.network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.network)
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = torch.nn.parallel.DistributedDataParallel(self.network, device_ids=device_ids)
        self.loss = self._build_loss()
        self.was_initialized = True
        self.logger.update_config({"hparas": {
            "initial_lr": self.initial_lr, "weight_decay": self.weight_decay,
            "oversample_foreground_percent": self.oversample_foreground_percent,
            "probabilistic_oversampling": self.probabilistic_oversampling,
            "num_iterations_per_epoch": self.num_iterations_per_epoch,
            "num_val_iterations_per_epoch": self.num_val_iterations_per_epoch, "num_epochs": self.num_epochs,
            "enable_deep_supervision": self.enable_deep_supervision,
            "batch_size": self.configuration_manager.batch_size}})

    def enable_wandb(self, resume: bool) -> None:
        """Send the logged values to Weights & Biases (see :mod:`nnunet.training.wandb_logger`); first process
        only."""
        from nnunet.training.wandb_logger import WandbLogger

        if self.local_rank != 0:
            return
        self.logger.add_sink(WandbLogger(self.output_folder, resume))
        kwargs = self.my_init_kwargs
        self.logger.update_config({"plans": kwargs["plans"], "configuration": kwargs["configuration"],
                                   "fold": kwargs["fold"], "dataset": kwargs["dataset_json"]})

    def determine_num_input_channels(self) -> int:
        """Image channels, plus one per foreground label for cascaded configurations."""
        channels = self.dataset_json.get("channel_names", self.dataset_json.get("modality"))
        if channels is None:
            raise ConfigurationError("dataset.json has no 'channel_names'.")
        return len(channels) + (len(self.label_manager.foreground_labels) if self.is_cascaded else 0)

    def _do_i_compile(self) -> bool:
        requested = os.environ.get("nnUNet_compile")
        if self.device.type in ("cpu", "mps") or os.name == "nt":
            if requested is not None and requested.lower() in ("true", "1", "t"):
                self.print_to_log_file(f"INFO: torch.compile is disabled on {self.device.type}/{os.name}.")
            return False
        return requested is None or requested.lower() in ("true", "1", "t")

    def _set_batch_size_and_oversample(self) -> None:
        if not self.is_ddp:
            self.batch_size = self.configuration_manager.batch_size
            return
        rank, world = ddp.rank_and_world()
        self.batch_size, self.oversample_foreground_percent = ddp.rank_oversample_percent(
            self.configuration_manager.batch_size, world, rank, self.oversample_foreground_percent)

    # ------------------------------------------------------------------ extension hooks (nnU-Net names)
    @staticmethod
    def build_network_architecture(plans_manager: Plans, configuration_manager: Configuration,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        """The network for a configuration; also used at inference (with deep supervision off)."""
        return build_network_for_configuration(configuration_manager, num_input_channels, num_output_channels,
                                               enable_deep_supervision)

    def _get_deep_supervision_scales(self) -> list[list[float]] | None:
        if not self.enable_deep_supervision:
            return None
        return deep_supervision_scales(self.configuration_manager.pool_op_kernel_sizes)

    def _build_loss(self) -> nn.Module:
        dice_kwargs = {"batch_dice": self.configuration_manager.batch_dice, "smooth": self.dice_smooth,
                       "ddp": self.is_ddp}
        weights = {"weight_ce": self.loss_weight_ce, "weight_dice": self.loss_weight_dice}
        if self.label_manager.has_regions:
            loss: nn.Module = DiceBCELoss({}, {**dice_kwargs, "do_bg": True},
                                          use_ignore_label=self.label_manager.ignore_label is not None,
                                          dice_class=SoftDiceLoss, **weights)
        else:
            loss = DiceCELoss({**dice_kwargs, "do_bg": False}, {}, ignore_label=self.label_manager.ignore_label,
                              dice_class=SoftDiceLoss, **weights)
        if self._do_i_compile():
            loss.dc = torch.compile(loss.dc)
        if self.enable_deep_supervision:
            n_outputs = len(self._get_deep_supervision_scales())
            last = 1e-6 if self.is_ddp and not self._do_i_compile() else 0.0
            loss = DeepSupervisionLoss(loss, deep_supervision_weights(n_outputs, last))
        return loss

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):  # noqa: N802 - nnU-Net's name
        """``(rotation_for_DA, do_dummy_2d_data_aug, initial_patch_size, mirror_axes)``; sets the mirror axes
        that inference may use."""
        setup = configure_spatial_augmentation(self.configuration_manager.patch_size, self.allow_dummy_2d_data_aug)
        mirror_axes = setup.mirror_axes if self.use_mirroring else None
        self.inference_allowed_mirroring_axes = mirror_axes
        return setup.rotation_for_DA, setup.do_dummy_2d_data_aug, setup.initial_patch_size, mirror_axes

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.network.parameters(), self.initial_lr, weight_decay=self.weight_decay,
                                    momentum=self.momentum, nesterov=True)
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs, self.poly_lr_exponent)

    get_training_transforms = staticmethod(get_training_transforms)
    get_validation_transforms = staticmethod(get_validation_transforms)

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        set_deep_supervision(self.network, enabled)

    def do_split(self) -> tuple[list[str], list[str]]:
        identifiers = case_identifiers(self.preprocessed_dataset_folder)
        return train_val_keys(self.preprocessed_dataset_folder_base, self.fold, identifiers,
                              log=self.print_to_log_file)

    def get_tr_and_val_datasets(self) -> tuple[PreprocessedDataset, PreprocessedDataset]:
        tr_keys, val_keys = self.do_split()
        prev = self.folder_with_segs_from_previous_stage
        return (PreprocessedDataset(self.preprocessed_dataset_folder, tr_keys, prev),
                PreprocessedDataset(self.preprocessed_dataset_folder, val_keys, prev))

    def get_plain_dataloaders(self) -> tuple[PatchLoader, PatchLoader]:
        """Training and validation loaders (with their per-sample transforms), not yet in worker processes."""
        patch_size = self.configuration_manager.patch_size
        ds_scales = self._get_deep_supervision_scales()
        rotation, dummy_2d, initial_patch, mirror_axes = \
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        lm = self.label_manager
        regions = lm.foreground_regions if lm.has_regions else None
        tr_transforms = self.get_training_transforms(
            patch_size, rotation, ds_scales, mirror_axes, dummy_2d,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm, is_cascaded=self.is_cascaded,
            foreground_labels=lm.foreground_labels, regions=regions, ignore_label=lm.ignore_label)
        val_transforms = self.get_validation_transforms(ds_scales, is_cascaded=self.is_cascaded,
                                                        foreground_labels=lm.foreground_labels, regions=regions,
                                                        ignore_label=lm.ignore_label)
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        common = {"label_manager": lm, "oversample_foreground_percent": self.oversample_foreground_percent,
                  "probabilistic_oversampling": self.probabilistic_oversampling}
        dl_tr = PatchLoader(dataset_tr, self.batch_size, initial_patch, patch_size, transforms=tr_transforms,
                            **common)
        dl_val = PatchLoader(dataset_val, self.batch_size, patch_size, patch_size, transforms=val_transforms,
                             **common)
        return dl_tr, dl_val

    def get_dataloaders(self):
        dl_tr, dl_val = self.get_plain_dataloaders()
        n = num_processes_for_augmentation()
        pin = self.device.type == "cuda"
        train = background_loader(dl_tr, n, max(6, n // 2), pin)
        val = background_loader(dl_val, max(1, n // 2) if n > 0 else 0, max(3, n // 4), pin)
        # fetch one batch of each so the workers start now (and fail early)
        next(train)
        next(val)
        return train, val

    # ------------------------------------------------------------------ loop
    def run_training(self) -> None:
        self.on_train_start()
        for _ in range(self.current_epoch, self.num_epochs):
            self.on_epoch_start()
            self.on_train_epoch_start()
            train_outputs = [self.train_step(next(self.dataloader_train))
                             for _ in range(self.num_iterations_per_epoch)]
            self.on_train_epoch_end(train_outputs)
            with torch.no_grad():
                self.on_validation_epoch_start()
                val_outputs = [self.validation_step(next(self.dataloader_val))
                               for _ in range(self.num_val_iterations_per_epoch)]
                self.on_validation_epoch_end(val_outputs)
            self.on_epoch_end()
        self.on_train_end()

    def on_train_start(self) -> None:
        self._require_folders()
        if not self.was_initialized:
            self.initialize()
        self.output_folder.mkdir(parents=True, exist_ok=True)
        if self.local_rank == 0 and dataset_format(self.preprocessed_dataset_folder) == "npz":
            unpack_npz(self.preprocessed_dataset_folder)
        ddp.barrier()
        self.dataloader_train, self.dataloader_val = self.get_dataloaders()
        self.set_deep_supervision_enabled(self.enable_deep_supervision)
        self.print_plans()
        if self.local_rank == 0:
            self.copy_plans_and_dataset_json()
            self.plot_network_architecture()
            self._save_debug_information()
        if torch.cuda.is_available():
            torch.backends.cudnn.benchmark = True
            torch.backends.cudnn.deterministic = False

    def plot_network_architecture(self) -> None:
        """network_architecture.pdf through the optional ``hiddenlayer`` package, as nnU-Net does; without it (or
        when it fails, or with torch.compile) one line in the log says why and training goes on."""
        if self._do_i_compile():
            self.print_to_log_file("Unable to plot network architecture: nnUNet_compile is enabled!")
            return
        try:
            import hiddenlayer

            example = torch.rand((1, self.num_input_channels, *self.configuration_manager.patch_size),
                                 device=self.device)
            graph = hiddenlayer.build_graph(self.network, example, transforms=None)
            graph.save(str(self.output_folder / "network_architecture.pdf"))
        except Exception as e:  # noqa: BLE001 - a plot must never stop a training
            self.print_to_log_file(f"Unable to plot network architecture: {type(e).__name__}: {e}")
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def copy_plans_and_dataset_json(self) -> None:
        from nnunet.utils.json import save_json

        base = self.output_folder_base
        save_json(self.plans_manager.data, base / "plans.json", sort_keys=False)
        save_json(self.dataset_json, base / "dataset.json", sort_keys=False)
        fingerprint = self.preprocessed_dataset_folder_base / "dataset_fingerprint.json"
        if fingerprint.is_file():
            (base / "dataset_fingerprint.json").write_bytes(fingerprint.read_bytes())

    def on_train_end(self) -> None:
        # the final checkpoint records current_epoch = num_epochs (the loop already advanced past the last epoch)
        self.current_epoch -= 1
        self.save_checkpoint(self.output_folder / "checkpoint_final.pth")
        self.current_epoch += 1
        latest = self.output_folder / "checkpoint_latest.pth"
        if self.local_rank == 0 and latest.is_file():
            latest.unlink()
        self.shutdown_dataloaders()
        self.print_to_log_file("Training done.")

    def shutdown_dataloaders(self) -> None:
        for loader in (self.dataloader_train, self.dataloader_val):
            finish = getattr(loader, "_finish", None)
            if finish is not None:
                finish()
        self.dataloader_train = self.dataloader_val = None

    def on_epoch_start(self) -> None:
        self.logger.log("epoch_start_timestamps", time.time(), self.current_epoch)

    def on_train_epoch_start(self) -> None:
        self.network.train()
        self.lr_scheduler.step(self.current_epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        self.print_to_log_file("")
        self.print_to_log_file(f"Epoch {self.current_epoch}")
        self.print_to_log_file(f"Current learning rate: {np.round(lr, decimals=5)}")
        self.logger.log("lrs", lr, self.current_epoch)

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast(self.device.type, enabled=True)
        return contextlib.nullcontext()

    def _to_device(self, batch: dict) -> tuple[torch.Tensor, Any]:
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = ([t.to(self.device, non_blocking=True) for t in target] if isinstance(target, list)
                  else target.to(self.device, non_blocking=True))
        return data, target

    def train_step(self, batch: dict) -> dict:
        data, target = self._to_device(batch)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            output = self.network(data)
            loss = self.loss(output, target)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip_norm)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip_norm)
            self.optimizer.step()
        return {"loss": loss.detach().cpu().numpy()}

    def on_train_epoch_end(self, train_outputs: list[dict]) -> None:
        losses = [float(o["loss"]) for o in train_outputs]
        gathered = [x for part in ddp.gather_objects(losses) for x in part]
        self.logger.log("train_losses", float(np.mean(gathered)), self.current_epoch)

    def on_validation_epoch_start(self) -> None:
        self.network.eval()

    def validation_step(self, batch: dict) -> dict:
        data, target = self._to_device(batch)
        with self._autocast():
            output = self.network(data)
            loss = self.loss(output, target)
        if self.enable_deep_supervision:
            output, target = output[0], target[0]
        axes = (0,) + tuple(range(2, output.ndim))
        if self.label_manager.has_regions:
            onehot = (torch.sigmoid(output) > 0.5).long()
        else:
            onehot = torch.zeros(output.shape, device=output.device, dtype=torch.float32)
            onehot.scatter_(1, output.argmax(1)[:, None], 1)
        mask = None
        if self.label_manager.has_ignore_label:
            if not self.label_manager.has_regions:
                mask = target != self.label_manager.ignore_label
                target = torch.where(mask, target, 0)
            else:
                last = target[:, -1:]
                mask = ~last.bool() if last.dtype == torch.bool else (1 - last).bool()
                target = target[:, :-1]
        tp, fp, fn = tp_fp_fn(onehot, target, axes, mask)
        tp, fp, fn = (x.detach().cpu().numpy() for x in (tp, fp, fn))
        if not self.label_manager.has_regions:  # background is not a class of interest
            tp, fp, fn = tp[1:], fp[1:], fn[1:]
        return {"loss": loss.detach().cpu().numpy(), "tp_hard": tp, "fp_hard": fp, "fn_hard": fn}

    def on_validation_epoch_end(self, val_outputs: list[dict]) -> None:
        stats = {k: np.sum([o[k] for o in val_outputs], 0) for k in ("tp_hard", "fp_hard", "fn_hard")}
        losses = [float(o["loss"]) for o in val_outputs]
        if self.is_ddp:
            parts = ddp.gather_objects((stats, losses))
            stats = {k: np.sum([p[0][k] for p in parts], 0) for k in stats}
            losses = [x for p in parts for x in p[1]]
        tp, fp, fn = stats["tp_hard"], stats["fp_hard"], stats["fn_hard"]
        with np.errstate(divide="ignore", invalid="ignore"):
            dice = [float(2 * a / (2 * a + b + c)) if (2 * a + b + c) > 0 else float("nan")
                    for a, b, c in zip(tp, fp, fn)]
        mean_fg_dice = float(np.nanmean(dice)) if not all(np.isnan(dice)) else float("nan")
        self.logger.log("mean_fg_dice", mean_fg_dice, self.current_epoch)
        self.logger.log("dice_per_class_or_region", dice, self.current_epoch)
        self.logger.log("val_losses", float(np.mean(losses)), self.current_epoch)

    def on_epoch_end(self) -> None:
        logs = self.logger.my_fantastic_logging
        self.logger.log("epoch_end_timestamps", time.time(), self.current_epoch)
        self.print_to_log_file("train_loss", np.round(logs["train_losses"][-1], decimals=4))
        self.print_to_log_file("val_loss", np.round(logs["val_losses"][-1], decimals=4))
        self.print_to_log_file("Pseudo dice", [float(np.round(d, decimals=4))
                                               for d in logs["dice_per_class_or_region"][-1]])
        duration = logs["epoch_end_timestamps"][-1] - logs["epoch_start_timestamps"][-1]
        self.print_to_log_file(f"Epoch time: {np.round(duration, decimals=2)} s")
        epoch = self.current_epoch
        ema = logs["ema_fg_dice"][-1]
        if self._best_ema is None or ema > self._best_ema:
            self._best_ema = ema
            self.print_to_log_file(f"Yayy! New best EMA pseudo Dice: {np.round(self._best_ema, decimals=4)}")
            self.save_checkpoint(self.output_folder / "checkpoint_best.pth")
        if (epoch + 1) % self.save_every == 0 and epoch != self.num_epochs - 1:
            self.save_checkpoint(self.output_folder / "checkpoint_latest.pth")
        if self.local_rank == 0 and self.plot_progress:
            self.logger.plot_progress_png(self.output_folder)
        self.current_epoch += 1

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_dict(self) -> dict[str, Any]:
        return {
            "network_weights": unwrap(self.network).state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "logging": self.logger.get_checkpoint(),
            "_best_ema": self._best_ema,
            "current_epoch": self.current_epoch + 1,
            "init_args": self.my_init_kwargs,
            "trainer_name": type(self).__name__,
            "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
            "rng_state": capture_rng_state(),
        }

    def save_checkpoint(self, filename: str | os.PathLike) -> None:
        """Rank 0 writes the checkpoint. Every rank must call this (as the epoch loop does): the generator states
        of all ranks are gathered into it."""
        if self.disable_checkpointing:
            self.print_to_log_file("No checkpoint written, checkpointing is disabled")
            return
        rng_states = gather_rng_states()
        if self.local_rank != 0:
            return
        save_checkpoint_file(add_rng_states(self.checkpoint_dict(), rng_states), filename)

    def load_checkpoint(self, filename_or_checkpoint: str | os.PathLike | dict) -> None:
        if not self.was_initialized:
            self.initialize()
        checkpoint = (filename_or_checkpoint if isinstance(filename_or_checkpoint, dict)
                      else load_checkpoint_file(filename_or_checkpoint, map_location=self.device))
        self.my_init_kwargs = checkpoint.get("init_args", self.my_init_kwargs)
        self.current_epoch = checkpoint["current_epoch"]
        self.logger.load_checkpoint(checkpoint["logging"])
        self.logger.truncate(self.current_epoch)
        self._best_ema = checkpoint["_best_ema"]
        self.inference_allowed_mirroring_axes = checkpoint.get("inference_allowed_mirroring_axes",
                                                               self.inference_allowed_mirroring_axes)
        unwrap(self.network).load_state_dict(strip_module_prefixes(checkpoint["network_weights"]))
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.grad_scaler is not None and checkpoint.get("grad_scaler_state") is not None:
            self.grad_scaler.load_state_dict(checkpoint["grad_scaler_state"])
        restore_rng_state(rng_state_for_rank(checkpoint, self.local_rank))

    # ------------------------------------------------------------------ validation after training
    def perform_actual_validation(self, save_probabilities: bool = False) -> dict | None:
        """Sliding-window prediction of the validation cases, export, summary.json (and next-stage segs)."""
        from nnunet.training.validation import run_final_validation

        return run_final_validation(self, save_probabilities)

    # ------------------------------------------------------------------ logging
    def print_plans(self) -> None:
        if self.local_rank != 0:
            return
        self.print_to_log_file(
            "\n#######################################################################\n"
            "This is a reimplementation of nnU-Net. If you use it, please cite the nnU-Net paper:\n"
            "Isensee, F., Jaeger, P. F., Kohl, S. A., Petersen, J., & Maier-Hein, K. H. (2021). nnU-Net: a "
            "self-configuring method for deep learning-based biomedical image segmentation. Nature Methods, "
            "18(2), 203-211.\n"
            "#######################################################################\n", add_timestamp=False)
        config = dict(self.configuration_manager.data)
        self.print_to_log_file(f"\nThis is the configuration used by this training:\nConfiguration name: "
                               f"{self.configuration_name}\n", config, "\n", add_timestamp=False)
        plans = {k: v for k, v in self.plans_manager.data.items() if k != "configurations"}
        self.print_to_log_file("These are the global plan.json settings:\n", plans, "\n", add_timestamp=False)

    def _save_debug_information(self) -> None:
        skip = {"my_init_kwargs", "dataset_json", "plans_manager", "logger"}
        dct = {k: str(v) for k, v in inspect.getmembers(self)
               if not k.startswith("__") and not callable(v) and k not in skip}
        dct.update({"hostname": socket.getfqdn(), "torch_version": torch.__version__,
                    "cudnn_version": str(torch.backends.cudnn.version()), "python_version": sys.version,
                    "device": str(self.device)})
        if self.device.type == "cuda":
            dct["gpu_name"] = torch.cuda.get_device_name()
        tmp = self.output_folder / ".debug.partial.json"
        tmp.write_text(json.dumps(dct, sort_keys=True, indent=4))
        os.replace(tmp, self.output_folder / "debug.json")
