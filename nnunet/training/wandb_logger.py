"""Optional Weights & Biases logging of a training run, switched on by environment variables as in nnU-Net 2.8.

* ``nnUNet_wandb_enabled``: ``1``/``true``/``True`` on, ``0``/``false``/``False`` (default) off; anything else is
  an error.
* ``nnUNet_wandb_project`` (default ``nnunet``) and ``nnUNet_wandb_mode`` (default ``online``; ``offline`` needs no
  account) are passed to ``wandb.init``.

The run lives in ``<fold folder>/wandb``. ``--c`` resumes the run found in ``wandb/latest-run``; a fresh training
replaces that folder. Only the first process of a DDP training logs.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from nnunet.errors import ConfigurationError, NnunetError

ENABLED_VAR = "nnUNet_wandb_enabled"
PROJECT_VAR = "nnUNet_wandb_project"
MODE_VAR = "nnUNet_wandb_mode"


def wandb_enabled() -> bool:
    value = os.environ.get(ENABLED_VAR, "0")
    if value in ("0", "false", "False"):
        return False
    if value in ("1", "true", "True"):
        return True
    raise ConfigurationError(f"{ENABLED_VAR}={value!r} is not understood: use 1 (on) or 0 (off).")


def cluster_job_id() -> str | None:
    """The batch system's job id (SLURM wins over LSF), stored in the run's config."""
    return os.environ.get("SLURM_JOB_ID", os.environ.get("LSB_JOBID"))


def previous_run_id(wandb_folder: Path) -> str | None:
    """Id of the run in ``wandb/latest-run`` (its ``run-<id>.wandb`` file), or None if there is none."""
    latest = wandb_folder / "latest-run"
    if not latest.is_dir():
        return None
    run_file = next((f for f in sorted(latest.iterdir()) if f.suffix == ".wandb"), None)
    return run_file.stem[len("run-"):] if run_file is not None else None


class WandbLogger:
    """Receives what the trainer's :class:`~nnunet.training.logger.MetricsLogger` records and sends it to W&B."""

    def __init__(self, output_folder: str | os.PathLike, resume: bool):
        try:
            import wandb
        except ImportError:
            raise NnunetError(f"{ENABLED_VAR} is set but wandb is not installed: run 'pip install wandb' or unset "
                              f"{ENABLED_VAR}.") from None
        folder = Path(output_folder)
        run_id = None
        if (folder / "wandb").is_dir():
            if resume:
                run_id = previous_run_id(folder / "wandb")
            else:
                shutil.rmtree(folder / "wandb")  # a fresh training starts a fresh run
        self.resume = resume
        self.run = wandb.init(project=os.environ.get(PROJECT_VAR, "nnunet"), dir=str(folder), id=run_id,
                              mode=os.environ.get(MODE_VAR, "online"), resume="allow" if resume else "never")
        self.run.config.update({"JobID": cluster_job_id()})
        self.first_step = self.run.step

    def update_config(self, config: dict[str, Any]) -> None:
        self.run.config.update(config)

    def log(self, key: str, value: Any, step: int) -> None:
        self.log_summary("current_epoch", step)
        if self.resume and step < self.first_step:  # W&B refuses steps it has already seen
            return
        self.run.log({key: value}, step=step)

    def log_summary(self, key: str, value: Any) -> None:
        self.run.summary[key] = value
