"""Every console command is importable, has its nnUNetv2_* alias, and answers -h."""
from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

SCRIPTS = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]


def _target(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_target_is_callable(name):
    assert callable(_target(SCRIPTS[name]))


def test_every_command_has_its_nnunetv2_alias():
    ours = {n[len("nnUNet_"):]: t for n, t in SCRIPTS.items() if n.startswith("nnUNet_")}
    aliases = {n[len("nnUNetv2_"):]: t for n, t in SCRIPTS.items() if n.startswith("nnUNetv2_")}
    assert ours == aliases


@pytest.mark.parametrize("name", sorted(n for n in SCRIPTS if n.startswith("nnUNet_")))
def test_help_exits_cleanly(name, capsys):
    main = _target(SCRIPTS[name].replace("_console", "_main"))
    with pytest.raises(SystemExit) as e:
        main(["-h"])
    assert e.value.code == 0
    assert "usage" in capsys.readouterr().out


_FAST_EXIT_SCRIPT = """
import sys
from nnunet.cli.common import cli_entry, console

@cli_entry
def main(argv):
    for i in range(1000):  # block-buffered into a pipe: the last block is lost if the exit skips the flush
        print(i)
    sys.stderr.write("last line")
    return 3

console(main, fast_exit=True)()
"""


def test_fast_exit_keeps_buffered_output_and_the_exit_code():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-c", _FAST_EXIT_SCRIPT], capture_output=True, text=True, env=env)
    assert proc.returncode == 3
    assert proc.stdout.split() == [str(i) for i in range(1000)] and proc.stderr == "last line"
