"""Planner rules on hand-made fingerprints: spacing, transpose, shrinking, batch size, configurations, files."""
from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest

from nnunet.cli.plan import plan_experiment_main
from nnunet.errors import ConfigurationError, DatasetError, NnunetError
from nnunet.planning.api import plan_experiments
from nnunet.planning.rules import (axis_to_shrink, batch_size_for, copy_splits_file, fullres_target_spacing,
                                   lowres_spacing_step, normalization_scheme_for_channel, resampled_shape,
                                   transpose_for_spacing)
from nnunet.planning.plans import Plans, convert_legacy_configuration, merge_plans
from nnunet.planning.topology import get_pool_and_conv_props
from nnunet.planning.vram import plain_unet_feature_map_size
from nnunet.registry import PLANNERS
from tests.helpers import FIXTURES

_spec = importlib.util.spec_from_file_location("plan_fixtures", FIXTURES / "planning" / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)
DATASET_ID = make_fixtures.DATASET_ID


def fingerprint(shapes, spacings, n_channels=1, relative_size=1.0):
    props = {str(c): {"max": 10.0, "mean": 1.0, "median": 1.0, "min": -1.0, "percentile_00_5": -0.5,
                      "percentile_99_5": 5.0, "std": 2.0} for c in range(n_channels)}
    return {"foreground_intensity_properties_per_channel": props, "median_relative_size_after_cropping": relative_size,
            "shapes_after_crop": [list(s) for s in shapes], "spacings": [list(map(float, s)) for s in spacings]}


def dataset(channels=("MRI",), labels=None, n=10, ending=".nii.gz"):
    return make_fixtures.dataset_json({str(i): c for i, c in enumerate(channels)},
                                      labels or {"background": 0, "a": 1}, n, ending)


def setup_dataset(dirs, fp, ds):
    make_fixtures.write_stub_raw_dataset(dirs["raw"], ds)
    pre = dirs["preprocessed"] / make_fixtures.DATASET_NAME
    pre.mkdir(exist_ok=True)
    (pre / "dataset_fingerprint.json").write_text(json.dumps(fp))
    return pre


def planner(dirs, fp, ds, name="ExperimentPlanner", **kwargs):
    setup_dataset(dirs, fp, ds)
    return PLANNERS.get(name)(DATASET_ID, **kwargs)


def large_ct(n=20):
    return fingerprint([(300, 512, 512)] * n, [(1.5, 0.8, 0.8)] * n), dataset(("CT",), n=n)


# ---- target spacing (anisotropy) -------------------------------------------------------------------------------

def test_target_spacing_is_the_median_without_anisotropy():
    t = fullres_target_spacing([(1, 1, 1), (2, 1, 1), (3, 1, 1)], [(50, 50, 50)] * 3)
    assert t.tolist() == [2.0, 1.0, 1.0]


def test_anisotropy_needs_both_spacing_and_voxel_conditions():
    spacings = [(5.0, 0.8, 0.8)] * 8 + [(3.0, 0.8, 0.8)] * 2
    # spacing anisotropic but the thick axis has as many voxels as the others -> plain median
    assert fullres_target_spacing(spacings, [(300, 300, 300)] * 10).tolist() == [5.0, 0.8, 0.8]
    # voxel count anisotropic but spacing ratio below 3 -> plain median
    mild = [(2.0, 0.8, 0.8)] * 10
    assert fullres_target_spacing(mild, [(20, 300, 300)] * 10).tolist() == [2.0, 0.8, 0.8]
    # both -> 10th percentile of the thick axis
    t = fullres_target_spacing(spacings, [(20, 300, 300)] * 10)
    assert t[0] == pytest.approx(np.percentile([5.0] * 8 + [3.0] * 2, 10)) and t[0] < 5.0
    assert t[1:].tolist() == [0.8, 0.8]


def test_anisotropic_target_never_drops_below_the_other_axes():
    spacings = [(5.0, 0.8, 0.8)] * 8 + [(0.5, 0.8, 0.8)] * 2
    t = fullres_target_spacing(spacings, [(20, 300, 300)] * 10)
    assert t[0] == pytest.approx(0.8 + 1e-5, abs=1e-12)


