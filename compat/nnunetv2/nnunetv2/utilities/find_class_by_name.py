"""nnU-Net 2.8.1's ``recursive_find_python_class``: find a class by name in a package folder.

Where ``current_module`` is one of nnunetv2's own packages, the class is looked up in our registries first
(our trainers, planners, preprocessors, fingerprint extractors, normalizers and readers are not defined in
``nnunetv2``'s folders), then the folder is searched as in 2.8.1: every module in it, then its subpackages, is
imported as ``current_module.<name>`` and the first module that has the attribute gives it. Not found: None.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
from typing import Iterator

from nnunet import registry as _registry

__all__ = ["recursive_find_python_class", "temporarily_cleanup_imports_from_path", "temporarily_extend_syspath"]

#: nnunetv2 package prefix -> our registries holding the classes that 2.8.1 keeps there
_REGISTRIES = (
    ("nnunetv2.training", ("TRAINERS",)),
    ("nnunetv2.experiment_planning", ("PLANNERS", "FINGERPRINT_EXTRACTORS")),
    ("nnunetv2.preprocessing", ("PREPROCESSORS", "NORMALIZERS")),
    ("nnunetv2.imageio", ("READERS",)),
    ("nnunetv2", ("TRAINERS", "PLANNERS", "FINGERPRINT_EXTRACTORS", "PREPROCESSORS", "NORMALIZERS", "READERS")),
)


@contextlib.contextmanager
def temporarily_extend_syspath(path: str) -> Iterator[None]:
    """``path`` at the front of ``sys.path`` inside the block (removed after, unless it was there before)."""
    path = os.path.abspath(path)
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
    try:
        yield
    finally:
        if added and path in sys.path:
            sys.path.remove(path)


def _from_folder(module, folder: str) -> bool:
    files = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
    for f in files:
        if f is not None:
            with contextlib.suppress(ValueError):
                if os.path.commonpath((folder, os.path.abspath(f))) == folder:
                    return True
    return False


@contextlib.contextmanager
def temporarily_cleanup_imports_from_path(path: str) -> Iterator[None]:
    """Forget (in ``sys.modules``) the modules first imported from ``path`` inside the block."""
    path = os.path.abspath(path)
    before = {name for name, m in list(sys.modules.items()) if m is not None and _from_folder(m, path)}
    try:
        yield
    finally:
        for name, m in list(sys.modules.items()):
            if name not in before and m is not None and _from_folder(m, path):
                sys.modules.pop(name, None)


def _registered(class_name: str, current_module: str | None):
    for prefix, names in _REGISTRIES:
        if current_module is not None and (current_module == prefix or current_module.startswith(prefix + ".")):
            for name in names:
                found = getattr(_registry, name).find(class_name)
                if found is not None:
                    return found
            return None
    return None


def _search_folder(folder: str, class_name: str, current_module: str | None, verbose: bool):
    entries = list(pkgutil.iter_modules([folder]))
    for _, name, is_package in entries:
        if is_package:
            continue
        module_name = name if current_module is None else f"{current_module}.{name}"
        if verbose:
            print(f"  Inspecting module: {module_name}")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:  # listed on disk but not importable under that name: skip it
                continue
            raise
        if hasattr(module, class_name):
            return getattr(module, class_name)
    for _, name, is_package in entries:
        if is_package:
            found = _search_folder(os.path.join(folder, name), class_name,
                                   name if current_module is None else f"{current_module}.{name}", verbose)
            if found is not None:
                return found
    return None


def recursive_find_python_class(folder: str, class_name: str, current_module: str | None,
                                base_folder: str | None = None, verbose: bool = False,
                                cleanup_imports_from_base_folder: bool = False):
    """The class ``class_name`` from our registries (for nnunetv2's packages) or from the modules of ``folder``
    (imported as ``current_module.<module>``, with ``base_folder`` or ``folder`` on ``sys.path``); None if absent.
    """
    found = _registered(class_name, current_module)
    if found is not None:
        return found
    with contextlib.ExitStack() as stack:
        stack.enter_context(temporarily_extend_syspath(base_folder or folder))
        if cleanup_imports_from_base_folder:
            stack.enter_context(temporarily_cleanup_imports_from_path(base_folder or folder))
        if verbose:
            print(f"Searching for class {class_name} in folder {folder} with current module {current_module}")
        return _search_folder(folder, class_name, current_module, verbose)
