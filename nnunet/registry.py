"""Registries that find planners, preprocessors, readers, normalizers and trainers by class name.

A user plugs in a class by decorating it (``@PLANNERS.register``) in a module that gets imported, by
naming it with a dotted path (``-pl mypackage.planners.MyPlanner``), or (trainers) by placing it in a
folder listed in ``nnUNet_extTrainer``.

A plugin file that fails to import (a SyntaxError, a missing package) does not stop the search: the other
files are still searched. Its path and exception are logged as a warning and named in the "Unknown ..."
error, since the class asked for is most likely in that file.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Generic, TypeVar

from nnunet.errors import ConfigurationError, exception_line

T = TypeVar("T")

logger = logging.getLogger(__name__)


class Registry(Generic[T]):
    """A name -> class mapping with lazy import of the modules that define the built-in entries.

    Args:
        kind: what is registered, used in error messages ("planner", "trainer", ...).
        default_modules: modules imported before the first lookup; their decorators fill the registry.
        base_class: optional class every entry must derive from (checked for dotted-path lookups).
        extra_folders_env: optional environment variable with extra folders (os.pathsep separated)
            whose .py files are searched when a name is not registered.
    """

    def __init__(self, kind: str, default_modules: tuple[str, ...] = (), base_class: type | None = None,
                 extra_folders_env: str | None = None):
        self.kind = kind
        self._default_modules = default_modules
        self._base_class = base_class
        self._extra_folders_env = extra_folders_env
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._fallbacks: list[Callable[[str], T | None]] = []
        self._in_fallback = False
        self._import_failures: dict[str, str] = {}  # of the last search: plugin file or module -> exception
        self._warned: set[tuple[str, str]] = set()

    def register(self, obj: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name`` (default: its ``__name__``). Usable as a bare decorator."""

        def add(o: T) -> T:
            key = name or o.__name__
            previous = self._entries.get(key)
            if previous is not None and _origin(previous) != _origin(o):
                # two different classes under one name: which one -tr/-pl picks would depend on import order
                raise ConfigurationError(f"Two {self.kind}s are called {key!r}: {_origin(previous)} and "
                                         f"{_origin(o)}. Rename one of them.")
            self._entries[key] = o
            return o

        return add(obj) if obj is not None else add

    def _load_defaults(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._default_modules:
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load_defaults()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_defaults()
        return name in self._entries

    def add_fallback(self, lookup: Callable[[str], T | None]) -> Callable[[str], T | None]:
        """Call ``lookup(name)`` for names that are neither registered, dotted paths nor in the extra folders.

        ``lookup`` returns the object or None. Its result is not remembered, so it decides at every lookup
        (the ``nnunetv2`` namespace uses this to call a ``recursive_find_python_class`` that programs may
        replace). Adding the same function again does nothing.
        """
        if lookup not in self._fallbacks:
            self._fallbacks.append(lookup)
        return lookup

    def find(self, name: str) -> T | None:
        """The entry called ``name`` (registered, dotted path or extra folders; no fallbacks), or None."""
        self._load_defaults()
        if name in self._entries:
            return self._entries[name]
        self._import_failures = {}
        found = self._from_dotted_path(name) or self._from_extra_folders(name)
        if found is not None:
            self._check_base(name, found)
            self._entries[name] = found
        return found

    def get(self, name: str) -> T:
        """Return the entry called ``name``; raise a ConfigurationError with close matches if unknown."""
        found = self.find(name)
        if found is None:
            found = self._from_fallbacks(name)
        if found is not None:
            return found
        raise ConfigurationError(self._unknown_message(name))

    def _from_fallbacks(self, name: str):
        if self._in_fallback:  # a fallback that looks the name up here again gets no second round of fallbacks
            return None
        self._in_fallback = True
        try:
            for lookup in list(self._fallbacks):
                found = lookup(name)
                if found is not None:
                    self._check_base(name, found)
                    return found
        finally:
            self._in_fallback = False
        return None

    def _check_base(self, name: str, obj) -> None:
        if self._base_class is not None and not (inspect.isclass(obj) and issubclass(obj, self._base_class)):
            raise ConfigurationError(
                f"{name!r} was found but is not a {self._base_class.__name__} subclass, so it cannot be used "
                f"as a {self.kind}."
            )

    def _from_dotted_path(self, name: str):
        if "." not in name:
            return None
        module_name, _, attr = name.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            if e.name is not None and (module_name == e.name or module_name.startswith(e.name + ".")):
                return None  # no such module: not a dotted path of ours to explain
            self._import_failed(module_name, e)
            return None
        except Exception as e:  # the module exists but fails to import: say so instead of "unknown"
            self._import_failed(module_name, e)
            return None
        return getattr(module, attr, None)

    def _from_extra_folders(self, name: str):
        if not self._extra_folders_env:
            return None
        folders = [f for f in os.environ.get(self._extra_folders_env, "").split(os.pathsep) if f]
        for folder in folders:
            for py_file in sorted(Path(folder).rglob("*.py")):
                try:
                    module = _import_file(py_file)
                except Exception as e:  # a broken unrelated file must not hide the class looked for
                    self._import_failed(str(py_file), e)
                    continue
                if module is not None and inspect.isclass(getattr(module, name, None)):
                    return getattr(module, name)
        return None

    def _import_failed(self, where: str, error: BaseException) -> None:
        line = exception_line(error)
        if (where, line) not in self._warned:  # once per file and error, not at every lookup
            self._warned.add((where, line))
            logger.warning("Could not import %s (searched for %ss): %s", where, self.kind, line)
        self._import_failures[where] = line

    def import_failures(self) -> str:
        """One sentence naming the plugin files that failed to import in the last search ('' if none)."""
        if not self._import_failures:
            return ""
        listed = "; ".join(f"{where} ({line})" for where, line in sorted(self._import_failures.items()))
        return f"These plugin files could not be imported (it may be defined there): {listed}."

    def _unknown_message(self, name: str) -> str:
        options = self.names()
        close = difflib.get_close_matches(name, options, n=3)
        msg = f"Unknown {self.kind} {name!r}."
        if self._import_failures:
            msg += " " + self.import_failures()
        if close:
            msg += f" Did you mean {' or '.join(repr(c) for c in close)}?"
        msg += f" Available: {', '.join(options) or 'none'}."
        if self._extra_folders_env:
            msg += (f" Custom classes are also searched in the folders listed in ${self._extra_folders_env}"
                    f" and may be given as a dotted path (package.module.ClassName).")
        else:
            msg += " Custom classes may be given as a dotted path (package.module.ClassName)."
        return msg


def _origin(obj) -> str:
    """Where a registered object is defined (a re-import of the same module gives the same origin)."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _import_file(py_file: Path):
    """The module of a plugin file (imported once), None if it is no module; raises what its import raises."""
    module_name = f"_nnunet_ext_{abs(hash(str(py_file.resolve())))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, py_file)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]  # tried again at the next lookup (the user may have fixed it)
        raise
    return module


READERS: Registry = Registry("image reader/writer", ("nnunet.io.readers",))
NORMALIZERS: Registry = Registry("normalization scheme", ("nnunet.preprocessing.normalization",))
FINGERPRINT_EXTRACTORS: Registry = Registry("fingerprint extractor", ("nnunet.fingerprint.extract",))
PLANNERS: Registry = Registry("experiment planner", ("nnunet.planning.planner", "nnunet.planning.torchres", "nnunet.planning.resenc"))
PREPROCESSORS: Registry = Registry("preprocessor", ("nnunet.preprocessing.preprocessor",))
RESAMPLERS: Registry = Registry("resampling function", ("nnunet.preprocessing.resampling",
                                                         "nnunet.preprocessing.resampling_torch"))
TRAINERS: Registry = Registry("trainer", ("nnunet.training.trainer", "nnunet.training.variants"),
                              extra_folders_env="nnUNet_extTrainer")