def test_transpose_puts_the_coarsest_axis_first():
    assert transpose_for_spacing([0.7, 0.7, 5.0]) == ([2, 0, 1], [1, 2, 0])
    assert transpose_for_spacing([0.8, 3.0, 0.8]) == ([1, 0, 2], [1, 0, 2])
    assert transpose_for_spacing([1.0, 1.0, 1.0]) == ([0, 1, 2], [0, 1, 2])


def test_planner_transposes_shapes_spacings_and_can_suppress_it(nnunet_dirs):
    fp = fingerprint([(400, 400, 24)] * 6, [(0.7, 0.7, 4.0)] * 6)
    plans = planner(nnunet_dirs, fp, dataset()).plan_experiment()
    assert plans["transpose_forward"] == [2, 0, 1] and plans["transpose_backward"] == [1, 2, 0]
    assert plans["original_median_spacing_after_transp"] == [4.0, 0.7, 0.7]
    assert plans["original_median_shape_after_transp"] == [24, 400, 400]
    assert plans["configurations"]["3d_fullres"]["spacing"][0] == 4.0
    plans = PLANNERS.get("ExperimentPlanner")(DATASET_ID, suppress_transpose=True).plan_experiment()
    assert plans["transpose_forward"] == [0, 1, 2]
    assert plans["configurations"]["3d_fullres"]["spacing"][2] == 4.0


def test_resampled_shape_rounds_half_to_even():
    assert resampled_shape((5, 7, 9), (1.0, 1.0, 1.0), (2.0, 2.0, 2.0)) == [2, 4, 4]  # 2.5->2, 3.5->4, 4.5->4


# ---- patch shrinking, batch size ------------------------------------------------------------------------------

def test_shrinking_steps_256_to_224_not_192(nnunet_dirs):
    """A 2-D 256x256 patch just over budget loses 32 (the divisor after the step), not 64, on one axis."""
    t256 = get_pool_and_conv_props((1.0, 1.0), (256, 256))
    t224 = get_pool_and_conv_props((1.0, 1.0), (256, 224))
    assert t256.divisor == (64, 64) and t224.divisor == (32, 32)

    def estimate(t):
        f = [min(512, 32 * 2 ** i) for i in range(t.n_stages)]
        return plain_unet_feature_map_size(t.patch_size, t.strides, f, [2] * t.n_stages, [2] * (t.n_stages - 1), 2)

    # choose a GPU target whose budget lies between the two estimates (condition: estimate / 12 * 2 > reference)
    reference = (estimate(t256) + estimate(t224)) / 2 / 6
    gpu_gb = reference / 85_000_000 * 8
    fp = fingerprint([(1, 256, 256)] * 50, [(999.0, 1.0, 1.0)] * 50)
    p = planner(nnunet_dirs, fp, dataset(ending=".png"), gpu_memory_target_in_gb=gpu_gb)
    cfg = p.plan_experiment()["configurations"]["2d"]
    assert cfg["patch_size"] == [256, 224]  # equal ratios: the last axis is reduced
    assert cfg["batch_size"] == max(2, round(reference / estimate(t224) * 12))


def test_axis_to_shrink_prefers_largest_ratio_then_last_axis():
    assert axis_to_shrink([128, 128, 128], [100, 300, 300]) == 0
    assert axis_to_shrink([128, 128, 128], [300, 300, 300]) == 2
    assert axis_to_shrink([64, 128, 128], [100, 200, 300]) == 1


def test_batch_size_from_headroom_cap_and_minimum():
    # headroom: reference 3x the estimate at reference batch 2 -> 6
    assert batch_size_for(600.0, 200, 2, 1e12, 0.05, (10, 10, 10), 2) == 6
    # 5 % cap: 0.05 * 100000 / 1000 = 5
    assert batch_size_for(600.0, 200, 2, 100_000, 0.05, (10, 10, 10), 2) == 5
    # never below the minimum batch size
    assert batch_size_for(600.0, 200, 2, 1_000, 0.05, (10, 10, 10), 2) == 2
    # Python rounding: 2.5 -> 2
    assert batch_size_for(500.0, 400, 2, 1e12, 0.05, (10, 10, 10), 1) == 2


