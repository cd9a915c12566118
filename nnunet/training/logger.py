"""Per-epoch training statistics, the training log file and the progress plot."""
from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from nnunet.utils.files import publish

logger = logging.getLogger(__name__)

LOGGED_KEYS = ("mean_fg_dice", "ema_fg_dice", "dice_per_class_or_region", "train_losses", "val_losses", "lrs",
               "epoch_start_timestamps", "epoch_end_timestamps")


class MetricsLogger:
    """One value per epoch and key (the dict that goes into checkpoints as ``logging``).

    Logging ``mean_fg_dice`` also updates ``ema_fg_dice`` (first value = the Dice, then ``0.9 ema + 0.1 dice``).
    Sinks (e.g. :class:`~nnunet.training.wandb_logger.WandbLogger`) receive every value as it is logged, lists
    split into ``key/class_1``, ``key/class_2``, ..., plus the run's configuration and summary values.
    """

    def __init__(self, verbose: bool = False) -> None:
        # verbose: nnU-Net's argument, accepted; the trainer's log file reports the values
        self.my_fantastic_logging: dict[str, list] = {k: [] for k in LOGGED_KEYS}
        self.sinks: list[Any] = []

    def add_sink(self, sink: Any) -> None:
        self.sinks.append(sink)

    def update_config(self, config: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.update_config(config)

    def log_summary(self, key: str, value: Any) -> None:
        for sink in self.sinks:
            sink.log_summary(key, value)

    def log(self, key: str, value: Any, epoch: int) -> None:
        values = self.my_fantastic_logging.setdefault(key, [])
        if len(values) > epoch:
            values[epoch] = value  # re-logging an epoch (e.g. after resuming) overwrites it
        elif len(values) == epoch:
            values.append(value)
        else:
            raise ValueError(f"Cannot log {key!r} for epoch {epoch}: only {len(values)} epochs are logged.")
        for sink in self.sinks:
            if isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    sink.log(f"{key}/class_{i + 1}", v, epoch)
            else:
                sink.log(key, value, epoch)
        if key == "mean_fg_dice":
            ema = self.my_fantastic_logging["ema_fg_dice"]
            new = value if epoch == 0 or len(ema) < epoch else ema[epoch - 1] * 0.9 + 0.1 * value
            self.log("ema_fg_dice", new, epoch)

    def get_value(self, key: str, step: int | None) -> Any:
        """The value of ``key`` logged for epoch ``step``, or all of its values when ``step`` is None."""
        values = self.my_fantastic_logging[key]
        return values if step is None else values[step]

    def get_checkpoint(self) -> dict[str, list]:
        return self.my_fantastic_logging

    def load_checkpoint(self, checkpoint: dict[str, list]) -> None:
        self.my_fantastic_logging = {k: list(v) for k, v in checkpoint.items()}
        for k in LOGGED_KEYS:
            self.my_fantastic_logging.setdefault(k, [])

    def truncate(self, num_epochs: int) -> None:
        """Forget epochs >= ``num_epochs`` (values logged by an epoch that did not finish)."""
        for k in self.my_fantastic_logging:
            del self.my_fantastic_logging[k][num_epochs:]

    def plot_progress_png(self, output_folder: str | os.PathLike) -> None:
        """progress.png: losses + pseudo Dice (and EMA), epoch duration, learning rate; x = epoch."""
        import matplotlib

        matplotlib.use("agg")
        import matplotlib.pyplot as plt

        logs = self.my_fantastic_logging
        n = min(len(logs[k]) for k in ("train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice", "lrs",
                                       "epoch_start_timestamps", "epoch_end_timestamps"))
        if n == 0:
            return
        epochs = list(range(n))
        fig, axes = plt.subplots(3, 1, figsize=(30, 54))
        ax = axes[0]
        ax2 = ax.twinx()
        ax.plot(epochs, logs["train_losses"][:n], color="b", ls="-", label="loss_tr", linewidth=4)
        ax.plot(epochs, logs["val_losses"][:n], color="r", ls="-", label="loss_val", linewidth=4)
        ax2.plot(epochs, logs["mean_fg_dice"][:n], color="g", ls="dotted", label="pseudo dice", linewidth=3)
        ax2.plot(epochs, logs["ema_fg_dice"][:n], color="g", ls="-", label="pseudo dice (mov. avg.)", linewidth=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax2.set_ylabel("pseudo dice")
        ax.legend(loc=(0, 1))
        ax2.legend(loc=(0.2, 1))
        ax = axes[1]
        durations = [e - s for s, e in zip(logs["epoch_start_timestamps"][:n], logs["epoch_end_timestamps"][:n])]
        ax.plot(epochs, durations, color="b", ls="-", label="epoch duration", linewidth=4)
        ax.set_ylim([0, max(durations) * 1.1 if durations and max(durations) > 0 else 1])
        ax.set_xlabel("epoch")
        ax.set_ylabel("time [s]")
        ax.legend(loc=(0, 1))
        ax = axes[2]
        ax.plot(epochs, logs["lrs"][:n], color="b", ls="-", label="learning rate", linewidth=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.legend(loc=(0, 1))
        plt.tight_layout()
        try:
            with publish(Path(output_folder) / "progress.png") as tmp:
                fig.savefig(tmp)
        finally:
            plt.close(fig)


def log_file_name(timestamp: datetime) -> str:
    """``training_log_{Y}_{M}_{D}_{hh}_{mm}_{ss}.txt``: year/month/day not zero-padded, time zero-padded."""
    t = timestamp
    return f"training_log_{t.year}_{t.month}_{t.day}_{t.hour:02d}_{t.minute:02d}_{t.second:02d}.txt"


class TrainingLogFile:
    """Appends timestamped lines to the fold's log file (and optionally the console).

    Args:
        path: log file; its folder is created on first write. None: console only (e.g. ranks other than 0).
    """

    def __init__(self, path: str | os.PathLike | None, echo: bool = True):
        self.path = Path(path) if path is not None else None
        self.echo = echo

    def __call__(self, *args: Any, also_print_to_console: bool = True, add_timestamp: bool = True) -> None:
        message = " ".join(str(a) for a in args)
        line = f"{datetime.now()}: {message}" if add_timestamp else message
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(5):
                try:
                    with open(self.path, "a") as f:
                        f.write(line + "\n")
                    break
                except OSError as e:
                    if attempt == 4:
                        logger.warning("%s: failed to write to the log file %s: %s", datetime.now(), self.path, e)
                    time.sleep(0.5)
        if self.echo and also_print_to_console:
            print(line, flush=True)
