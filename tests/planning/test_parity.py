"""Our planner reproduces the reference's plans files (tests/fixtures/planning, see make_fixtures.py there).

Each fixture holds the planner inputs (dataset.json + fingerprint) and the reference plans for several planner
invocations (default, ResEnc M/L/XL, GPU memory targets, target-spacing overrides, custom plans names).
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import math

import pytest

from nnunet.cli.plan import plan_experiment_main
from tests.helpers import FIXTURES

FIXTURE_DIR = FIXTURES / "planning"
_spec = importlib.util.spec_from_file_location("plan_fixtures", FIXTURE_DIR / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)

CASE_FILES = sorted(FIXTURE_DIR.glob("*.json"))


def assert_same_plans(ours, ref, path="plans"):
    """Equal structure, key order, ints, strings and bools; floats to 1e-6 relative."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict), path
        assert list(ours) == list(ref), f"{path}: keys {list(ours)} != {list(ref)}"
        for k in ref:
            assert_same_plans(ours[k], ref[k], f"{path}.{k}")
    elif isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref), f"{path}: {ours} != {ref}"
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_same_plans(a, b, f"{path}[{i}]")
    elif isinstance(ref, float):
        assert isinstance(ours, float), f"{path}: {ours!r} is not a float like {ref!r}"
        assert math.isclose(ours, ref, rel_tol=1e-6, abs_tol=1e-12) or (math.isnan(ours) and math.isnan(ref)), \
            f"{path}: {ours} != {ref}"
    else:
        assert type(ours) is type(ref) and ours == ref, f"{path}: {ours!r} != {ref!r}"


def _setup(nnunet_dirs, fixture):
    make_fixtures.write_stub_raw_dataset(nnunet_dirs["raw"], fixture["dataset_json"])
    pre = nnunet_dirs["preprocessed"] / make_fixtures.DATASET_NAME
    pre.mkdir()
    (pre / "dataset_fingerprint.json").write_text(json.dumps(fixture["fingerprint"]))
    return pre


@pytest.mark.parametrize("case_file", CASE_FILES, ids=[f.stem for f in CASE_FILES])
def test_plans_equal_reference(case_file, nnunet_dirs, capsys):
    fixture = json.loads(case_file.read_text())
    pre = _setup(nnunet_dirs, fixture)
    for run in fixture["runs"]:
        args = run["args"]
        preset = args[args.index("-pl") + 1] in ("nnUNetPlannerResEncM", "nnUNetPlannerResEncL", "nnUNetPlannerResEncXL")
        # the calibrated presets warn when given another GPU memory target
        expect_warning = preset and "-gpu_memory_target" in args
        with pytest.warns(UserWarning, match="calibrated") if expect_warning else contextlib.nullcontext():
            assert plan_experiment_main(["-d", str(make_fixtures.DATASET_ID), *run["args"]]) == 0, \
                capsys.readouterr().err
        text = (pre / run["plans_file"]).read_text()
        assert_same_plans(json.loads(text), run["plans"], f"{case_file.stem} {' '.join(run['args'])}")
        # same file layout as the reference (no key sorting, indent 4): the texts are identical
        assert text == json.dumps(run["plans"], indent=4)
    # planning copies the raw dataset.json next to the plans
    assert json.loads((pre / "dataset.json").read_text()) == fixture["dataset_json"]


def test_fixture_set_covers_the_interesting_cases():
    """Guard against the fixture set silently losing the cases the planner rules depend on."""
    seen = {}
    for f in CASE_FILES:
        for run in json.loads(f.read_text())["runs"]:
            seen.setdefault(f.stem, set()).add(tuple(run["plans"]["configurations"]))
    assert any("3d_lowres" in c for s in seen.values() for c in s)
    assert any(c == ("2d",) for s in seen.values() for c in s)
    assert len(CASE_FILES) >= 10
