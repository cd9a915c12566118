"""nnU-Net 2.8.1's training loggers: ``LocalLogger`` (before 2.6 ``nnUNetLogger``) is our metrics logger."""
from __future__ import annotations

from nnunet.training.logger import MetricsLogger as LocalLogger
from nnunet.training.wandb_logger import WandbLogger

nnUNetLogger = LocalLogger

__all__ = ["LocalLogger", "WandbLogger", "nnUNetLogger"]
