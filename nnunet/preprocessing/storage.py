"""The preprocessed data format: the one reader and writer of ``nnUNet_preprocessed/DatasetXXX/{data_identifier}``.

A case ``ID`` is three files, the same as nnU-Net 2.8.1's, so folders move between the two:

* ``{ID}.b2nd`` data, float32, (C, X, Y, Z); ``{ID}_seg.b2nd`` segmentation, int16, (1, X, Y, Z);
* ``{ID}.pkl`` properties (read as data only, never as code).

Legacy folders hold ``{ID}.npz`` (arrays ``data`` and ``seg``) and ``{ID}.pkl`` instead; training unpacks them to
``{ID}.npy`` / ``{ID}_seg.npy``.

**A case is complete when all of its files exist.** Each file is written under a temporary name and renamed
(:func:`nnunet.utils.files.publish`), and the properties file is written last, so an interrupted or failed
write leaves a *partial* case: some of its files without its ``.pkl`` (or a ``.pkl`` whose array files were
deleted). :func:`scan_folder` tells complete and partial cases apart; everything else (training, validation,
the cascade, the tests) goes through it.

**A folder is complete when its completion marker says so.** Preprocessing writes
``{data_identifier}.complete.json`` next to the folder (not inside it: nnU-Net infers the dataset class from the
file endings in the folder) once every case is written; :func:`require_complete` is the check training runs.
"""
from __future__ import annotations

import json
import os
import pickle
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnunet.errors import DatasetError, NnunetError
from nnunet.utils.files import OutputError, default_file_mode, describe_os_error, publish
from nnunet.utils.json import load_pickle, save_json

SEG_SUFFIX = "_seg"
#: name prefix of a case file being written (hidden: no reader lists it; removed when the folder is published)
PARTIAL_PREFIX = ".nnunet-partial-"
MARKER_SUFFIX = ".complete.json"
MARKER_VERSION = 1
_MMAP = {} if os.name == "nt" else {"mmap_mode": "r"}
_RERUN = "Re-run nnUNet_preprocess for this configuration."


class PreprocessedDataError(DatasetError):
    """Preprocessed data that is missing, incomplete, corrupt or made from other plans."""


@dataclass
class FolderContents:
    """What :func:`scan_folder` found: the format and the complete and partial cases (sorted)."""

    format: str
    complete: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)


# --- what is in a folder ---------------------------------------------------------------------------------------

def _visible_files(folder: Path) -> list[str]:
    return [e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]


def data_format(names: Sequence[str], folder: Path) -> str:
    """``"b2nd"`` or ``"npz"`` from the file endings (``.pkl`` and unpacked ``.npy`` do not count)."""
    endings = {os.path.splitext(n)[1] for n in names} - {".pkl", ".npy"}
    if endings <= {".b2nd"}:
        return "b2nd"
    if endings == {".npz"}:
        return "npz"
    raise PreprocessedDataError(f"{folder} holds more than one kind of data file ({', '.join(sorted(endings))}); "
                                f"it must contain only .b2nd (or only legacy .npz) cases. {_RERUN}")


