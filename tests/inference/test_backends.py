"""CPU backends (OpenVINO, ONNX Runtime): agreement with torch, the cached export, clear errors."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet.inference import backends, runners
from nnunet.inference.backends import CACHE_FOLDER, BackendError, check_backend
from nnunet.inference.cached_model import load_cached_model
from nnunet.utils.files import OutputError
from tests.inference.helpers import CASES, IMAGES, add_fold, make_predictor, make_variant_model, preprocessed

SEQUENTIAL = {"num_processes_preprocessing": 0, "num_processes_segmentation_export": 0}


def _installed(name):
    try:
        check_backend(name, "cpu")
        return True
    except BackendError:
        return False


FAST_BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(not _installed(b), reason=f"{b} is not installed"))
                 for b in ("openvino", "onnxruntime")]


def _cache_files(model_dir, fold=0):
    return sorted((model_dir / f"fold_{fold}" / CACHE_FOLDER).glob("*.onnx"))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_backend_agrees_with_torch_with_folds_and_mirroring(backend, model_dir):
    add_fold(model_dir, 1)
    data = preprocessed(make_predictor(model_dir, (0,)), "ts_regular")
    reference = make_predictor(model_dir, (0, 1)).predict_logits_from_preprocessed_data(data).float()
    fast = make_predictor(model_dir, (0, 1), backend=backend).predict_logits_from_preprocessed_data(data).float()
    assert fast.shape == reference.shape
    # float32 logits that differ by ~1e-5, accumulated in float16: a unit in the last place at most
    torch.testing.assert_close(fast, reference, rtol=2e-3, atol=2e-2)
    agreement = (fast.argmax(0) == reference.argmax(0)).float().mean()
    assert agreement >= 0.999
    assert len(_cache_files(model_dir, 0)) == 1 and len(_cache_files(model_dir, 1)) == 1


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_backend_predicts_files_like_torch(backend, tmp_path, model_dir):
    make_predictor(model_dir, use_mirroring=False).predict_from_files(str(IMAGES), str(tmp_path / "torch"),
                                                                      **SEQUENTIAL)
    make_predictor(model_dir, use_mirroring=False, backend=backend).predict_from_files(
        str(IMAGES), str(tmp_path / backend), num_parts=1, part_id=0, **SEQUENTIAL)
    for case in CASES:
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "torch" / f"{case}.nii.gz")))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / backend / f"{case}.nii.gz")))
        assert (a == b).mean() >= 0.999


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime is not installed")
def test_stale_cached_export_is_rebuilt(model_dir, caplog):
    data = preprocessed(make_predictor(model_dir, (0,)), "ts_regular")
    first = make_predictor(model_dir, (0,), backend="onnxruntime")
    before = first.predict_logits_from_preprocessed_data(data)
    (cached,) = _cache_files(model_dir)
    stamp = cached.stat().st_mtime_ns
    assert any("Exporting" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nnunet.inference.backends"):
        again = make_predictor(model_dir, (0,), backend="onnxruntime").predict_logits_from_preprocessed_data(data)
    assert torch.equal(again, before) and cached.stat().st_mtime_ns == stamp  # reused, not exported again
    assert not any("Exporting" in r.getMessage() for r in caplog.records)
    # the checkpoint changes (e.g. training went on): the export must follow it
    add_fold(model_dir, 9, scale=2.0)
    (model_dir / "fold_9" / "checkpoint_final.pth").replace(model_dir / "fold_0" / "checkpoint_final.pth")
    expected = make_predictor(model_dir, (0,)).predict_logits_from_preprocessed_data(data).float()
    rebuilt = make_predictor(model_dir, (0,), backend="onnxruntime").predict_logits_from_preprocessed_data(data)
    (new_cached,) = _cache_files(model_dir)
    assert new_cached != cached and not cached.exists()
    assert not torch.equal(rebuilt, before)
    torch.testing.assert_close(rebuilt.float(), expected, rtol=2e-3, atol=2e-2)


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime is not installed")
def test_head_start_is_used_for_the_checked_export_only(model_dir):
    threads = runners.prediction_threads()
    checkpoint = model_dir / "fold_0" / "checkpoint_final.pth"
    data = preprocessed(make_predictor(model_dir, (0,)), "ts_regular")
    before = make_predictor(model_dir, (0,), backend="onnxruntime").predict_logits_from_preprocessed_data(data)
    (cached,) = _cache_files(model_dir)
    # the export is current: the prediction runs the network compiled in the background
    runners.start_compiling_cached("onnxruntime", [checkpoint], threads)
    head = runners._started[("onnxruntime", str(cached), threads)].result()
    predictor = make_predictor(model_dir, (0,), backend="onnxruntime")
    assert torch.equal(predictor.predict_logits_from_preprocessed_data(data), before)
    assert predictor.prediction_context().runners()[0].run is head and not runners._started
    # the checkpoint changed since: the head start compiles the outdated export, which must not be used
    add_fold(model_dir, 9, scale=2.0)
    (model_dir / "fold_9" / "checkpoint_final.pth").replace(checkpoint)
    runners.start_compiling_cached("onnxruntime", [checkpoint], threads)
    stale = runners._started[("onnxruntime", str(cached), threads)].result()
    expected = make_predictor(model_dir, (0,)).predict_logits_from_preprocessed_data(data).float()
    predictor = make_predictor(model_dir, (0,), backend="onnxruntime")
    fresh = predictor.predict_logits_from_preprocessed_data(data)
    torch.testing.assert_close(fresh.float(), expected, rtol=2e-3, atol=2e-2)
    assert not torch.equal(fresh, before) and predictor.prediction_context().runners()[0].run is not stale and not runners._started


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime is not installed")
def test_unwritable_model_folder_exports_to_a_temporary_folder(model_dir, monkeypatch, caplog):
    def refuse(path):
        raise OutputError(f"Could not write {path}: EROFS (Read-only file system).")

    monkeypatch.setattr(backends, "publish", refuse)
    data = preprocessed(make_predictor(model_dir, (0,)), "ts_small")
    logits = make_predictor(model_dir, (0,), backend="onnxruntime").predict_logits_from_preprocessed_data(data)
    assert logits.shape[0] == 3 and _cache_files(model_dir) == []
    assert any("temporary folder" in r.getMessage() for r in caplog.records)


def test_missing_package_and_wrong_device_give_clear_errors(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails as if not installed
    with pytest.raises(BackendError, match=r"pip install 'nnunet-fast\[openvino\]'"):
        check_backend("openvino", "cpu")
    with pytest.raises(BackendError, match="runs on the CPU; use -device cpu"):
        check_backend("onnxruntime", "cuda")
    with pytest.raises(BackendError, match="Unknown backend 'tensorrt'"):
        check_backend("tensorrt", "cpu")


def test_cli_missing_backend_package(monkeypatch, tmp_path, capsys):
    from nnunet.cli.predict import predict_from_modelfolder_main
    from tests.inference.helpers import MODEL

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    out = tmp_path / "out"
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(MODEL), "-f", "0",
                                        "-device", "cpu", "-backend", "onnxruntime"])
    err = capsys.readouterr().err
    assert rc == 1 and "onnxruntime package, which is not installed" in err and "Traceback" not in err
    assert not out.exists()


NO_TORCH_RUN = """
import sys
from nnunet.inference.api import predict_from_model_folder
budget = float(sys.argv[4]) if len(sys.argv) > 4 else None  # a tiny budget: every case in slabs
predict_from_model_folder(sys.argv[1], sys.argv[2], sys.argv[3], (0, 1), device=None, show_progress=False,
                          num_processes_preprocessing=0, num_processes_segmentation_export=0, backend="onnxruntime",
                          max_ram_gb=budget)
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, f"torch was imported: {loaded[:5]}"
"""


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime is not installed")
def test_cached_folds_predict_without_loading_checkpoints_or_torch(model_dir, tmp_path):
    add_fold(model_dir, 1)
    make_predictor(model_dir, (0, 1), backend="onnxruntime").predict_from_files(str(IMAGES), str(tmp_path / "first"),
                                                                                **SEQUENTIAL)
    for fold in (0, 1):
        (cached,) = _cache_files(model_dir, fold)
        assert runners.read_sidecar(cached) == {"trainer_name": "nnUNetTrainer_1epoch", "configuration": "3d_fullres",
                                                "inference_allowed_mirroring_axes": [0, 1, 2]}
    for name, budget in (("again", []), ("slabs", ["1e-6"])):  # in memory, then in slabs: neither imports torch
        run = subprocess.run([sys.executable, "-c", NO_TORCH_RUN, str(IMAGES), str(tmp_path / name), str(model_dir),
                              *budget], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        for case in CASES:
            a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "first" / f"{case}.nii.gz")))
            b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name / f"{case}.nii.gz")))
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime is not installed")
def test_cached_export_without_a_valid_sidecar_is_checked_against_the_checkpoint(model_dir):
    make_predictor(model_dir, (0,), backend="onnxruntime").prediction_context().runners()  # exports fold 0
    (cached,) = _cache_files(model_dir)
    sidecar = runners.sidecar_path(cached)
    facts = json.loads(sidecar.read_text())
    loaded = load_cached_model(model_dir, (0,))
    assert loaded.onnx_files == [cached] and loaded.network is None and loaded.mirror_axes == (0, 1, 2)
    # a sidecar naming another trainer does not give the key the file was made with
    sidecar.write_text(json.dumps(dict(facts, trainer_name="nnUNetTrainer")))
    assert load_cached_model(model_dir, (0,)) is None
    sidecar.write_text(json.dumps(dict(facts, inference_allowed_mirroring_axes="0,1")))  # not a list of axes
    assert load_cached_model(model_dir, (0,)) is None
    sidecar.write_text("{not json")
    assert load_cached_model(model_dir, (0,)) is None
    sidecar.unlink()  # e.g. a cache made by an older version
    assert load_cached_model(model_dir, (0,)) is None
    predictor = make_predictor(model_dir, (0,), backend="onnxruntime")
    assert predictor.network is not None  # the checkpoint was loaded ...
    predictor.prediction_context().runners()
    assert json.loads(sidecar.read_text()) == facts and _cache_files(model_dir) == [cached]  # ... and re-recorded
    assert load_cached_model(model_dir, (0,)).onnx_files == [cached]
    # a changed checkpoint: the cached file is no longer current
    add_fold(model_dir, 9, scale=2.0)
    (model_dir / "fold_9" / "checkpoint_final.pth").replace(model_dir / "fold_0" / "checkpoint_final.pth")
    assert load_cached_model(model_dir, (0,)) is None


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime is not installed")
def test_cached_folds_predict_in_slabs_like_in_memory(model_dir, tmp_path, caplog):
    make_predictor(model_dir, (0,), backend="onnxruntime").prediction_context().runners()  # exports fold 0 and its sidecar
    in_memory = make_predictor(model_dir, (0,), backend="onnxruntime")
    slabs = make_predictor(model_dir, (0,), backend="onnxruntime", max_ram_gb=1e-4)
    assert in_memory.network is None and slabs.network is None  # both started from the cache alone
    in_memory.predict_from_files(str(IMAGES), str(tmp_path / "memory"), **SEQUENTIAL)
    with caplog.at_level(logging.INFO, logger="nnunet.inference.cases"):
        slabs.predict_from_files(str(IMAGES), str(tmp_path / "slabs"), **SEQUENTIAL)
    assert sum("predicting in slabs" in r.getMessage() for r in caplog.records) == len(CASES)
    for case in CASES:
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "memory" / f"{case}.nii.gz")))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "slabs" / f"{case}.nii.gz")))
        np.testing.assert_array_equal(a, b)


def _labels(folder, case):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{case}.nii.gz")))


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime is not installed")
@pytest.mark.parametrize("variant", ["cascade", "2d"])
def test_cascade_and_2d_models_from_the_cache_with_parts(variant, model_dir, tmp_path):
    extra = {}
    if variant == "cascade":
        folder = make_variant_model(model_dir, "3d_cascade_fullres",
                                    {"inherits_from": "3d_fullres", "previous_stage": "3d_fullres"}, in_channels=3)
        extra["folder_with_segs_from_prev_stage"] = str(tmp_path / "low")
        make_predictor(model_dir, use_mirroring=False).predict_from_files(str(IMAGES), str(tmp_path / "low"),
                                                                          **SEQUENTIAL)
    else:
        folder = make_variant_model(model_dir, "2d_small", {"inherits_from": "2d"}, in_channels=1)
    make_predictor(folder).predict_from_files(str(IMAGES), str(tmp_path / "torch"), **extra, **SEQUENTIAL)
    make_predictor(folder, backend="onnxruntime").prediction_context().runners()  # the first run exports
    cached = make_predictor(folder, backend="onnxruntime")
    assert cached.network is None and cached.configuration.name == folder.name
    assert cached.allowed_mirroring_axes == ((0, 1, 2) if variant == "cascade" else (0, 1))
    cached.predict_from_files(str(IMAGES), str(tmp_path / "runtime"), num_parts=2, part_id=1, **extra, **SEQUENTIAL)
    assert sorted(p.name for p in (tmp_path / "runtime").glob("*.nii.gz")) == [f"{c}.nii.gz" for c in CASES[1::2]]
    for case in CASES[1::2]:
        assert (_labels(tmp_path / "torch", case) == _labels(tmp_path / "runtime", case)).mean() >= 0.999


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime is not installed")
def test_network_given_in_memory_runs_on_a_runtime_without_caching(model_dir):
    from nnunet.inference.predictor import nnUNetPredictor

    loaded = make_predictor(model_dir, (0,))
    data = preprocessed(loaded, "ts_small")
    expected = loaded.predict_logits_from_preprocessed_data(data).float()
    runtime = nnUNetPredictor(device="cpu", allow_tqdm=False, backend="onnxruntime")
    runtime.manual_initialization(loaded.network, loaded.plans, loaded.configuration, None, loaded.dataset_json,
                                  loaded.trainer_name, loaded.allowed_mirroring_axes)
    got = runtime.predict_logits_from_preprocessed_data(data).float()
    torch.testing.assert_close(got, expected, rtol=2e-3, atol=2e-2)
    assert _cache_files(model_dir) == []
