"""The epoch loop of :class:`nnunet.training.trainer.nnUNetTrainer`: steps, per-epoch logging, checkpoints, the
files written when a training starts, and the final validation.

:class:`TrainingLoop` is the trainer's base class; it reads what ``nnUNetTrainer`` sets up (network, optimizer,
loss, data loaders, label manager, folders) and keeps nnU-Net's hook names (``run_training``, ``on_*``,
``train_step``, ``validation_step``, ``save_checkpoint``, ``load_checkpoint``, ``perform_actual_validation``).
"""
from __future__ import annotations

import contextlib
import inspect
import os
import time
from typing import Any

import numpy as np
import torch

from nnunet.errors import ConfigurationError
from nnunet.networks.from_plans import unwrap
from nnunet.training import ddp, run_files
from nnunet.training.checkpoint import (add_rng_states, capture_rng_state, gather_rng_states, load_checkpoint_file,
                                        restore_rng_state, rng_state_for_rank, save_checkpoint_file,
                                        strip_module_prefixes)
from nnunet.training.data.dataset import dataset_format, unpack_npz
from nnunet.training.data.loader import check_label_values
from nnunet.training.data.workers import finish_loader
from nnunet.training.optimizers import load_optimizer_state
from nnunet.training.pseudo_dice import dice_per_class, validation_counts
from nnunet.training.validation import ValidationJob, run_final_validation
from nnunet.training.wandb_logger import WandbLogger


def make_grad_scaler(device: torch.device, enabled: bool | None = None):
    """A GradScaler for ``device`` when ``enabled`` (default: on CUDA only, as nnU-Net), else None.

    ``torch.amp.GradScaler(device_type)`` needs torch >= 2.3 (it also scales on the CPU); older torch has the CUDA
    one only, as ``torch.cuda.amp.GradScaler``."""
    if enabled is None:
        enabled = device.type == "cuda"
    if not enabled:
        return None
    scaler_class = getattr(torch.amp, "GradScaler", None)
    if scaler_class is not None:
        return scaler_class(device.type)
    if device.type != "cuda":
        raise ConfigurationError(f"Gradient scaling on {device.type} needs torch >= 2.3 (torch.amp.GradScaler); "
                                 f"this is torch {torch.__version__}. Train without float16 autocast there.")
    return torch.cuda.amp.GradScaler()


def outputs_to_host(outputs: list[dict], keys: tuple[str, ...]) -> dict[str, list[np.ndarray]]:
    """``{key: [value of each step as numpy]}`` from the steps' outputs.

    The steps leave their values on the device so that no step waits for the GPU; here all device tensors of one
    dtype travel in one copy (the first copy waits for the queued steps, the others find nothing left to wait for).
    Values that are numpy already (trainers written for nnU-Net 2.8.1 return them from their own steps) pass as
    they are."""
    host: dict[str, list] = {k: [None] * len(outputs) for k in keys}
    on_device: dict[tuple, list] = {}
    for i, output in enumerate(outputs):
        for k in keys:
            value = output[k]
            if isinstance(value, torch.Tensor):
                on_device.setdefault((value.device, value.dtype), []).append((k, i, value.detach()))
            else:
                host[k][i] = np.asarray(value)
    for items in on_device.values():
        flat = torch.cat([v.reshape(-1) for _, _, v in items]).cpu().numpy()
        ends = np.cumsum([v.numel() for _, _, v in items])
        for (k, i, v), end in zip(items, ends):
            host[k][i] = flat[end - v.numel():end].reshape(tuple(v.shape))
    return host


