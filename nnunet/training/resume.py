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
        return path.stat().st_mtime >= since
    except OSError:
        return False


def interrupt_note(fold_folder: str | os.PathLike | None, started_at: float, phase: str | None,
                   continued: bool = False, checkpointing: bool = True) -> str:
    """The advice printed after Ctrl-C.

    Args:
        fold_folder: the training's ``fold_x`` folder (None: not known yet).
        started_at: ``time.time()`` when this command started; older checkpoints belong to an earlier run unless
            this run continued from them.
        phase: ``"training"``, ``"validation"`` or None (unknown: judged from the files).
        continued: this run was started with ``--c``/``--val`` (its checkpoints are this training's progress).
        checkpointing: False with ``--disable_checkpointing``.
    """
    if fold_folder is None:
        return "The training had not started; nothing was written. Run the same command again."
    folder = Path(fold_folder)
    if not checkpointing:
        return ("Checkpointing was disabled (--disable_checkpointing), so there is nothing to continue from: run the "
                "training again.")
    final = folder / "checkpoint_final.pth"
    final_is_ours = final.is_file() and (continued or _written_since(final, started_at))
    if phase == "validation" or (phase is None and final_is_ours):
        if final.is_file():
            return (f"The training is finished ({final}); the final validation was cut short. Run the same command "
                    f"with --val (and without --c) to redo only the validation.")
    checkpoint = checkpoint_to_continue(folder)
    if checkpoint is not None and (continued or _written_since(checkpoint, started_at)):
        when = {"checkpoint_latest.pth": " (written after every finished epoch)",
                "checkpoint_best.pth": " (the epoch with the best pseudo Dice so far)"}.get(checkpoint.name, "")
        return f"{checkpoint}{when} is kept: run the same command with --c to continue from it."
    note = ("No epoch of this training finished, so no checkpoint was written and there is nothing to continue "
            "from: run the same command again to start over.")
    if checkpoint is not None:
        note += f" ({checkpoint} is from an earlier training; --c would continue that one.)"
    return note
