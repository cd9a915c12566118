"""Registries: lookup by name, close matches, and no silent shadowing of one class by another of the same name."""
from __future__ import annotations

import logging

import pytest

from nnunet.cli.common import cli_entry
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


def _plugin_folder(tmp_path, monkeypatch):
    """A folder of trainer files: a good one, one with a SyntaxError, one importing a package that is absent."""
    (tmp_path / "a_good.py").write_text("class GoodTrainer:\n    pass\n")
    (tmp_path / "b_syntax.py").write_text("class SyntaxTrainer:\n    def broken(:\n        pass\n")
    (tmp_path / "c_missing.py").write_text("import package_that_is_not_installed_xyz\n\nclass MissingTrainer:\n"
                                           "    pass\n")
    monkeypatch.setenv("nnUNet_extTrainer_test", str(tmp_path))
    return Registry("trainer", extra_folders_env="nnUNet_extTrainer_test")


def test_a_broken_plugin_file_does_not_hide_the_good_ones(tmp_path, monkeypatch):
    registry = _plugin_folder(tmp_path, monkeypatch)
    assert registry.get("GoodTrainer").__name__ == "GoodTrainer"


def test_a_class_of_a_broken_file_is_reported_with_the_file_and_its_exception(tmp_path, monkeypatch, caplog):
    # before, this said only "Unknown trainer 'SyntaxTrainer'. Did you mean ...", pointing the wrong way
    registry = _plugin_folder(tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="nnunet.registry"):
        with pytest.raises(ConfigurationError) as raised:
            registry.get("SyntaxTrainer")
    message = str(raised.value)
    assert "\n" not in message
    assert f"{tmp_path / 'b_syntax.py'} (SyntaxError: invalid syntax (line 2))" in message
    assert (f"{tmp_path / 'c_missing.py'} (ModuleNotFoundError: No module named "
            f"'package_that_is_not_installed_xyz')") in message
    assert "a_good.py" not in message
    warned = [r.getMessage() for r in caplog.records]
    assert any("b_syntax.py" in w and "SyntaxError" in w for w in warned)
    assert any("c_missing.py" in w and "ModuleNotFoundError" in w for w in warned)


def test_the_cli_reports_a_broken_trainer_file_in_one_line(tmp_path, monkeypatch, capsys):
    registry = _plugin_folder(tmp_path, monkeypatch)

    @cli_entry
    def main(argv):
        registry.get("MissingTrainer")

    assert main([]) == 1
    *warnings, error = capsys.readouterr().err.strip().splitlines()
    # one warning line per broken file as it is searched, then the error in one line; no traceback
    assert error.startswith("nnunet: error: Unknown trainer 'MissingTrainer'.")
    assert "c_missing.py (ModuleNotFoundError: No module named 'package_that_is_not_installed_xyz')" in error
    assert len(warnings) == 2 and all(w.startswith("Could not import ") for w in warnings)
    assert any("b_syntax.py" in w for w in warnings) and any("c_missing.py" in w for w in warnings)


def test_the_failures_named_are_those_of_the_last_search(tmp_path, monkeypatch):
    registry = _plugin_folder(tmp_path, monkeypatch)
    with pytest.raises(ConfigurationError):
        registry.get("SyntaxTrainer")
    (tmp_path / "b_syntax.py").write_text("class SyntaxTrainer:\n    pass\n")  # the user fixes the file
    (tmp_path / "c_missing.py").unlink()
    assert registry.get("SyntaxTrainer").__name__ == "SyntaxTrainer"
    assert registry.import_failures() == ""


def test_a_dotted_path_to_a_module_that_fails_to_import_names_its_error(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin_pkg_xyz.py").write_text("import package_that_is_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("planner")
    with pytest.raises(ConfigurationError, match=r"broken_plugin_pkg_xyz \(ModuleNotFoundError: No module named "
                                                 r"'package_that_is_not_installed_xyz'\)"):
        registry.get("broken_plugin_pkg_xyz.MyPlanner")
    with pytest.raises(ConfigurationError) as raised:  # a module that does not exist is just unknown
        registry.get("no_such_module_xyz.MyPlanner")
    assert "could not be imported" not in str(raised.value)
