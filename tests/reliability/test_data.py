"""Faults in the data path (issue 12 items 2-5, 8, 9; issue 15 item 3): each test injects the real fault and
checks the exit status, the message and what is left on disk."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet.cli.fingerprint import extract_fingerprint_main
from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
from nnunet.cli.preprocess import preprocess_main
from nnunet.demo.synthetic import make_dataset
from nnunet.errors import DatasetError, NnunetError
from nnunet.io.integrity import verify_dataset_integrity
from nnunet.preprocessing.storage import (PreprocessedDataError, case_ids, load_case, marker_path, scan_folder)
from nnunet.training.data.dataset import case_identifiers
from nnunet.training.data.splits import train_val_keys
from nnunet.utils.json import save_json

CONFIG = "nnUNetPlans_3d_fullres"


def _planned(dirs, dataset_id: int, name: str, num_cases: int = 4, **overrides) -> tuple[Path, Path]:
    raw = make_dataset(dirs["raw"], dataset_id, name, "3d_iso", num_cases=num_cases, shape=(16, 16, 16),
                       **overrides)
    assert plan_and_preprocess_main(["-d", str(dataset_id), "--no_pp", "-npfp", "1", "--no_pbar"]) == 0
    return raw, dirs["preprocessed"] / raw.name


def _preprocess(dataset_id: int, *extra: str) -> int:
    return preprocess_main(["-d", str(dataset_id), "-c", "3d_fullres", "-np", "1", "--no_pbar", *extra])


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_temporaries(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if "partial" in p.name]
    assert leftovers == []


def _edit_image(path: Path, edit) -> None:
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    edit(array)
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))


# --- item 2: non-finite intensities ---------------------------------------------------------------------------

def test_integrity_check_rejects_inf_as_well_as_nan(nnunet_dirs):
    # NRRD keeps non-finite values (ITK's NIfTI writer does not)
    raw = make_dataset(nnunet_dirs["raw"], 301, "Inf", "3d_iso", num_cases=3, shape=(12, 12, 12), file_ending=".nrrd")
    _edit_image(raw / "imagesTr" / "case_001_0000.nrrd", lambda a: a.__setitem__((0, 0, slice(0, 2)), np.inf))
    _edit_image(raw / "imagesTr" / "case_002_0000.nrrd", lambda a: a.__setitem__((1, 1, 1), -np.inf))
    with pytest.raises(DatasetError) as info:
        verify_dataset_integrity(raw, num_processes=1)
    message = str(info.value)
    assert "case_001_0000.nrrd contains non-finite values (2 +Inf)" in message
    assert "case_002_0000.nrrd contains non-finite values (1 -Inf)" in message


def test_fingerprint_refuses_non_finite_images_without_the_flag(nnunet_dirs, capsys):
    raw = make_dataset(nnunet_dirs["raw"], 302, "NaNFp", "3d_iso", num_cases=3, shape=(12, 12, 12), file_ending=".nrrd")
    _edit_image(raw / "imagesTr" / "case_002_0000.nrrd", lambda a: a.__setitem__((2, 2, 2), np.nan))
    assert extract_fingerprint_main(["-d", "302", "-np", "1", "--no_pbar"]) == 1
    err = capsys.readouterr().err
    assert "case_002_0000.nrrd contains non-finite values (1 NaN)" in err and "Traceback" not in err
    assert not (nnunet_dirs["preprocessed"] / raw.name / "dataset_fingerprint.json").exists()


def test_fingerprint_of_an_all_background_dataset_is_refused_not_written_as_nan(nnunet_dirs, capsys):
    raw = make_dataset(nnunet_dirs["raw"], 303, "Empty", "3d_iso", num_cases=2, shape=(12, 12, 12))
    for label in (raw / "labelsTr").iterdir():
        _edit_image(label, lambda a: a.__setitem__(slice(None), 0))
    assert extract_fingerprint_main(["-d", "303", "-np", "1", "--no_pbar"]) == 1
    assert "no label file" in capsys.readouterr().err
    assert not (nnunet_dirs["preprocessed"] / raw.name / "dataset_fingerprint.json").exists()


def test_json_we_write_is_standard_json(tmp_path):
    with pytest.raises(NnunetError, match="NaN or Infinity"):
        save_json({"mean": float("nan")}, tmp_path / "a.json")
    assert not (tmp_path / "a.json").exists()
    save_json({"Dice": float("nan")}, tmp_path / "summary.json", allow_nan=True)  # nnU-Net's summary format
    assert json.loads((tmp_path / "summary.json").read_text())["Dice"] != 0


# --- item 3: plans belong to their dataset; staging then swap ------------------------------------------------

def test_foreign_plans_are_refused_before_anything_is_written(nnunet_dirs, capsys):
    _, pre = _planned(nnunet_dirs, 304, "Mine")
    assert _preprocess(304) == 0
    plans_file = pre / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    plans["dataset_name"] = "Dataset999_Other"
    plans_file.write_text(json.dumps(plans))
    before = _snapshot(pre)
    assert _preprocess(304) == 1
    err = capsys.readouterr().err
    assert "planned for 'Dataset999_Other', not for 'Dataset304_Mine'" in err and "Traceback" not in err
    assert _snapshot(pre) == before  # nothing written, nothing deleted
    from nnunet.cli.train import train_main

    assert train_main(["304", "3d_fullres", "0", "-device", "cpu"]) == 1
    assert "planned for 'Dataset999_Other'" in capsys.readouterr().err


def test_failed_rebuild_keeps_the_old_data_and_a_rerun_swaps_the_new_in(nnunet_dirs, capsys):
    raw, pre = _planned(nnunet_dirs, 305, "Swap")
    assert _preprocess(305) == 0
    old = _snapshot(pre / CONFIG)
    marker = marker_path(pre / CONFIG).read_text()
    label = raw / "labelsTr" / "case_003.nii.gz"
    good = label.read_bytes()
    label.write_bytes(b"\x1f\x8b broken")
    assert _preprocess(305) == 1
    assert "case_003.nii.gz" in capsys.readouterr().err
    assert _snapshot(pre / CONFIG) == old and marker_path(pre / CONFIG).read_text() == marker
    assert (pre / f"{CONFIG}.staging").is_dir()
    label.write_bytes(good)
    assert _preprocess(305) == 0  # the fixed case is redone (its raw file is newer), the others are reused
    assert "3 case(s) already complete in the staging folder" in capsys.readouterr().out
    assert case_ids(pre / CONFIG) == [f"case_{i:03d}" for i in range(4)]
    assert not (pre / f"{CONFIG}.staging").exists() and not list(pre.glob(f".{CONFIG}*"))
    _no_temporaries(pre)


def test_a_case_removed_from_the_dataset_does_not_survive_in_the_staging_folder(nnunet_dirs, capsys):
    raw, pre = _planned(nnunet_dirs, 317, "Removed")
    (raw / "labelsTr" / "case_001.nii.gz").write_bytes(b"broken")
    assert _preprocess(317) == 1  # case_000 staged, case_001 fails
    assert "case_000" in case_ids(pre / f"{CONFIG}.staging")
    for folder in (raw / "imagesTr", raw / "labelsTr"):  # the user drops cases 000 and 001 from the dataset
        for f in folder.glob("case_00[01]*"):
            f.unlink()
    dataset_json = json.loads((pre / "dataset.json").read_text())
    dataset_json["numTraining"] = 2
    for path in (pre / "dataset.json", raw / "dataset.json"):
        path.write_text(json.dumps(dataset_json))
    assert _preprocess(317) == 0
    assert case_identifiers(pre / CONFIG) == ["case_002", "case_003"]


# --- item 4: complete or absent on a full disk ----------------------------------------------------------------

@pytest.fixture
def tiny_disk(filesystems):
    """A 2 MB tmpfs (the shared fixture skips, with the reason, where mounting is not possible)."""
    return filesystems.tmpfs("tiny", "2m")


def test_full_disk_gives_a_clear_error_and_publishes_no_truncated_file(nnunet_dirs, tiny_disk, monkeypatch,
                                                                      capsys):
    raw = make_dataset(nnunet_dirs["raw"], 306, "Full", "3d_iso", num_cases=12, shape=(48, 48, 48))
    assert plan_and_preprocess_main(["-d", "306", "--no_pp", "-npfp", "1", "--no_pbar"]) == 0
    pre = tiny_disk / raw.name
    shutil.copytree(nnunet_dirs["preprocessed"] / raw.name, pre)
    monkeypatch.setenv("nnUNet_preprocessed", str(tiny_disk))
    assert _preprocess(306) == 1
    err = capsys.readouterr().err
    assert "ENOSPC" in err and "No space left" in err and "Traceback" not in err
    assert not (pre / CONFIG).exists()  # nothing half-built is published
    contents = scan_folder(pre / f"{CONFIG}.staging")
    assert contents.complete  # some cases fit
    for case in contents.complete:  # and every file that was published is whole
        data, seg, props = load_case(pre / f"{CONFIG}.staging", case)
        assert data[:].shape[1:] == seg[:].shape[1:] and "class_locations" in props
    for name in os.listdir(pre / f"{CONFIG}.staging"):  # a partial case has whole files too, just not all
        if name.endswith(".b2nd"):
            import blosc2

            assert blosc2.open(str(pre / f"{CONFIG}.staging" / name), mode="r")[:].size > 0
    _no_temporaries(pre)


# --- item 5: completion marker, splits against the data -------------------------------------------------------

def test_training_refuses_an_incompletely_preprocessed_folder(nnunet_dirs):
    _, pre = _planned(nnunet_dirs, 307, "Incomplete")
    assert _preprocess(307) == 0
    folder = pre / CONFIG
    assert case_identifiers(folder) == [f"case_{i:03d}" for i in range(4)]
    (folder / "case_002.pkl").unlink()  # a case whose last file is missing: interrupted write
    with pytest.raises(PreprocessedDataError, match="incompletely written cases \\(case_002\\).* Re-run "
                                                    "nnUNet_preprocess for this configuration"):
        case_identifiers(folder)
    for name in ("case_002.b2nd", "case_002_seg.b2nd"):  # the whole case gone: the marker still lists it
        (folder / name).unlink()
    with pytest.raises(PreprocessedDataError, match="lacks cases its completion marker lists: case_002.* Re-run "
                                                    "nnUNet_preprocess"):
        case_identifiers(folder)
    marker_path(folder).unlink()  # a folder without marker (as nnU-Net writes it): compared with numTraining
    with pytest.raises(PreprocessedDataError, match="holds 3 preprocessed cases, but dataset.json lists 4 "
                                                    "training cases and there is no completion marker .*"
                                                    "preprocessing did not finish"):
        case_identifiers(folder)


def test_training_refuses_data_made_with_other_plans(nnunet_dirs):
    _, pre = _planned(nnunet_dirs, 308, "Replanned")
    assert _preprocess(308) == 0
    plans = json.loads((pre / "nnUNetPlans.json").read_text())
    plans["configurations"]["3d_fullres"]["spacing"] = [2.0, 2.0, 2.0]
    (pre / "nnUNetPlans.json").write_text(json.dumps(plans))
    with pytest.raises(PreprocessedDataError, match="other settings than the current plans \\(spacing changed "
                                                    "since\\).* Re-run nnUNet_preprocess"):
        case_identifiers(pre / CONFIG)


def test_splits_that_do_not_match_the_data_are_reported(nnunet_dirs):
    _, pre = _planned(nnunet_dirs, 309, "Splits", num_cases=6)
    assert _preprocess(309) == 0
    cases = case_identifiers(pre / CONFIG)
    save_json([{"train": cases[:3], "val": cases[3:5]}, {"train": cases[1:4], "val": ["case_777"]}],
              pre / "splits_final.json")
    with pytest.raises(DatasetError, match="names cases that are not in the preprocessed data: case_777"):
        train_val_keys(pre, 0, cases, log=lambda m: None)
    save_json([{"train": cases[:3], "val": cases[3:5]}], pre / "splits_final.json")
    logged = []
    train, val = train_val_keys(pre, 0, cases, log=logged.append)
    assert train == cases[:3] and val == cases[3:5]
    assert any("1 preprocessed case(s) are in no fold" in m and "case_005" in m for m in logged)


# --- item 8: corrupt files and malformed plans ----------------------------------------------------------------

def test_truncated_b2nd_and_pkl_name_the_file_and_say_rerun(nnunet_dirs):
    _, pre = _planned(nnunet_dirs, 310, "Corrupt")
    assert _preprocess(310) == 0
    folder = pre / CONFIG
    data_file = folder / "case_001.b2nd"
    data_file.write_bytes(data_file.read_bytes()[:100])
    with pytest.raises(PreprocessedDataError, match="case_001.b2nd is not a readable .b2nd file.*Re-run"):
        load_case(folder, "case_001")
    pkl = folder / "case_002.pkl"
    pkl.write_bytes(pkl.read_bytes()[:20])
    with pytest.raises(PreprocessedDataError, match="case_002.pkl.*truncated or corrupt.*Re-run"):
        load_case(folder, "case_002")


def test_malicious_case_pickle_is_not_executed(nnunet_dirs, tmp_path):
    _, pre = _planned(nnunet_dirs, 311, "Evil")
    assert _preprocess(311) == 0
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle

    (pre / CONFIG / "case_000.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(NnunetError, match="case_000.pkl"):
        load_case(pre / CONFIG, "case_000")
    assert not marker.exists()


@pytest.mark.parametrize("edit, phrase", [
    (lambda p: p.pop("transpose_forward"), "'transpose_forward' is missing; it must be a permutation of [0, 1, 2]"),
    (lambda p: p["configurations"]["3d_fullres"].__setitem__("patch_size", "32x32"),
     "configuration '3d_fullres', key 'patch_size' must be a list of 3 positive integers, one per spatial axis, "
     "got '32x32'"),
])
def test_malformed_plans_name_the_key_and_the_expected_type(nnunet_dirs, capsys, edit, phrase):
    _, pre = _planned(nnunet_dirs, 312, "Malformed")
    plans = json.loads((pre / "nnUNetPlans.json").read_text())
    edit(plans)
    (pre / "nnUNetPlans.json").write_text(json.dumps(plans))
    assert _preprocess(312) == 1
    err = capsys.readouterr().err
    assert phrase in err and "Traceback" not in err
    assert not (pre / CONFIG).exists() and not (pre / f"{CONFIG}.staging").exists()


# --- item 9: cheap checks always run --------------------------------------------------------------------------

@pytest.mark.parametrize("fault, phrase", [
    ("label value", "Unexpected labels found in file"),
    ("shape", "differs from label shape"),
])
def test_preprocessing_checks_labels_and_shapes_without_the_flag(nnunet_dirs, capsys, fault, phrase):
    raw, pre = _planned(nnunet_dirs, 313, "Cheap")
    label = raw / "labelsTr" / "case_001.nii.gz"
    if fault == "label value":
        _edit_image(label, lambda a: a.__setitem__((3, 3, 3), 7))
    else:
        image = sitk.ReadImage(str(label))
        sitk.WriteImage(image[:, :, :12], str(label))
    assert _preprocess(313) == 1
    err = capsys.readouterr().err
    assert phrase in err and "case_001" in err and "Traceback" not in err
    if fault == "label value":
        assert "[7]" in err
    assert not (pre / CONFIG).exists()


# --- issue 15 item 3: sharded preprocessing -------------------------------------------------------------------

def _assert_same_cases(a: Path, b: Path) -> None:
    assert sorted(os.listdir(a)) == sorted(os.listdir(b))
    for case in case_ids(a):
        da, sa, pa = load_case(a, case)
        db, sb, pb = load_case(b, case)
        assert np.array_equal(da[:], db[:]) and np.array_equal(sa[:], sb[:])
        assert list(da.chunks) == list(db.chunks) and list(da.blocks) == list(db.blocks)
        assert pickle_equal(pa, pb)


def pickle_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(pickle_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(pickle_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def test_two_shards_equal_one_unsharded_run_file_by_file(nnunet_dirs, capsys, monkeypatch):
    _, pre = _planned(nnunet_dirs, 314, "Shards", num_cases=5)
    unsharded = nnunet_dirs["preprocessed"].parent / "unsharded"
    shutil.copytree(nnunet_dirs["preprocessed"], unsharded)

    assert _preprocess(314, "-num_parts", "2", "-part_id", "1") == 0
    out = capsys.readouterr().out
    assert "part 2 of 2: 2 of 5 cases" in out and "this part is done" in out
    assert not (pre / CONFIG).exists() and case_ids(pre / f"{CONFIG}.staging") == ["case_001", "case_003"]
    assert _preprocess(314, "-num_parts", "2", "-part_id", "1") == 0  # idempotent: nothing redone
    assert "2 case(s) already complete" in capsys.readouterr().out
    assert _preprocess(314, "-num_parts", "2", "-part_id", "0") == 0
    assert "complete (5 cases)" in capsys.readouterr().out
    assert json.loads(marker_path(pre / CONFIG).read_text())["num_cases"] == 5
    assert sorted(os.listdir(pre / "gt_segmentations")) == [f"case_{i:03d}.nii.gz" for i in range(5)]

    monkeypatch.setenv("nnUNet_preprocessed", str(unsharded))
    assert _preprocess(314) == 0
    _assert_same_cases(pre / CONFIG, unsharded / pre.name / CONFIG)
    _no_temporaries(pre)


@pytest.mark.slow
def test_shards_running_at_the_same_time_swap_in_exactly_once(nnunet_dirs):
    _, pre = _planned(nnunet_dirs, 315, "Parallel", num_cases=6)
    command = [str(Path(sys.executable).parent / "nnUNet_preprocess"), "-d", "315", "-c", "3d_fullres", "-np", "1",
               "--no_pbar", "-num_parts", "2"]
    procs = [subprocess.Popen(command + ["-part_id", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=os.environ.copy()) for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    assert sum("complete (6 cases)" in o[0] for o in outputs) == 1  # exactly one part swapped the folder in
    assert case_identifiers(pre / CONFIG) == [f"case_{i:03d}" for i in range(6)]
    assert not (pre / f"{CONFIG}.staging").exists()
    _no_temporaries(pre)


def test_a_bad_part_id_is_refused_before_any_work(nnunet_dirs, capsys):
    _, pre = _planned(nnunet_dirs, 316, "BadPart")
    before = sorted(p.name for p in pre.iterdir())
    assert preprocess_main(["-d", "316", "-num_parts", "2", "-part_id", "2", "--no_pbar"]) == 1
    err = capsys.readouterr().err
    assert "-part_id must be in [0, -num_parts): got part_id=2, num_parts=2. Run parts 0 ... 1, one per node." in err
    assert sorted(p.name for p in pre.iterdir()) == before  # no staging folder, nothing preprocessed



def test_staging_claimed_by_another_part_while_this_one_checks_it_is_not_an_error(tmp_path, monkeypatch):
    """The race behind a flaky shard test: between this part's look at the staging folder and its scan, the other
    part renames the folder to swap it in. This part must simply find it gone (the other part publishes)."""
    from nnunet.preprocessing import staging

    final = tmp_path / "nnUNetPlans_3d_fullres"
    build = staging.StagedBuild(final, "3d_fullres", "plans.json", {}, frozenset())
    build.staging.mkdir()
    real_scan = staging.scan_folder

    def other_part_claims_first(folder):
        os.rename(folder, tmp_path / ".claimed-by-the-other-part")
        return real_scan(folder)

    monkeypatch.setattr(staging, "scan_folder", other_part_claims_first)
    assert build.publish_if_complete(["case_000"]) is False
    assert not final.exists() and (tmp_path / ".claimed-by-the-other-part").is_dir()


def test_a_part_that_looked_before_another_claimed_the_staging_folder_leaves_it_alone(tmp_path, monkeypatch):
    """The race behind the other flaky shard failure: this part reads no signature, then the other part claims
    the staging folder (signature, then folder) before this part looks at the folder. This part must join it,
    not clear it as a leftover."""
    from nnunet.preprocessing import staging

    final = tmp_path / "nnUNetPlans_3d_fullres"
    signature = {"configuration": "3d_fullres", "settings": {"spacing": [1, 1, 1]}}
    real_read = staging._read_signature
    calls = []

    def stale_first_look(path):
        calls.append(path)
        if len(calls) == 1:  # our first look; the other part claims the folder right after it
            staging._create_exclusively(staging.signature_file(final), staging._canonical(signature))
            staging.staging_folder(final).mkdir()
            (staging.staging_folder(final) / "case_000.b2nd").write_bytes(b"written by the other part")
            return None
        return real_read(path)

    monkeypatch.setattr(staging, "_read_signature", stale_first_look)
    staging._ensure_staging(final, signature)
    assert (staging.staging_folder(final) / "case_000.b2nd").read_bytes() == b"written by the other part"
    assert not list(tmp_path.glob(".*stale-*"))


def test_a_leftover_staging_folder_without_signature_is_cleared(tmp_path):
    from nnunet.preprocessing import staging

    final = tmp_path / "nnUNetPlans_3d_fullres"
    staging.staging_folder(final).mkdir()
    (staging.staging_folder(final) / "case_000.b2nd").write_bytes(b"from a run killed while clearing")
    staging._ensure_staging(final, {"configuration": "3d_fullres", "settings": {}})
    assert list(staging.staging_folder(final).iterdir()) == []
    assert staging.signature_file(final).is_file()
