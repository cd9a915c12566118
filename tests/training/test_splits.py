"""Cross-validation splits: nnU-Net's KFold output, manual files, fold 'all', the 80:20 fallback."""
from __future__ import annotations

import json

import pytest

from nnunet.errors import DatasetError
from nnunet.training.data.splits import generate_crossval_split, train_val_keys
from tests.helpers import FIXTURES

REF = json.loads((FIXTURES / "training" / "splits_13_cases.json").read_text())


def test_kfold_equals_reference():
    assert generate_crossval_split(reversed(REF["identifiers"])) == REF["splits"]


def test_creates_file_and_uses_fold(tmp_path):
    ids = REF["identifiers"]
    train, val = train_val_keys(tmp_path, 2, ids, log=lambda m: None)
    assert (tmp_path / "splits_final.json").is_file()
    assert json.loads((tmp_path / "splits_final.json").read_text()) == REF["splits"]
    assert (train, val) == (REF["splits"][2]["train"], REF["splits"][2]["val"])
    all_val = sorted(v for s in REF["splits"] for v in s["val"])
    assert all_val == sorted(ids)


def test_manual_split_any_number_of_folds(tmp_path):
    ids = ["a", "b", "c", "d"]
    manual = [{"train": ["a", "b"], "val": ["c", "d"]}, {"train": ["c", "d"], "val": ["a", "b"]},
              {"train": ["a", "c"], "val": ["b", "d"]}]
    (tmp_path / "splits_final.json").write_text(json.dumps(manual))
    assert train_val_keys(tmp_path, 2, ids, log=lambda m: None) == (["a", "c"], ["b", "d"])


def test_fold_all_and_fallback(tmp_path):
    ids = [f"c{i}" for i in range(10)]
    assert train_val_keys(tmp_path, "all", ids) == (ids, ids)
    (tmp_path / "splits_final.json").write_text(json.dumps([{"train": ids[:5], "val": ids[5:]}]))
    train, val = train_val_keys(tmp_path, 3, ids, log=lambda m: None)
    assert len(train) == 8 and len(val) == 2 and sorted(train + val) == ids
    assert train_val_keys(tmp_path, 3, ids, log=lambda m: None) == (train, val)  # seeded
    assert train_val_keys(tmp_path, 4, ids, log=lambda m: None) != (train, val)


def test_split_naming_missing_cases_is_an_error(tmp_path):
    (tmp_path / "splits_final.json").write_text(json.dumps([{"train": ["x"], "val": ["ghost"]}]))
    with pytest.raises(DatasetError, match="ghost"):
        train_val_keys(tmp_path, 0, ["x"], log=lambda m: None)
