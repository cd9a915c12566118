"""Checkpoint files: written complete-or-absent, loaded as data (never as code), DDP/compile prefixes removed.
Training, inference and the sharing commands all read them, so this lives below all three.

Keys (compatible with nnU-Net): ``network_weights``, ``optimizer_state``, ``grad_scaler_state``, ``logging``,
``_best_ema``, ``current_epoch``, ``init_args``, ``trainer_name``, ``inference_allowed_mirroring_axes``. Our trainers
add random-generator states (:mod:`nnunet.training.checkpoint`); nnU-Net ignores unknown keys.

A checkpoint is a pickle, and a pickle can name any function to call while it is loaded. People download model
zips from papers and share result folders, so every checkpoint is loaded with ``torch.load(weights_only=True)``
plus exactly the objects nnU-Net 2.8.1 and our trainers store besides tensors and plain containers: numpy
arrays, dtypes and scalars (logged metrics, ``_best_ema``; older checkpoints of ours: the numpy generator state
as an array). Anything else is refused with a message naming the file and the object (see
documentation/reliability.md).
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from nnunet.errors import NnunetError
from nnunet.utils.files import publish
from nnunet.utils.safe_pickle import NUMPY_GLOBALS, UnsafePickleError, numeric_dtype_classes

CHECKPOINT_KEYS = ("network_weights", "optimizer_state", "grad_scaler_state", "logging", "_best_ema",
                   "current_epoch", "init_args", "trainer_name", "inference_allowed_mirroring_axes")


class UnsafeCheckpointError(UnsafePickleError):
    """A checkpoint names an object outside the allow-list (loading it could run code)."""


def checkpoint_safe_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` may build besides tensors and containers: numpy arrays, dtypes and
    scalars, under both their numpy 1.x and 2.x names (the format of ``torch.serialization.safe_globals``)."""
    return [(obj, f"{module}.{name}") for (module, name), obj in NUMPY_GLOBALS.items()] + numeric_dtype_classes()


def save_checkpoint_file(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path`` (see :func:`nnunet.utils.files.publish`).

    A kill at any moment leaves either the previous complete file or the new complete file; a full disk leaves
    the previous file and raises :class:`nnunet.utils.files.OutputError` naming the path.
    """
    with publish(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by this package or by nnU-Net, as data only.

    Raises:
        UnsafeCheckpointError: the file names an object outside :func:`checkpoint_safe_globals` (nothing of it
            was run); the message names the file and the objects.
        NnunetError: the file is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise NnunetError(f"Checkpoint {path} does not exist.")
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            refused = _refused_objects(path, str(e))
            if refused:
                raise UnsafeCheckpointError(
                    f"{path}: refused to load {', '.join(refused)}. A checkpoint may hold only network weights and "
                    f"plain data (numbers, text, lists, dicts, numpy arrays and scalars); loading this one could run "
                    f"code. Do not use a file of unknown origin (see documentation/reliability.md).") from None
            raise NnunetError(f"Cannot load the checkpoint {path}: it is damaged or not a checkpoint "
                              f"({_first_line(e)}). Copy it again, or train again.") from None
        except Exception as e:  # truncated, empty or not a torch file
            raise NnunetError(f"Cannot load the checkpoint {path}: it is truncated or not a checkpoint "
                              f"({_first_line(e)}). Copy it again, or train again.") from None
    if not isinstance(checkpoint, dict):
        raise NnunetError(f"{path} is not an nnU-Net checkpoint (it holds a {type(checkpoint).__name__}, not a dict).")
    return checkpoint


def verify_checkpoint_file(path: str | os.PathLike) -> None:
    """Raise as :func:`load_checkpoint_file` would if ``path`` is not a checkpoint that loads as data.

    Tensors are memory-mapped, not read, so checking a large checkpoint costs little.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return
    except (RuntimeError, ValueError, OSError):
        pass  # e.g. a legacy (non-zip) torch file, which cannot be memory-mapped: load it fully
    except pickle.UnpicklingError:
        pass  # let the full load below say why, with the same message as everywhere else
    load_checkpoint_file(path)


def _refused_objects(path: Path, message: str) -> list[str]:
    """The objects of ``path`` outside the allow-list (call inside the allow-list's ``safe_globals``)."""
    try:
        found = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # the listing itself may fail on a damaged file; the error message still names one
        found = []
    found += [m for m in re.findall(r"GLOBAL ([\w.]+)|but got <class '([\w.]+)'>", message) for m in m if m]
    return list(dict.fromkeys(_python3_name(name) for name in found))


def _python3_name(dotted: str) -> str:
    """torch.save writes pickle protocol 2, which spells some modules the Python 2 way (``commands.Popen`` is
    ``subprocess.Popen``); name them as the user knows them."""
    import _compat_pickle

    module, _, name = dotted.rpartition(".")
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


def _first_line(error: BaseException) -> str:
    """The informative part of a torch.load error (torch wraps the unpickler's reason in advice we do not want)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].split(". ")[0].rstrip(".") if lines else type(error).__name__


def strip_module_prefixes(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Remove ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes from state-dict keys."""
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in ("module.", "_orig_mod."):
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out
