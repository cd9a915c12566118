"""Readers/writers: parity with nnU-Net 2.8.1's readers on awkward geometry, round trips, errors."""
from __future__ import annotations

import gzip
import json
import math
import warnings

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import tifffile

from nnunet.errors import DatasetError
from nnunet.io.readers import (NaturalImage2DIO, NibabelIO, NibabelIOWithReorient, SimpleITKIO,
                               SimpleITKIOWithReorient, Tiff3DIO, determine_reader, reader_class)
from tests.helpers import FIXTURES
from tests.io.geometry_cases import write_cases
from tests.io.reader_probe import _file_geometry, probe

REFERENCE = json.loads((FIXTURES / "io" / "reader_parity.json").read_text())


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    folder = tmp_path_factory.mktemp("geometry")
    cases = write_cases(folder)
    result = probe(folder, cases, reader_class, lambda ending, f: determine_reader(ending, f).__name__)
    return folder, cases, result


def _assert_same(ours, ref, where: str) -> None:
    if isinstance(ref, dict):
        assert isinstance(ours, dict) and set(ours) >= set(ref), f"{where}: keys {sorted(ref)} vs {ours!r}"
        for k in ref:
            _assert_same(ours[k], ref[k], f"{where}.{k}")
    elif isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref), f"{where}: {ours!r} != {ref!r}"
        for i, (o, r) in enumerate(zip(ours, ref)):
            _assert_same(o, r, f"{where}[{i}]")
    elif isinstance(ref, float) and not isinstance(ours, str):
        assert math.isclose(ours, ref, rel_tol=1e-12, abs_tol=1e-12), f"{where}: {ours!r} != {ref!r}"
    else:
        assert ours == ref, f"{where}: {ours!r} != {ref!r}"


@pytest.mark.parametrize("key", sorted(k for k, v in REFERENCE["readers"].items() if "error" not in v))
def test_reader_matches_reference(ours, key):
    """Array (bit-exact), spacing (array order z, y, x), geometry properties and the written file agree."""
    ref = REFERENCE["readers"][key]
    mine = ours[2]["readers"][key]
    ref_written = ref.pop("written") if "error" in ref.get("written", {}) else None
    _assert_same(mine, ref, key)
    if ref_written is not None:  # the reference cannot write this one; ours must still round-trip
        assert mine["written"]["equal"], key
        ref["written"] = ref_written


def test_auto_detection_matches_reference(ours):
    assert ours[2]["auto"] == REFERENCE["auto"]
    assert REFERENCE["auto"]["uncompressed_nii"] == "NibabelIO"
    assert REFERENCE["auto"]["tiff_3d"] == "Tiff3DIO"
    assert REFERENCE["auto"]["oblique_3d"] == "SimpleITKIO"


@pytest.mark.parametrize("key", sorted(REFERENCE["readers"]))
def test_written_segmentation_round_trips(ours, key):
    """read -> write_seg -> read_seg gives the same voxels and geometry as the input, for every reader."""
    folder, cases, result = ours
    mine = result["readers"][key]
    case, reader = key.split("/")
    if "error" in mine:
        pytest.fail(f"{key}: our reader failed: {mine}")
    assert mine["written"]["equal"], key
    assert mine["written"]["properties"]["spacing"] == pytest.approx(mine["properties"]["spacing"], abs=1e-6)
    src = _file_geometry(folder / cases[case]["files"][0])
    if src:
        dim = len(mine["written"]["file"]["size"])
        expected = {"size": src["size"][:dim], "spacing": src["spacing"][:dim], "origin": src["origin"][:dim],
                    "direction": np.reshape(src["direction"], (len(src["size"]),) * 2)[:dim, :dim].ravel().tolist()}
        for k, v in expected.items():
            assert np.allclose(mine["written"]["file"][k], v, atol=1e-5), (key, k)


def test_spacing_is_in_array_axis_order(tmp_path):
    img = sitk.GetImageFromArray(np.zeros((4, 5, 6), np.float32))  # array z, y, x
    img.SetSpacing((0.5, 0.75, 3.0))  # SimpleITK order x, y, z
    for ending, cls in ((".nii.gz", SimpleITKIO), (".nii", NibabelIO), (".nii.gz", NibabelIOWithReorient),
                        (".nii.gz", SimpleITKIOWithReorient)):
        path = tmp_path / f"a_0000{ending}"
        sitk.WriteImage(img, str(path))
        data, props = cls().read_images([path])
        assert data.shape == (1, 4, 5, 6), cls
        assert props["spacing"] == [3.0, 0.75, 0.5], cls


