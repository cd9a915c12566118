"""nnUNet_export_model_to_zip / nnUNet_install_pretrained_model_from_zip / nnUNet_download_pretrained_model_by_url."""
from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.predict import predict_main
from nnunet.cli.sharing import download_main, export_main, install_main
from tests.inference.helpers import IMAGES, INFERENCE_FIXTURES, MODEL

DATASET = "Dataset251_InferTiny"
TRAINER = "nnUNetTrainer_1epoch"
MODEL_NAME = f"{TRAINER}__nnUNetPlans__3d_fullres"
FAST = ["-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar"]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative posix path -> content)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def trained(nnunet_dirs):
    """The reference-trained fixture model in nnUNet_results, completed with the files a full training leaves."""
    model = nnunet_dirs["results"] / DATASET / MODEL_NAME
    shutil.copytree(MODEL, model)
    fold = model / "fold_0"
    (fold / "progress.png").write_bytes(b"\x89PNG fake")
    (fold / "debug.json").write_text("{}")
    shutil.copy(fold / "checkpoint_final.pth", fold / "checkpoint_best.pth")
    (fold / "training_log_2026_1_1_00_00_00.txt").write_text("log")
    val = fold / "validation"
    val.mkdir()
    (val / "summary.json").write_text('{"foreground_mean": {"Dice": 0.9}}')
    for ending in (".nii.gz", ".npz", ".pkl"):
        (val / f"case_000{ending}").write_bytes(b"x")
    cv = model / "crossval_results_folds_0"
    cv.mkdir()
    for name in ("summary.json", "postprocessing.pkl", "postprocessing.json", "case_000.nii.gz"):
        (cv / name).write_bytes(b"cv")
    ens = nnunet_dirs["results"] / DATASET / "ensembles"
    (ens / f"ensemble___{MODEL_NAME}___{TRAINER}__nnUNetPlans__2d___0").mkdir(parents=True)
    (ens / f"ensemble___{MODEL_NAME}___{TRAINER}__nnUNetPlans__2d___0" / "summary.json").write_text("{}")
    (ens / f"ensemble___{MODEL_NAME}___otherTrainer__nnUNetPlans__3d_fullres___0").mkdir()
    (ens / f"ensemble___{MODEL_NAME}___otherTrainer__nnUNetPlans__3d_fullres___0" / "summary.json").write_text("{}")
    (nnunet_dirs["results"] / DATASET / "inference_information.json").write_text("{}")
    return model


def _export(tmp_path, *extra, name="model.zip"):
    out = tmp_path / name
    return export_main(["-d", "251", "-o", str(out), "-tr", TRAINER, "-f", "0", *extra]), out


def _fresh_results(tmp_path, monkeypatch, name="results_fresh") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    monkeypatch.setenv("nnUNet_results", str(folder))
    return folder