def scan_folder(folder: str | os.PathLike) -> FolderContents:
    """Complete and partial cases of a preprocessed folder (see the module docstring for the definition)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PreprocessedDataError(f"Preprocessed data folder {folder} does not exist. Run nnUNet_preprocess for "
                                    f"this configuration first.")
    names = _visible_files(folder)
    fmt = data_format(names, folder)
    present = set(names)
    cases = {n[:-4] for n in names if n.endswith((".pkl", ".npz"))}
    for n in names:
        if n.endswith(f"{SEG_SUFFIX}.b2nd"):
            cases.add(n[:-len(SEG_SUFFIX) - 5])
        elif n.endswith(".b2nd"):
            cases.add(n[:-5])
    complete, partial = [], []
    for case in sorted(cases):
        (complete if all(f in present for f in case_file_names(case, fmt)) else partial).append(case)
    return FolderContents(fmt, complete, partial)


def case_file_names(case_id: str, fmt: str = "b2nd") -> tuple[str, ...]:
    """The files that make case ``case_id`` complete, the properties file last."""
    if fmt == "npz":
        return f"{case_id}.npz", f"{case_id}.pkl"
    return f"{case_id}.b2nd", f"{case_id}{SEG_SUFFIX}.b2nd", f"{case_id}.pkl"


def case_ids(folder: str | os.PathLike) -> list[str]:
    """The complete cases of a preprocessed folder, sorted (an empty folder has none)."""
    return scan_folder(folder).complete


def remove_case(folder: str | os.PathLike, case_id: str) -> None:
    """Delete whatever files of a case exist (used to clear a partial case before it is written again)."""
    for name in case_file_names(case_id) + case_file_names(case_id, "npz"):
        Path(folder, name).unlink(missing_ok=True)


# --- writing ---------------------------------------------------------------------------------------------------

def save_case(folder: str | os.PathLike, case_id: str, data: np.ndarray, seg: np.ndarray,
              properties: dict[str, Any], patch_size: Sequence[int], nthreads: int | None = None) -> None:
    """Write one case: data (float32), seg (int16), then the properties, each complete or absent.

    Block/chunk shapes follow from ``patch_size`` (:mod:`~nnunet.preprocessing.blosc2_layout`); ``nthreads`` only
    sets how many threads compress (None: :data:`~nnunet.preprocessing.blosc2_layout.NTHREADS`). A failed write
    (full disk, ...) raises :class:`~nnunet.utils.files.OutputError`
    and leaves at most a partial case, which no reader counts as a case.
    """
    # imported here: blosc2 takes a second or more to import, and only writers need the layout
    from nnunet.preprocessing.blosc2_layout import NTHREADS, compressed_frame

    nthreads = NTHREADS if nthreads is None else nthreads
    folder = Path(folder)
    names = case_file_names(case_id)
    _write_file(folder / names[0], compressed_frame(data.astype(np.float32, copy=False), patch_size, nthreads))
    _write_file(folder / names[1], compressed_frame(seg.astype(np.int16, copy=False), patch_size, nthreads))
    _write_file(folder / names[2], pickle.dumps(properties))


def _write_file(path: Path, content: bytes) -> None:
    """Complete or absent, like :func:`nnunet.utils.files.atomic_write_bytes`, but with the temporary file beside
    the target instead of in a private folder: creating and removing two folders per file costs 3-6 ms on ext4
    (a quarter of the time of a small case), and the case files already live in a staging folder that is
    published as a whole (:mod:`nnunet.preprocessing.staging`), which also removes what a killed writer left."""
    tmp = path.with_name(f"{PARTIAL_PREFIX}{uuid.uuid4().hex}.{path.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(content)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException as e:  # a full disk, or Ctrl-C: leave nothing behind
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(describe_os_error(e, path)) from None
        raise


def save_previous_stage_seg(seg: np.ndarray, path: str | os.PathLike) -> None:
    """Write a 3-D label map for the next stage of a cascade as ``.b2nd`` (complete or absent)."""
    import blosc2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with publish(path) as tmp:
        blosc2.asarray(np.ascontiguousarray(seg), urlpath=str(tmp), mode="w")


# --- reading ---------------------------------------------------------------------------------------------------

def open_b2nd(path: str | os.PathLike):
    """Open a ``.b2nd`` file memory-mapped with one decompression thread; a missing, truncated or corrupt file
    raises :class:`PreprocessedDataError` naming it."""
    import blosc2

    path = Path(path)
    if not path.is_file():
        raise PreprocessedDataError(f"Missing preprocessed file {path}. {_RERUN}")
    try:
        return blosc2.open(urlpath=str(path), mode="r", dparams={"nthreads": 1}, **_MMAP)
    except Exception as e:  # noqa: BLE001 - blosc2 raises assorted types for damaged frames
        raise PreprocessedDataError(f"{path} is not a readable .b2nd file (truncated or corrupt: "
                                    f"{type(e).__name__}: {e}). {_RERUN}") from None


def load_properties(folder: str | os.PathLike, case_id: str) -> dict[str, Any]:
    """The properties of a case; a missing, corrupt or unsafe ``.pkl`` raises an error naming the file."""
    path = Path(folder) / f"{case_id}.pkl"
    try:
        properties = load_pickle(path)
    except PreprocessedDataError:
        raise
    except NnunetError as e:
        raise PreprocessedDataError(f"{e} {_RERUN}") from None
    if not isinstance(properties, dict):
        raise PreprocessedDataError(f"{path} holds a {type(properties).__name__}, not a properties dict. {_RERUN}")
    return properties


def _load_npy_pair(folder: Path, case_id: str):
    """Legacy format: the unpacked ``.npy`` files memory-mapped if present, else the arrays from the ``.npz``."""
    arrays = []
    for key, name in (("data", f"{case_id}.npy"), ("seg", f"{case_id}{SEG_SUFFIX}.npy")):
        path = folder / name
        source = path if path.is_file() else folder / f"{case_id}.npz"
        try:
            arrays.append(np.load(path, mmap_mode="r") if path.is_file() else np.load(source)[key])
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise PreprocessedDataError(f"{source} is not readable (truncated or corrupt: {e}). {_RERUN}") from None
    return arrays[0], arrays[1]


def load_case(folder: str | os.PathLike, case_id: str, fmt: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """Open a case: ``(data, seg, properties)``. ``.b2nd`` arrays are memory-mapped blosc2 NDArrays (slice them to
    read); legacy cases give numpy arrays. ``fmt`` skips the folder scan when the caller knows the format."""
    folder = Path(folder)
    fmt = fmt or scan_folder(folder).format
    if fmt == "b2nd":
        data, seg = open_b2nd(folder / f"{case_id}.b2nd"), open_b2nd(folder / f"{case_id}{SEG_SUFFIX}.b2nd")
    else:
        data, seg = _load_npy_pair(folder, case_id)
    if tuple(data.shape[1:]) != tuple(seg.shape[1:]):
        raise PreprocessedDataError(f"Case {case_id} in {folder}: data shape {tuple(data.shape)} and segmentation "
                                    f"shape {tuple(seg.shape)} differ. {_RERUN}")
    return data, seg, load_properties(folder, case_id)


def load_previous_stage_seg(folder: str | os.PathLike, case_id: str):
    """A cascade's previous-stage segmentation ``{ID}.b2nd`` (or legacy ``{ID}.npz``), or None if absent."""
    folder = Path(folder)
    if (folder / f"{case_id}.b2nd").is_file():
        return open_b2nd(folder / f"{case_id}.b2nd")
    if (folder / f"{case_id}.npz").is_file():
        return np.load(folder / f"{case_id}.npz")["seg"]
    return None


