"""bench/gpu_check.sh and bench/gpu_check_helpers.py on the CPU with CUDA mocked (GC_MOCK_CUDA=1).

The script is prepared for one run on a lent GPU, where nothing can be fixed halfway; here every helper command
runs on a tiny generated Hippocampus-like task (ours and, where its venv is installed, the reference), and the
merged gpu_check.json must have the expected keys and plausible numbers. The compiled runs (step 6) are left out
of the end-to-end run to stay within about a minute (on the CPU both trainers refuse torch.compile, so they would
repeat the eager path); the merge of compiled and on-device-augmentation parts, and the budget cut, are checked
on their own.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_check.sh"
HELPER = REPO / "bench" / "gpu_check_helpers.py"
REF_PYTHON = Path("/work/ref/.venv-ref/bin/python")


def _has_reference() -> bool:
    if not REF_PYTHON.is_file():
        return False
    return subprocess.run([str(REF_PYTHON), "-c", "import nnunetv2"], capture_output=True).returncode == 0


def _env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("nnUNet_", "GC_"))}
    env.update(GC_MOCK_CUDA="1", GC_SKIP_INSTALL="1", PY=sys.executable, OUT=str(tmp_path / "out"),
               GC_WORK=str(tmp_path / "work"), PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def _load_helper(monkeypatch, out: Path, work: Path):
    monkeypatch.setenv("GC_OUT", str(out))
    monkeypatch.setenv("GC_WORK", str(work))
    spec = importlib.util.spec_from_file_location("gpu_check_helpers_under_test", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_script_parses_and_passes_shellcheck():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_gpu_check_mocked_end_to_end(tmp_path):
    impls = ["ours", "ref"] if _has_reference() else ["ours"]
    subprocess.run([sys.executable, str(HELPER), "msd", str(tmp_path), "6", "16"], check=True)
    env = _env(tmp_path, PY_REF=str(REF_PYTHON), IMPLS=" ".join(impls), CFGS="3d_fullres", COMPILE="0",
               MSD=str(tmp_path / "Task04_Hippocampus"), N_ITERS="2", GC_WARM="1", N_PROC="1", N_PROC_DA="0",
               N_PRED="2", GC_PRED_NP="1", GC_ONE_SHAPE="16,16,16", GC_BIG_SHAPE="16,20,16", GC_ONE_REPS="1",
               GC_BIG_REPS="1", GC_MIRROR="0")
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=400)
    out = tmp_path / "out"
    logs = {p.name: p.read_text()[-3000:] for p in (out / "logs").glob("*.log")}
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((out / "gpu_check.json").read_text())
    table, steps = result["table"], result["steps"]
    assert table["failed_steps"] == [], {k: logs.get(f"{k}.log") for k in table["failed_steps"]}
    assert table["skipped_steps"] == []
    assert table["device"]["mock_cuda"] is True and "Mock" in table["device"]["gpu"]

    expected_steps = {"env", "convert", "preprocess", "slab_ours", "train_ours_3d_fullres_eager_augdev",
                      *(f"train_{i}_3d_fullres_eager" for i in impls), *(f"predict_{i}" for i in impls)}
    assert set(steps) == expected_steps
    assert all(s["rc"] == 0 and s["wall_s"] >= 0 for s in steps.values())
    assert result["env"]["torch"] and result["env"]["nnunet.training.trainer"] == "ok"

    for impl in impls:
        name = f"train_{impl}_3d_fullres_eager"
        part, row = result[name], table[name]
        assert part["impl"] == impl and part["cfg"] == "3d_fullres" and part["compile"] is False
        assert part["compiled"] is False and part["device"] == "cpu"
        assert len(part["losses"]) == 1 + 2 and all(0 < x < 10 for x in part["losses"])
        assert part["batch_size"] >= 1 and len(part["patch"]) == 3
        for key in ("ms_it_loader", "ms_it_same_batch", "peak_alloc_mb", "startup_s"):
            assert _positive(row[key]), (name, key, row[key])
        assert 1 < row["ms_it_loader"] < 60_000
        assert row["peak_alloc_mb"] < 64_000
    assert Path(result["train_ours_3d_fullres_eager"]["checkpoint"]).is_file()

    augdev = result["train_ours_3d_fullres_eager_augdev"]
    assert augdev["augment_on_device_requested"] is True
    from nnunet.training.trainer import nnUNetTrainer
    if hasattr(nnUNetTrainer, "augments_on_device"):  # the switch exists: the trainer must have taken it
        assert augdev["augment_on_device_reported"] is True
        assert augdev["train_loader_class"] == "DeviceAugmentedLoader"
    else:
        assert augdev["augment_on_device_reported"] is False
    assert "ratio_to_ours_in_workers" in table["train_ours_3d_fullres_eager_augdev"]

    for impl in impls:
        part, row = result[f"predict_{impl}"], table[f"predict_{impl}"]
        assert part["cases"] == 2 and part["outputs"] == 2
        for sub in ("one_case", "big", "big_not_on_device"):
            assert part[sub]["finite"] is True and _positive(part[sub]["ms"])
            assert _positive(row[f"{sub}_ms"]) and _positive(row[f"{sub}_peak_alloc_mb"])
        assert part["big"]["shape"] == [1, 16, 20, 16]
        assert _positive(row["e2e_s"])
    assert table["slab_ours"]["cases_in_slabs"] == 2
    assert table["slab_ours"]["agreement_with_in_ram"] == {"files": 2, "voxel_agreement": 1.0}
    if "ref" in impls:
        ratios = table["train_ours_3d_fullres_eager"]["ratio_to_ref"]
        assert set(ratios) == {"ms_it_loader", "ms_it_same_batch", "peak_alloc_mb"}
        assert all(0.01 < r < 100 for r in ratios.values())
        assert {"e2e_s", "one_case_ms", "big_ms"} <= set(table["predict_ours"]["ratio_to_ref"])
        assert table["agree_ours_vs_ref"]["files"] == 2
        assert table["agree_ours_vs_ref"]["voxel_agreement"] > 0.99  # same model, same input
    else:
        assert table["agree_ours_vs_ref"] is None


def test_budget_spent_skips_every_step_and_still_merges(tmp_path):
    env = _env(tmp_path, BUDGET="0", CFGS="3d_fullres", MSD=str(tmp_path / "missing"))
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    skipped = result["table"]["skipped_steps"]
    assert {"env", "convert", "preprocess", "train_ours_3d_fullres_eager", "train_ref_3d_fullres_eager",
            "predict_ours", "predict_ref", "train_ours_3d_fullres_compile", "train_ref_3d_fullres_compile",
            "train_ours_3d_fullres_compile_augdev", "slab_ours"} <= set(skipped)
    assert all("budget" in result["steps"][k]["skipped"] for k in skipped)
    assert result["table"]["failed_steps"] == []


def test_merge_table_ratios(tmp_path, monkeypatch):
    out, work = tmp_path / "out", tmp_path / "work"
    helper = _load_helper(monkeypatch, out, work)

    def train_part(ms, same, mb):
        return {"ms_it_loader": ms, "ms_it_same_batch": same, "peak_alloc_mb": mb, "startup_s": 3.0,
                "first_iters_s": [40.0, 0.1], "batch_size": 9, "compiled": True}

    helper.save("env", {"gpu": "NVIDIA H100", "torch": "2.11", "mock_cuda": False})
    helper.save("train_ours_2d_compile", train_part(10.0, 8.0, 1000))
    helper.save("train_ref_2d_compile", train_part(20.0, 10.0, 2000))
    helper.save("train_ours_2d_compile_augdev", train_part(5.0, 8.0, 1500))
    helper.save("predict_ours", {"cases": 20, "e2e_s": 10.0, "e2e_peak": {"peak_alloc_mb": 100},
                                 "one_case": {"ms": 30.0, "peak_alloc_mb": 100}, "big": {"ms": 900.0}})
    helper.save("predict_ref", {"cases": 20, "e2e_s": 20.0, "one_case": {"ms": 60.0}, "big": {"ms": 900.0}})
    (out / "parts" / "train_ref_2d_compile_augdev.step.json").write_text('{"rc": 1, "wall_s": 3}')
    (out / "parts" / "slab_ours.step.json").write_text('{"skipped": "budget (430 s used of 440)"}')
    helper.merge()
    table = json.loads((out / "gpu_check.json").read_text())["table"]
    assert table["train_ours_2d_compile"]["ratio_to_ref"] == {"ms_it_loader": 0.5, "ms_it_same_batch": 0.8,
                                                              "peak_alloc_mb": 0.5}
    # on-device augmentation: against the reference's ordinary run and against ours in the workers
    assert table["train_ours_2d_compile_augdev"]["ratio_to_ref"]["ms_it_loader"] == 0.25
    assert table["train_ours_2d_compile_augdev"]["ratio_to_ours_in_workers"] == {
        "ms_it_loader": 0.5, "ms_it_same_batch": 1.0, "peak_alloc_mb": 1.5}
    assert table["predict_ours"]["ratio_to_ref"] == {"e2e_s": 0.5, "one_case_ms": 0.5, "big_ms": 1.0}
    assert table["predict_ours"]["big_not_on_device_ms"] is None
    assert "ratio_to_ref" not in table["train_ref_2d_compile"]
    assert table["failed_steps"] == ["train_ref_2d_compile_augdev"]
    assert table["skipped_steps"] == ["slab_ours"]
    assert table["device"]["gpu"] == "NVIDIA H100" and table["agree_ours_vs_ref"] is None


def test_mock_cuda_functions(tmp_path, monkeypatch):
    """The mock stands in for what the helper and the trainers' loaders call on torch.cuda."""
    monkeypatch.setenv("GC_MOCK_CUDA", "1")
    helper = _load_helper(monkeypatch, tmp_path / "out", tmp_path / "work")
    import torch

    saved = {n: getattr(torch.cuda, n) for n in ("is_available", "synchronize", "empty_cache", "current_device",
                                                 "set_device", "reset_peak_memory_stats", "max_memory_allocated",
                                                 "max_memory_reserved", "get_device_name", "get_device_capability")}
    try:
        assert str(helper.device()) == "cpu"
        assert torch.cuda.is_available() and torch.cuda.current_device() == 0
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        mb = helper.gpu_mb()
        assert mb["peak_alloc_mb"] > 0 and mb["peak_reserved_mb"] >= mb["peak_alloc_mb"]
    finally:
        for name, fn in saved.items():
            setattr(torch.cuda, name, fn)
        if hasattr(torch.cuda, "_gc_mocked"):
            del torch.cuda._gc_mocked


