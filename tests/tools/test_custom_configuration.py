"""Plans customisation and manual splits, end to end through the command-line entry points.

A user adds a configuration to plans.json that inherits from 3d_fullres but uses a coarser spacing, a smaller
patch and its own data_identifier, writes a 3-fold splits_final.json, then preprocesses, trains fold 2 and
predicts with the new configuration.
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
from nnunet.cli.predict import predict_main
from nnunet.cli.preprocess import preprocess_main
from nnunet.cli.train import train_main
from nnunet.demo.synthetic import make_dataset
from nnunet.registry import TRAINERS
from tests.training.helpers import TinyTestTrainer

CUSTOM = "3d_fullres_bigspacing"
IDS = [f"case_{i:03d}" for i in range(4)]
MANUAL_SPLITS = [{"train": IDS[:3], "val": IDS[3:]},
                 {"train": IDS[1:], "val": IDS[:1]},
                 {"train": [IDS[0], IDS[2]], "val": [IDS[1], IDS[3]]}]


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, TinyTestTrainer)


def _sitk_shape(path) -> tuple[int, ...]:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).shape


def test_custom_configuration_and_three_fold_manual_split(nnunet_dirs, monkeypatch, tmp_path):
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    torch.set_num_threads(1)
    raw = make_dataset(nnunet_dirs["raw"], 601, "Custom", "3d_iso", num_cases=4, shape=(16, 16, 16), shape_jitter=0)
    assert plan_and_preprocess_main(["-d", "601", "--no_pp", "-npfp", "1", "--no_pbar"]) == 0
    pre = nnunet_dirs["preprocessed"] / "Dataset601_Custom"
    plans_file = pre / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    parent = plans["configurations"]["3d_fullres"]
    assert parent["spacing"] == [1.0, 1.0, 1.0]

    # what a user does by hand: a new configuration that only names what differs from its parent
    plans["configurations"][CUSTOM] = {"inherits_from": "3d_fullres", "data_identifier": f"nnUNetPlans_{CUSTOM}",
                                       "spacing": [2.0, 2.0, 2.0], "patch_size": [8, 8, 8]}
    plans_file.write_text(json.dumps(plans, indent=4))
    (pre / "splits_final.json").write_text(json.dumps(MANUAL_SPLITS))

    assert preprocess_main(["-d", "601", "-c", CUSTOM, "-np", "1", "--no_pbar"]) == 0
    data_folder = pre / f"nnUNetPlans_{CUSTOM}"
    assert sorted(p.name[:-4] for p in data_folder.glob("*.pkl")) == IDS
    assert not (pre / "nnUNetPlans_3d_fullres").exists()  # only the requested configuration
    with open(data_folder / f"{IDS[0]}.pkl", "rb") as f:
        props = pickle.load(f)
    cropped = np.array(props["shape_after_cropping_and_before_resampling"])
    import blosc2

    stored = np.array(blosc2.open(str(data_folder / f"{IDS[0]}.b2nd"), mode="r").shape[1:])
    np.testing.assert_array_equal(stored, np.round(cropped / 2).astype(int))  # spacing 1 -> 2 halves the size

    assert train_main(["601", CUSTOM, "2", "-tr", "TinyTestTrainer", "-device", "cpu"]) == 0
    out = nnunet_dirs["results"] / "Dataset601_Custom" / f"TinyTestTrainer__nnUNetPlans__{CUSTOM}"
    fold = out / "fold_2"
    checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["init_args"]["configuration"] == CUSTOM
    # the manual third fold, not the 80:20 fallback (which would validate on one case)
    validated = sorted(p.name[:-7] for p in (fold / "validation").glob("*.nii.gz"))
    assert validated == MANUAL_SPLITS[2]["val"]
    log = "".join(p.read_text() for p in fold.glob("training_log_*.txt"))
    assert "The split file contains 3 splits." in log
    assert json.loads((out / "plans.json").read_text())["configurations"][CUSTOM]["inherits_from"] == "3d_fullres"
    for case in validated:  # exported back to the raw geometry
        assert _sitk_shape(fold / "validation" / f"{case}.nii.gz") == _sitk_shape(raw / "labelsTr" / f"{case}.nii.gz")

    test_raw = make_dataset(tmp_path / "test", 601, "Custom", "3d_iso", num_cases=2, shape=(18, 16, 14), seed=7)
    pred = tmp_path / "pred"
    assert predict_main(["-i", str(test_raw / "imagesTr"), "-o", str(pred), "-d", "601", "-c", CUSTOM, "-f", "2",
                         "-tr", "TinyTestTrainer", "-device", "cpu", "-npp", "0", "-nps", "0",
                         "--disable_progress_bar"]) == 0
    for case in ("case_000", "case_001"):
        assert _sitk_shape(pred / f"{case}.nii.gz") == _sitk_shape(test_raw / "labelsTr" / f"{case}.nii.gz")
    assert json.loads((pred / "plans.json").read_text())["configurations"][CUSTOM]["spacing"] == [2.0, 2.0, 2.0]


def test_shared_data_identifier_with_other_spacing_is_flagged():
    from nnunet.planning.plans import Plans
    from nnunet.preprocessing.api import shared_data_conflicts
    from tests.training.helpers import configuration, plans

    p = plans("Dataset601_Custom", {"3d_fullres": configuration("3d_fullres", (8, 8, 8), 2, (4, 8))}, (16, 16, 16))
    cfgs = p["configurations"]
    cfgs["bs4"] = {"inherits_from": "3d_fullres", "batch_size": 4}  # same data: fine
    cfgs["forgot_identifier"] = {"inherits_from": "3d_fullres", "spacing": [2.0, 2.0, 2.0]}
    cfgs["own_identifier"] = {"inherits_from": "3d_fullres", "spacing": [2.0, 2.0, 2.0], "data_identifier": "x"}
    view = Plans(p)
    assert shared_data_conflicts(view, "bs4") == ["forgot_identifier (differs in spacing)"]
    assert shared_data_conflicts(view, "forgot_identifier") == ["3d_fullres (differs in spacing)",
                                                               "bs4 (differs in spacing)"]
    assert shared_data_conflicts(view, "own_identifier") == []


def test_misspelled_parent_is_named(nnunet_dirs):
    import pytest

    from nnunet.errors import ConfigurationError
    from nnunet.planning.plans import Plans
    from tests.training.helpers import configuration, plans

    p = plans("Dataset601_Custom", {"3d_fullres": configuration("3d_fullres", (8, 8, 8), 2, (4, 8))}, (16, 16, 16))
    p["configurations"]["mine"] = {"inherits_from": "3d_fulres", "batch_size": 4}
    with pytest.raises(ConfigurationError, match="'3d_fulres' \\(named by inherits_from of 'mine'\\)"):
        Plans(p).configuration("mine")