def test_export_install_predict(trained, tmp_path, monkeypatch, capsys):
    rc, out = _export(tmp_path, "-c", "3d_fullres")
    assert rc == 0, capsys.readouterr().err
    names = set(zipfile.ZipFile(out).namelist())
    prefix = f"{DATASET}/{MODEL_NAME}"
    assert names == {f"{prefix}/fold_0/checkpoint_final.pth", f"{prefix}/fold_0/debug.json",
                     f"{prefix}/fold_0/progress.png", f"{prefix}/fold_0/validation/summary.json",
                     f"{prefix}/crossval_results_folds_0/summary.json",
                     f"{prefix}/crossval_results_folds_0/postprocessing.pkl",
                     f"{prefix}/crossval_results_folds_0/postprocessing.json",
                     f"{prefix}/plans.json", f"{prefix}/dataset.json", f"{prefix}/dataset_fingerprint.json",
                     f"{DATASET}/inference_information.json"}  # 2d is not exported: its ensemble is left out
    # an existing output is never overwritten
    stamp = out.stat().st_mtime_ns
    rc, _ = _export(tmp_path, "-c", "3d_fullres")
    assert rc == 1 and "already exists" in capsys.readouterr().err and out.stat().st_mtime_ns == stamp

    fresh = _fresh_results(tmp_path, monkeypatch)
    assert install_main([str(out)]) == 0
    installed = fresh / DATASET / MODEL_NAME
    assert (installed / "fold_0" / "checkpoint_final.pth").read_bytes() == \
        (trained / "fold_0" / "checkpoint_final.pth").read_bytes()
    assert set(_tree(fresh)) == names
    assert not [p for p in fresh.rglob("*") if ".partial" in p.name]
    # installing the same zip again is a no-op
    assert install_main([str(out)]) == 0 and "already present" in capsys.readouterr().out

    pred = tmp_path / "pred"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(IMAGES / "ts_small_0000.nii.gz", inputs)
    rc = predict_main(["-i", str(inputs), "-o", str(pred), "-d", "251", "-c", "3d_fullres", "-tr", TRAINER, "-f", "0",
                       "--disable_tta", *FAST])
    assert rc == 0, capsys.readouterr().err
    with np.load(INFERENCE_FIXTURES / "reference_predictions.npz") as npz:
        expected = npz["no_tta/ts_small/seg"]
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(pred / "ts_small.nii.gz")))
    assert (seg == expected).mean() >= 0.999


def test_export_cv_predictions_and_matching_ensemble(trained, tmp_path, capsys):
    twod = trained.parent / f"{TRAINER}__nnUNetPlans__2d"
    shutil.copytree(trained, twod)
    rc, out = _export(tmp_path, "-c", "3d_fullres", "2d", "--exp_cv_preds", "-chk", "checkpoint_final.pth",
                      "checkpoint_best.pth")
    assert rc == 0, capsys.readouterr().err
    names = set(zipfile.ZipFile(out).namelist())
    prefix = f"{DATASET}/{MODEL_NAME}"
    assert f"{prefix}/fold_0/validation/case_000.nii.gz" in names
    assert f"{prefix}/fold_0/checkpoint_best.pth" in names
    assert not any(n.endswith((".npz", ".pkl")) and "/validation/" in n for n in names)
    assert f"{prefix}/crossval_results_folds_0/case_000.nii.gz" in names
    assert not any("training_log" in n for n in names)
    ensembles = {n.split("/")[2] for n in names if "/ensembles/" in n}
    assert ensembles == {f"ensemble___{MODEL_NAME}___{TRAINER}__nnUNetPlans__2d___0"}


