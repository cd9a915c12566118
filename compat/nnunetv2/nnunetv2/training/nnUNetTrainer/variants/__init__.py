"""nnU-Net 2.8.1's trainer variants under their module paths.

2.8.1 keeps each family of variants in its own module (``variants.training_length.nnUNetTrainer_Xepochs``,
``variants.loss.nnUNetTrainerCELoss``, ...). Every class of those exists here under its name (our trainer
registry holds them), so any module path below this package is importable and gives, for a class name, the
registered trainer of that name.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

from nnunet.registry import TRAINERS

_PREFIX = __name__ + "."


class _VariantModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        found = TRAINERS.find(name)
        if found is None:
            raise AttributeError(f"module {self.__name__!r} has no trainer {name!r} (not one of nnunet's trainers; "
                                 f"a trainer of your own goes in a folder named by nnUNet_extTrainer)")
        return found


class _VariantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Creates the modules below this package on import, two levels deep as in 2.8.1 (``variants.<family>`` and
    ``variants.<family>.<module>``), so that an unknown class name is an ImportError, not a new module."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(_PREFIX) or fullname[len(_PREFIX):].count(".") > 1:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package="." not in fullname[len(_PREFIX):])

    def create_module(self, spec):
        module = _VariantModule(spec.name)
        if spec.submodule_search_locations is not None:
            module.__path__ = []
        return module

    def exec_module(self, module):
        pass


if not any(isinstance(f, _VariantFinder) for f in sys.meta_path):
    sys.meta_path.append(_VariantFinder())
