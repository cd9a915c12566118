"""Library modules report through the ``nnunet`` logger, which the commands in ``nnunet/cli`` route to the
console; a bare ``print`` would bypass that (a program that imports the package could not silence or redirect
it). Read with ``ast`` from every module, so a new ``print`` fails here with its file and line."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nnunet"

#: packages whose job is the console: the commands and the demo program
CONSOLE_PACKAGES = ("cli", "demo")
#: the prints that stay, each with its reason: (module path, line's text fragment) -> why
ALLOWED = {
    ("training/logger.py", "print(line, flush=True)"):
        "the trainer's log echoes each line it writes to the log file, as nnU-Net's print_to_log_file does",
    ("training/data/workers.py", "Traceback in {who}"):
        "a failing augmentation worker's traceback, printed by the worker process itself, where no logging is set up",
}


def _prints(path: Path) -> list[tuple[int, str]]:
    source = path.read_text()
    lines = source.splitlines()
    return [(node.lineno, lines[node.lineno - 1].strip()) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"]


def test_library_modules_do_not_print():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.split("/")[0] in CONSOLE_PACKAGES:
            continue
        for line, text in _prints(path):
            if not any(relative == where and fragment in text for where, fragment in ALLOWED):
                found.append(f"nnunet/{relative}:{line}: {text}")
    assert not found, "print in a library module (use logging.getLogger(__name__)):\n" + "\n".join(found)


def test_every_allowed_print_still_exists():
    # an exception whose print is gone must leave the list, so that the list stays an honest record
    for where, fragment in ALLOWED:
        assert any(fragment in text for _, text in _prints(PACKAGE / where)), (where, fragment)
