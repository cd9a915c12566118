"""Untrusted files are data (issue 12, item 1): checkpoints and pickles from elsewhere never run code.

Every malicious file here carries a real payload: unpickling it with ``pickle.load`` or
``torch.load(weights_only=False)`` would create the ``marker`` file (the first test proves that). Each test feeds
the file to a real command and asserts: exit code 1, one line naming the file and the refused object, no marker,
and nothing written or replaced on disk.
"""
from __future__ import annotations

import builtins
import os
import pickle
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunet.cli.ensemble import ensemble_main
from nnunet.cli.postprocess import apply_postprocessing_main
from nnunet.cli.predict import predict_from_modelfolder_main
from nnunet.cli.sharing import export_main, install_main
from nnunet.cli.train import train_main
from nnunet.training.checkpoint import load_checkpoint_file
from tests.evaluation.synthetic_cases import make_ensemble_inputs
from tests.helpers import FIXTURES
from tests.reliability.helpers import TINY, TINY_ID

REFERENCE_MODEL = FIXTURES / "inference" / "model"  # trained by nnU-Net 2.8.1 (tests/fixtures/inference)
IMAGES = FIXTURES / "inference" / "imagesTs"
FAST_PREDICT = ["-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar", "-f", "0"]


class ShellPayload:
    """Unpickling calls ``os.system('touch MARKER')``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class ExecPayload:
    """Unpickling calls ``builtins.exec`` with code that creates the marker."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


