"""accumulate_crossval_results, ensemble_crossvalidations and find_best_configuration on fabricated models.

The reference fixture (tests/fixtures/ensembling/make_fixtures.py) ran nnU-Net 2.8.1's
find_best_configuration on the same fabricated models.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from nnunet.cli.ensemble import find_best_configuration_main
from nnunet.cli.evaluate import accumulate_crossval_results_main
from nnunet.ensembling.model_selection import (candidate_models, ensemble_identifier, inference_instructions,
                                               parse_ensemble_identifier, parse_model_identifier, pick_best,
                                               selected_models)
from nnunet.errors import NnunetError
from tests.ensembling.trained_models import CASES, DATASET, make_trained_models
from tests.helpers import FIXTURES
from tests.json_equal import assert_json_equal

FIXTURE_DIR = FIXTURES / "ensembling"
FIND_BEST_NOISE = {"2d": 1.6, "3d_fullres": 1.2}


def test_find_best_configuration_equals_reference(nnunet_dirs, capsys):
    make_trained_models(nnunet_dirs, FIND_BEST_NOISE)
    assert find_best_configuration_main(["950", "-c", "2d", "3d_fullres", "-f", "0", "1", "-np", "1",
                                         "--no_pbar"]) == 0
    results = nnunet_dirs["results"] / DATASET
    root = str(nnunet_dirs["results"].parent)
    ours = json.loads((results / "inference_information.json").read_text().replace(root, "ROOT"))
    ref = json.loads((FIXTURE_DIR / "find_best_inference_information.json").read_text())
    assert_json_equal(ours, ref)
    winner = ref["best_model_or_ensemble"]["postprocessing_file"].replace("ROOT", root)
    assert_json_equal(json.loads(Path(winner[:-4] + ".json").read_text()),
                      json.loads((FIXTURE_DIR / "find_best_postprocessing.json").read_text()))
    text = (results / "inference_instructions.txt").read_text()
    assert text in capsys.readouterr().out
    assert "nnUNetv2_ensemble -i OUTPUT_FOLDER_MODEL_1 OUTPUT_FOLDER_MODEL_2 -o OUTPUT_FOLDER" in text
    assert f"-pp_pkl_file {winner} " in text
    for c in ("2d", "3d_fullres"):
        merged = results / f"nnUNetTrainer__nnUNetPlans__{c}" / "crossval_results_folds_0_1"
        assert sorted(p.name for p in merged.glob("*.nii.gz")) == [f"{n}.nii.gz" for n in CASES]


def test_disable_ensembling_and_missing_configuration(nnunet_dirs, capsys):
    make_trained_models(nnunet_dirs, {"2d": 1.6, "3d_fullres": 0.5})
    # 3d_lowres is not in the plans: skipped with a message
    assert find_best_configuration_main(["950", "-c", "2d", "3d_fullres", "3d_lowres", "-f", "0", "1", "-np", "1",
                                         "--disable_ensembling", "--no_pbar"]) == 0
    out = capsys.readouterr().out
    assert "3d_lowres is not in plans" in out
    info = json.loads((nnunet_dirs["results"] / DATASET / "inference_information.json").read_text())
    assert list(info["all_results"]) == ["nnUNetTrainer__nnUNetPlans__2d", "nnUNetTrainer__nnUNetPlans__3d_fullres"]
    assert info["best_model_or_ensemble"]["selected_model_or_models"] == [
        {"configuration": "3d_fullres", "trainer": "nnUNetTrainer", "plans_identifier": "nnUNetPlans"}]
    assert not (nnunet_dirs["results"] / DATASET / "ensembles").exists()
    text = (nnunet_dirs["results"] / DATASET / "inference_instructions.txt").read_text()
    assert "-o OUTPUT_FOLDER -f 0 1 -tr nnUNetTrainer -c 3d_fullres -p nnUNetPlans\n" in text
    assert "--save_probabilities" not in text and "nnUNetv2_ensemble" not in text


def test_untrained_configuration_is_an_error(nnunet_dirs, capsys):
    make_trained_models(nnunet_dirs, {"2d": 1.0}, cascade=True)
    assert find_best_configuration_main(["950", "-c", "2d", "3d_lowres", "-f", "0", "1", "-np", "1"]) == 1
    assert "nnUNetTrainer__nnUNetPlans__3d_lowres" in capsys.readouterr().err


def test_cascade_instructions_include_the_lowres_step():
    info = {"dataset_name_or_id": "Dataset950_Select", "folds": [0, 1, 2, 3, 4],
            "best_model_or_ensemble": {"postprocessing_file": "/r/pp.pkl", "some_plans_file": "/r/plans.json",
                                       "selected_model_or_models": selected_models(
                                           "nnUNetTrainer__nnUNetPlans__3d_cascade_fullres")}}
    prev = {"3d_cascade_fullres": "3d_lowres"}
    text = inference_instructions(info, lambda m: prev.get(m["configuration"]), 4)
    lines = [ln for ln in text.splitlines() if ln.startswith("nnUNetv2_")]
    assert lines == [
        "nnUNetv2_predict -d Dataset950_Select -i INPUT_FOLDER -o OUTPUT_FOLDER_PREV_STAGE -f 0 1 2 3 4 "
        "-tr nnUNetTrainer -c 3d_lowres -p nnUNetPlans",
        "nnUNetv2_predict -d Dataset950_Select -i INPUT_FOLDER -o OUTPUT_FOLDER -f 0 1 2 3 4 -tr nnUNetTrainer "
        "-c 3d_cascade_fullres -p nnUNetPlans -prev_stage_predictions OUTPUT_FOLDER_PREV_STAGE",
        "nnUNetv2_apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file /r/pp.pkl -np 4 "
        "-plans_json /r/plans.json"]


def test_identifiers_and_choice_rule():
    assert parse_model_identifier("/x/T__P__3d_fullres") == ("T", "P", "3d_fullres")
    with pytest.raises(NnunetError):
        parse_model_identifier("T__P")
    name = ensemble_identifier("/r/T__P__2d", "/r/T__P__3d_fullres", (0, 1, 2))
    assert name == "ensemble___T__P__2d___T__P__3d_fullres___0_1_2"
    assert parse_ensemble_identifier(name) == (["T__P__2d", "T__P__3d_fullres"], "0_1_2")
    assert [m["configuration"] for m in selected_models(name)] == ["2d", "3d_fullres"]
    # ties go to the first entry; NaN never wins; all-NaN is an error
    assert pick_best({"a": 0.5, "b": 0.7, "ens": 0.7}) == "b"
    assert pick_best({"a": math.nan, "b": 0.1}) == "b"
    with pytest.raises(NnunetError):
        pick_best({"a": math.nan})
    assert candidate_models(["T1", "T2"], ["2d"], ["P"]) == [
        {"plans": "P", "configuration": "2d", "trainer": "T1"}, {"plans": "P", "configuration": "2d", "trainer": "T2"}]


def test_accumulate_cli(nnunet_dirs, capsys, tmp_path):
    folders = make_trained_models(nnunet_dirs, {"3d_fullres": 1.0})
    model = folders["3d_fullres"]
    assert accumulate_crossval_results_main(["950", "-c", "3d_fullres", "-f", "0", "1", "-np", "1"]) == 0
    summary = json.loads((model / "crossval_results_folds_0_1" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == len(CASES)
    assert "Cross-validation foreground mean Dice" in capsys.readouterr().out
    # a user-given output folder must be empty
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert accumulate_crossval_results_main(["950", "-c", "3d_fullres", "-f", "0", "1", "-o", str(busy)]) == 1
    assert "not empty" in capsys.readouterr().err
    # a missing fold and overlapping folds are errors that say what is wrong
    assert accumulate_crossval_results_main(["950", "-c", "3d_fullres", "-f", "0", "1", "2", "-np", "1"]) == 1
    assert "Fold 2" in capsys.readouterr().err
    shutil.copy(model / "fold_0" / "validation" / "case_000.nii.gz", model / "fold_1" / "validation")
    assert accumulate_crossval_results_main(["950", "-c", "3d_fullres", "-f", "0", "1", "-np", "1"]) == 1
    assert "case_000.nii.gz" in capsys.readouterr().err


def test_instruction_paths_with_spaces_are_quoted_and_split_back():
    import shlex

    info = {"dataset_name_or_id": "Dataset950_Select", "folds": [0],
            "best_model_or_ensemble": {"postprocessing_file": "/my results/pp.pkl",
                                       "some_plans_file": "/my results/plans.json",
                                       "selected_model_or_models": selected_models("T__P__3d_fullres")}}
    text = inference_instructions(info, lambda m: None, 2)
    postprocess = shlex.split(next(ln for ln in text.splitlines() if ln.startswith("nnUNetv2_apply")))
    assert postprocess[postprocess.index("-pp_pkl_file") + 1] == "/my results/pp.pkl"
    assert postprocess[postprocess.index("-plans_json") + 1] == "/my results/plans.json"