class TrainingLoop:
    """Epoch loop, steps and checkpoints (see the module docstring); not used on its own."""

    def enable_wandb(self, resume: bool) -> None:
        """Send the logged values to Weights & Biases (see :mod:`nnunet.training.wandb_logger`); first process
        only."""
        if self.local_rank != 0:
            return
        self.logger.add_sink(WandbLogger(self.output_folder, resume))
        kwargs = self.my_init_kwargs
        self.logger.update_config({"plans": kwargs["plans"], "configuration": kwargs["configuration"],
                                   "fold": kwargs["fold"], "dataset": kwargs["dataset_json"]})

    # ------------------------------------------------------------------ loop
    def run_training(self) -> None:
        self.on_train_start()
        try:
            for _ in range(self.current_epoch, self.num_epochs):
                self.on_epoch_start()
                self.on_train_epoch_start()
                train_outputs = [self.train_step(self._next_batch(self.dataloader_train))
                                 for _ in range(self.num_iterations_per_epoch)]
                self.on_train_epoch_end(train_outputs)
                with torch.no_grad():
                    self.on_validation_epoch_start()
                    val_outputs = [self.validation_step(self._next_batch(self.dataloader_val))
                                   for _ in range(self.num_val_iterations_per_epoch)]
                    self.on_validation_epoch_end(val_outputs)
                self.on_epoch_end()
        except BaseException:
            self.shutdown_dataloaders()  # background workers would otherwise outlive an error or Ctrl-C
            raise
        self.on_train_end()

    def _next_batch(self, loader) -> dict:
        batch = next(loader)
        check_label_values(batch, self.label_manager, self.preprocessed_dataset_folder)
        return batch

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
            finish_loader(loader)
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
        dtype = self.autocast_dtype()
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

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
        return {"loss": loss.detach()}  # on the device: read once per epoch (on_train_epoch_end), not per step

    def on_train_epoch_end(self, train_outputs: list[dict]) -> None:
        losses = [float(v) for v in outputs_to_host(train_outputs, ("loss",))["loss"]]
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
        tp, fp, fn = validation_counts(output, target, self.label_manager)
        return {"loss": loss.detach(), "tp_hard": tp, "fp_hard": fp, "fn_hard": fn}  # device tensors, as above

    def on_validation_epoch_end(self, val_outputs: list[dict]) -> None:
        host = outputs_to_host(val_outputs, ("loss", "tp_hard", "fp_hard", "fn_hard"))
        stats = {k: np.sum(host[k], 0) for k in ("tp_hard", "fp_hard", "fn_hard")}
        losses = [float(v) for v in host["loss"]]
        if self.is_ddp:
            parts = ddp.gather_objects((stats, losses))
            stats = {k: np.sum([p[0][k] for p in parts], 0) for k in stats}
            losses = [x for p in parts for x in p[1]]
        dice, mean_fg_dice = dice_per_class(stats["tp_hard"], stats["fp_hard"], stats["fn_hard"])
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
        load_optimizer_state(self.optimizer, checkpoint["optimizer_state"])
        if self.grad_scaler is not None and checkpoint.get("grad_scaler_state") is not None:
            self.grad_scaler.load_state_dict(checkpoint["grad_scaler_state"])
        restore_rng_state(rng_state_for_rank(checkpoint, self.local_rank))

    # ------------------------------------------------------------------ validation after training
    def perform_actual_validation(self, save_probabilities: bool = False) -> dict | None:
        """Sliding-window prediction of the validation cases, export, summary.json (and next-stage segs)."""
        self.set_deep_supervision_enabled(False)
        self.network.eval()
        job = ValidationJob(
            network=self.inference_network(), plans=self.plans_manager, configuration=self.configuration_manager,
            dataset_json=self.dataset_json, trainer_name=type(self).__name__,
            mirror_axes=self.inference_allowed_mirroring_axes, device=self.device, case_keys=self.do_split()[1],
            preprocessed_root=self.preprocessed_dataset_folder_base, fold_folder=self.output_folder,
            previous_stage_folder=self.folder_with_segs_from_previous_stage, save_probabilities=save_probabilities,
            barrier_every=self.validation_barrier_every, log=self.print_to_log_file)
        summary = run_final_validation(job)
        if summary is not None:
            for label, metrics in summary["mean"].items():
                self.logger.log_summary(f"final_val/class_{label}_dice", metrics["Dice"])
            self.logger.log_summary("final_val/foreground_dice", summary["foreground_mean"]["Dice"])
        self.set_deep_supervision_enabled(True)
        return summary

    def inference_network(self) -> torch.nn.Module:
        """The network for the final validation: without the DDP wrapper (each rank predicts its own cases), but
        compiled if training compiled it, as in nnU-Net 2.8.1 (the compiled module is reused; switching deep
        supervision off and eval mode make torch.compile trace it once more)."""
        network = self.network
        if isinstance(network, torch.nn.parallel.DistributedDataParallel):
            network = network.module
        return network

    # ------------------------------------------------------------------ files beside the checkpoints
    def print_plans(self) -> None:
        if self.local_rank == 0:
            run_files.log_plans(self.print_to_log_file, self.configuration_name,
                                dict(self.configuration_manager.data), self.plans_manager.data)

    def copy_plans_and_dataset_json(self) -> None:
        run_files.copy_plans_and_dataset_json(self.output_folder_base, self.plans_manager.data, self.dataset_json,
                                              self.preprocessed_dataset_folder_base / "dataset_fingerprint.json")

    def plot_network_architecture(self) -> None:
        """network_architecture.pdf through the optional ``hiddenlayer`` package (not with torch.compile)."""
        if self._do_i_compile():
            self.print_to_log_file("Unable to plot network architecture: nnUNet_compile is enabled!")
            return
        shape = (1, self.num_input_channels, *self.configuration_manager.patch_size)
        run_files.plot_network_architecture(self.network, shape, self.device,
                                            self.output_folder / "network_architecture.pdf", self.print_to_log_file)

    def _save_debug_information(self) -> None:
        skip = {"my_init_kwargs", "dataset_json", "plans_manager", "logger"}
        attributes = {k: v for k, v in inspect.getmembers(self)
                      if not k.startswith("__") and not callable(v) and k not in skip}
        run_files.write_debug_json(self.output_folder / "debug.json", attributes, self.device)
