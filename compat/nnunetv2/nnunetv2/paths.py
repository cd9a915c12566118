"""nnU-Net 2.8.1's ``nnunetv2.paths``: the folders named by environment variables, read when used.

As in 2.8.1 each name is a path-like object, not a string: ``os.path.join(nnUNet_results, ...)``, ``str()`` and
``os.fspath()`` read the variable at that moment (and fail, naming it, when it is unset); ``bool()`` says
whether it is set, and ``nnUNet_raw == None`` holds when it is not. ``.get()`` gives the value or None.
"""
from __future__ import annotations

import os

from nnunet import paths as _paths

__all__ = ["nnUNet_extTrainer", "nnUNet_preprocessed", "nnUNet_raw", "nnUNet_results"]


class _EnvironmentFolder(os.PathLike):
    def __init__(self, variable: str):
        self.env_var_name = variable

    def get(self) -> str | None:
        return os.environ.get(self.env_var_name)

    def is_set(self) -> bool:
        return self.get() is not None

    def require(self) -> str:
        value = self.get()
        if value is None:
            raise RuntimeError(f"{self.env_var_name} is not set. Set it to the folder it names (see "
                               f"documentation/setting_up_paths.md).")
        return value

    def __fspath__(self) -> str:
        return self.require()

    def __str__(self) -> str:
        return self.require()

    def __repr__(self) -> str:
        value = self.get()
        return repr(value) if value is not None else f"<unset {self.env_var_name}>"

    def __bool__(self) -> bool:
        return self.is_set()

    def __eq__(self, other) -> bool:
        return self.get() == (None if other is None else os.fspath(other) if isinstance(other, os.PathLike)
                              else other)

    def __hash__(self) -> int:
        return hash(self.env_var_name)


nnUNet_raw = _EnvironmentFolder(_paths.RAW)
nnUNet_preprocessed = _EnvironmentFolder(_paths.PREPROCESSED)
nnUNet_results = _EnvironmentFolder(_paths.RESULTS)
nnUNet_extTrainer = _EnvironmentFolder("nnUNet_extTrainer")
