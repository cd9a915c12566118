"""Benchmark trainers: 5 short epochs, no checkpoints or validation; the fastest epoch time goes to
``fold_0/benchmark_result.json`` (one entry per host/cuDNN/torch/GPU/GPU-count combination)."""
from __future__ import annotations

import socket

import torch

from nnunet.errors import ConfigurationError
from nnunet.registry import TRAINERS
from nnunet.training import ddp
from nnunet.training.trainer import nnUNetTrainer
from nnunet.utils.json import load_json, save_json

# ruff: noqa: N801


@TRAINERS.register
class nnUNetTrainerBenchmark_5epochs(nnUNetTrainer):
    num_epochs = 5
    disable_checkpointing = True
    #: set when the training stopped with a RuntimeError (e.g. out of memory); recorded instead of a time
    crashed_with_runtime_error = False

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        return None

    def save_checkpoint(self, filename) -> None:
        return None

    def run_training(self) -> None:
        if self.fold != 0:
            raise ConfigurationError(f"{type(self).__name__} writes its result to fold_0/benchmark_result.json; run it "
                                     f"with fold 0 (got fold {self.fold}).")
        try:
            super().run_training()
        except RuntimeError as e:  # e.g. out of memory: record the failure instead of a time
            self.crashed_with_runtime_error = True
            self.on_train_end()
            self.print_to_log_file(f"An Exception occurred: {e}")

    def on_train_end(self) -> None:
        super().on_train_end()
        if self.local_rank != 0:
            return
        logs = self.logger.my_fantastic_logging
        if self.crashed_with_runtime_error:
            fastest: float | str = "Training has ended due to an error. Check your logs for more information."
        else:
            times = [e - s for s, e in zip(logs["epoch_start_timestamps"], logs["epoch_end_timestamps"])]
            fastest = min(times)
        num_gpus = ddp.rank_and_world()[1]
        gpu = torch.cuda.get_device_name() if self.device.type == "cuda" else str(self.device)
        cudnn = torch.backends.cudnn.version()
        host = socket.gethostname()
        path = self.output_folder / "benchmark_result.json"
        results = load_json(path) if path.is_file() else {}
        key = f"{host}__{cudnn}__{torch.__version__.replace(' ', '')}__{gpu.replace(' ', '')}__num_gpus_{num_gpus}"
        results[key] = {"torch_version": torch.__version__, "cudnn_version": cudnn, "gpu_name": gpu,
                        "fastest_epoch": fastest, "num_gpus": num_gpus, "hostname": host}
        save_json(results, path)


@TRAINERS.register
class nnUNetTrainerBenchmark_5epochs_noDataLoading(nnUNetTrainerBenchmark_5epochs):
    """Feeds one random batch (on the device) every iteration, to time the GPU alone."""

    def get_dataloaders(self):
        self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        patch = self.configuration_manager.patch_size
        channels = self.determine_num_input_channels()
        data = torch.rand((self.batch_size, channels, *patch), device=self.device)
        scales = self._get_deep_supervision_scales() or [[1.0] * len(patch)]
        max_label = max(self.label_manager.all_labels)
        targets = [torch.round(torch.rand((self.batch_size, 1, *[int(p * s) for p, s in zip(patch, scale)]),
                                          device=self.device) * max_label) for scale in scales]
        batch = {"data": data, "target": targets if self.enable_deep_supervision else targets[0]}
        return _Repeat(batch), _Repeat(batch)


class _Repeat:
    def __init__(self, item):
        self.item = item

    def __iter__(self):
        return self

    def __next__(self):
        return self.item