def test_resenc_presets_have_no_dataset_fraction_cap(nnunet_dirs):
    fp = fingerprint([(40, 40, 40)] * 10, [(1, 1, 1)] * 10)
    default = planner(nnunet_dirs, fp, dataset(n=10)).plan_experiment()
    resenc_m = PLANNERS.get("nnUNetPlannerResEncM")(DATASET_ID).plan_experiment()
    # 10 cases of 40^3 with a 40^3 patch: the 5 % cap forces the minimum; ResEnc M may see the whole dataset
    assert default["configurations"]["3d_fullres"]["batch_size"] == 2
    assert resenc_m["configurations"]["3d_fullres"]["batch_size"] == 10


def test_larger_gpu_target_gives_larger_patches(nnunet_dirs):
    fp, ds = large_ct()
    small = planner(nnunet_dirs, fp, ds).plan_experiment()["configurations"]["3d_fullres"]
    big = PLANNERS.get("ExperimentPlanner")(DATASET_ID, gpu_memory_target_in_gb=40,
                                            plans_name="big").plan_experiment()["configurations"]["3d_fullres"]
    assert math.prod(big["patch_size"]) > math.prod(small["patch_size"])


def test_resenc_preset_warns_on_non_default_gpu_target(nnunet_dirs):
    fp, ds = large_ct()
    setup_dataset(nnunet_dirs, fp, ds)
    with pytest.warns(UserWarning, match="calibrated for 24 GB"):
        PLANNERS.get("nnUNetPlannerResEncL")(DATASET_ID, gpu_memory_target_in_gb=12)


# ---- configurations ------------------------------------------------------------------------------------------

