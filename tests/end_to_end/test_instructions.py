"""Running inference_instructions.txt: placeholder filling (nnunet.demo.instructions) and the demo's folder safety."""
from __future__ import annotations

import pytest

from nnunet.demo.instructions import instruction_commands, placeholder_folder
from nnunet.demo.run import MARKER, _fresh_workdir
from nnunet.ensembling.model_selection import inference_instructions, selected_models
from nnunet.errors import NnunetError

ENSEMBLE = ("ensemble___nnUNetTrainer__nnUNetPlans__2d___nnUNetTrainer__nnUNetPlans__3d_cascade_fullres___"
            "0_1_2_3_4")


def _text(best: str) -> str:
    info = {"dataset_name_or_id": "Dataset004_Hippocampus", "folds": [0, 1, 2, 3, 4],
            "best_model_or_ensemble": {"postprocessing_file": "/r/pp.pkl", "some_plans_file": "/r/plans.json",
                                       "selected_model_or_models": selected_models(best)}}
    previous = {"3d_cascade_fullres": "3d_lowres"}
    return inference_instructions(info, lambda m: previous.get(m["configuration"]), 4)


def test_single_model_commands(tmp_path):
    commands = instruction_commands(_text("nnUNetTrainer__nnUNetPlans__3d_fullres"), tmp_path / "in",
                                    tmp_path / "out", device="cpu")
    assert [c[0] for c in commands] == ["nnUNetv2_predict", "nnUNetv2_apply_postprocessing"]
    predict, pp = commands
    assert predict[predict.index("-i") + 1] == str(tmp_path / "in")
    assert predict[predict.index("-o") + 1] == str(tmp_path / "out" / "output_folder")
    assert predict[-2:] == ["-device", "cpu"] and predict[predict.index("-f") + 1:][:5] == list("01234")
    assert pp[pp.index("-i") + 1] == str(tmp_path / "out" / "output_folder")
    assert pp[pp.index("-o") + 1] == str(tmp_path / "out" / "output_folder_pp")
    assert "-device" not in pp and pp[pp.index("-pp_pkl_file") + 1] == "/r/pp.pkl"


def test_ensemble_with_cascade_member_and_spaces_in_paths(tmp_path):
    root = tmp_path / "my results"
    commands = instruction_commands(_text(ENSEMBLE), tmp_path / "new images", root)
    assert [c[0] for c in commands] == ["nnUNetv2_predict"] * 3 + ["nnUNetv2_ensemble",
                                                                   "nnUNetv2_apply_postprocessing"]
    lowres, cascade = commands[1], commands[2]
    assert lowres[lowres.index("-c") + 1] == "3d_lowres"
    prev_stage = str(placeholder_folder("OUTPUT_FOLDER_PREV_STAGE_MODEL_2", "", root))
    assert lowres[lowres.index("-o") + 1] == prev_stage == str(root / "output_folder_prev_stage_model_2")
    assert cascade[cascade.index("-prev_stage_predictions") + 1] == prev_stage
    ensemble = commands[3]
    assert ensemble[ensemble.index("-i") + 1:ensemble.index("-o")] == [str(root / "output_folder_model_1"),
                                                                        str(root / "output_folder_model_2")]
    assert commands[0][commands[0].index("-i") + 1] == str(tmp_path / "new images")
    assert all("-device" not in c for c in commands)  # no device given: the lines stay as written


def test_text_without_commands_is_an_error(tmp_path):
    with pytest.raises(NnunetError, match="no nnUNetv2_ command"):
        instruction_commands("***Run inference like this:***\n", tmp_path, tmp_path)


def test_demo_deletes_only_its_own_folder(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "data.nii.gz").write_bytes(b"keep me")
    with pytest.raises(NnunetError, match="not made by the demo"):
        _fresh_workdir(user)
    assert (user / "data.nii.gz").read_bytes() == b"keep me"
    old_demo = tmp_path / "old_demo"  # left by the demo before it wrote its marker
    for name in ("nnUNet_raw", "test_data"):
        (old_demo / name).mkdir(parents=True)
    _fresh_workdir(old_demo)
    assert sorted(p.name for p in old_demo.iterdir()) == [MARKER]
    demo = tmp_path / "demo"
    _fresh_workdir(demo)
    (demo / "old_output").mkdir()
    _fresh_workdir(demo)
    assert sorted(p.name for p in demo.iterdir()) == [MARKER]
