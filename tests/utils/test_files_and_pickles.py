"""Shared writing and pickle-reading helpers: complete-or-absent files, umask permissions, data-only pickles."""
from __future__ import annotations

import os
import pickle
import stat

import numpy as np
import pytest

from nnunet.errors import NnunetError
from nnunet.utils.files import OutputError, atomic_write_bytes, publish
from nnunet.utils.json import load_pickle, save_json, save_pickle
from nnunet.utils.safe_pickle import UnsafePickleError


class _Payload:
    """Unpickling this runs os.system: what a hostile .pkl looks like."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "case.pkl"
    path.write_bytes(pickle.dumps({"spacing": [1.0, 1.0, 1.0], "x": _Payload(marker)}))
    with pytest.raises(UnsafePickleError, match=r"case\.pkl.*(posix|os)\.system"):
        load_pickle(path)
    assert not marker.exists()


def test_case_properties_round_trip(tmp_path):
    properties = {"spacing": [1.0, 2.0], "shape_before_cropping": (3, 4),
                  "class_locations": {1: np.arange(8, dtype=np.int64).reshape(2, 4)},
                  "sitk_stuff": {"origin": (0.0, 0.0), "direction": (1.0, 0.0, 0.0, 1.0)},
                  "value": np.float32(3.5), "labels": {np.int16(2)}}
    save_pickle(properties, tmp_path / "c.pkl")
    loaded = load_pickle(tmp_path / "c.pkl")
    np.testing.assert_array_equal(loaded["class_locations"][1], properties["class_locations"][1])
    assert loaded["shape_before_cropping"] == (3, 4) and loaded["value"] == np.float32(3.5)


def test_truncated_pickle_names_the_file(tmp_path):
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps({"a": list(range(100))})[:20])
    with pytest.raises(NnunetError, match=r"c\.pkl is not a readable"):
        load_pickle(path)


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_json({"a": 1}, tmp_path / "a.json")
        atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    for name in ("a.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_failed_write_publishes_nothing_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.nii.gz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with publish(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_folder_gives_one_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match=r"Could not write .*ro/x\.json: EACCES"):
            save_json({}, folder / "x.json")
    finally:
        folder.chmod(0o755)
