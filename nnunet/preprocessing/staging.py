"""Build a configuration's preprocessed folder in a staging folder, then swap it in; shards share the staging.

Preprocessing never deletes existing preprocessed data before the new data is complete:

* cases are written to ``{data_identifier}.staging/`` next to the data folder. Its signature file
  ``{data_identifier}.staging.json`` records everything the arrays depend on besides the raw files
  (preprocessing settings, plans values, dataset.json labels, the preprocessor);
* a run whose signature equals the staging folder's reuses the cases already complete there and written after
  their raw files were last modified (so an interrupted run resumes, a fixed raw file is redone, and running a
  shard twice does nothing the second time); any other staging folder is stale and is cleared;
* ``-num_parts N -part_id i``: each part writes its share (every N-th case of the sorted case list, as
  ``nnUNet_predict`` splits) into the same staging folder;
* whichever part finds every case complete when it finishes claims the staging folder by renaming it (only
  one rename can succeed), moves the old data folder aside, renames the new one into place, writes the
  completion marker (:func:`nnunet.preprocessing.storage.write_marker`) and deletes the old data.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nnunet.errors import NnunetError
from nnunet.planning.plans import PREPROCESSING_KEYS, Configuration, Plans
from nnunet.preprocessing.storage import (PARTIAL_PREFIX, PreprocessedDataError, remove_case, remove_marker,
                                         scan_folder, write_marker)
from nnunet.utils.json import load_json, save_json, to_builtin

STAGING_SUFFIX = ".staging"
_CLEARING = ".clearing-"
#: how long a part waits for another part that is clearing a stale staging folder
_CLEARING_TIMEOUT_S = 60.0


def configuration_settings(plans: Plans, configuration: Configuration) -> dict[str, Any]:
    """The values of the plans that the arrays of ``configuration`` depend on (recorded in the marker)."""
    settings = {key: configuration.get(key) for key in PREPROCESSING_KEYS}
    settings["transpose_forward"] = plans.transpose_forward
    return settings


def raw_mtime_ns(case: dict[str, Any]) -> int:
    """The latest modification time of a case's raw files (a stat per file: cheap)."""
    return max(os.stat(path).st_mtime_ns for path in [*case["images"], case["label"]])


def build_signature(plans: Plans, configuration: Configuration, dataset_json: dict[str, Any],
                    preprocessor_name: str) -> dict[str, Any]:
    """Everything the arrays of one configuration depend on; equal signatures mean reusable staged cases."""
    return {
        "configuration": configuration.name,
        "settings": configuration_settings(plans, configuration),
        "patch_size": configuration.patch_size,
        "plans": {k: plans.data.get(k) for k in ("image_reader_writer", "foreground_intensity_properties_per_channel")},
        "labels": dataset_json.get("labels"),
        "regions_class_order": dataset_json.get("regions_class_order"),
        "preprocessor": preprocessor_name,
    }


def shard(case_ids: Sequence[str], num_parts: int, part_id: int) -> list[str]:
    """Part ``part_id`` of ``num_parts``: every ``num_parts``-th case of the sorted list (as nnUNet_predict)."""
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise NnunetError(f"-part_id must be in [0, -num_parts): got part_id={part_id}, num_parts={num_parts}. "
                          f"Run parts 0 ... {max(num_parts, 1) - 1}, one per node.")
    return sorted(case_ids)[part_id::num_parts]


@dataclass
class StagedBuild:
    """One configuration's data folder being rebuilt through its staging folder."""

    final: Path
    configuration: str
    plans_file: str
    settings: dict[str, Any]
    done: frozenset[str]

    @property
    def staging(self) -> Path:
        return staging_folder(self.final)

    @classmethod
    def open(cls, final: str | os.PathLike, signature: dict[str, Any], plans_file: str | os.PathLike,
             cases: dict[str, dict[str, Any]]) -> "StagedBuild":
        """Reuse the staging folder if its signature matches, else start a fresh one (clearing a stale one).
        ``done``: the staged cases that are complete and newer than their raw files."""
        final = Path(final)
        _remove_leftovers(final)
        _ensure_staging(final, signature)
        staging = staging_folder(final)
        done = frozenset(c for c in scan_folder(staging).complete
                         if c in cases and os.stat(staging / f"{c}.pkl").st_mtime_ns >= raw_mtime_ns(cases[c]))
        return cls(final, signature["configuration"], str(plans_file), signature["settings"], done)

    def publish_if_complete(self, all_cases: Sequence[str]) -> bool:
        """Swap the staging folder in if every case is complete there. Returns whether this call swapped it."""
        try:
            complete = scan_folder(self.staging).complete
        except PreprocessedDataError:  # gone: another part claimed it since (or nothing was staged)
            return False
        if not set(all_cases) <= set(complete):
            return False
        claimed = self.final.parent / f".{self.final.name}.publishing-{uuid.uuid4().hex}"
        try:
            os.rename(self.staging, claimed)
        except FileNotFoundError:  # another part claimed it first and is swapping it in
            return False
        shutil.rmtree(claimed / ".nnunet_partial", ignore_errors=True)
        for leftover in claimed.glob(f"{PARTIAL_PREFIX}*"):  # files a killed writer left
            leftover.unlink(missing_ok=True)
        contents = scan_folder(claimed)
        # cases since removed from the dataset, whole or half written
        for stray in (set(contents.complete) - set(all_cases)) | set(contents.partial):
            remove_case(claimed, stray)
        remove_marker(self.final)
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{uuid.uuid4().hex}"
            os.rename(self.final, old)
        os.rename(claimed, self.final)
        signature_file(self.final).unlink(missing_ok=True)
        write_marker(self.final, sorted(all_cases), self.plans_file, self.configuration, self.settings)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return True


