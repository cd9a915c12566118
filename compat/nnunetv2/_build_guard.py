"""setuptools' build backend, refusing to build into an environment that already holds the real nnunetv2.

Both distributions are called ``nnunetv2``: pip would uninstall the real one to install this one. pip runs
the backend with the target environment's interpreter, so its site-packages folders are known here even
inside build isolation.
"""
from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 - the hooks pip calls are setuptools' own

OUR_TAG = "+nnunetfast"


def _site_folders() -> list[Path]:
    folders = {sysconfig.get_paths(vars={"base": sys.prefix, "platbase": sys.prefix})[key]
               for key in ("purelib", "platlib")}
    return [Path(f) for f in sorted(folders) if os.path.isdir(f)]


def _metadata_version(dist_info: Path) -> str | None:
    metadata = dist_info / "METADATA"
    if not metadata.is_file():
        return None
    for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
        if not line.strip():
            break
    return None


def foreign_nnunetv2(site_folders: list[Path]) -> list[str]:
    """``name (version) in folder`` for every nnunetv2 installation in ``site_folders`` that is not ours."""
    found = []
    for folder in site_folders:
        for dist_info in sorted(folder.glob("nnunetv2-*.dist-info")) + sorted(folder.glob("nnunetv2-*.egg-info")):
            version = _metadata_version(dist_info) or dist_info.name.split("-")[1]
            if OUR_TAG not in version:
                found.append(f"nnunetv2 {version} in {folder}")
    return found


def refuse_foreign(site_folders: list[Path] | None = None) -> None:
    foreign = foreign_nnunetv2(_site_folders() if site_folders is None else site_folders)
    if foreign:
        raise SystemExit(
            f"Refusing to install nnunet-fast's nnunetv2 namespace: the real nnU-Net is installed here "
            f"({'; '.join(foreign)}). Installing this one would replace it. Use a separate environment for "
            f"nnunet-fast, or keep using the real nnU-Net here.")


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    refuse_foreign()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    refuse_foreign()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