def test_large_images_get_lowres_and_cascade_with_batch_dice_rules(nnunet_dirs):
    fp, ds = large_ct()
    cfgs = planner(nnunet_dirs, fp, ds).plan_experiment()["configurations"]
    assert list(cfgs) == ["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"]
    assert cfgs["3d_lowres"]["next_stage"] == "3d_cascade_fullres"
    assert cfgs["3d_cascade_fullres"] == {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
    assert (cfgs["2d"]["batch_dice"], cfgs["3d_lowres"]["batch_dice"], cfgs["3d_fullres"]["batch_dice"]) == \
           (True, False, True)
    low, full = cfgs["3d_lowres"], cfgs["3d_fullres"]
    assert all(a > b for a, b in zip(low["spacing"], full["spacing"]))
    assert all(isinstance(v, int) for v in low["median_image_size_in_voxels"])
    assert all(isinstance(v, float) for v in full["median_image_size_in_voxels"])
    # the lowres patch covers at least 25 % of its median image, and lowres is at least 2x smaller than fullres
    assert math.prod(low["patch_size"]) / math.prod(low["median_image_size_in_voxels"]) >= 0.25
    assert math.prod(full["median_image_size_in_voxels"]) / math.prod(low["median_image_size_in_voxels"]) >= 2
    assert low["data_identifier"] == "nnUNetPlans_3d_lowres"


def test_small_images_get_no_lowres_and_no_batch_dice(nnunet_dirs):
    fp = fingerprint([(40, 40, 40)] * 5, [(1, 1, 1)] * 5)
    cfgs = planner(nnunet_dirs, fp, dataset(n=5)).plan_experiment()["configurations"]
    assert list(cfgs) == ["2d", "3d_fullres"]
    assert cfgs["3d_fullres"]["batch_dice"] is False and cfgs["2d"]["batch_dice"] is True


def test_lowres_is_dropped_when_not_two_times_smaller(nnunet_dirs, caplog):
    fp = fingerprint([(224, 224, 224)] * 8, [(1, 1, 1)] * 8)
    with caplog.at_level("INFO", logger="nnunet.planning.planner"):
        cfgs = planner(nnunet_dirs, fp, dataset(n=8)).plan_experiment()["configurations"]
    assert "Dropping 3d_lowres" in caplog.text  # the lowres search ran ...
    assert list(cfgs) == ["2d", "3d_fullres"]  # ... and was discarded
    assert cfgs["3d_fullres"]["batch_dice"] is False


def test_lowres_spacing_grows_fine_axes_first():
    s = lowres_spacing_step(np.array([3.0, 0.7, 0.7]), 1.03)
    assert s.tolist() == [3.0, 0.7 * 1.03, 0.7 * 1.03]
    s = lowres_spacing_step(np.array([1.2, 0.7, 0.7]), 1.03)
    assert s.tolist() == pytest.approx([1.2 * 1.03, 0.7 * 1.03, 0.7 * 1.03])


def test_2d_dataset_only_gets_2d(nnunet_dirs):
    fp = fingerprint([(1, 300, 400)] * 6, [(999.0, 1.0, 1.0)] * 6, n_channels=3)
    plans = planner(nnunet_dirs, fp, dataset(("R", "G", "B"), ending=".png", n=6)).plan_experiment()
    assert list(plans["configurations"]) == ["2d"]
    assert plans["transpose_forward"] == [0, 1, 2]
    assert plans["image_reader_writer"] == "NaturalImage2DIO"
    cfg = plans["configurations"]["2d"]
    assert cfg["spacing"] == [1.0, 1.0] and cfg["architecture"]["arch_kwargs"]["conv_op"].endswith("Conv2d")
    assert all(p % d == 0 for p, d in zip(cfg["patch_size"], (2 ** (cfg["architecture"]["arch_kwargs"]["n_stages"] - 1),) * 2))


def test_tiny_images(nnunet_dirs):
    fp = fingerprint([(6, 7, 8)] * 4, [(1, 1, 1)] * 4)
    cfgs = planner(nnunet_dirs, fp, dataset(n=4)).plan_experiment()["configurations"]
    full = cfgs["3d_fullres"]
    assert full["patch_size"] == [6, 7, 8]
    # only the 8-long axis is >= 8, and a lone axis needs 12 voxels: no pooling, a single-stage network
    assert full["architecture"]["arch_kwargs"]["strides"] == [[1, 1, 1]]
    assert full["architecture"]["arch_kwargs"]["n_conv_per_stage_decoder"] == []
    assert full["batch_size"] == 2


def test_many_channels_normalization_and_mask(nnunet_dirs):
    names = ("CT", "noNorm", "rescale_to_0_1", "RGB_to_0_1", "T1", "ZSCORE")
    fp = fingerprint([(64, 64, 64)] * 4, [(1, 1, 1)] * 4, n_channels=6, relative_size=0.5)
    cfg = planner(nnunet_dirs, fp, dataset(names, n=4)).plan_experiment()["configurations"]["3d_fullres"]
    assert cfg["normalization_schemes"] == ["CTNormalization", "NoNormalization", "RescaleTo01Normalization",
                                            "RGBTo01Normalization", "ZScoreNormalization", "ZScoreNormalization"]
    assert cfg["use_mask_for_norm"] == [False, False, False, False, True, True]
    fp["median_relative_size_after_cropping"] = 0.75  # not < 0.75 -> no masking at all
    (nnunet_dirs["preprocessed"] / make_fixtures.DATASET_NAME / "dataset_fingerprint.json").write_text(json.dumps(fp))
    cfg = PLANNERS.get("ExperimentPlanner")(DATASET_ID).plan_experiment()["configurations"]["3d_fullres"]
    assert cfg["use_mask_for_norm"] == [False] * 6


def test_normalization_names_are_casefolded():
    assert normalization_scheme_for_channel("ct") == "CTNormalization"
    assert normalization_scheme_for_channel("NONORM") == "NoNormalization"
    assert normalization_scheme_for_channel("FLAIR") == "ZScoreNormalization"


def test_resenc_planner_shares_default_data_and_uses_resenc_network(nnunet_dirs):
    fp, ds = large_ct()
    setup_dataset(nnunet_dirs, fp, ds)
    plans_id = plan_experiments([DATASET_ID], "nnUNetPlannerResEncM")
    assert plans_id == "nnUNetResEncUNetMPlans"
    plans = json.loads((nnunet_dirs["preprocessed"] / make_fixtures.DATASET_NAME / f"{plans_id}.json").read_text())
    cfgs = plans["configurations"]
    assert cfgs["2d"]["data_identifier"] == "nnUNetPlans_2d"
    assert cfgs["3d_fullres"]["data_identifier"] == "nnUNetPlans_3d_fullres"
    assert cfgs["3d_lowres"]["data_identifier"] == "nnUNetResEncUNetMPlans_3d_lowres"
    arch = cfgs["3d_fullres"]["architecture"]
    assert arch["network_class_name"].endswith("ResidualEncoderUNet")
    assert arch["arch_kwargs"]["n_blocks_per_stage"][:4] == [1, 3, 4, 6]
    assert set(arch["arch_kwargs"]["n_conv_per_stage_decoder"]) == {1}
    assert plans["experiment_planner_used"] == "nnUNetPlannerResEncM"


# ---- files, CLI, errors ---------------------------------------------------------------------------------------

def test_replanning_keeps_user_configurations(nnunet_dirs):
    fp = fingerprint([(40, 40, 40)] * 5, [(1, 1, 1)] * 5)
    pre = setup_dataset(nnunet_dirs, fp, dataset(n=5))
    assert plan_experiment_main(["-d", str(DATASET_ID)]) == 0
    plans_file = pre / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    original_bs = plans["configurations"]["3d_fullres"]["batch_size"]
    plans["configurations"]["3d_fullres"]["batch_size"] = 99
    plans["configurations"]["3d_fullres_bs40"] = {"inherits_from": "3d_fullres", "batch_size": 40}
    plans_file.write_text(json.dumps(plans))
    assert plan_experiment_main(["-d", str(DATASET_ID)]) == 0
    again = json.loads(plans_file.read_text())
    assert list(again["configurations"]) == ["2d", "3d_fullres", "3d_fullres_bs40"]
    assert again["configurations"]["3d_fullres"]["batch_size"] == original_bs  # generated ones are overwritten
    custom = Plans.load(plans_file).configuration("3d_fullres_bs40")
    assert custom.batch_size == 40 and custom.patch_size == again["configurations"]["3d_fullres"]["patch_size"]


def test_merge_plans_helper():
    new = {"configurations": {"2d": {"a": 1}}}
    old = {"configurations": {"2d": {"a": 0}, "mine": {"inherits_from": "2d"}}}
    assert merge_plans(new, old)["configurations"] == {"2d": {"a": 1}, "mine": {"inherits_from": "2d"}}
    assert merge_plans(new, None) == new


def test_inherits_from_resolution_and_errors():
    plans = Plans({"configurations": {
        "base": {"batch_size": 2, "patch_size": [8, 8]},
        "child": {"inherits_from": "base", "batch_size": 4},
        "grandchild": {"inherits_from": "child", "previous_stage": "base"},
        "loop_a": {"inherits_from": "loop_b"}, "loop_b": {"inherits_from": "loop_a"},
    }})
    g = plans.configuration("grandchild")
    assert (g.batch_size, g.patch_size, g.previous_stage_name) == (4, [8, 8], "base")
    with pytest.raises(ConfigurationError, match="loop_a -> loop_b -> loop_a"):
        plans.configuration("loop_a")
    with pytest.raises(ConfigurationError, match="Available"):
        plans.configuration("nope")


def test_legacy_configuration_is_converted():
    old = {"data_identifier": "x", "patch_size": [64, 64, 64], "UNet_class_name": "PlainConvUNet",
           "UNet_base_num_features": 32, "n_conv_per_stage_encoder": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2],
           "num_pool_per_axis": [2, 2, 2], "pool_op_kernel_sizes": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
           "conv_kernel_sizes": [[3, 3, 3]] * 3, "unet_max_num_features": 64}
    with pytest.warns(UserWarning, match="old plans format"):
        new = convert_legacy_configuration(old, "3d_fullres")
    kw = new["architecture"]["arch_kwargs"]
    assert kw["features_per_stage"] == [32, 64, 64] and kw["n_conv_per_stage"] == [2, 2, 2]
    assert kw["conv_op"] == "torch.nn.modules.conv.Conv3d" and kw["strides"][1] == [2, 2, 2]
    assert "UNet_class_name" not in new and new["data_identifier"] == "x"
    with pytest.raises(ConfigurationError):
        convert_legacy_configuration({"UNet_class_name": "Other"})
    assert convert_legacy_configuration({"inherits_from": "x"}) == {"inherits_from": "x"}


