"""Turn the ``inference_instructions.txt`` written by ``nnUNet_find_best_configuration`` into runnable commands.

The file holds shell command lines with placeholders (``INPUT_FOLDER``, ``OUTPUT_FOLDER``,
``OUTPUT_FOLDER_MODEL_1``, ``OUTPUT_FOLDER_PP``, ...). The demo and the end-to-end test run those lines as
written, with only the placeholders filled in.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from nnunet.errors import NnunetError

#: every placeholder find_best_configuration writes: INPUT_FOLDER, OUTPUT_FOLDER and OUTPUT_FOLDER_<SUFFIX>
PLACEHOLDER = re.compile(r"\b(INPUT_FOLDER|OUTPUT_FOLDER(?:_[A-Z0-9]+)*)\b")
COMMAND_PREFIXES = ("nnUNetv2_", "nnUNet_")


def placeholder_folder(name: str, input_folder: str | os.PathLike, output_root: str | os.PathLike) -> Path:
    """``INPUT_FOLDER`` is ``input_folder``; ``OUTPUT_FOLDER_X`` is ``output_root/output_folder_x``."""
    if name == "INPUT_FOLDER":
        return Path(input_folder)
    return Path(output_root) / name.lower()


def instruction_commands(text: str, input_folder: str | os.PathLike, output_root: str | os.PathLike,
                         device: str | None = None) -> list[list[str]]:
    """The command lines of an ``inference_instructions.txt`` text as argv lists, placeholders filled in.

    Args:
        text: contents of inference_instructions.txt.
        input_folder: replaces ``INPUT_FOLDER`` (images named ``CASE_XXXX<ending>``).
        output_root: every ``OUTPUT_FOLDER*`` placeholder becomes a folder below it (see
            :func:`placeholder_folder`), so ``OUTPUT_FOLDER`` is ``output_root/output_folder`` and
            ``OUTPUT_FOLDER_PP`` is ``output_root/output_folder_pp``.
        device: if given, ``-device DEVICE`` is appended to each predict command. The instructions name no
            device, so ``nnUNetv2_predict`` would use its default, ``cuda``; pass ``"cpu"`` on a machine
            without a GPU.

    Returns:
        One argv list per command, in file order; ``argv[0]`` is the command name as written.

    Raises:
        NnunetError: the text contains no command.
    """
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith(COMMAND_PREFIXES):
            continue
        filled = PLACEHOLDER.sub(
            lambda m: shlex.quote(str(placeholder_folder(m.group(1), input_folder, output_root))), line)
        argv = shlex.split(filled)
        if device is not None and argv[0].endswith("_predict"):
            argv += ["-device", device]
        commands.append(argv)
    if not commands:
        raise NnunetError("The inference instructions contain no nnUNetv2_ command line.")
    return commands
