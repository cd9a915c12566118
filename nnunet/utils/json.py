"""JSON and pickle helpers: numpy-aware, standard JSON, atomic writes, pickles read as data only."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from nnunet.errors import NnunetError
from nnunet.utils.files import atomic_write_bytes  # noqa: F401 - re-exported for existing callers
from nnunet.utils.safe_pickle import load_data_pickle


def to_builtin(obj: Any) -> Any:
    """Recursively convert numpy scalars/arrays and tuples into JSON-friendly Python objects."""
    if isinstance(obj, dict):
        return {(to_builtin(k) if not isinstance(k, str) else k): to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_builtin(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_builtin(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or malformed file raises NnunetError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise NnunetError(f"File not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise NnunetError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None


def save_json(obj: Any, path: str | os.PathLike, sort_keys: bool = True, indent: int = 4,
              allow_nan: bool = False) -> None:
    """Write ``obj`` as standard JSON atomically (numpy types converted).

    NaN and +-Infinity are refused (they are not JSON, and a NaN in plans or a fingerprint silently spoils every
    later step) unless ``allow_nan``: for files whose nnU-Net format holds NaN (Dice of absent structures).
    """
    try:
        text = json.dumps(to_builtin(obj), sort_keys=sort_keys, indent=indent, allow_nan=allow_nan)
    except ValueError as e:
        raise NnunetError(f"Refusing to write {path}: it would contain NaN or Infinity, which is not standard "
                          f"JSON ({e}).") from None
    atomic_write_bytes(path, text.encode("utf-8"))


def save_pickle(obj: Any, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, pickle.dumps(obj))


def load_pickle(path: str | os.PathLike) -> Any:
    """Read a pickle that may hold only plain data and numpy objects (see :mod:`nnunet.utils.safe_pickle`)."""
    return load_data_pickle(path)