def test_export_strict_and_not_strict(trained, tmp_path, capsys):
    rc, out = _export(tmp_path, "-c", "3d_fullres", "3d_lowres")
    err = capsys.readouterr().err
    assert rc == 1 and "3d_lowres" in err and "--not_strict" in err and not out.exists()
    rc, out = _export(tmp_path, "-c", "3d_fullres", "-f", "0", "1")
    assert rc == 1 and "fold_1" in capsys.readouterr().err and not out.exists()
    rc, out = _export(tmp_path, "-c", "3d_fullres", "-chk", "checkpoint_latest.pth")
    assert rc == 1 and "checkpoint_latest.pth" in capsys.readouterr().err and not out.exists()
    # --not_strict skips what is missing (nnU-Net's flag never takes effect; ours does)
    rc = export_main(["-d", "251", "-o", str(tmp_path / "ns.zip"), "-tr", TRAINER, "-f", "0", "1",
                      "-c", "3d_fullres", "3d_lowres", "--not_strict"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "fold_1" in text and "3d_lowres" in text
    names = zipfile.ZipFile(tmp_path / "ns.zip").namelist()
    assert f"{DATASET}/{MODEL_NAME}/fold_0/checkpoint_final.pth" in names
    rc = export_main(["-d", "251", "-o", str(tmp_path / "none.zip"), "-tr", TRAINER, "-c", "2d", "--not_strict"])
    assert rc == 1 and "Nothing to export" in capsys.readouterr().err
    assert not (tmp_path / "none.zip").exists()


def _crafted_zip(path: Path, entries: list[tuple[str, bytes]], symlink: tuple[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name as given (no sanitising)
        if symlink:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, symlink[1])
    return path


@pytest.mark.parametrize("bad", ["../evil.txt", f"{DATASET}/../../evil.txt", "ABSOLUTE", "C:/evil.txt",
                                 "..\\evil.txt", f"{DATASET}/m/./../../../evil.txt"])
def test_install_refuses_escaping_entries(nnunet_dirs, tmp_path, capsys, bad):
    if bad == "ABSOLUTE":
        bad = str(tmp_path / "abs_evil.txt")
    good = f"{DATASET}/{MODEL_NAME}/plans.json"
    archive = _crafted_zip(tmp_path / "bad.zip", [(good, b"{}"), (bad, b"pwned")])
    before = _tree(tmp_path)
    assert install_main([str(archive)]) == 1
    err = capsys.readouterr().err
    assert "Refusing to install" in err and repr(bad) in err and "Nothing was written" in err
    assert _tree(tmp_path) == before  # nothing inside nnUNet_results, nothing outside
    assert not list(nnunet_dirs["results"].iterdir())


def test_install_refuses_symlink_entries_and_links_leading_out(nnunet_dirs, tmp_path, capsys):
    archive = _crafted_zip(tmp_path / "link.zip", [(f"{DATASET}/a/plans.json", b"{}")],
                           symlink=(f"{DATASET}/a/fold_0", "/etc"))
    assert install_main([str(archive)]) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert not list(nnunet_dirs["results"].iterdir())
    # a link inside a dataset folder that leads outside is not followed...
    outside = tmp_path / "outside"
    outside.mkdir()
    (nnunet_dirs["results"] / DATASET).mkdir()
    os.symlink(outside, nnunet_dirs["results"] / DATASET / "model")
    archive = _crafted_zip(tmp_path / "through.zip", [(f"{DATASET}/model/evil.txt", b"x")])
    assert install_main([str(archive)]) == 1
    assert "outside" in capsys.readouterr().err and not list(outside.iterdir())
    # ...but a dataset folder that is itself a link (a common way to put data elsewhere) is
    shutil.rmtree(nnunet_dirs["results"] / DATASET)
    os.symlink(outside, nnunet_dirs["results"] / DATASET)
    archive = _crafted_zip(tmp_path / "ok.zip", [(f"{DATASET}/model/plans.json", b"{}")])
    assert install_main([str(archive)]) == 0
    assert (outside / "model" / "plans.json").read_bytes() == b"{}"


def test_install_does_not_overwrite_differing_files(nnunet_dirs, tmp_path, capsys):
    target = nnunet_dirs["results"] / DATASET / MODEL_NAME
    target.mkdir(parents=True)
    (target / "plans.json").write_text("mine")
    archive = _crafted_zip(tmp_path / "m.zip", [(f"{DATASET}/{MODEL_NAME}/plans.json", b"theirs"),
                                                (f"{DATASET}/{MODEL_NAME}/dataset.json", b"{}")])
    assert install_main([str(archive)]) == 1
    err = capsys.readouterr().err
    assert "would overwrite 1 existing file" in err and "--overwrite" in err
    assert (target / "plans.json").read_text() == "mine" and not (target / "dataset.json").exists()
    assert install_main([str(archive), "--overwrite"]) == 0
    assert (target / "plans.json").read_text() == "theirs" and (target / "dataset.json").is_file()


def test_install_corrupt_zip_writes_nothing(nnunet_dirs, tmp_path, capsys):
    archive = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{DATASET}/{MODEL_NAME}/a.json", b"A" * 1000)
        zf.writestr(f"{DATASET}/{MODEL_NAME}/b.json", b"B" * 1000)
    data = bytearray(archive.read_bytes())
    data[data.index(b"B" * 1000) + 10] = ord("C")  # the second member fails its CRC check
    archive.write_bytes(bytes(data))
    assert install_main([str(archive)]) == 1
    assert "corrupt" in capsys.readouterr().err
    assert not [p for p in nnunet_dirs["results"].rglob("*") if p.is_file()]
    assert not list(nnunet_dirs["results"].iterdir())  # folders created for the extraction are removed again
    (tmp_path / "notazip.zip").write_text("hello")
    assert install_main([str(tmp_path / "notazip.zip")]) == 1
    assert "not a zip file" in capsys.readouterr().err


def test_download_from_file_url(trained, tmp_path, monkeypatch, capsys):
    rc, out = _export(tmp_path, "-c", "3d_fullres")
    assert rc == 0
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    fresh = _fresh_results(tmp_path, monkeypatch)
    assert download_main([out.as_uri(), "--no_pbar"]) == 0, capsys.readouterr().err
    assert set(_tree(fresh)) == set(zipfile.ZipFile(out).namelist())
    assert not list(home.iterdir())  # the temporary download is deleted
    assert download_main([(tmp_path / "missing.zip").as_uri(), "--no_pbar"]) == 1
    assert "Cannot download" in capsys.readouterr().err
    assert not list(home.iterdir())
    (tmp_path / "page.html").write_text("<html>not a model</html>")
    assert download_main([(tmp_path / "page.html").as_uri(), "--no_pbar"]) == 1
    assert "not a zip file" in capsys.readouterr().err and not list(home.iterdir())


def test_exported_zip_installs_with_reference_layout(trained, tmp_path):
    """The zip holds plain relative paths, so nnU-Net's own installer (ZipFile.extractall) gives the same tree."""
    rc, out = _export(tmp_path, "-c", "3d_fullres")
    assert rc == 0
    target = tmp_path / "plain_extract"
    zipfile.ZipFile(out).extractall(target)
    assert json.loads((target / DATASET / MODEL_NAME / "plans.json").read_text())["dataset_name"] == DATASET


@pytest.mark.skipif(not Path("/work/ref/.venv-ref/bin/python").is_file(), reason="reference nnU-Net venv not available")
def test_export_matches_reference_file_list(trained, tmp_path, monkeypatch):
    import subprocess

    rc, ours = _export(tmp_path, "-c", "3d_fullres")
    assert rc == 0
    reference = tmp_path / "reference.zip"
    code = ("from nnunetv2.model_sharing.model_export import export_pretrained_model as e; "
            f"e(251, {str(reference)!r}, configurations=('3d_fullres',), trainer={TRAINER!r}, folds=(0,))")
    subprocess.run(["/work/ref/.venv-ref/bin/python", "-c", code], check=True, env=os.environ.copy(),
                   capture_output=True)
    assert sorted(zipfile.ZipFile(ours).namelist()) == sorted(zipfile.ZipFile(reference).namelist())
    # and our installer takes the reference's zip
    fresh = _fresh_results(tmp_path, monkeypatch)
    assert install_main([str(reference)]) == 0
    assert set(_tree(fresh)) == set(zipfile.ZipFile(reference).namelist())


def test_download_over_http_with_progress(trained, tmp_path, monkeypatch, capsys):
    import functools
    import http.server
    import threading

    rc, out = _export(tmp_path, "-c", "3d_fullres")
    assert rc == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        (tmp_path / "home").mkdir()
        fresh = _fresh_results(tmp_path, monkeypatch)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert download_main([f"{base}/{out.name}"]) == 0
        assert "Downloading" in capsys.readouterr().err  # the progress bar
        assert set(_tree(fresh)) == set(zipfile.ZipFile(out).namelist())
        assert download_main([f"{base}/nothing_here.zip"]) == 1
        assert "Cannot download" in capsys.readouterr().err
        assert not list((tmp_path / "home").iterdir())
    finally:
        server.shutdown()
        server.server_close()