def test_2d_nifti_gets_large_fake_spacing(tmp_path):
    img = sitk.GetImageFromArray(np.zeros((9, 11), np.float32))
    img.SetSpacing((0.3, 0.6))
    sitk.WriteImage(img, str(tmp_path / "a.nii.gz"))
    data, props = SimpleITKIO().read_images([tmp_path / "a.nii.gz"])
    assert data.shape == (1, 1, 9, 11)
    assert props["spacing"] == pytest.approx([999 * 0.6, 0.6, 0.3])


def test_4d_nifti_channels_and_3d_output(tmp_path, ours):
    folder, _, result = ours
    entry = result["readers"]["sitk_4d/SimpleITKIO"]
    assert entry["shape"] == [3, 5, 6, 7]
    assert entry["properties"]["spacing"] == pytest.approx([2.0, 0.7, 0.5])
    assert entry["written"]["file"]["size"] == [7, 6, 5]  # the segmentation file is 3-D


def test_reorient_writer_restores_original_orientation(tmp_path):
    img = sitk.GetImageFromArray(np.arange(120, dtype=np.float32).reshape(4, 5, 6))
    img.SetDirection([0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    img.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(img, str(tmp_path / "a_0000.nii.gz"))
    io = SimpleITKIOWithReorient()
    data, props = io.read_images([tmp_path / "a_0000.nii.gz"])
    assert props["sitk_stuff"]["original_orientation"] == "ALS"
    assert data.shape == (1, 4, 6, 5)
    io.write_seg((data[0] % 7).astype(np.uint8), tmp_path / "seg.nii.gz", props)
    written = sitk.ReadImage(str(tmp_path / "seg.nii.gz"))
    assert np.allclose(written.GetDirection(), img.GetDirection())
    assert np.allclose(written.GetOrigin(), img.GetOrigin())
    assert np.array_equal(sitk.GetArrayFromImage(written), np.arange(120).reshape(4, 5, 6) % 7)


def test_nibabel_reorient_writer_restores_affine(tmp_path):
    affine = np.array([[0.0, -0.7, 0.0, -1.0], [0.5, 0.0, 0.0, 2.0], [0.0, 0.0, 2.0, 3.0], [0, 0, 0, 1]])
    vox = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    nib.save(nib.Nifti1Image(vox, affine), str(tmp_path / "a_0000.nii.gz"))
    io = NibabelIOWithReorient()
    data, props = io.read_images([tmp_path / "a_0000.nii.gz"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a restored affine that differs would warn
        io.write_seg((data[0] % 5).astype(np.uint8), tmp_path / "seg.nii.gz", props)
    back = nib.load(str(tmp_path / "seg.nii.gz"))
    assert np.allclose(back.affine, affine)
    assert np.array_equal(np.asanyarray(back.dataobj), vox.astype(int) % 5)


def test_seg_dtype_switches_to_uint16(tmp_path):
    img = sitk.GetImageFromArray(np.zeros((2, 3, 4), np.float32))
    sitk.WriteImage(img, str(tmp_path / "a_0000.nii.gz"))
    _, props = SimpleITKIO().read_images([tmp_path / "a_0000.nii.gz"])
    seg = np.full((2, 3, 4), 300, dtype=np.int64)
    SimpleITKIO().write_seg(seg, tmp_path / "s.nii.gz", props)
    assert sitk.ReadImage(str(tmp_path / "s.nii.gz")).GetPixelID() == sitk.sitkUInt16
    SimpleITKIO().write_seg(seg - 299, tmp_path / "t.nii.gz", props)
    assert sitk.ReadImage(str(tmp_path / "t.nii.gz")).GetPixelID() == sitk.sitkUInt8


# --- tiff -----------------------------------------------------------------------------------------------------

def test_tiff_sidecar_spacing_and_writer(tmp_path):
    stack = np.arange(7 * 6 * 5, dtype=np.uint16).reshape(7, 6, 5)
    tifffile.imwrite(str(tmp_path / "c1_0000.tiff"), stack)
    (tmp_path / "c1.json").write_text(json.dumps({"spacing": [3.0, 0.5, 0.25]}))
    data, props = Tiff3DIO().read_images([tmp_path / "c1_0000.tiff"])
    assert data.shape == (1, 7, 6, 5) and props["spacing"] == [3.0, 0.5, 0.25]
    Tiff3DIO().write_seg((stack % 4).astype(np.uint8), tmp_path / "c1.tiff", props)
    assert json.loads((tmp_path / "c1.json").read_text()) == {"spacing": [3.0, 0.5, 0.25]}
    with tifffile.TiffFile(str(tmp_path / "c1.tiff")) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    seg, seg_props = Tiff3DIO().read_seg(tmp_path / "c1.tiff")
    assert np.array_equal(seg[0], stack % 4) and seg_props["spacing"] == [3.0, 0.5, 0.25]


def test_tiff_missing_sidecar_warns_and_uses_unit_spacing(tmp_path):
    tifffile.imwrite(str(tmp_path / "c1_0000.tif"), np.zeros((7, 6, 5), np.uint8))
    with pytest.warns(UserWarning, match="c1.json"):
        _, props = Tiff3DIO().read_images([tmp_path / "c1_0000.tif"])
    assert props["spacing"] == [1.0, 1.0, 1.0]


def test_tiff_rejects_2d_and_bad_sidecar(tmp_path):
    tifffile.imwrite(str(tmp_path / "flat_0000.tif"), np.zeros((6, 5), np.uint8))
    with pytest.raises(DatasetError, match="flat_0000.tif.*3-D"):
        Tiff3DIO().read_images([tmp_path / "flat_0000.tif"])
    tifffile.imwrite(str(tmp_path / "c2_0000.tif"), np.zeros((7, 6, 5), np.uint8))
    (tmp_path / "c2.json").write_text(json.dumps({"spacing": [1, 2]}))
    with pytest.raises(DatasetError, match="c2.json"):
        Tiff3DIO().read_images([tmp_path / "c2_0000.tif"])


def test_auto_detection_of_tif_by_dimensionality(tmp_path):
    from skimage import io as skio

    skio.imsave(str(tmp_path / "flat_0000.tif"), np.zeros((6, 5), np.uint8), check_contrast=False)
    tifffile.imwrite(str(tmp_path / "vol_0000.tif"), np.zeros((7, 6, 5), np.uint8))
    assert determine_reader(".tif", tmp_path / "flat_0000.tif") is NaturalImage2DIO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert determine_reader(".tif", tmp_path / "vol_0000.tif") is Tiff3DIO
    assert determine_reader(".nii.gz") is SimpleITKIO
    assert determine_reader(".nii") is NibabelIO
    assert determine_reader(".TIFF") is Tiff3DIO


# --- errors ---------------------------------------------------------------------------------------------------

def _corrupt_files(folder):
    folder.mkdir(exist_ok=True)
    garbage = b"this is not an image" * 10
    (folder / "bad_0000.nii.gz").write_bytes(garbage)
    (folder / "bad_0000.nii").write_bytes(garbage)
    (folder / "bad_0000.tif").write_bytes(garbage)
    (folder / "bad_0000.png").write_bytes(garbage)
    good = folder / "good.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(0).random((20, 30, 40)).astype(np.float32)),
                    str(good))
    raw = gzip.decompress(good.read_bytes())
    (folder / "trunc_0000.nii.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))


@pytest.mark.parametrize("cls,name", [
    (SimpleITKIO, "bad_0000.nii.gz"), (SimpleITKIO, "trunc_0000.nii.gz"),
    (SimpleITKIOWithReorient, "bad_0000.nii.gz"), (NibabelIO, "bad_0000.nii"), (NibabelIO, "bad_0000.nii.gz"),
    (NibabelIO, "trunc_0000.nii.gz"), (NibabelIOWithReorient, "trunc_0000.nii.gz"), (Tiff3DIO, "bad_0000.tif"),
    (NaturalImage2DIO, "bad_0000.png"), (NaturalImage2DIO, "bad_0000.tif"), (SimpleITKIO, "missing_0000.nii.gz"),
])
def test_unreadable_file_raises_dataset_error_naming_it(tmp_path, cls, name):
    _corrupt_files(tmp_path / "f")
    with pytest.raises(DatasetError, match=name.replace(".", r"\.")):
        cls().read_images([tmp_path / "f" / name])
    with pytest.raises(DatasetError, match=name.replace(".", r"\.")):
        cls().read_seg(tmp_path / "f" / name)


def test_determine_reader_on_corrupt_file_is_a_dataset_error(tmp_path):
    _corrupt_files(tmp_path / "f")
    with pytest.raises(DatasetError, match="bad_0000.nii.gz"):
        determine_reader(".nii.gz", tmp_path / "f" / "bad_0000.nii.gz")


def test_nibabel_rejects_4d(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((3, 4, 5, 2), np.float32), np.eye(4)), str(tmp_path / "a_0000.nii"))
    with pytest.raises(DatasetError, match="a_0000.nii.*3-D"):
        NibabelIO().read_images([tmp_path / "a_0000.nii"])


@pytest.mark.parametrize("cls,ending", [(SimpleITKIO, ".nii.gz"), (NibabelIO, ".nii.gz")])
def test_channel_files_with_different_shapes_are_rejected(tmp_path, cls, ending):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.float32)), str(tmp_path / f"c_0000{ending}"))
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 7), np.float32)), str(tmp_path / f"c_0001{ending}"))
    with pytest.raises(DatasetError, match="differ in shape"):
        cls().read_images([tmp_path / f"c_0000{ending}", tmp_path / f"c_0001{ending}"])