def staging_folder(final: Path) -> Path:
    return final.parent / f"{final.name}{STAGING_SUFFIX}"


def signature_file(final: Path) -> Path:
    return final.parent / f"{final.name}{STAGING_SUFFIX}.json"


def _remove_leftovers(final: Path) -> None:
    """Old data folders a crashed swap left behind (the new data was already in place)."""
    if final.is_dir():
        for old in final.parent.glob(f".{final.name}.old-*"):
            shutil.rmtree(old, ignore_errors=True)


def _ensure_staging(final: Path, signature: dict[str, Any]) -> None:
    """Make the staging folder this run's: reuse it if its signature is ours, else clear it and claim it.

    Several parts may start at once. The signature is always created (exclusively) before the folder, so a
    staging folder without a signature is a leftover, and a part never removes a folder that another part
    has just claimed with the same signature."""
    sig_file, staging = signature_file(final), staging_folder(final)
    wanted = _canonical(signature)
    deadline = time.monotonic() + _CLEARING_TIMEOUT_S
    while True:
        current = _read_signature(sig_file)
        if current == wanted:
            staging.mkdir(parents=True, exist_ok=True)
            return
        if current is not None:
            _clear_stale(sig_file, staging)
        elif not _being_cleared(sig_file):
            if staging.exists():
                # read again: a part that claimed the folder since our first look wrote its signature first
                if _read_signature(sig_file) is None and not _being_cleared(sig_file):
                    _trash(staging)
            elif _create_exclusively(sig_file, wanted):
                staging.mkdir(parents=True, exist_ok=True)
                return
            continue
        if time.monotonic() > deadline:
            raise NnunetError(f"Another preprocessing run with different plans is using {staging}. Wait for it to "
                              f"finish (or stop it), then run this command again.")
        time.sleep(0.2)


def _canonical(signature: dict[str, Any]) -> Any:
    import json

    return json.loads(json.dumps(to_builtin(signature), sort_keys=True))


def _read_signature(path: Path) -> Any:
    try:
        return load_json(path) if path.is_file() else None
    except NnunetError:
        return {"unreadable": True}  # a damaged signature marks a stale staging folder


def _clear_stale(sig_file: Path, staging: Path) -> None:
    """Remove a staging folder made for other plans or raw data. Renaming its signature away first lets only
    one of several parts starting at once do the clearing; the others wait while the claim file exists."""
    claim = sig_file.with_name(f".{sig_file.name}{_CLEARING}{uuid.uuid4().hex}")
    try:
        os.rename(sig_file, claim)
    except FileNotFoundError:
        return  # another part is clearing it
    _trash(staging)
    claim.unlink(missing_ok=True)


def _being_cleared(sig_file: Path) -> bool:
    """Whether another part is clearing the staging folder; a claim older than the clearing timeout is a
    killed part's, and is removed."""
    busy = False
    for claim in sig_file.parent.glob(f".{sig_file.name}{_CLEARING}*"):
        try:
            if time.time() - claim.stat().st_mtime > _CLEARING_TIMEOUT_S:
                claim.unlink(missing_ok=True)
            else:
                busy = True
        except FileNotFoundError:
            pass
    return busy


def _trash(staging: Path) -> None:
    trash = staging.parent / f".{staging.name}.stale-{uuid.uuid4().hex}"
    try:
        os.rename(staging, trash)
    except FileNotFoundError:
        return  # another part removed it first
    shutil.rmtree(trash, ignore_errors=True)


def _create_exclusively(path: Path, content: Any) -> bool:
    """Write ``content`` as JSON to ``path`` unless it exists (atomic: written aside, then hard-linked)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    save_json(content, tmp)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # file systems without hard links: a plain rename (the race is then only narrowed)
        if path.exists():
            return False
        os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)

