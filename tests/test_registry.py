"""Registries: lookup by name, close matches, and no silent shadowing of one class by another of the same name."""
from __future__ import annotations

import pytest

from nnunet.errors import ConfigurationError
from nnunet.registry import Registry


def _class(name: str, module: str) -> type:
    cls = type(name, (), {})
    cls.__module__ = module
    return cls


def test_registering_the_same_class_again_is_harmless():
    registry = Registry("trainer")
    cls = _class("MyTrainer", "pkg.a")
    registry.register(cls)
    registry.register(_class("MyTrainer", "pkg.a"))  # the module imported a second time
    assert registry.get("MyTrainer").__module__ == "pkg.a"


def test_two_classes_with_one_name_are_refused_naming_both():
    # before, the second silently replaced the first, so -tr picked whichever module was imported last
    registry = Registry("trainer")
    registry.register(_class("MyTrainer", "pkg.a"))
    with pytest.raises(ConfigurationError, match=r"Two trainers are called 'MyTrainer': pkg\.a\.MyTrainer and "
                                                 r"pkg\.b\.MyTrainer"):
        registry.register(_class("MyTrainer", "pkg.b"))


def test_unknown_name_suggests_close_matches():
    registry = Registry("planner")
    registry.register(_class("ExperimentPlanner", "pkg.a"))
    with pytest.raises(ConfigurationError, match="Did you mean 'ExperimentPlanner'"):
        registry.get("ExperimentPlaner")
