"""Reading pickles that other people made, without running their code.

A pickle can name any importable callable, and unpickling calls it: a case ``.pkl`` or an ensemble
``.pkl`` from a shared folder could run arbitrary commands with :func:`pickle.load`. Every pickle this
package reads goes through :class:`DataUnpickler`, which resolves only the globals on an allow-list:
plain containers and numpy arrays, dtypes and scalars (what nnU-Net and we store in these files).
Anything else is refused with a message naming the file and the object it tried to create.
"""
from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nnunet.errors import NnunetError


class UnsafePickleError(NnunetError):
    """A pickle names an object outside the allow-list (it would run code when loaded)."""


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    found: dict[tuple[str, str], Any] = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray}
    # arrays pickled by numpy 1.x name numpy.core, by numpy 2.x numpy._core; accept both spellings
    for package in ("numpy.core", "numpy._core"):
        found[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        found[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):  # protocol-5 pickles of arrays
            found[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return found


#: the numpy objects a data pickle may name: arrays, dtypes and scalars (both numpy 1.x and 2.x spellings)
NUMPY_GLOBALS: dict[tuple[str, str], Any] = _numpy_globals()

#: the globals a data pickle may name: containers and numpy objects, nothing that can run code
DATA_GLOBALS: dict[tuple[str, str], Any] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **NUMPY_GLOBALS,
}


def numeric_dtype_classes() -> list[type]:
    """The classes of numpy's boolean, integer, floating and complex dtypes (``numpy.dtypes.Float32DType``, ...).

    numpy >= 1.20 rebuilds a pickled dtype as an instance of one of these; torch's weights-only loader accepts an
    object only if its class is allowed, so these are part of the checkpoint allow-list (strings, objects,
    structured and date types are not: nnU-Net never stores them).
    """
    return sorted({type(np.dtype(code)) for code in "?bhilqBHILQefdgFDG"}, key=lambda t: t.__name__)


class DataUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ``DATA_GLOBALS`` plus the ``extra`` globals it is given."""

    def __init__(self, file, source: str, extra: Mapping[tuple[str, str], Any] | None = None):
        super().__init__(file)
        self.source = source
        self.allowed = {**DATA_GLOBALS, **(extra or {})}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refused to load {module}.{name}. This file may only hold plain data and numpy "
                f"arrays; loading it with pickle could run code. Do not use a file of unknown origin.") from None


def load_data_pickle(path: str | os.PathLike, extra: Mapping[tuple[str, str], Any] | None = None,
                     what: str = "file") -> Any:
    """Read a pickle file that may contain only plain data and numpy objects.

    Raises:
        UnsafePickleError: the file names another object (the message names the file and the object).
        NnunetError: the file is missing, truncated or not a pickle (the message names the file).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return DataUnpickler(f, str(path), extra).load()
    except FileNotFoundError:
        raise NnunetError(f"{what.capitalize()} not found: {path}") from None
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise NnunetError(f"{path} is not a readable {what} (truncated or corrupt: {e}).") from None
