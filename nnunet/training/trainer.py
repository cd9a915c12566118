"""The default trainer: a short hook-based epoch loop over small, replaceable components.

Hyper-parameters and the choice of optimizer, LR schedule, loss, augmentation and normalisation are class
attributes, so a variant is a short subclass::

    @TRAINERS.register
    class MyTrainer(nnUNetTrainer):
        num_epochs = 100
        optimizer_name = "AdamW"

Attribute and method names follow nnU-Net's trainer (``num_epochs``, ``initial_lr``, ``_build_loss``,
``configure_optimizers``, ``train_step``, ``on_epoch_end``, ...), so custom trainers port by changing imports.
Data loading lives in :mod:`nnunet.training.data`, augmentation in :mod:`nnunet.training.augmentation`, losses
in :mod:`nnunet.training.loss`, checkpoint files in :mod:`nnunet.training.checkpoint`, logging in
:mod:`nnunet.training.logger` and the final validation in :mod:`nnunet.training.validation`; the epoch loop, the
steps and the checkpoint contents are in :mod:`nnunet.training.trainer_loop`.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from nnunet.errors import ConfigurationError, DatasetError, NnunetError
from nnunet.models.folder import model_folder_name
from nnunet.models.network import num_input_channels
from nnunet.networks.from_plans import architecture_with_norm, network_from_architecture, set_deep_supervision
from nnunet.planning.plans import Configuration, Plans
from nnunet.registry import TRAINERS
from nnunet.training import ddp
from nnunet.training.augmentation import (LEGACY_SCALE_RANGE, configure_spatial_augmentation, deep_supervision_scales,
                                          fused_training_transforms, get_training_transforms,
                                          get_validation_transforms)
from nnunet.training.data.dataset import PreprocessedDataset, case_identifiers
from nnunet.training.data.loader import PatchLoader
from nnunet.training.data.splits import SPLITS_FILE, train_val_keys
from nnunet.training.data.workers import background_loader, finish_loader, num_processes_for_augmentation
from nnunet.training.logger import MetricsLogger, TrainingLogFile, log_file_name
from nnunet.training.loss import DeepSupervisionLoss, build_segmentation_loss, deep_supervision_weights
from nnunet.training.lr_schedule import build_lr_scheduler
from nnunet.training.optimizers import build_optimizer
from nnunet.training.trainer_loop import TrainingLoop, make_grad_scaler


@TRAINERS.register
class nnUNetTrainer(TrainingLoop):  # noqa: N801 - nnU-Net's class name, kept so that users' trainers port unchanged
    """Trains one fold of one configuration.

    Args:
        plans: the plans dict (contents of ``nnUNetPlans.json``).
        configuration: configuration name (``2d``, ``3d_fullres``, ``3d_lowres``, ``3d_cascade_fullres``, ...).
        fold: fold index or ``"all"``.
        dataset_json: the dataset.json dict.
        device: torch device to train on.
    """

    # ---- schedule and optimisation (override in subclasses) ----
    initial_lr: float = 1e-2
    weight_decay: float = 3e-5
    num_epochs: int = 1000
    num_iterations_per_epoch: int = 250
    num_val_iterations_per_epoch: int = 50
    #: optimizer name (:mod:`nnunet.training.optimizers`: SGD, AdamW, Adam, Adan) and extra constructor arguments
    optimizer_name: str = "SGD"
    optimizer_kwargs: dict = {}
    momentum: float = 0.99
    #: "poly", "cosine" or "warmup_poly" (:mod:`nnunet.training.lr_schedule`)
    lr_schedule: str = "poly"
    poly_lr_exponent: float = 0.9
    #: epochs of linear warm-up for ``lr_schedule = "warmup_poly"`` (nnU-Net's name)
    warmup_duration_whole_net: int = 50
    grad_clip_norm: float = 12.0
    # ---- sampling ----
    oversample_foreground_percent: float = 0.33
    probabilistic_oversampling: bool = False
    #: replaces the configuration's batch size for this trainer (nnU-Net's ``nnUNet_Trainer_BS8``: 8)
    configuration_batch_size: int | None = None
    #: upper limit of the configuration's batch size (``nnUNetTrainerCPUTrial``: 32)
    max_batch_size: int | None = None
    #: replaces the configuration's patch size, also in the copied plans.json (nnU-Net's ``_Primus_*_96_BS1``)
    configuration_patch_size: Sequence[int] | None = None
    # ---- loss (:mod:`nnunet.training.loss.build`) ----
    loss_name: str = "dice_ce"
    loss_weight_ce: float = 1.0
    loss_weight_dice: float = 1.0
    dice_smooth: float = 1e-5
    topk_percent: float = 10
    label_smoothing: float = 0.0
    # ---- mixed precision and torch.compile (documentation/training.md, "AMP, bf16 and torch.compile") ----
    #: autocast of the train and validation steps: "auto" (float16 with a GradScaler on CUDA, off elsewhere: nnU-Net
    #: 2.8.1), "float16" (with a GradScaler, on any device), "bfloat16" (no scaler needed) or None (float32)
    mixed_precision: str | None = "auto"
    #: keyword arguments of torch.compile for the network and the Dice loss when compiling (e.g. {"backend":
    #: "aot_eager"} or {"fullgraph": True}); whether to compile at all is nnUNet_compile's decision
    compile_options: dict = {}
    # ---- network ----
    enable_deep_supervision: bool = True
    #: None keeps the plans' normalisation; "batch" builds the network with BatchNorm (nnUNetTrainerBN)
    norm_op: str | None = None
    # ---- augmentation ----
    #: "default" (nnU-Net's augmentation), "DA5" (:mod:`nnunet.training.augmentation_da5`) or "none" (validation transforms only)
    augmentation: str = "default"
    #: how the "default" pipeline runs: "fused" (rotation, scaling and crop in one resampling, only the needed part
    #: of the window read, labels voted at the interpolation corners; :mod:`nnunet.training.fused_spatial`) or
    #: "bgv2" (batchgeneratorsv2's transforms exactly as nnU-Net 2.8.1, for parity studies). The environment
    #: variable ``nnUNet_augmentation_pipeline`` overrides it.
    augmentation_pipeline: str = "fused"
    #: rotate, scale, alter intensities and build targets on the training device, the workers only load and crop
    #: (:mod:`nnunet.training.data.device_augmentation`; needs the fused pipeline, not for the cascade). The
    #: environment variable ``nnUNet_augment_on_device`` (1 / 0) overrides it.
    augment_on_device: bool = False
    #: interpolation order of the spatial transform: 1 linear, 0 nearest (the DASegOrd0 / DA5ord0 trainers)
    seg_interpolation_order: int = 1
    image_interpolation_order: int = 1
    #: probability per label of the cascade's morphology augmentation (nnU-Net: 0.5; its DASegOrd0 trainers 1)
    cascade_p_per_label: float = 0.5
    #: zoom range the enlarged initial patch is computed for (DA5: (0.7, 1.43))
    initial_patch_scale_range: tuple[float, float] = LEGACY_SCALE_RANGE
    #: dummy-2-D augmentation for anisotropic 3-D patches
    allow_dummy_2d_data_aug: bool = True
    #: mirror augmentation (and mirroring at inference); False also stores None as the inference mirror axes
    use_mirroring: bool = True
    #: mirror axes per patch dimension, e.g. {2: (0,), 3: (0, 1)} (nnUNetTrainer_onlyMirror01); None: all axes
    mirror_axes_by_dim: dict[int, tuple[int, ...]] | None = None
    # ---- files ----
    #: checkpoint_latest.pth is written every ``save_every`` epochs; 1 (nnU-Net: 50) so that a killed run loses at
    #: most one epoch. The file is replaced atomically.
    save_every: int = 1
    #: redraw progress.png after every epoch (a large figure: about a second per epoch)
    plot_progress: bool = True
    #: write checkpoints at all (``--disable_checkpointing`` sets this to True for one run)
    disable_checkpointing: bool = False
    #: DDP ranks meet every this many cases of the final validation
    validation_barrier_every: int = 20

    def __init__(self, plans: dict, configuration: str, fold: int | str, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        # nnU-Net's launcher smuggles a transient flag in the plans; it is not part of the plans
        plans = {k: v for k, v in plans.items() if k != "continue_training"}
        if self.configuration_patch_size is not None:
            plans = self._plans_with_patch_size(plans, configuration)
        self.my_init_kwargs = {"plans": plans, "configuration": configuration, "fold": fold,
                               "dataset_json": dataset_json, "device": device}
        self.is_ddp = ddp.is_ddp()
        self.local_rank = ddp.rank_and_world()[0]
        self.device = self._resolve_device(torch.device(device))
        self.plans_manager = Plans(plans)
        self.configuration_manager = self._with_own_batch_size(self.plans_manager.configuration(configuration))
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
        self.grad_scaler = make_grad_scaler(self.device, self.autocast_dtype() == torch.float16)
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
    def _plans_with_patch_size(self, plans: dict, configuration: str) -> dict:
        configurations = dict(plans.get("configurations", {}))
        if configuration in configurations:
            configurations[configuration] = {**configurations[configuration],
                                             "patch_size": [int(p) for p in self.configuration_patch_size]}
        return {**plans, "configurations": configurations}

    def _with_own_batch_size(self, configuration: Configuration) -> Configuration:
        """The configuration with the batch size this trainer class sets or caps, as a new value (the plans stay
        as they were read: the model folder's plans.json is theirs)."""
        batch_size = configuration.batch_size
        if self.configuration_batch_size is not None:
            batch_size = int(self.configuration_batch_size)
        if self.max_batch_size is not None:
            batch_size = min(batch_size, int(self.max_batch_size))
        if batch_size == configuration.batch_size:
            return configuration
        return Configuration(configuration.name, {**configuration.data, "batch_size": batch_size})

    def _resolve_device(self, device: torch.device) -> torch.device:
        # the GPU of this process on its node (LOCAL_RANK; the global rank would be wrong beyond one node)
        return ddp.device_for_rank(device)

    def _set_folders(self) -> None:
        name = self.plans_manager.dataset_name
        tag = model_folder_name(type(self).__name__, self.plans_manager.plans_name, self.configuration_name)
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
            Path(results) / name / model_folder_name(type(self).__name__, self.plans_manager.plans_name, prev)
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
            self.network = torch.compile(self.network, **self.compile_options)
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

    def determine_num_input_channels(self) -> int:
        """Image channels, plus one per foreground label for cascaded configurations."""
        return num_input_channels(self.plans_manager, self.configuration_manager, self.dataset_json)

    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype the train and validation steps autocast to on ``self.device`` (from ``mixed_precision``), None
        for no autocast. A float16 choice also gives the trainer a GradScaler (float16 gradients underflow without
        one; bfloat16 has float32's range)."""
        choice = self.mixed_precision
        if choice == "auto":
            return torch.float16 if self.device.type == "cuda" else None
        dtypes = {None: None, "float16": torch.float16, "bfloat16": torch.bfloat16}
        if choice not in dtypes:
            raise ConfigurationError(f"Unknown mixed_precision {choice!r} in {type(self).__name__}; choose 'auto', "
                                     f"'float16', 'bfloat16' or None.")
        return dtypes[choice]

    def _do_i_compile(self) -> bool:
        requested = os.environ.get("nnUNet_compile")
        if self.device.type in ("cpu", "mps") or os.name == "nt":
            if requested is not None and requested.lower() in ("true", "1", "t"):
                self.print_to_log_file(f"INFO: torch.compile is disabled on {self.device.type}/{os.name}.")
            return False
        return requested is None or requested.lower() in ("true", "1", "t")

    def _set_batch_size_and_oversample(self) -> None:
        global_batch = self.configuration_manager.batch_size
        if not self.is_ddp:
            self.batch_size = global_batch
            return
        rank, world = ddp.rank_and_world()
        if self.probabilistic_oversampling:  # each sample is forced independently: only the batch is split
            self.batch_size = ddp.split_batch(global_batch, world)[rank]
            return
        self.batch_size, self.oversample_foreground_percent = ddp.rank_oversample_percent(
            global_batch, world, rank, self.oversample_foreground_percent)

    # ------------------------------------------------------------------ extension hooks (nnU-Net names)
    @classmethod
    def build_network_architecture(cls, plans_manager: Plans, configuration_manager: Configuration,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        """The network for a configuration; also used at inference (with deep supervision off). Called on the
        class with nnU-Net's positional arguments, like nnU-Net's static method."""
        architecture = configuration_manager.architecture
        if cls.norm_op is not None:
            architecture = architecture_with_norm(architecture, cls.norm_op)
        return network_from_architecture(architecture, num_input_channels, num_output_channels,
                                         enable_deep_supervision)

    @classmethod
    def builds_network_from_plans(cls) -> bool:
        """Whether the network is the one the plans' ``architecture`` block describes (False for trainers that
        override :meth:`build_network_architecture`, such as Primus): only then must the patch fit it."""
        method = cls.build_network_architecture  # a classmethod here; nnU-Net's trainer files override a staticmethod
        return getattr(method, "__func__", method) is nnUNetTrainer.build_network_architecture.__func__

    def _get_deep_supervision_scales(self) -> list[list[float]] | None:
        if not self.enable_deep_supervision:
            return None
        return deep_supervision_scales(self.configuration_manager.pool_op_kernel_sizes)

    def _build_loss(self) -> nn.Module:
        loss = build_segmentation_loss(
            self.loss_name, self.label_manager, self.configuration_manager.batch_dice, self.is_ddp,
            smooth=self.dice_smooth, weight_ce=self.loss_weight_ce, weight_dice=self.loss_weight_dice,
            topk_percent=self.topk_percent, label_smoothing=self.label_smoothing)
        if self._do_i_compile() and hasattr(loss, "dc"):
            loss.dc = torch.compile(loss.dc, **self.compile_options)
        if self.enable_deep_supervision:
            n_outputs = len(self._get_deep_supervision_scales())
            last = 1e-6 if self.is_ddp and not self._do_i_compile() else 0.0
            loss = DeepSupervisionLoss(loss, deep_supervision_weights(n_outputs, last))
        return loss

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):  # noqa: N802 - nnU-Net's name
        """``(rotation_for_DA, do_dummy_2d_data_aug, initial_patch_size, mirror_axes)``; sets the mirror axes
        that inference may use."""
        patch_size = self.configuration_manager.patch_size
        setup = configure_spatial_augmentation(patch_size, self.allow_dummy_2d_data_aug,
                                               self.initial_patch_scale_range)
        mirror_axes = self._mirror_axes(setup.mirror_axes, len(patch_size))
        self.inference_allowed_mirroring_axes = mirror_axes
        initial = tuple(patch_size) if self.augmentation == "none" else setup.initial_patch_size
        return setup.rotation_for_DA, setup.do_dummy_2d_data_aug, initial, mirror_axes

    def _mirror_axes(self, all_axes: tuple[int, ...], dim: int) -> tuple[int, ...] | None:
        if not self.use_mirroring or self.augmentation == "none":
            return None
        if self.mirror_axes_by_dim is not None:
            return tuple(self.mirror_axes_by_dim[dim])
        return all_axes

    def configure_optimizers(self):
        optimizer = build_optimizer(self.optimizer_name, self.network.parameters(), self.initial_lr,
                                    self.weight_decay, self.momentum, **self.optimizer_kwargs)
        scheduler = build_lr_scheduler(self.lr_schedule, optimizer, self.initial_lr, self.num_epochs,
                                       self.poly_lr_exponent, self.warmup_duration_whole_net)
        return optimizer, scheduler

    @classmethod
    def get_training_transforms(cls, patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes,  # noqa: N803
                                do_dummy_2d_data_aug, use_mask_for_norm=None, is_cascaded=False,
                                foreground_labels=None, regions=None, ignore_label=None):
        """The training pipeline chosen by ``augmentation`` (nnU-Net's arguments and order)."""
        common = {"use_mask_for_norm": use_mask_for_norm, "is_cascaded": is_cascaded,
                  "foreground_labels": foreground_labels, "regions": regions, "ignore_label": ignore_label}
        if cls.augmentation == "none":
            return get_validation_transforms(deep_supervision_scales, is_cascaded, foreground_labels, regions,
                                             ignore_label)
        if cls.augmentation == "DA5":
            # imported here: its transforms pull in scipy.stats (0.6 s), which prediction never needs
            from nnunet.training.augmentation_da5 import da5_training_transforms

            return da5_training_transforms(patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes,
                                           do_dummy_2d_data_aug, image_order=cls.image_interpolation_order,
                                           seg_order=cls.seg_interpolation_order, **common)
        if cls.augmentation != "default":
            raise ConfigurationError(f"Unknown augmentation {cls.augmentation!r} in {cls.__name__}; choose "
                                     f"'default', 'DA5' or 'none'.")
        build = fused_training_transforms if cls.pipeline_choice() == "fused" else get_training_transforms
        return build(patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
                     seg_order=cls.seg_interpolation_order, cascade_p_per_label=cls.cascade_p_per_label, **common)

    @classmethod
    def pipeline_choice(cls) -> str:
        """``nnUNet_augmentation_pipeline`` if set, else the class's ``augmentation_pipeline``."""
        choice = os.environ.get("nnUNet_augmentation_pipeline") or cls.augmentation_pipeline
        if choice not in ("fused", "bgv2"):
            raise ConfigurationError(f"Unknown augmentation pipeline {choice!r} (nnUNet_augmentation_pipeline or "
                                     f"{cls.__name__}.augmentation_pipeline); choose 'fused' or 'bgv2'.")
        return choice

    get_validation_transforms = staticmethod(get_validation_transforms)

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        set_deep_supervision(self.network, enabled)

    def do_split(self) -> tuple[list[str], list[str]]:
        identifiers = case_identifiers(self.preprocessed_dataset_folder)
        train, val = train_val_keys(self.preprocessed_dataset_folder_base, self.fold, identifiers,
                                    log=self.print_to_log_file)
        for what, key, keys in (("training", "train", train), ("validation", "val", val)):
            if not keys:
                raise DatasetError(
                    f"Fold {self.fold} has no {what} cases ({self.preprocessed_dataset_folder_base / SPLITS_FILE}, "
                    f"{len(identifiers)} preprocessed cases). Put cases in its {key!r} list (every epoch"
                    f"{' and the final validation use them' if key == 'val' else ' samples from them'}), or train "
                    f"fold 'all'.")
        return train, val

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
        targets = {"is_cascaded": self.is_cascaded, "foreground_labels": lm.foreground_labels,
                   "regions": lm.foreground_regions if lm.has_regions else None, "ignore_label": lm.ignore_label}
        tr_transforms = self.get_training_transforms(patch_size, rotation, ds_scales, mirror_axes, dummy_2d,
                                                     use_mask_for_norm=self.configuration_manager.use_mask_for_norm,
                                                     **targets)
        val_transforms = self.get_validation_transforms(ds_scales, **targets)
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        common = {"label_manager": lm, "oversample_foreground_percent": self.oversample_foreground_percent,
                  "probabilistic_oversampling": self.probabilistic_oversampling}
        dl_tr = PatchLoader(dataset_tr, self.batch_size, initial_patch, patch_size, transforms=tr_transforms,
                            **common)
        dl_val = PatchLoader(dataset_val, self.batch_size, patch_size, patch_size, transforms=val_transforms,
                             **common)
        return dl_tr, dl_val

    def augments_on_device(self, transforms) -> bool:
        """Whether the training batches are augmented on the device (see ``augment_on_device``)."""
        value = os.environ.get("nnUNet_augment_on_device")
        wanted = self.augment_on_device if value in (None, "") else value not in ("0", "false", "False")
        if not wanted:
            return False
        if not hasattr(transforms, "draw_spatial") or self.is_cascaded:
            self.print_to_log_file("INFO: augmentation stays in the workers: on-device augmentation needs the fused "
                                   "pipeline and no cascade input.")
            return False
        return True

    def get_dataloaders(self):
        dl_tr, dl_val = self.get_plain_dataloaders()
        n = num_processes_for_augmentation()
        pin = self.device.type == "cuda"
        on_device = self.augments_on_device(dl_tr.transforms)
        device_transforms, dl_tr.transforms = (dl_tr.transforms, None) if on_device else (None, dl_tr.transforms)
        train = background_loader(dl_tr, n, max(6, n // 2), pin)
        if on_device:
            # imported here: it subclasses a batchgeneratorsv2 transform, which prediction never needs
            from nnunet.training.data.device_augmentation import DeviceAugmentedLoader

            self.print_to_log_file(f"Augmenting training batches on {self.device}; workers load and crop.")
            train = DeviceAugmentedLoader(train, device_transforms, self.device)
        val = None
        try:
            val = background_loader(dl_val, max(1, n // 2) if n > 0 else 0, max(3, n // 4), pin)
            # fetch one batch of each so the workers start now (and fail early)
            next(train)
            next(val)
        except BaseException:
            for loader in (train, val):  # neither is the trainer's yet: stop their workers here
                finish_loader(loader)
            raise
        return train, val
