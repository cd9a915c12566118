"""Dataset names and ids, and the files that belong to a case."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from nnunet import paths
from nnunet.errors import DatasetError

_NAME_RE = re.compile(r"^Dataset(\d{3})_(.+)$")


def dataset_id_from_name(name: str) -> int:
    """``Dataset004_Hippocampus`` -> 4."""
    m = _NAME_RE.match(name)
    if not m:
        raise DatasetError(f"{name!r} is not a dataset name of the form DatasetXXX_Name (XXX = three digits).")
    return int(m.group(1))


def dataset_folders_with_id(dataset_id: int) -> list[tuple[str, str]]:
    """``(root variable, folder name)`` of every ``DatasetXXX_*`` folder with this id in the roots that are set."""
    prefix = f"Dataset{dataset_id:03d}_"
    return [(var, d.name) for var, root in paths.optional_roots() for d in root.iterdir()
            if d.is_dir() and d.name.startswith(prefix)]


def dataset_name_from_id(dataset_id: int) -> str:
    """Find the unique folder ``DatasetXXX_*`` in nnUNet_preprocessed, nnUNet_raw or nnUNet_results."""
    found = {name for _, name in dataset_folders_with_id(dataset_id)}
    where = ", ".join(f"{var}={root}" for var, root in paths.optional_roots()) \
        or "no nnUNet_raw/_preprocessed/_results folder is set"
    if not found:
        raise DatasetError(f"Could not find a dataset with id {dataset_id} (a folder Dataset{dataset_id:03d}_*) in: "
                           f"{where}.")
    if len(found) > 1:
        raise DatasetError(f"More than one dataset has the id {dataset_id}: {sorted(found)}. "
                           f"Rename or remove all but one (searched {where}).")
    return found.pop()


def resolve_dataset_name(name_or_id: str | int) -> str:
    """Accept ``4``, ``"4"``, ``"004"`` or ``"Dataset004_Hippocampus"`` and return the full dataset name."""
    if isinstance(name_or_id, str) and name_or_id.startswith("Dataset"):
        return name_or_id
    try:
        dataset_id = int(name_or_id)
    except (TypeError, ValueError):
        raise DatasetError(f"{name_or_id!r} is neither a dataset id (an integer such as 4) nor a dataset name "
                           f"(DatasetXXX_Name).") from None
    return dataset_name_from_id(dataset_id)


def raw_dataset_folder(name_or_id: str | int) -> Path:
    return paths.raw_root() / resolve_dataset_name(name_or_id)


def preprocessed_dataset_folder(name_or_id: str | int) -> Path:
    return paths.preprocessed_root() / resolve_dataset_name(name_or_id)


def case_identifiers(images_folder: str | os.PathLike, file_ending: str) -> list[str]:
    """Sorted unique case ids of the channel files ``{ID}_{XXXX}{file_ending}`` in a folder."""
    pattern = re.compile(r"^(.+)_\d{4}" + re.escape(file_ending) + "$")
    ids = {m.group(1) for f in os.listdir(images_folder) if (m := pattern.match(f))}
    return sorted(ids)


def channel_files(images_folder: str | os.PathLike, identifier: str, file_ending: str,
                  all_files: list[str] | None = None) -> list[Path]:
    """The channel files of one case, sorted by channel index."""
    pattern = re.compile(re.escape(identifier) + r"_\d{4}" + re.escape(file_ending) + "$")
    names = all_files if all_files is not None else os.listdir(images_folder)
    return [Path(images_folder) / f for f in sorted(names) if pattern.fullmatch(f)]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: not a possible process id
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_staging(raw: Path, dataset_name: str) -> None:
    """Staging folders of ``dataset_name`` left by a conversion that was killed (its process no longer exists)."""
    prefix = f".{dataset_name}.converting-"
    for folder in raw.glob(f"{prefix}*"):
        pid = folder.name[len(prefix):]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def staged_raw_dataset(dataset_name: str) -> Iterator[Path]:
    """A hidden folder in nnUNet_raw to assemble ``dataset_name`` in; renamed to ``nnUNet_raw/dataset_name`` when the
    block finishes, removed when it fails or is interrupted, so a half-written dataset never appears."""
    raw = paths.raw_root()
    raw.mkdir(parents=True, exist_ok=True)
    target = raw / dataset_name
    _remove_stale_staging(raw, dataset_name)
    staging = raw / f".{dataset_name}.converting-{os.getpid()}"
    try:
        staging.mkdir()
        yield staging
        if target.exists():  # appeared while we were writing
            raise DatasetError(f"{target} was created by someone else in the meantime; nothing was changed.")
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