def test_kfold_shim_equals_sklearn(tmp_path, monkeypatch):
    """Where the GPU image lacks scikit-learn the helper's KFold makes the trainers' split: it must be sklearn's."""
    from sklearn.model_selection import KFold as SkKFold

    helper = _load_helper(monkeypatch, tmp_path / "out", tmp_path / "work")
    shim = helper._kfold_class()
    for n in (5, 6, 7, 13, 260):
        keys = [f"case_{i:03d}" for i in range(n)]
        for seed in (12345, 0):
            ours = [(a.tolist(), b.tolist()) for a, b in shim(5, shuffle=True, random_state=seed).split(keys)]
            ref = [(a.tolist(), b.tolist()) for a, b in SkKFold(5, shuffle=True, random_state=seed).split(keys)]
            assert ours == ref, (n, seed)
    with pytest.raises(ValueError):
        list(shim(5, shuffle=True, random_state=1).split(["a", "b"]))


def test_shims_only_where_modules_are_missing(tmp_path, monkeypatch):
    helper = _load_helper(monkeypatch, tmp_path / "out", tmp_path / "work")
    assert "sklearn" not in helper.install_shims()  # installed here
    for name in ("sklearn", "sklearn.model_selection", "seaborn"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    assert helper.install_shims() == ["sklearn", "seaborn"]
    from sklearn.model_selection import KFold

    assert KFold is not None and KFold.__module__ == "gpu_check_helpers_under_test"
    import seaborn

    seaborn.set(font_scale=2.5)
