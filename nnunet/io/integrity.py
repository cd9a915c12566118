"""Dataset integrity check (``--verify_dataset_integrity``).

:func:`verify_dataset_integrity` reads a raw dataset without writing anything, collects every problem it finds
(dataset.json, file names, missing files, label values, NaNs, shapes, spacings, channel counts, unreadable
files) over all cases, and raises one :class:`~nnunet.errors.DatasetError` that lists them all. Geometry
differences that are only suspicious (origin, direction, affine) are printed as warnings.
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnunet.constants import default_num_processes
from nnunet.errors import DatasetError, NnunetError
from nnunet.io.dataset_json import REQUIRED_KEYS, label_manager
from nnunet.utils.json import load_json
from nnunet.io.case_checks import check_case
from nnunet.utils.pool import run_parallel

logger = logging.getLogger(__name__)

#: how many example case ids a message shows at most
MAX_EXAMPLES = 5
#: how many cases are tried when looking for a reader that can open the dataset's files
MAX_READER_PROBES = 5


@dataclass
class IntegrityReport:
    """What a passed check found: the number of cases, the reader used and the warnings."""

    num_cases: int
    reader: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Case:
    images: list[Path]
    label: Path


def verify_dataset_integrity(raw_folder: str | os.PathLike, num_processes: int | None = None,
                             show_progress: bool = False) -> IntegrityReport:
    """Check a raw dataset folder; raise one DatasetError listing every problem found.

    Args:
        raw_folder: the dataset folder (``nnUNet_raw/DatasetXXX_Name``).
        num_processes: worker processes for reading the cases (default: ``default_num_processes()``).
        show_progress: show a progress bar while the cases are read.

    Returns:
        An :class:`IntegrityReport` when no problem was found (warnings may still be present).

    Raises:
        DatasetError: listing each problem with the case id or file it concerns.
    """
    folder = Path(raw_folder)
    if not folder.is_dir():
        raise DatasetError(f"Dataset folder {folder} does not exist.")
    ds = _load_dataset_json(folder)
    problems, notes = _dataset_json_problems(ds)
    if not _usable(ds):
        _raise(folder, problems)
    expected_labels, label_problems = _expected_labels(ds)
    problems += label_problems
    cases, case_problems, case_notes = _discover_cases(folder, ds)
    problems += case_problems
    notes += case_notes
    reader = ""
    if cases:
        reader, reader_problems = _choose_reader(ds, cases)
        problems += reader_problems
    if reader:
        found, found_notes = _check_cases(folder, cases, reader, len(ds["channel_names"]), expected_labels,
                                          num_processes, show_progress)
        problems += found
        notes += found_notes
    _print_warnings(notes)
    if problems:
        _raise(folder, problems)
    logger.info(f"Dataset integrity check of {folder.name} passed: {len(cases)} cases read with {reader}, "
          f"no problems found" + (f" ({len(notes)} warning(s) above)." if notes else "."))
    return IntegrityReport(len(cases), reader, notes)


# --- dataset.json ---------------------------------------------------------------------------------------------

def _load_dataset_json(folder: Path) -> dict[str, Any]:
    path = folder / "dataset.json"
    if not path.is_file():
        raise DatasetError(f"{folder} has no dataset.json. Every raw dataset needs one (see generate_dataset_json).")
    try:
        ds = load_json(path)
    except NnunetError as e:
        raise DatasetError(str(e)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"Could not read {path}: {e}") from None
    if not isinstance(ds, dict):
        raise DatasetError(f"{path}: the top level must be a JSON object, got {type(ds).__name__}.")
    if "channel_names" not in ds and "modality" in ds:
        ds["channel_names"] = ds["modality"]  # legacy name, accepted (a copy: nothing is written back)
    return ds


def _dataset_json_problems(ds: dict[str, Any]) -> tuple[list[str], list[str]]:
    problems, notes = [], []
    if "modality" in ds:
        notes.append("dataset.json uses the deprecated key 'modality'; rename it to 'channel_names'.")
    missing = [k for k in REQUIRED_KEYS if k not in ds]
    if missing:
        unused = sorted(k for k in ds if k not in REQUIRED_KEYS)
        problems.append(f"dataset.json: missing required key(s) {missing}. Required: {list(REQUIRED_KEYS)}; "
                        f"present: {sorted(k for k in ds if k in REQUIRED_KEYS)}; other keys: {unused}.")
    channels = ds.get("channel_names")
    if "channel_names" in ds and (not isinstance(channels, dict) or not channels):
        problems.append(f"dataset.json: 'channel_names' must be a non-empty object like {{\"0\": \"CT\"}}, "
                        f"got {channels!r}.")
    elif isinstance(channels, dict) and sorted(map(str, channels)) != sorted(str(i) for i in range(len(channels))):
        problems.append(f"dataset.json: 'channel_names' keys must be \"0\"..\"{len(channels) - 1}\", "
                        f"got {list(channels)}.")
    if "labels" in ds and (not isinstance(ds["labels"], dict) or not ds["labels"]):
        problems.append(f"dataset.json: 'labels' must be a non-empty object mapping names to values, like "
                        f"{{\"background\": 0, \"tumor\": 1}}, got {ds['labels']!r}.")
    n = ds.get("numTraining")
    if "numTraining" in ds and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        problems.append(f"dataset.json: 'numTraining' must be a positive integer, got {n!r}.")
    ending = ds.get("file_ending")
    if "file_ending" in ds and (not isinstance(ending, str) or not ending.startswith(".")):
        problems.append(f"dataset.json: 'file_ending' must be a string starting with '.', e.g. \".nii.gz\", "
                        f"got {ending!r}.")
    return problems, notes


def _usable(ds: dict[str, Any]) -> bool:
    """Whether dataset.json is good enough to look at the files at all."""
    return (all(k in ds for k in REQUIRED_KEYS) and isinstance(ds["channel_names"], dict) and ds["channel_names"]
            and isinstance(ds["file_ending"], str) and ds["file_ending"].startswith(".")
            and isinstance(ds["labels"], dict) and bool(ds["labels"]))


def _flat_label_values(labels: dict[str, Any]) -> list[int]:
    """Every integer in the label values except the ignore label (best effort, for a broken dataset.json)."""
    values: set[int] = set()
    for name, v in labels.items():
        if name == "ignore":
            continue
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                values.add(int(item))
    return sorted(values)


def _expected_labels(ds: dict[str, Any]) -> tuple[list[int] | None, list[str]]:
    """The label values a segmentation may contain (ignore label included) and the problems of 'labels'."""
    problems = []
    try:
        manager = label_manager(ds)
        values = list(manager.all_labels)
        ignore = manager.ignore_label
    except DatasetError as e:
        problems.append(f"dataset.json 'labels': {e}")
        values = _flat_label_values(ds["labels"])
        ignore = ds["labels"].get("ignore") if isinstance(ds["labels"].get("ignore"), int) else None
    expected = sorted(set(values) | ({ignore} if ignore is not None else set()))
    if not expected:
        return None, problems
    gaps = sorted(set(range(expected[0], expected[-1] + 1)) - set(expected))
    if gaps:
        problems.append(f"dataset.json 'labels': label values must be consecutive integers (0, 1, 2, ...), "
                        f"got {expected}; missing {gaps}.")
    return expected, problems


# --- finding the files --------------------------------------------------------------------------------------

def _listing(folder: Path) -> list[str]:
    """Visible file names of a folder (macOS '._' and other hidden files are skipped)."""
    return sorted(f for f in os.listdir(folder) if not f.startswith("."))


def _ending_hint(files: list[str], ending: str, where: str) -> list[str]:
    """A problem when a folder has files but none of them ends in ``file_ending``."""
    if not files or any(f.endswith(ending) for f in files):
        return []
    endings = sorted({_suffix(f) for f in files})
    return [f"{where}: none of its {len(files)} files ends in file_ending {ending!r} from dataset.json "
            f"(found endings {endings}, e.g. {files[0]}). Fix 'file_ending' or the file names."]


def _suffix(name: str) -> str:
    parts = name.split(".")
    return "." + ".".join(parts[1:]) if len(parts) > 1 else "(none)"


def _discover_cases(folder: Path, ds: dict[str, Any]) -> tuple[dict[str, _Case], list[str], list[str]]:
    if "dataset" in ds:
        cases, problems, notes = _cases_from_dataset_key(folder, ds["dataset"])
    else:
        cases, problems, notes = _cases_from_folders(folder, ds["file_ending"])
    n = ds.get("numTraining")
    if isinstance(n, int) and len(cases) != n:
        examples = f" (e.g. {', '.join(list(cases)[:MAX_EXAMPLES])})" if cases else ""
        problems.append(f"dataset.json says numTraining = {n}, but {len(cases)} training case(s) were found"
                        f"{examples}.")
    complete = {cid: c for cid, c in cases.items() if c.label.is_file() and all(f.is_file() for f in c.images)}
    return complete, problems, notes


def _cases_from_folders(folder: Path, ending: str) -> tuple[dict[str, _Case], list[str], list[str]]:
    images_dir, labels_dir = folder / "imagesTr", folder / "labelsTr"
    problems = [f"{d} does not exist (a raw dataset needs imagesTr/ and labelsTr/)."
                for d in (images_dir, labels_dir) if not d.is_dir()]
    if problems:
        return {}, problems, []
    image_files, label_files = _listing(images_dir), _listing(labels_dir)
    problems += _ending_hint(image_files, ending, "imagesTr") + _ending_hint(label_files, ending, "labelsTr")
    channels, name_problems = _channel_indices(image_files, ending)
    problems += name_problems + _missing_channel_files(channels, ending)
    num_files = max((max(idx) + 1 for idx in channels.values()), default=0)
    cases = {cid: _Case([images_dir / f"{cid}_{i:04d}{ending}" for i in range(num_files)], labels_dir / f"{cid}{ending}")
             for cid in channels}
    problems += [f"case {cid}: label file labelsTr/{c.label.name} is missing." for cid, c in cases.items()
                 if not c.label.is_file()]
    strays = [f for f in label_files if f.endswith(ending) and f[: -len(ending)] not in cases]
    notes = [f"labelsTr/{f} has no image files in imagesTr (expected {f[: -len(ending)]}_0000{ending}); "
             f"it is not used." for f in strays]
    return cases, problems, notes


def _channel_indices(image_files: list[str], ending: str) -> tuple[dict[str, set[int]], list[str]]:
    """``{case_id: {channel indices}}`` of the files ``{ID}_{XXXX}{ending}``; names that do not fit are problems."""
    pattern = re.compile(r"^(.+)_(\d{4})" + re.escape(ending) + "$")
    channels: dict[str, set[int]] = {}
    problems = []
    for f in image_files:
        if not f.endswith(ending):
            continue
        m = pattern.match(f)
        if m is None:
            problems.append(f"imagesTr/{f}: the name does not follow {{CASE}}_{{XXXX}}{ending} "
                            f"(XXXX = 4-digit channel index, e.g. case_001_0000{ending}).")
            continue
        channels.setdefault(m.group(1), set()).add(int(m.group(2)))
    return dict(sorted(channels.items())), problems


def _missing_channel_files(channels: dict[str, set[int]], ending: str) -> list[str]:
    """Every case must have the channel files 0..K-1, K = the highest channel index seen in any case + 1."""
    if not channels:
        return []
    expected = set(range(max(max(idx) for idx in channels.values()) + 1))
    problems = []
    for cid, idx in channels.items():
        missing = sorted(expected - idx)
        if missing:
            names = ", ".join(f"imagesTr/{cid}_{i:04d}{ending}" for i in missing)
            problems.append(f"case {cid}: missing channel file(s) {names}.")
    return problems


def _cases_from_dataset_key(folder: Path, entries: Any) -> tuple[dict[str, _Case], list[str], list[str]]:
    if not isinstance(entries, dict):
        return {}, [f"dataset.json 'dataset' must map case ids to {{\"images\": [...], \"label\": ...}}."], []
    cases, problems = {}, []
    for cid, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("images"), list) or "label" not in entry:
            problems.append(f"case {cid}: dataset.json 'dataset' entry needs \"images\" (a list) and \"label\".")
            continue
        case = _Case([_resolve(folder, p) for p in entry["images"]], _resolve(folder, entry["label"]))
        missing = [str(p) for p in [*case.images, case.label] if not p.is_file()]
        if missing:
            problems.append(f"case {cid}: file(s) listed in dataset.json do not exist: {missing}.")
        cases[cid] = case
    return cases, problems, []


def _resolve(folder: Path, p: str) -> Path:
    p = Path(os.path.expandvars(str(p)))
    return p if p.is_absolute() else folder / p


def _choose_reader(ds: dict[str, Any], cases: dict[str, _Case]) -> tuple[str, list[str]]:
    """The reader chosen from the first readable case (a corrupt first file is reported per case, not here)."""
    from nnunet.io.readers import reader_for_dataset

    errors = []
    for cid, case in list(cases.items())[:MAX_READER_PROBES]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return reader_for_dataset(ds, case.images[0]).__name__, []
        except NnunetError as e:
            errors.append(str(e))
    return "", [f"No image reader/writer can read this dataset's files (tried the first {len(errors)} case(s)): "
                f"{errors[0]}"]


# --- per case -------------------------------------------------------------------------------------------------

def _check_cases(folder: Path, cases: dict[str, _Case], reader: str, num_channels: int,
                 expected_labels: list[int] | None, num_processes: int | None,
                 show_progress: bool) -> tuple[list[str], list[str]]:
    jobs = [(cid, [str(f) for f in c.images], str(c.label), reader, num_channels, expected_labels, str(folder))
            for cid, c in cases.items()]
    n = default_num_processes() if num_processes is None else num_processes
    results = run_parallel(check_case, jobs, n, desc="Checking cases", show_progress=show_progress)
    problems = [p for r in results for p in r[0]]
    notes = [w for r in results for w in r[1]]
    return problems, notes


# --- reporting ------------------------------------------------------------------------------------------------

def _print_warnings(notes: list[str]) -> None:
    for note in notes:
        logger.info("Warning: %s", note)  # on stdout with the report, as before


def _raise(folder: Path, problems: list[str]) -> None:
    lines = "\n".join(f"  - {p}" for p in problems)
    raise DatasetError(f"Dataset integrity check of {folder} found {len(problems)} problem(s):\n{lines}\n"
                       f"Fix these and run the check again.")
