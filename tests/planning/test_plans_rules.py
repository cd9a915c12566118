"""The plans.json rules (nnunet/planning/plans_rules.py): each rule broken in a plans file nnU-Net 2.8.1 wrote.

Every broken plans file must give one line per problem, naming the file, the configuration and the key, and
saying what is allowed; plans as the planner writes them, and extra keys, must pass.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from nnunet.errors import ConfigurationError
from nnunet.planning.plans import Plans
from nnunet.planning.plans_rules import STAGES

REFERENCE_PLANS = Path(__file__).parents[1] / "fixtures" / "inference" / "model" / "plans.json"


@pytest.fixture
def plans_data() -> dict:
    return json.loads(REFERENCE_PLANS.read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "nnUNetPlans.json"
    path.write_text(json.dumps(data))
    return path


def _problems(tmp_path, data, stage, configuration="3d_fullres", num_channels=1, plans_network=True) -> list[str]:
    path = _write(tmp_path, data)
    try:
        Plans.load(path).checked_configuration(configuration, stage, num_channels, plans_network)
    except ConfigurationError as e:
        lines = str(e).splitlines()
        assert lines[-1].startswith(f"Fix {path}"), lines
        return lines[:-1]
    return []


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_plans_as_nnunet_wrote_them_pass(tmp_path, plans_data, stage, configuration):
    assert _problems(tmp_path, plans_data, stage, configuration) == []


def test_unknown_extra_keys_are_allowed(tmp_path, plans_data):
    plans_data["my_note"] = {"anything": [1, "x"]}
    plans_data["configurations"]["3d_fullres"]["my_trainer_setting"] = "value"
    assert _problems(tmp_path, plans_data, "train") == []


def _config(data, name="3d_fullres"):
    return data["configurations"][name]


def _arch(data, name="3d_fullres"):
    return data["configurations"][name]["architecture"]["arch_kwargs"]


# (edit of the plans, stage, key named in the message, words of what is allowed)
BROKEN = [
    (lambda p: _config(p).__setitem__("patch_size", "big"), "train", "patch_size", "a list of 3 positive integers"),
    (lambda p: _config(p).pop("patch_size"), "train", "patch_size", "is missing; it must be a list of 3 positive"),
    (lambda p: _config(p).__setitem__("patch_size", [32, 32]), "predict", "patch_size", "a list of 3 positive"),
    (lambda p: _config(p).__setitem__("patch_size", [0, 32, 32]), "train", "patch_size", "positive integers"),
    (lambda p: _config(p).__setitem__("patch_size", [33, 32, 32]), "train", "patch_size",
     "each axis must be a multiple of the network's total downsampling"),
    (lambda p: _config(p).__setitem__("batch_size", 0), "train", "batch_size", "a positive integer"),
    (lambda p: _config(p).__setitem__("batch_size", "2"), "train", "batch_size", "a positive integer, got '2'"),
    (lambda p: _config(p).pop("batch_size"), "train", "batch_size", "is missing"),
    (lambda p: _config(p).__setitem__("spacing", [1.0, -1.0, 1.0]), "preprocess", "spacing", "positive numbers"),
    (lambda p: _config(p).__setitem__("spacing", [1.0, 1.0]), "predict", "spacing", "a list of 3 positive numbers"),
    (lambda p: _config(p).pop("spacing"), "preprocess", "spacing", "is missing"),
    (lambda p: _config(p).__setitem__("normalization_schemes", ["ZNorm"]), "preprocess", "normalization_schemes",
     "known: CTNormalization"),
    (lambda p: _config(p).__setitem__("normalization_schemes", ["ZScoreNormalization"] * 2), "predict",
     "normalization_schemes", "a list of 1 normalization scheme names, one per input channel"),
    (lambda p: _config(p).__setitem__("use_mask_for_norm", ["yes"]), "preprocess", "use_mask_for_norm",
     "true/false values"),
    (lambda p: _config(p).__setitem__("resampling_fn_data", "cubic"), "preprocess", "resampling_fn_data",
     "the name of a resampling function (known: "),
    (lambda p: _config(p).pop("resampling_fn_probabilities"), "predict", "resampling_fn_probabilities", "missing"),
    (lambda p: _config(p)["resampling_fn_seg_kwargs"].__setitem__("ordr", 1), "preprocess",
     "resampling_fn_seg_kwargs", "names 'ordr', which resample_data_or_seg_to_shape does not take"),
    (lambda p: _config(p).__setitem__("resampling_fn_data_kwargs", [3]), "preprocess", "resampling_fn_data_kwargs",
     "an object of keyword arguments"),
    (lambda p: _config(p).__setitem__("data_identifier", ""), "preprocess", "data_identifier", "non-empty folder"),
    (lambda p: _config(p).__setitem__("data_identifier", "../elsewhere"), "train", "data_identifier", "no '/'"),
    (lambda p: _config(p).__setitem__("preprocessor_name", "NoSuchPreprocessor"), "preprocess",
     "preprocessor_name", "the name of a preprocessor class"),
    (lambda p: _config(p).pop("architecture"), "predict", "architecture", "is missing; it must be an object"),
    (lambda p: _config(p)["architecture"].pop("arch_kwargs"), "train", "architecture", "'arch_kwargs' (an object)"),
    (lambda p: _config(p)["architecture"].__setitem__("network_class_name", "PlainConvUNet"), "train",
     "architecture", "a dotted class path"),
    (lambda p: _config(p)["architecture"]["_kw_requires_import"].append("no_such_kwarg"), "train", "architecture",
     "a list of arch_kwargs keys"),
    (lambda p: _arch(p).__setitem__("n_stages", 0), "train", "architecture.arch_kwargs.n_stages",
     "a positive integer"),
    (lambda p: _arch(p).__setitem__("strides", _arch(p)["strides"][:-1]), "train",
     "architecture.arch_kwargs.strides", "entries (one per stage)"),
    (lambda p: _arch(p).__setitem__("kernel_sizes", [[3, 3]] * _arch(p)["n_stages"]), "predict",
     "architecture.arch_kwargs.kernel_sizes", "a list of 3 of them"),
    (lambda p: _arch(p).__setitem__("features_per_stage", [32]), "train",
     "architecture.arch_kwargs.features_per_stage", "positive integers (one per stage)"),
    (lambda p: _arch(p).__setitem__("n_conv_per_stage_decoder", [2] * _arch(p)["n_stages"]), "train",
     "architecture.arch_kwargs.n_conv_per_stage_decoder", "(one per stage)"),
    (lambda p: _config(p).__setitem__("batch_dice", "no"), "train", "batch_dice", "true or false"),
    (lambda p: _config(p).__setitem__("next_stage", "3d_cascade_fullres"), "train", "next_stage",
     "a configuration name, or a list of them, in these plans"),
    (lambda p: _config(p).__setitem__("previous_stage", "3d_lowres"), "predict", "previous_stage",
     "the name of another configuration in these plans"),
]


@pytest.mark.parametrize("edit, stage, key, allowed", BROKEN, ids=[f"{b[2]}-{i}" for i, b in enumerate(BROKEN)])
def test_each_broken_configuration_key_is_one_line_naming_file_configuration_and_key(tmp_path, plans_data, edit,
                                                                                     stage, key, allowed):
    edit(plans_data)
    problems = _problems(tmp_path, plans_data, stage)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / 'nnUNetPlans.json'}: configuration '3d_fullres', key {key!r} ")
    assert allowed in problems[0]


TOP_LEVEL = [
    (lambda p: p.pop("transpose_forward"), "preprocess", "transpose_forward", "is missing"),
    (lambda p: p.__setitem__("transpose_forward", [0, 1, 1]), "predict", "transpose_forward",
     "a permutation of [0, 1, 2]"),
    (lambda p: p.pop("transpose_backward"), "predict", "transpose_backward", "the inverse of"),
    (lambda p: p.__setitem__("image_reader_writer", "NoSuchIO"), "predict", "image_reader_writer",
     "known: NaturalImage2DIO"),
    (lambda p: p.__setitem__("foreground_intensity_properties_per_channel", {"1": {}}), "preprocess",
     "foreground_intensity_properties_per_channel", "one entry per input channel"),
    (lambda p: p.__setitem__("dataset_name", 4), "train", "dataset_name", "the dataset's name"),
]


@pytest.mark.parametrize("edit, stage, key, allowed", TOP_LEVEL, ids=[t[2] for t in TOP_LEVEL])
def test_each_broken_top_level_key_is_one_line(tmp_path, plans_data, edit, stage, key, allowed):
    edit(plans_data)
    problems = _problems(tmp_path, plans_data, stage)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / 'nnUNetPlans.json'}: {key!r} ") and allowed in problems[0]


def test_keys_only_some_stages_need(tmp_path, plans_data):
    """A missing key is refused by the stages that read it, not by the others."""
    _config(plans_data).pop("batch_size")
    _config(plans_data).pop("resampling_fn_probabilities")
    assert _problems(tmp_path, copy.deepcopy(plans_data), "preprocess") == []
    assert [("batch_size" in p) for p in _problems(tmp_path, plans_data, "train")] == [True]
    assert [("resampling_fn_probabilities" in p) for p in _problems(tmp_path, plans_data, "predict")] == [True]


def test_every_problem_is_reported_at_once(tmp_path, plans_data):
    _config(plans_data).__setitem__("patch_size", "big")
    _config(plans_data).__setitem__("batch_size", -1)
    plans_data.pop("transpose_forward")
    problems = _problems(tmp_path, plans_data, "train")
    assert len(problems) == 2  # training does not read transpose_forward
    problems = _problems(tmp_path, plans_data, "predict")
    assert {"'transpose_forward'", "'patch_size'"} == {k for p in problems for k in ("'transpose_forward'",
                                                                                     "'patch_size'") if k in p}


def test_an_inherited_value_names_the_configuration_it_is_written_in(tmp_path, plans_data):
    _config(plans_data)["patch_size"] = "big"
    plans_data["configurations"]["3d_bs4"] = {"inherits_from": "3d_fullres", "batch_size": 4}
    plans_data["configurations"]["3d_bs4_more"] = {"inherits_from": "3d_bs4", "batch_size": "four"}
    problems = _problems(tmp_path, plans_data, "train", "3d_bs4_more")
    assert len(problems) == 2, problems
    patch = next(p for p in problems if "'patch_size'" in p)
    assert "configuration '3d_bs4_more' (inherited from '3d_fullres'), key 'patch_size'" in patch
    batch = next(p for p in problems if "'batch_size'" in p)
    assert "configuration '3d_bs4_more', key 'batch_size'" in batch and "(inherited from" not in batch


def test_a_child_can_repair_its_parents_value(tmp_path, plans_data):
    _config(plans_data)["patch_size"] = "broken"
    plans_data["configurations"]["3d_fixed"] = {"inherits_from": "3d_fullres", "patch_size": [32, 32, 32]}
    assert _problems(tmp_path, plans_data, "train", "3d_fixed") == []


@pytest.mark.parametrize("configurations, pattern", [
    ({"a": {"inherits_from": "b"}, "b": {"inherits_from": "a"}},
     r"Circular inherits_from in the plans \S+nnUNetPlans\.json: a -> b -> a\."),
    ({"a": {"inherits_from": "missing"}}, r"Configuration 'missing' \(named by inherits_from of 'a'\) is not in"),
])
def test_broken_inheritance_chains(tmp_path, plans_data, configurations, pattern):
    plans_data["configurations"].update(configurations)
    with pytest.raises(ConfigurationError, match=pattern):
        Plans.load(_write(tmp_path, plans_data)).checked_configuration("a", "train", 1)


def test_a_network_class_that_cannot_be_found(tmp_path, plans_data):
    """Finding the class imports torch, so the stage that builds the network says how (planning does not)."""
    _config(plans_data)["architecture"]["network_class_name"] = "my_package.MyUNet"
    assert _problems(tmp_path, plans_data, "train") == []  # no way to look it up given
    path = _write(tmp_path, plans_data)
    with pytest.raises(ConfigurationError) as raised:
        Plans.load(path).checked_configuration("3d_fullres", "train", 1,
                                               network_class_exists=lambda name: name != "my_package.MyUNet")
    assert str(raised.value).splitlines()[0] == (
        f"{path}: configuration '3d_fullres', key 'architecture.network_class_name' names 'my_package.MyUNet', "
        f"which cannot be imported and is not a class of dynamic_network_architectures (e.g. "
        f"'dynamic_network_architectures.architectures.unet.PlainConvUNet').")


def test_a_trainer_with_its_own_network_does_not_need_the_architecture(tmp_path, plans_data):
    _config(plans_data).pop("architecture")
    assert _problems(tmp_path, plans_data, "train", plans_network=False) == []
    _config(plans_data)["patch_size"] = [33, 32, 32]  # no plans network, nothing to fit
    assert _problems(tmp_path, plans_data, "train", plans_network=False) == []


def test_channel_count_comes_from_dataset_json(tmp_path, plans_data):
    """With two image channels, per-channel lists of one entry are refused."""
    problems = _problems(tmp_path, plans_data, "preprocess", num_channels=2)
    keys = sorted(p.split("key ")[1].split()[0] for p in problems if "key " in p)
    assert keys == ["'normalization_schemes'", "'use_mask_for_norm'"]
    assert any("'foreground_intensity_properties_per_channel'" in p for p in problems)


def test_a_plans_file_that_is_not_an_object(tmp_path):
    path = tmp_path / "nnUNetPlans.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="a plans file must be a JSON object, got list"):
        Plans.load(path)


def test_planning_documentation_lists_every_rule():
    from nnunet.planning.plans_rules import CONFIGURATION_RULES, PLANS_RULES

    text = (Path(__file__).parents[2] / "documentation" / "planning.md").read_text()
    section = text[text.index("## Editing plans.json"):text.index("## Your own planner")]
    missing = [rule.key for rule in PLANS_RULES + CONFIGURATION_RULES if f"`{rule.key}`" not in section]
    assert not missing, f"documentation/planning.md does not describe {missing}"
