"""Where a training continues from, and what to tell the user when it is interrupted.

``--c`` (and an elastic restart under torchrun) continues from ``checkpoint_final.pth``, else
``checkpoint_latest.pth``, else ``checkpoint_best.pth`` (nnU-Net's order). On Ctrl-C the note names what is
really on disk: the checkpoint ``--c`` would continue from, ``--val`` when only the final validation was cut
short, or that no epoch finished yet and there is nothing to continue from.
"""
from __future__ import annotations

import os
from pathlib import Path

CONTINUE_ORDER = ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth")


def checkpoint_to_continue(fold_folder: str | os.PathLike) -> Path | None:
    """The checkpoint ``--c`` loads from ``fold_folder``, or None."""
    for name in CONTINUE_ORDER:
        path = Path(fold_folder) / name
        if path.is_file():
            return path
    return None


def _written_since(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since - 2  # a little slack for a file server's clock
    except OSError:
        return False


def interrupt_note(fold_folder: str | os.PathLike | None, phase: str | None, ours: bool | None = None,
                   started_at: float = 0.0, checkpointing: bool = True) -> str:
    """The advice printed after Ctrl-C.

    Args:
        fold_folder: the training's ``fold_x`` folder (None: not known yet).
        phase: ``"training"``, ``"validation"`` or None (unknown: judged from the files).
        ours: whether the checkpoints in the folder are this training's progress (it continued from them, or
            finished an epoch); None: unknown, judged by whether they were written after ``started_at``.
        started_at: ``time.time()`` when this command started (used when ``ours`` is None).
        checkpointing: False with ``--disable_checkpointing``.
    """
    if fold_folder is None:
        return "The training had not started; nothing was written. Run the same command again."
    folder = Path(fold_folder)
    if not checkpointing:
        return ("Checkpointing was disabled (--disable_checkpointing), so there is nothing to continue from: run the "
                "training again.")

    def is_ours(path: Path) -> bool:
        return path.is_file() and (ours if ours is not None else _written_since(path, started_at))

    final = folder / "checkpoint_final.pth"
    if (phase == "validation" and final.is_file()) or (phase is None and is_ours(final)):
        return (f"The training is finished ({final}); the final validation was cut short. Run the same command "
                f"with --val (and without --c) to redo only the validation.")
    checkpoint = checkpoint_to_continue(folder)
    if checkpoint is not None and is_ours(checkpoint):
        when = {"checkpoint_latest.pth": " (written after every finished epoch)",
                "checkpoint_best.pth": " (the epoch with the best pseudo Dice so far)"}.get(checkpoint.name, "")
        return f"{checkpoint}{when} is kept: run the same command with --c to continue from it."
    note = ("No epoch of this training finished, so no checkpoint was written and there is nothing to continue "
            "from: run the same command again to start over.")
    if checkpoint is not None:
        note += f" ({checkpoint} is from an earlier training; --c would continue that one.)"
    return note
