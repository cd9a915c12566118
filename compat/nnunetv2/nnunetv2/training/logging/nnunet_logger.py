"""nnU-Net 2.8.1's training loggers: ``LocalLogger`` (before 2.6 ``nnUNetLogger``) is our metrics logger;
``MetaLogger`` is the same logger with the W&B sink attached when ``nnUNet_wandb_enabled`` is set."""
from __future__ import annotations

from nnunet.training.logger import MetricsLogger as LocalLogger
from nnunet.training.wandb_logger import WandbLogger, cluster_job_id, wandb_enabled

nnUNetLogger = LocalLogger
get_cluster_job_id = cluster_job_id

__all__ = ["LocalLogger", "MetaLogger", "WandbLogger", "get_cluster_job_id", "nnUNetLogger"]


class MetaLogger(LocalLogger):
    """Our logger is local logger and dispatcher at once: ``local_logger`` is itself, ``loggers`` its sinks."""

    def __init__(self, output_folder, resume, verbose: bool = False):
        super().__init__(verbose)
        self.output_folder, self.resume = output_folder, resume
        if wandb_enabled():
            self.add_sink(WandbLogger(output_folder, resume))

    @property
    def local_logger(self) -> LocalLogger:
        return self

    @property
    def loggers(self) -> list:
        return self.sinks