def unpack_npz(folder: str | os.PathLike, identifiers: Sequence[str] | None = None, overwrite: bool = False) -> None:
    """Legacy format: write ``{ID}.npy`` / ``{ID}_seg.npy`` next to each ``{ID}.npz`` (complete or absent)."""
    folder = Path(folder)
    for case in identifiers if identifiers is not None else case_ids(folder):
        for key, name in (("data", f"{case}.npy"), ("seg", f"{case}{SEG_SUFFIX}.npy")):
            target = folder / name
            if target.is_file() and not overwrite:
                continue
            array = _load_npy_pair(folder, case)[0 if key == "data" else 1]
            with publish(target) as tmp:
                np.save(tmp, np.asarray(array))


# --- the completion marker -------------------------------------------------------------------------------------

def marker_path(folder: str | os.PathLike) -> Path:
    """``{data_identifier}.complete.json`` next to the data folder."""
    folder = Path(folder)
    return folder.parent / f"{folder.name}{MARKER_SUFFIX}"


def write_marker(folder: str | os.PathLike, cases: Sequence[str], plans_file: str, configuration: str,
                 settings: dict[str, Any]) -> None:
    """Record that ``folder`` holds every case of ``cases``, made with ``settings`` of ``configuration``."""
    save_json({"version": MARKER_VERSION, "data_identifier": Path(folder).name, "plans_file": Path(plans_file).name,
               "configuration": configuration, "settings": settings, "num_cases": len(cases),
               "cases": sorted(cases)}, marker_path(folder), sort_keys=False, indent=1)


def remove_marker(folder: str | os.PathLike) -> None:
    marker_path(folder).unlink(missing_ok=True)


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The completion marker of a folder, or None if there is none; a damaged one is an error."""
    path = marker_path(folder)
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PreprocessedDataError(f"{path} is not a readable completion marker ({e}). {_RERUN}") from None
    if not isinstance(marker, dict) or not isinstance(marker.get("cases"), list):
        raise PreprocessedDataError(f"{path} is not a completion marker (no 'cases' list). {_RERUN}")
    return marker


def _names(cases: Sequence[str], limit: int = 10) -> str:
    return ", ".join(cases[:limit]) + (f" ... ({len(cases)} in all)" if len(cases) > limit else "")


def require_complete(folder: str | os.PathLike, settings_now: dict[str, Any] | None = None,
                     expected_num_cases: int | None = None) -> list[str]:
    """The complete cases of a folder that training may use; refuses an incompletely preprocessed folder.

    * partial cases (an interrupted or failed write) are refused;
    * with a completion marker: every case it lists must be complete, and when ``settings_now`` (the
      configuration's current preprocessing settings) is given, it must equal the recorded settings;
    * without one (a folder made by nnU-Net, which writes none): at least ``expected_num_cases`` cases must be
      complete (dataset.json's numTraining), since an interrupted nnU-Net run leaves only a subset.
    """
    folder = Path(folder)
    contents = scan_folder(folder)
    if contents.partial:
        raise PreprocessedDataError(f"{folder} holds incompletely written cases ({_names(contents.partial)}): a "
                                    f"preprocessing run was interrupted or failed. {_RERUN}")
    marker = read_marker(folder)
    if marker is None:
        if expected_num_cases is not None and len(contents.complete) < expected_num_cases:
            raise PreprocessedDataError(f"{folder} holds {len(contents.complete)} preprocessed cases, but dataset.json "
                                        f"lists {expected_num_cases} training cases and there is no completion marker "
                                        f"({marker_path(folder).name}): preprocessing did not finish. {_RERUN}")
        return contents.complete
    missing = sorted(set(marker["cases"]) - set(contents.complete))
    if missing:
        raise PreprocessedDataError(f"{folder} lacks cases its completion marker lists: {_names(missing)}. {_RERUN}")
    recorded = marker.get("settings")
    if settings_now is not None and recorded is not None and json.loads(json.dumps(settings_now)) != recorded:
        changed = sorted(k for k in set(recorded) | set(settings_now) if recorded.get(k) != settings_now.get(k))
        raise PreprocessedDataError(f"{folder} was preprocessed with other settings than the current plans "
                                    f"({', '.join(changed)} changed since). {_RERUN}")
    return contents.complete
