"""Our summary.json equals the one nnU-Net 2.8.1 writes on the same folders (fixtures from make_fixtures.py)."""
from __future__ import annotations

import json
import os

import pytest

from nnunet.cli.evaluate import evaluate_folder_main, evaluate_simple_main
from tests.evaluation.synthetic_cases import EVAL_DATASETS, make_eval_dataset
from tests.helpers import FIXTURES
from tests.json_equal import assert_json_equal

FIXTURE_DIR = FIXTURES / "evaluation"
RUNS = {
    "folder_labels": ("labels", "evaluate_folder", []),
    "folder_regions": ("regions", "evaluate_folder", []),
    "folder_ignore": ("ignore", "evaluate_folder", []),
    "folder_png": ("png", "evaluate_folder", []),
    "simple_labels": ("labels", "evaluate_simple", ["-l", "1", "2"]),
    "simple_ignore": ("ignore", "evaluate_simple", ["-l", "1", "2", "-il", "3"]),
    "simple_png": ("png", "evaluate_simple", ["-l", "1"]),
}


@pytest.fixture(scope="module")
def eval_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    for name in EVAL_DATASETS:
        make_eval_dataset(root, name)
    return root


@pytest.mark.parametrize("run", sorted(RUNS))
def test_summary_equals_reference(run, eval_root, monkeypatch):
    ds, command, extra = RUNS[run]
    # the reference ran inside the data folder with relative paths; do the same so the stored paths match
    monkeypatch.chdir(eval_root)
    out = f"ours_{run}.json"
    argv = [f"{ds}/ref", f"{ds}/pred", "-o", out, "-np", "1", "--no_pbar"] + extra
    if command == "evaluate_folder":
        rc = evaluate_folder_main(argv + ["-djfile", f"{ds}/dataset.json", "-pfile", f"{ds}/plans.json"])
    else:
        rc = evaluate_simple_main(argv)
    assert rc == 0
    ours_text = (eval_root / out).read_text()
    ref_text = (FIXTURE_DIR / f"{run}.json").read_text()
    assert_json_equal(json.loads(ours_text), json.loads(ref_text))
    # same layout too: indent 4, NaN written as NaN
    assert ours_text.count("\n") == ref_text.count("\n")
    assert ours_text.count("NaN") == ref_text.count("NaN")


def test_absolute_paths_are_written_as_given(eval_root, tmp_path):
    ref, pred = str(eval_root / "labels" / "ref"), str(eval_root / "labels" / "pred")
    assert evaluate_simple_main([ref, pred, "-l", "1", "2", "-o", str(tmp_path / "s.json"), "-np", "1",
                                 "--no_pbar"]) == 0
    case = json.loads((tmp_path / "s.json").read_text())["metric_per_case"][0]
    assert case["prediction_file"] == os.path.join(pred, "case_000.nii.gz")
    assert case["reference_file"] == os.path.join(ref, "case_000.nii.gz")
