"""nnUNet_predict / nnUNet_predict_from_modelfolder end to end, and the bad-input suite."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.predict import predict_from_modelfolder_main, predict_main
from tests.inference.helpers import CASES, IMAGES, INFERENCE_FIXTURES, MODEL

FAST = ["-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar"]
MODEL_NAME = "nnUNetTrainer_1epoch__nnUNetPlans__3d_fullres"


@pytest.fixture
def results_model(nnunet_dirs):
    """The fixture model installed in nnUNet_results as Dataset251_InferTiny."""
    target = nnunet_dirs["results"] / "Dataset251_InferTiny" / MODEL_NAME
    shutil.copytree(MODEL, target)
    return target


@pytest.fixture(scope="module")
def reference_segs():
    with np.load(INFERENCE_FIXTURES / "reference_predictions.npz") as npz:
        return {k: v for k, v in npz.items() if k.endswith("/seg")}


def _seg(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_predict_by_dataset_matches_reference(results_model, tmp_path, reference_segs, capsys):
    out = tmp_path / "out"
    rc = predict_main(["-i", str(IMAGES), "-o", str(out), "-d", "251", "-c", "3d_fullres", "-tr",
                       "nnUNetTrainer_1epoch", "-f", "0", "--disable_tta", *FAST])
    assert rc == 0, capsys.readouterr().err
    assert "Nature Methods" in capsys.readouterr().out  # citation banner
    for case in CASES:
        agreement = (_seg(out / f"{case}.nii.gz") == reference_segs[f"no_tta/{case}/seg"]).mean()
        assert agreement >= 0.999
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{c}.nii.gz" for c in CASES] + ["dataset.json", "plans.json", "predict_from_raw_data_args.json"])


def test_predict_from_modelfolder_step_size_and_probabilities(tmp_path, reference_segs):
    out = tmp_path / "out"
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(MODEL), "-f", "0",
                                        "-step_size", "0.75", "--save_probabilities", *FAST])
    assert rc == 0
    for case in CASES:
        assert (_seg(out / f"{case}.nii.gz") == reference_segs[f"step075/{case}/seg"]).mean() >= 0.999
        assert (out / f"{case}.npz").is_file() and (out / f"{case}.pkl").is_file()
    stamp = (out / "ts_small.nii.gz").stat().st_mtime_ns
    (out / "ts_regular.nii.gz").unlink()
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(MODEL), "-f", "0",
                                        "-step_size", "0.75", "--save_probabilities", "--c", *FAST])
    assert rc == 0 and (out / "ts_regular.nii.gz").is_file()
    assert (out / "ts_small.nii.gz").stat().st_mtime_ns == stamp


def _folder(tmp_path, files):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in files:
        shutil.copy(IMAGES / "ts_small_0000.nii.gz", folder / name)
    return folder


BAD_INPUTS = {
    "missing channel file": (["a_0000.nii.gz", "b_0001.nii.gz"], ["-f", "0"], r"case 'b' is missing b_0000\.nii\.gz"),
    "wrong file ending": (["a_0000.nrrd", "b_0000.nii"], ["-f", "0"], r"no images named CASE_XXXX\.nii\.gz.*\.nrrd"),
    "empty folder": ([], ["-f", "0"], "contains no images"),
    "more channels than the model": (["a_0000.nii.gz", "a_0001.nii.gz"], ["-f", "0"],
                                     r"case 'a' has 2 channel files .* expects 1"),
    "fold missing": (["a_0000.nii.gz"], ["-f", "0", "3"], r"no fold_3/checkpoint_final\.pth.*contains: fold_0"),
    "checkpoint missing": (["a_0000.nii.gz"], ["-f", "0", "-chk", "checkpoint_best.pth"],
                           r"no fold_0/checkpoint_best\.pth"),
    "bad fold": (["a_0000.nii.gz"], ["-f", "zero"], "Invalid fold 'zero'"),
    "bad device": (["a_0000.nii.gz"], ["-f", "0", "-device", "tpu"], "-device must be one of"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_fail_cleanly_and_write_nothing(case, tmp_path, capsys):
    files, extra, message = BAD_INPUTS[case]
    folder = _folder(tmp_path, files)
    out = tmp_path / "out"
    rc = predict_from_modelfolder_main(["-i", str(folder), "-o", str(out), "-m", str(MODEL), *FAST, *extra])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("nnunet: error:") and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not out.exists()


def test_bad_model_and_parts(results_model, tmp_path, capsys):
    folder = _folder(tmp_path, ["a_0000.nii.gz"])
    out = tmp_path / "out"
    base = ["-i", str(folder), "-o", str(out), "-d", "251", "-c", "3d_fullres", *FAST]
    assert predict_main(base + ["-tr", "nnUNetTrainer"]) == 1
    assert "Trained models found for this dataset: " + MODEL_NAME in capsys.readouterr().err
    assert predict_main(base + ["-tr", "nnUNetTrainer_1epoch", "-num_parts", "2", "-part_id", "2"]) == 1
    assert "-part_id" in capsys.readouterr().err
    assert predict_main(["-i", str(folder), "-o", str(out), "-d", "999", "-c", "3d_fullres", *FAST]) == 1
    assert "999" in capsys.readouterr().err
    (results_model / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    assert predict_main(base + ["-tr", "nnUNetTrainer_1epoch", "-f", "0"]) == 1
    err = capsys.readouterr().err
    assert "checkpoint" in err and "checkpoint_final.pth" in err and "Traceback" not in err
    assert predict_from_modelfolder_main(["-i", str(tmp_path / "nope"), "-o", str(out), "-m", str(MODEL),
                                          "-f", "0", *FAST]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(tmp_path, capsys):
    out = tmp_path / "out"
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(MODEL), "-f", "0",
                                        "-device", "cuda", "-npp", "0", "-nps", "0"])
    assert rc == 1 and "CUDA" in capsys.readouterr().err and not out.exists()


def test_ctrl_c_points_to_continue_prediction(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("nnunet.inference.api.predict_from_model_folder", interrupted)
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(tmp_path / "out"), "-m", str(MODEL), "-f", "0",
                                        "-device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 130 and "--continue_prediction" in err and "Traceback" not in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_device_is_chosen_automatically_without_cuda(tmp_path, capsys, reference_segs):
    out = tmp_path / "out"
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(MODEL), "-f", "0", "-npp", "0",
                                        "-nps", "0", "--disable_tta", "--disable_progress_bar"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.count("CUDA is not available on this machine: predicting on the CPU") == 1
    assert (_seg(out / "ts_regular.nii.gz") == reference_segs["no_tta/ts_regular/seg"]).mean() >= 0.999


def test_output_folder_equal_to_input_folder_is_refused(tmp_path, capsys):
    folder = _folder(tmp_path, ["a_0000.nii.gz"])
    before = sorted(p.name for p in folder.iterdir())
    for output in (folder, tmp_path / "." / "in"):
        rc = predict_from_modelfolder_main(["-i", str(folder), "-o", str(output), "-m", str(MODEL), *FAST, "-f", "0"])
        err = capsys.readouterr().err
        assert rc == 1 and "is the input folder" in err and "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == before


def test_mixed_file_endings_are_predicted_with_a_warning_naming_the_others(tmp_path, capsys):
    folder = _folder(tmp_path, ["a_0000.nii.gz", "b_0000.nii", "notes.txt", ".hidden"])
    out = tmp_path / "out"
    rc = predict_from_modelfolder_main(["-i", str(folder), "-o", str(out), "-m", str(MODEL), *FAST, "-f", "0",
                                        "--disable_tta"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Ignoring 2 file(s)" in err and "b_0000.nii, notes.txt" in err and ".hidden" not in err
    assert sorted(p.name for p in out.glob("*.nii*")) == ["a.nii.gz"]