class PopenPayload:
    """Unpickling starts ``touch MARKER`` with ``subprocess.Popen``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return subprocess.Popen, (["touch", str(self.marker)],)


def poisoned_checkpoint(path: Path, marker: Path, payload=ShellPayload) -> Path:
    """The reference checkpoint, complete and working, plus a payload hidden in ``init_args``."""
    checkpoint = torch.load(REFERENCE_MODEL / "fold_0" / "checkpoint_final.pth", weights_only=False)
    checkpoint["init_args"]["payload"] = payload(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("nnunet: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_payloads_are_real(tmp_path, marker):
    """Guard for the other tests: the unsafe loaders really would run these payloads."""
    for payload in (ShellPayload, ExecPayload, PopenPayload):
        path = poisoned_checkpoint(tmp_path / f"{payload.__name__}.pth", marker, payload)
        result = torch.load(path, weights_only=False)["init_args"]["payload"]
        if isinstance(result, subprocess.Popen):
            result.wait()
        assert marker.exists(), payload.__name__
        marker.unlink()


def test_reference_checkpoint_loads_as_data():
    """A checkpoint written by nnU-Net 2.8.1 (numpy scalars in its logging, torch.device in init_args) loads."""
    checkpoint = load_checkpoint_file(REFERENCE_MODEL / "fold_0" / "checkpoint_final.pth")
    assert checkpoint["trainer_name"] == "nnUNetTrainer_1epoch"
    assert checkpoint["init_args"]["device"] == torch.device("cpu")
    assert isinstance(checkpoint["_best_ema"], (float, np.floating))


@pytest.mark.parametrize("payload", [ShellPayload, ExecPayload, PopenPayload])
def test_predict_refuses_a_poisoned_checkpoint(tmp_path, marker, capsys, payload):
    model = tmp_path / "model"
    shutil.copytree(REFERENCE_MODEL, model)
    poisoned_checkpoint(model / "fold_0" / "checkpoint_final.pth", marker, payload)
    out = tmp_path / "out"
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(model), *FAST_PREDICT])
    line = _error(capsys)
    assert rc == 1 and not marker.exists()
    assert str(model / "fold_0" / "checkpoint_final.pth") in line and "refused to load" in line
    expected = {ShellPayload: "posix.system", ExecPayload: "builtins.exec", PopenPayload: "subprocess.Popen"}
    assert expected[payload] in line
    assert not out.exists() or not [p for p in out.rglob("*") if p.suffix == ".gz"]


def test_predict_refuses_a_checkpoint_with_a_foreign_class(tmp_path, marker, capsys):
    """Not every refused object is a function call: a class outside the allow-list is refused by name."""
    import argparse

    model = tmp_path / "model"
    shutil.copytree(REFERENCE_MODEL, model)
    checkpoint = torch.load(model / "fold_0" / "checkpoint_final.pth", weights_only=False)
    checkpoint["init_args"]["args"] = argparse.Namespace(fold=0)
    torch.save(checkpoint, model / "fold_0" / "checkpoint_final.pth")
    rc = predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(tmp_path / "out"), "-m", str(model),
                                        *FAST_PREDICT])
    assert rc == 1 and "argparse.Namespace" in _error(capsys)


def _model_folder(dirs) -> Path:
    return dirs["results"] / TINY / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"


@pytest.mark.slow
def test_continue_training_refuses_a_poisoned_checkpoint(tiny_dirs, marker, capsys):
    fold = _model_folder(tiny_dirs)
    poisoned_checkpoint(fold / "checkpoint_latest.pth", marker)
    before = _tree(fold)
    rc = train_main([str(TINY_ID), "3d_fullres", "0", "--c", "-device", "cpu"])
    line = _error(capsys)
    assert rc == 1 and not marker.exists()
    assert "checkpoint_latest.pth" in line and "posix.system" in line
    assert {k: v for k, v in _tree(fold).items() if not k.startswith("training_log")} == before


@pytest.mark.slow
def test_validation_only_refuses_a_poisoned_checkpoint(tiny_dirs, marker, capsys):
    fold = _model_folder(tiny_dirs)
    poisoned_checkpoint(fold / "checkpoint_final.pth", marker, ExecPayload)
    rc = train_main([str(TINY_ID), "3d_fullres", "0", "--val", "-device", "cpu"])
    line = _error(capsys)
    assert rc == 1 and not marker.exists()
    assert "checkpoint_final.pth" in line and "builtins.exec" in line
    assert not (fold / "validation").exists()


def test_pretrained_weights_refuses_a_poisoned_checkpoint(tiny_dirs, tmp_path, marker, capsys):
    weights = poisoned_checkpoint(tmp_path / "downloaded" / "pretrained.pth", marker)
    rc = train_main([str(TINY_ID), "3d_fullres", "0", "-pretrained_weights", str(weights), "-device", "cpu"])
    line = _error(capsys)
    assert rc == 1 and not marker.exists()
    assert str(weights) in line and "posix.system" in line
    assert not list(tiny_dirs["results"].rglob("*.pth"))


def _zip_with_checkpoint(tmp_path: Path, checkpoint: Path) -> Path:
    prefix = f"{TINY}/nnUNetTrainer__nnUNetPlans__3d_fullres"
    out = tmp_path / "shared_model.zip"
    with zipfile.ZipFile(out, "w") as zf:
        zf.write(REFERENCE_MODEL / "plans.json", f"{prefix}/plans.json")
        zf.write(REFERENCE_MODEL / "dataset.json", f"{prefix}/dataset.json")
        zf.write(checkpoint, f"{prefix}/fold_0/checkpoint_final.pth")
    return out


def test_install_refuses_a_zip_with_a_poisoned_checkpoint(nnunet_dirs, tmp_path, marker, capsys):
    bad = _zip_with_checkpoint(tmp_path, poisoned_checkpoint(tmp_path / "evil.pth", marker, PopenPayload))
    rc = install_main([str(bad)])
    line = _error(capsys)
    assert rc == 1 and not marker.exists()
    assert "fold_0/checkpoint_final.pth" in line and "subprocess.Popen" in line and "Nothing was installed" in line
    assert _tree(nnunet_dirs["results"]) == {}  # not even plans.json, no temporary files


def test_install_refuses_a_zip_with_a_truncated_checkpoint(nnunet_dirs, tmp_path, capsys):
    data = (REFERENCE_MODEL / "fold_0" / "checkpoint_final.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    rc = install_main([str(_zip_with_checkpoint(tmp_path, tmp_path / "cut.pth"))])
    line = _error(capsys)
    assert rc == 1 and "truncated or not a checkpoint" in line and _tree(nnunet_dirs["results"]) == {}


def test_export_refuses_a_poisoned_checkpoint(nnunet_dirs, tmp_path, marker, capsys):
    model = nnunet_dirs["results"] / "Dataset251_InferTiny" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(REFERENCE_MODEL, model)
    poisoned_checkpoint(model / "fold_0" / "checkpoint_final.pth", marker)
    out = tmp_path / "export.zip"
    rc = export_main(["-d", "251", "-o", str(out), "-c", "3d_fullres", "-f", "0"])
    line = _error(capsys)
    assert rc == 1 and not marker.exists() and "posix.system" in line
    assert not out.exists() and not list(tmp_path.glob(".nnunet_partial"))


def test_ensemble_refuses_a_poisoned_properties_pickle(tmp_path, marker, capsys):
    folders = make_ensemble_inputs(tmp_path, "labels")
    with open(folders[0] / "case_001.pkl", "wb") as f:
        pickle.dump({"spacing": [1.0, 1.0, 1.0], "payload": ShellPayload(marker)}, f)
    out = tmp_path / "out"
    rc = ensemble_main(["-i", *map(str, folders), "-o", str(out), "-np", "1", "--no_pbar"])
    line = _error(capsys)
    assert rc == 1 and not marker.exists()
    assert str(folders[0] / "case_001.pkl") in line and "posix.system" in line
    assert not (out / "case_001.nii.gz").exists() and not list(out.rglob(".nnunet_partial"))


def test_apply_postprocessing_refuses_a_poisoned_postprocessing_pkl(tmp_path, marker, capsys):
    pp = tmp_path / "postprocessing.pkl"
    with open(pp, "wb") as f:
        pickle.dump(([ExecPayload(marker)], [{}]), f)
    (tmp_path / "in").mkdir()
    rc = apply_postprocessing_main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-pp_pkl_file", str(pp),
                                    "-plans_json", str(REFERENCE_MODEL / "plans.json"),
                                    "-dataset_json", str(REFERENCE_MODEL / "dataset.json"), "-np", "1"])
    line = _error(capsys)
    assert rc == 1 and not marker.exists() and "builtins.exec" in line and str(pp) in line


@pytest.mark.slow
def test_training_refuses_a_poisoned_case_pickle(tiny_preprocessed, tmp_path, marker, monkeypatch, capsys):
    """A preprocessed folder copied from someone else: its case .pkl files are data too."""
    pre = tmp_path / "preprocessed"
    shutil.copytree(tiny_preprocessed["preprocessed"], pre)
    case_pkl = sorted((pre / TINY / "nnUNetPlans_3d_fullres").glob("*.pkl"))[0]
    with open(case_pkl, "wb") as f:
        pickle.dump({"spacing": [1.0] * 3, "payload": ShellPayload(marker)}, f)
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    monkeypatch.setenv("nnUNet_raw", str(tiny_preprocessed["raw"]))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    rc = train_main([str(TINY_ID), "3d_fullres", "all", "-tr", "nnUNetTrainer_1epoch", "-device", "cpu"])
    line = _error(capsys)
    assert rc == 1 and not marker.exists() and case_pkl.name in line and "posix.system" in line