def test_plans_are_readable_by_plans_view(nnunet_dirs):
    fp, ds = large_ct()
    setup_dataset(nnunet_dirs, fp, ds)
    plan_experiments([DATASET_ID])
    plans = Plans.load(nnunet_dirs["preprocessed"] / make_fixtures.DATASET_NAME / "nnUNetPlans.json")
    cascade = plans.configuration("3d_cascade_fullres")
    assert cascade.previous_stage_name == "3d_lowres"
    assert cascade.data_identifier == "nnUNetPlans_3d_fullres"
    assert plans.configuration("3d_lowres").next_stage_names == ["3d_cascade_fullres"]


def test_dataset_json_and_splits_are_copied(nnunet_dirs):
    fp = fingerprint([(40, 40, 40)] * 5, [(1, 1, 1)] * 5)
    pre = setup_dataset(nnunet_dirs, fp, dataset(n=5))
    splits = [{"train": ["a", "b"], "val": ["c"]}]
    (nnunet_dirs["raw"] / make_fixtures.DATASET_NAME / "splits_final.json").write_text(json.dumps(splits))
    assert plan_experiment_main(["-d", str(DATASET_ID)]) == 0
    assert json.loads((pre / "splits_final.json").read_text()) == splits
    assert json.loads((pre / "dataset.json").read_text())["numTraining"] == 5


