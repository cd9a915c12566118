"""Dataset names and ids, and the files that belong to a case."""
from __future__ import annotations

import contextlib
import difflib
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from nnunet import paths
from nnunet.errors import DatasetError

_NAME_RE = re.compile(r"^Dataset(\d{3})_(.+)$")


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
        _check_name_exists(name_or_id)
        return name_or_id
    try:
        dataset_id = int(name_or_id)
    except (TypeError, ValueError):
        raise DatasetError(f"{name_or_id!r} is neither a dataset id (an integer such as 4) nor a dataset name "
                           f"(DatasetXXX_Name).") from None
    return dataset_name_from_id(dataset_id)


def _check_name_exists(name: str) -> None:
    """A dataset given by name must be a folder in one of the roots that are set (a typo would otherwise surface
    later as "run plan_and_preprocess first", or create folders under the misspelled name)."""
    roots = paths.optional_roots()
    if not roots or any((root / name).is_dir() for _, root in roots):
        return
    existing = sorted({d.name for _, root in roots for d in root.iterdir() if d.is_dir() and _NAME_RE.match(d.name)})
    close = _similar_datasets(name, existing)
    hint = f" Did you mean {' or '.join(close)}?" if close else \
        (f" Datasets found: {', '.join(existing[:10])}{' ...' if len(existing) > 10 else ''}." if existing else "")
    where = ", ".join(f"{var}={root}" for var, root in roots)
    raise DatasetError(f"{name} does not exist: no folder of that name in {where}.{hint}")


def _similar_datasets(name: str, existing: list[str]) -> list[str]:
    """Datasets with the same id, else with a similar name part (``Dataset004_Hipocampus`` -> ``..._Hippocampus``)."""
    same_id = [e for e in existing if e[:len("Dataset000")] == name[:len("Dataset000")]]
    if same_id:
        return same_id
    by_name = {e.partition("_")[2].lower(): e for e in existing}
    return [by_name[m] for m in difflib.get_close_matches(name.partition("_")[2].lower(), list(by_name), n=3,
                                                          cutoff=0.6)]


def raw_dataset_folder(name_or_id: str | int) -> Path:
    return paths.raw_root() / resolve_dataset_name(name_or_id)


def preprocessed_dataset_folder(name_or_id: str | int) -> Path:
    return paths.preprocessed_root() / resolve_dataset_name(name_or_id)


def displayable(name: str | os.PathLike) -> str:
    """A file name as text that can always be printed and logged: bytes that are not UTF-8 (which Python keeps as
    lone surrogates) are shown as ``\\xe9`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def is_utf8(name: str | os.PathLike) -> bool:
    """Whether a file name is valid UTF-8 (the image libraries cannot even be given one that is not)."""
    try:
        str(name).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def check_utf8_names(folder: str | os.PathLike, names: list[str]) -> None:
    """Refuse file names that are not valid UTF-8, naming them (ITK aborts the whole process on such a name)."""
    bad = [displayable(n) for n in names if not is_utf8(n)]
    if bad:
        listed = ", ".join(f"'{b}'" for b in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DatasetError(f"{displayable(folder)}: {len(bad)} file name(s) are not valid UTF-8: {listed}. Rename "
                           f"them to UTF-8 (for example 'convmv -f latin1 -t utf8 --notest -r FOLDER').")


def case_identifiers(images_folder: str | os.PathLike, file_ending: str) -> list[str]:
    """Sorted unique case ids of the channel files ``{ID}_{XXXX}{file_ending}`` in a folder.

    Raises:
        DatasetError: a matching file name is not valid UTF-8.
    """
    pattern = re.compile(r"^(.+)_\d{4}" + re.escape(file_ending) + "$")
    matching = [f for f in os.listdir(images_folder) if pattern.match(f)]
    check_utf8_names(images_folder, matching)
    return sorted({pattern.match(f).group(1) for f in matching})


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
