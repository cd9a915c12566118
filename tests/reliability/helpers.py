"""Helpers of the fault-injection suite: environments and console scripts for subprocess commands, the tiny
dataset's name, small real filesystems for disk faults, and what a failed command must print. The fixtures
built on them are in conftest.py (and the tiny dataset's in tiny_dataset.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(sys.executable).parent

TINY_ID = 931
TINY = f"Dataset{TINY_ID}_Tiny"


def command_env(dirs: dict[str, Path] | None = None, **extra: str) -> dict[str, str]:
    """The environment for a command run as a subprocess: the test's nnU-Net folders, one thread, and the
    repository on PYTHONPATH so that spawned workers can import the tests' job functions."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    # the worker processes that these tests are about would not start for their tiny jobs
    env["nnUNet_small_job_mb"] = "0"
    if dirs:
        env.update(nnUNet_raw=str(dirs["raw"]), nnUNet_preprocessed=str(dirs["preprocessed"]),
                   nnUNet_results=str(dirs["results"]))
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def script(name: str) -> str:
    path = SCRIPTS / name
    assert path.is_file(), f"console script {name} is not installed in {SCRIPTS}"
    return str(path)


def make_dirs(root: Path) -> dict[str, Path]:
    dirs = {name: root / name for name in ("raw", "preprocessed", "results")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    return dirs


class Filesystems:
    """Small real filesystems for disk faults: a tmpfs of a given size, filled up or made read-only.

    Needs root (``mount``); the fixture skips the test with the reason otherwise.
    """

    def __init__(self, root: Path):
        self.root = root
        self.mounted: list[Path] = []

    def tmpfs(self, name: str, size: str = "4m") -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"this fault needs a real small filesystem, and mounting a tmpfs failed here "
                        f"({result.stderr.strip()}); run the suite where mount is allowed (CI does) to include it")
        self.mounted.append(folder)
        return folder

    @staticmethod
    def fill(folder: Path, leave_bytes: int = 0) -> None:
        """Occupy all free space of ``folder``'s filesystem but ``leave_bytes`` (rounded to its blocks)."""
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize
        with open(folder / ".filler", "wb") as f:
            f.write(b"\0" * max(0, free - leave_bytes))

    @staticmethod
    def read_only(folder: Path) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

    def unmount_all(self) -> None:
        for folder in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def files_below(folder: Path) -> list[str]:
    """Every file and folder below ``folder`` except the filler, as sorted relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name != ".filler")


def one_error_line(err: str) -> str:
    """The single ``nnunet: error:`` line of a command's stderr (no traceback allowed)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("nnunet: error:")]
    assert len(lines) == 1, err
    return lines[0]
