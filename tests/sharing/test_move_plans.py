"""nnUNet_move_plans_between_datasets: what changes, what stays, errors, and parity with nnU-Net 2.8.1."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from nnunet.cli.sharing import move_plans_main
from nnunet.demo.synthetic import make_dataset
from tests.training.helpers import configuration, plans

REF_PYTHON = Path("/work/ref/.venv-ref/bin/python")
SOURCE = "Dataset921_PlansSource"
TARGET = "Dataset922_PlansTarget"


def source_plans() -> dict:
    p = plans(SOURCE, {"3d_fullres": configuration("3d_fullres", (16, 16, 16), 2, (4, 8)),
                       "2d": configuration("2d", (16, 16), 4, (4, 8))}, (16, 16, 16))
    p["configurations"]["2d"]["data_identifier"] = "custom_2d"  # no source prefix: the target name is prepended
    p["configurations"]["3d_lowres_like"] = {"inherits_from": "3d_fullres", "batch_size": 3}
    p["foreground_intensity_properties_per_channel"]["0"]["mean"] = 123.25  # must travel unchanged
    p["image_reader_writer"] = "NibabelIO"  # must be re-determined from the target's files
    return p


@pytest.fixture
def datasets(nnunet_dirs):
    make_dataset(nnunet_dirs["raw"], 921, "PlansSource", num_cases=1, shape=(8, 8, 8), shape_jitter=0)
    make_dataset(nnunet_dirs["raw"], 922, "PlansTarget", num_cases=2, shape=(8, 8, 8), shape_jitter=0)
    folder = nnunet_dirs["preprocessed"] / SOURCE
    folder.mkdir()
    (folder / "nnUNetPlans.json").write_text(json.dumps(source_plans(), indent=4))
    return nnunet_dirs


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_move_plans_rewrites_only_dataset_specific_fields(datasets, capsys):
    assert move_plans_main(["-s", "921", "-t", "922", "-sp", "nnUNetPlans", "-tp", "nnUNetPlans_from921"]) == 0
    written = datasets["preprocessed"] / TARGET / "nnUNetPlans_from921.json"
    moved, original = _load(written), source_plans()
    assert moved["dataset_name"] == TARGET and moved["plans_name"] == "nnUNetPlans_from921"
    assert moved["image_reader_writer"] == "SimpleITKIO"
    configs = moved["configurations"]
    assert configs["3d_fullres"]["data_identifier"] == "nnUNetPlans_from921_3d_fullres"
    assert configs["2d"]["data_identifier"] == "nnUNetPlans_from921_custom_2d"
    assert configs["3d_lowres_like"] == original["configurations"]["3d_lowres_like"]
    for name in ("3d_fullres", "2d"):
        for key, value in original["configurations"][name].items():
            if key != "data_identifier":
                assert configs[name][key] == value, (name, key)
    unchanged = {k for k in original if k not in ("dataset_name", "plans_name", "image_reader_writer",
                                                  "configurations")}
    assert {k: moved[k] for k in unchanged} == {k: original[k] for k in unchanged}
    assert moved["foreground_intensity_properties_per_channel"]["0"]["mean"] == 123.25
    assert list(moved) == list(original)  # key order kept
    # the target's dataset.json is put next to the plans so that nnUNet_preprocess can run
    assert _load(datasets["preprocessed"] / TARGET / "dataset.json") == \
        _load(datasets["raw"] / TARGET / "dataset.json")
    # same call again: identical file, nothing to do
    assert move_plans_main(["-s", "921", "-t", "922", "-sp", "nnUNetPlans", "-tp", "nnUNetPlans_from921"]) == 0


def test_move_plans_keeps_identifiers_when_the_name_is_kept(datasets):
    assert move_plans_main(["-s", SOURCE, "-t", TARGET, "-sp", "nnUNetPlans"]) == 0
    moved = _load(datasets["preprocessed"] / TARGET / "nnUNetPlans.json")
    assert moved["plans_name"] == "nnUNetPlans" and moved["dataset_name"] == TARGET
    assert moved["configurations"]["2d"]["data_identifier"] == "custom_2d"
    assert moved["configurations"]["3d_fullres"]["data_identifier"] == "nnUNetPlans_3d_fullres"


def test_move_plans_errors(datasets, capsys):
    assert move_plans_main(["-s", "921", "-t", "922", "-sp", "nnUNetResEncUNetMPlans"]) == 1
    err = capsys.readouterr().err
    assert "nnUNetResEncUNetMPlans.json not found" in err and "nnUNetPlans" in err
    assert move_plans_main(["-s", "921", "-t", "921", "-sp", "nnUNetPlans"]) == 1
    assert "same file" in capsys.readouterr().err
    assert move_plans_main(["-s", "922", "-t", "921", "-sp", "nnUNetPlans"]) == 1
    assert "preprocessed folder of the source dataset" in capsys.readouterr().err
    # an existing, different plans file of the target is never overwritten
    own = datasets["preprocessed"] / TARGET / "nnUNetPlans.json"
    own.parent.mkdir()
    own.write_text('{"mine": true}')
    assert move_plans_main(["-s", "921", "-t", "922", "-sp", "nnUNetPlans"]) == 1
    assert "already exists" in capsys.readouterr().err and own.read_text() == '{"mine": true}'


def test_move_plans_refuses_other_channel_count(datasets, capsys):
    make_dataset(datasets["raw"], 923, "TwoChannels", num_cases=1, shape=(8, 8, 8), shape_jitter=0,
                 channel_names={"0": "T1", "1": "T2"})
    assert move_plans_main(["-s", "921", "-t", "923", "-sp", "nnUNetPlans", "-tp", "x"]) == 1
    err = capsys.readouterr().err
    assert "2 channel(s)" in err and "normalization_schemes has 1" in err
    assert not (datasets["preprocessed"] / "Dataset923_TwoChannels").exists()


def test_move_plans_needs_target_raw_data(datasets, capsys):
    (datasets["preprocessed"] / "Dataset924_NoRaw").mkdir()
    assert move_plans_main(["-s", "921", "-t", "924", "-sp", "nnUNetPlans", "-tp", "x"]) == 1
    assert "must exist in nnUNet_raw" in capsys.readouterr().err


@pytest.mark.skipif(not REF_PYTHON.is_file(), reason="reference nnU-Net venv not available")
def test_move_plans_matches_reference(datasets, tmp_path):
    ours = tmp_path / "ours.json"
    assert move_plans_main(["-s", "921", "-t", "922", "-sp", "nnUNetPlans", "-tp", "nnUNetPlans_from921"]) == 0
    os.replace(datasets["preprocessed"] / TARGET / "nnUNetPlans_from921.json", ours)
    code = ("from nnunetv2.experiment_planning.plans_for_pretraining.move_plans_between_datasets import "
            "move_plans_between_datasets as m; m(921, 922, 'nnUNetPlans', 'nnUNetPlans_from921')")
    subprocess.run([str(REF_PYTHON), "-c", code], check=True, env=os.environ.copy(), capture_output=True)
    reference = _load(datasets["preprocessed"] / TARGET / "nnUNetPlans_from921.json")
    assert _load(ours) == reference
    assert list(_load(ours)) == list(reference)