def test_split_file_rules(tmp_path):
    src, dst = tmp_path / "src.json", tmp_path / "dst.json"
    src.write_text(json.dumps([{"train": ["a", "b"], "val": ["c"]}]))
    dst.write_text(json.dumps([{"train": ["b", "a"], "val": ["c"]}, {"train": ["c"], "val": ["a", "b"]}]))
    copy_splits_file(src, dst)  # same sets, extra split in the target: fine
    assert len(json.loads(dst.read_text())) == 2
    dst.write_text(json.dumps([{"train": ["a"], "val": ["b", "c"]}]))
    with pytest.raises(DatasetError, match="differs"):
        copy_splits_file(src, dst)


def test_missing_fingerprint_is_a_clear_error(nnunet_dirs, capsys):
    make_fixtures.write_stub_raw_dataset(nnunet_dirs["raw"], dataset())
    assert plan_experiment_main(["-d", str(DATASET_ID)]) == 1
    err = capsys.readouterr().err
    assert "nnUNet_extract_fingerprint" in err and "Traceback" not in err


def test_unknown_planner_and_bad_spacing(nnunet_dirs, capsys):
    fp = fingerprint([(40, 40, 40)] * 5, [(1, 1, 1)] * 5)
    setup_dataset(nnunet_dirs, fp, dataset(n=5))
    assert plan_experiment_main(["-d", str(DATASET_ID), "-pl", "nnUNetPlannerResEncXXL"]) == 1
    assert "nnUNetPlannerResEncXL" in capsys.readouterr().err  # did-you-mean
    assert plan_experiment_main(["-d", str(DATASET_ID), "-overwrite_target_spacing", "1", "1"]) == 1
    assert "three" in capsys.readouterr().err
    with pytest.raises(NnunetError):
        PLANNERS.get("ExperimentPlanner")(DATASET_ID, gpu_memory_target_in_gb=0)


def test_cli_overrides_flow_into_plans(nnunet_dirs):
    fp = fingerprint([(40, 80, 80)] * 5, [(2.0, 1.0, 1.0)] * 5)
    pre = setup_dataset(nnunet_dirs, fp, dataset(n=5))
    args = ["-d", str(DATASET_ID), "-overwrite_target_spacing", "1", "0.5", "0.5", "-overwrite_plans_name", "custom",
            "-preprocessor_name", "MyPreprocessor", "-gpu_memory_target", "10", "--unknown-flag"]
    assert plan_experiment_main(args) == 0
    plans = json.loads((pre / "custom.json").read_text())
    full = plans["configurations"]["3d_fullres"]
    assert plans["plans_name"] == "custom" and full["data_identifier"] == "custom_3d_fullres"
    assert full["spacing"] == [1.0, 0.5, 0.5] and full["preprocessor_name"] == "MyPreprocessor"
    assert full["median_image_size_in_voxels"] == [80.0, 160.0, 160.0]
    assert not (pre / "nnUNetPlans.json").exists()
