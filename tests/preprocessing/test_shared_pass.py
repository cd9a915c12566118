"""Several configurations preprocessed in one pass: each case is read once, equal settings share their arrays,
and the files are the same as configuration-by-configuration runs."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
from nnunet.demo.synthetic import make_dataset
from nnunet.preprocessing.api import preprocess
from nnunet.planning.plans import Plans
from nnunet.preprocessing.preprocessor import DefaultPreprocessor, target_spacing
from nnunet.preprocessing.storage import case_ids, load_case
from nnunet.registry import PREPROCESSORS

CALLS: dict[str, list] = {"read": [], "process": [], "run": []}


class CountingPreprocessor(DefaultPreprocessor):
    """Default behaviour; records reads and processing calls."""

    def read_case(self, image_files, seg_file, plans):
        CALLS["read"].append(str(image_files[0]))
        return super().read_case(image_files, seg_file, plans)

    def shared_output_key(self, plans, configuration, properties):
        # counting does not change the output, so sharing stays allowed
        return DefaultPreprocessor.shared_output_key(DefaultPreprocessor(), plans, configuration, properties)

    def run_case_npy(self, data, seg, properties, plans, configuration, dataset_json):
        CALLS["process"].append(tuple(configuration.patch_size))
        return super().run_case_npy(data, seg, properties, plans, configuration, dataset_json)


class SegHookPreprocessor(DefaultPreprocessor):
    """Changes the seg per configuration: its arrays must never be shared."""

    def modify_seg_fn(self, seg, plans, dataset_json, configuration):
        CALLS["process"].append(configuration.data_identifier)
        return seg


class OwnRunPreprocessor(DefaultPreprocessor):
    """Overrides the per-configuration entry point, which must then be called once per configuration."""

    def run(self, dataset_name_or_id, configuration_name, plans_identifier, num_processes, show_progress=True):
        CALLS["run"].append(configuration_name)
        super().run(dataset_name_or_id, configuration_name, plans_identifier, num_processes, show_progress)


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(PREPROCESSORS, CountingPreprocessor, SegHookPreprocessor, OwnRunPreprocessor)


@pytest.fixture(autouse=True)
def _clear_calls(monkeypatch):
    for calls in CALLS.values():
        calls.clear()
    # the intensity statistics play no part here; 10^8 foreground samples would dominate the runtime
    monkeypatch.setattr("nnunet.fingerprint.extract.NUM_FOREGROUND_SAMPLES", 30_000)


def _planned(nnunet_dirs, dataset_id: int, preset: str, preprocessor: str, **overrides):
    make_dataset(nnunet_dirs["raw"], dataset_id, f"Shared{dataset_id}", preset, num_cases=3, **overrides)
    assert plan_and_preprocess_main(["-d", str(dataset_id), "--no_pp", "-npfp", "1", "--no_pbar"]) == 0
    pre = nnunet_dirs["preprocessed"] / f"Dataset{dataset_id:03d}_Shared{dataset_id}"
    plans_file = pre / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    for configuration in plans["configurations"].values():
        if "data_identifier" in configuration:
            configuration["preprocessor_name"] = preprocessor
    plans_file.write_text(json.dumps(plans, indent=4))
    return pre


def _assert_same_value(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_same_value(a[k], b[k], f"{where}[{k}]")
    elif isinstance(a, (list, tuple, np.ndarray)) and not np.isscalar(a):
        assert np.array_equal(np.asarray(a), np.asarray(b)), where
    else:
        assert a == b, where


def _assert_same_folder(ours, separate) -> None:
    assert case_ids(ours) == case_ids(separate) and case_ids(ours)
    for case in case_ids(ours):
        data, seg, props = load_case(ours, case)
        ref_data, ref_seg, ref_props = load_case(separate, case)
        assert data.chunks == ref_data.chunks and np.array_equal(data[:], ref_data[:])
        assert np.array_equal(seg[:], ref_seg[:])
        _assert_same_value(props, ref_props, case)


def _cases_resampled_differently(pre) -> int:
    """Cases whose 2d and 3d_fullres target spacings differ (judged from the written properties)."""
    plans = Plans.load(pre / "nnUNetPlans.json")
    count = 0
    for case in case_ids(pre / "nnUNetPlans_2d"):
        spacing = [load_case(pre / "nnUNetPlans_2d", case)[2]["spacing"][i] for i in plans.transpose_forward]
        count += target_spacing(plans.configuration("2d"), spacing) != \
            target_spacing(plans.configuration("3d_fullres"), spacing)
    return count


def _separately(pre, configurations, preprocessor_name: str) -> None:
    """Each configuration in its own pass, into a copy of the preprocessed folder."""
    for name in configurations:
        PREPROCESSORS.get(preprocessor_name)().run(pre.name, name, "nnUNetPlans", 1, show_progress=False)


@pytest.mark.parametrize("preset, overrides, shares", [
    ("3d_iso", {"spacing_jitter": 0.0}, True),  # 2d and 3d_fullres resample every case the same way
    ("3d_aniso_ct", {"spacing_jitter": 0.3}, False),  # 2d keeps each case's slice spacing, 3d_fullres does not
])
def test_one_pass_reads_each_case_once_and_equals_separate_runs(nnunet_dirs, monkeypatch, preset, overrides,
                                                                 shares):
    pre = _planned(nnunet_dirs, 231, preset, "CountingPreprocessor", **overrides)
    configurations = ["2d", "3d_fullres"]
    preprocess([231], configurations=configurations, num_processes=1, show_progress=False)
    assert len(CALLS["read"]) == 3 and len(set(CALLS["read"])) == 3
    assert len(CALLS["process"]) == 3 + _cases_resampled_differently(pre)
    assert (_cases_resampled_differently(pre) == 0) == shares

    separate_root = nnunet_dirs["preprocessed"].parent / "separate"
    shutil.copytree(nnunet_dirs["preprocessed"], separate_root)
    monkeypatch.setenv("nnUNet_preprocessed", str(separate_root))
    _separately(pre, configurations, "CountingPreprocessor")
    for name in ("nnUNetPlans_2d", "nnUNetPlans_3d_fullres"):
        _assert_same_folder(pre / name, separate_root / pre.name / name)


def test_a_preprocessor_that_changes_a_step_gets_no_shared_arrays(nnunet_dirs):
    pre = _planned(nnunet_dirs, 232, "3d_iso", "SegHookPreprocessor", spacing_jitter=0.0)
    preprocess([232], configurations=["2d", "3d_fullres"], num_processes=1, show_progress=False)
    assert sorted(CALLS["process"]) == ["nnUNetPlans_2d"] * 3 + ["nnUNetPlans_3d_fullres"] * 3
    assert len(case_ids(pre / "nnUNetPlans_2d")) == len(case_ids(pre / "nnUNetPlans_3d_fullres")) == 3


def test_a_preprocessor_with_its_own_run_is_called_per_configuration(nnunet_dirs):
    pre = _planned(nnunet_dirs, 233, "3d_iso", "OwnRunPreprocessor")
    preprocess([233], configurations=["2d", "3d_fullres"], num_processes=1, show_progress=False)
    assert CALLS["run"] == ["2d", "3d_fullres"]
    assert len(case_ids(pre / "nnUNetPlans_2d")) == len(case_ids(pre / "nnUNetPlans_3d_fullres")) == 3


def test_plan_and_preprocess_with_different_process_counts(nnunet_dirs, capsys):
    make_dataset(nnunet_dirs["raw"], 234, "Counts", "3d_iso", num_cases=3)
    pre = nnunet_dirs["preprocessed"] / "Dataset234_Counts"
    # a -np that fits no configuration list fails before any work
    assert plan_and_preprocess_main(["-d", "234", "-c", "2d", "3d_fullres", "-np", "1", "2", "3", "--no_pbar"]) == 1
    assert "-np" in capsys.readouterr().err and not (pre / "dataset_fingerprint.json").exists()
    # fingerprint with 2 workers, then preprocessing with 1 (the fingerprint's pool is closed first)
    assert plan_and_preprocess_main(["-d", "234", "-c", "2d", "3d_fullres", "-npfp", "2", "-np", "1",
                                     "--no_pbar"]) == 0
    assert "2d, 3d_fullres in one pass over the cases with 1 processes" in capsys.readouterr().out
    assert len(case_ids(pre / "nnUNetPlans_2d")) == len(case_ids(pre / "nnUNetPlans_3d_fullres")) == 3


def test_ctrl_c_leaves_only_complete_cases_and_a_rerun_resumes(nnunet_dirs):
    import glob
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    make_dataset(nnunet_dirs["raw"], 235, "CtrlC", "3d_iso", num_cases=48, shape=(40, 40, 40))
    assert plan_and_preprocess_main(["-d", "235", "--no_pp", "-npfp", "1", "--no_pbar"]) == 0
    pre = nnunet_dirs["preprocessed"] / "Dataset235_CtrlC"
    command = [str(Path(sys.executable).parent / "nnUNet_preprocess"), "-d", "235", "-c", "2d", "3d_fullres",
               "-np", "2", "--no_pbar"]
    # a terminal's Ctrl-C reaches the whole process group: the command and its workers
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=os.environ.copy())
    staging = pre / "nnUNetPlans_3d_fullres.staging"
    deadline = time.time() + 120
    while len(glob.glob(str(staging / "*.pkl"))) < 2 and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and "reused" in err, err
    assert not (pre / "nnUNetPlans_3d_fullres").exists()  # nothing half-built is published
    written = case_ids(staging)
    assert 2 <= len(written) < 48
    for case in written:  # every listed case is whole
        data, seg, _ = load_case(staging, case)
        assert data[:].shape[1:] == seg[:].shape[1:]

    again = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    assert again.returncode == 0, again.stderr
    assert "already complete in the staging folder" in again.stdout
    for name in ("nnUNetPlans_2d", "nnUNetPlans_3d_fullres"):
        assert len(case_ids(pre / name)) == 48 and (pre / f"{name}.complete.json").is_file()
        assert not (pre / f"{name}.staging").exists()