"""Hand-edited plans.json at the commands (issue 25): training, `-p` custom plans, configurations that inherit,
and a model folder at prediction. Each test breaks a real plans file and runs the command's entry point: exit 1,
one `nnunet: error:` message with one line per problem (file, configuration, key, what is allowed), no traceback,
nothing written. tests/planning/test_plans_rules.py tests every rule on its own.
"""
from __future__ import annotations

import json
import shutil

import pytest

from nnunet.cli.predict import predict_from_modelfolder_main
from nnunet.cli.train import train_main
from tests.inference.helpers import IMAGES, MODEL
from tests.reliability.helpers import TINY, TINY_ID


def _edit_plans(path, edit) -> None:
    plans = json.loads(path.read_text())
    edit(plans)
    path.write_text(json.dumps(plans))


@pytest.fixture
def own_plans(tiny_dirs, tmp_path, monkeypatch):
    """tiny_dirs with a private copy of the preprocessed folder, so its plans can be broken."""
    preprocessed = tmp_path / "preprocessed"
    shutil.copytree(tiny_dirs["preprocessed"], preprocessed)
    monkeypatch.setenv("nnUNet_preprocessed", str(preprocessed))
    return dict(tiny_dirs, preprocessed=preprocessed, plans=preprocessed / TINY / "nnUNetPlans.json")


def _problem_lines(err: str, plans_file) -> list[str]:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("nnunet: error:")]
    assert len(errors) == 1, err
    body = err[err.index("nnunet: error:"):].strip().splitlines()
    assert body[-1].startswith(f"Fix {plans_file} or re-run nnUNet_plan_experiment"), body
    return [line.removeprefix("nnunet: error: ") for line in body[:-1]]


def _train(configuration: str, *extra: str) -> int:
    return train_main([str(TINY_ID), configuration, "0", "-tr", "nnUNetTrainer_1epoch", "-device", "cpu", *extra])


def _nothing_trained(dirs) -> bool:
    return not any(dirs["results"].rglob("*.pth")) and not any(dirs["results"].rglob("training_log*"))


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c.__setitem__("patch_size", "big"),
     "key 'patch_size' must be a list of 3 positive integers, one per spatial axis, got 'big'"),
    (lambda c: c.pop("patch_size"), "key 'patch_size' is missing"),
    (lambda c: c.__setitem__("batch_size", 0), "key 'batch_size' must be a positive integer, got 0"),
    (lambda c: c.__setitem__("normalization_schemes", ["ZScoreNormalisation"]),
     "key 'normalization_schemes' must be a list of 1 normalization scheme names"),
    (lambda c: c["architecture"].__setitem__("network_class_name", "dynamic_network_architectures.NoSuchNet"),
     "key 'architecture.network_class_name' names 'dynamic_network_architectures.NoSuchNet', which cannot be "
     "imported"),
])
def test_training_with_a_broken_key_stops_before_anything_is_written(own_plans, capsys, edit, expected):
    _edit_plans(own_plans["plans"], lambda p: edit(p["configurations"]["3d_fullres"]))
    assert _train("3d_fullres") == 1
    lines = _problem_lines(capsys.readouterr().err, own_plans["plans"])
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{own_plans['plans']}: configuration '3d_fullres', ") and expected in lines[0], lines
    assert _nothing_trained(own_plans)


def test_custom_plans_given_with_p_are_checked(own_plans, capsys):
    custom = own_plans["plans"].with_name("MyPlans.json")
    shutil.copy(own_plans["plans"], custom)
    _edit_plans(custom, lambda p: p["configurations"]["3d_fullres"].__setitem__("spacing", [1, -1, 1]))
    assert _train("3d_fullres", "-p", "MyPlans") == 1
    lines = _problem_lines(capsys.readouterr().err, custom)
    assert len(lines) == 1 and "key 'spacing'" in lines[0] and "got [1, -1, 1]" in lines[0], lines
    assert _nothing_trained(own_plans)


def test_an_inheriting_configuration_names_where_each_broken_value_is_written(own_plans, capsys):
    def edit(plans):
        plans["configurations"]["3d_fullres"]["patch_size"] = "big"
        plans["configurations"]["3d_big"] = {"inherits_from": "3d_fullres", "batch_size": 0}

    _edit_plans(own_plans["plans"], edit)
    assert _train("3d_big") == 1
    lines = _problem_lines(capsys.readouterr().err, own_plans["plans"])
    assert len(lines) == 2, lines
    assert any("configuration '3d_big', key 'batch_size'" in line for line in lines), lines
    assert any("configuration '3d_big' (inherited from '3d_fullres'), key 'patch_size'" in line for line in lines)
    assert _nothing_trained(own_plans)


def test_an_inheritance_cycle_is_one_line(own_plans, capsys):
    def edit(plans):
        plans["configurations"]["a"] = {"inherits_from": "b"}
        plans["configurations"]["b"] = {"inherits_from": "a"}

    _edit_plans(own_plans["plans"], edit)
    assert _train("a") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("nnunet: error:") == 1, err
    assert f"Circular inherits_from in the plans {own_plans['plans']}: a -> b -> a." in err, err
    assert _nothing_trained(own_plans)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c.pop("architecture"), "key 'architecture' is missing"),
    (lambda c: c.__setitem__("patch_size", [64, 64]), "key 'patch_size' must be a list of 3 positive integers"),
])
def test_a_model_folder_with_broken_plans_is_refused_at_prediction(tmp_path, capsys, edit, expected):
    model = tmp_path / "model"
    shutil.copytree(MODEL, model)
    _edit_plans(model / "plans.json", lambda p: edit(p["configurations"]["3d_fullres"]))
    out = tmp_path / "out"
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(model), "-f", "0",
                                        "-device", "cpu", "--disable_progress_bar", "--disable_tta"])
    assert rc == 1
    lines = _problem_lines(capsys.readouterr().err, model / "plans.json")
    assert len(lines) == 1 and expected in lines[0] and "configuration '3d_fullres'" in lines[0], lines
    assert not any(out.glob("*.nii.gz"))
