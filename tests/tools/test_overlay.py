"""nnUNet_plot_overlay_pngs: pixel parity with nnU-Net on raw data, preprocessed mode, slice choice, errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnunet.cli.overlay import overlay_main
from nnunet.visualization.overlay import COLOR_CYCLE, hex_to_rgb, overlay_slice, select_slice
from tests.helpers import FIXTURES

OVERLAY = FIXTURES / "tools" / "overlay"


def _pixels(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def _same_as_reference(out: Path, ref: Path) -> None:
    names = sorted(p.name for p in ref.glob("*.png"))
    assert sorted(p.name for p in out.glob("*.png")) == names
    for name in names:
        np.testing.assert_array_equal(_pixels(out / name), _pixels(ref / name), err_msg=name)


@pytest.mark.parametrize("dataset,args,ref", [
    ("Dataset603_Overlay2ch", ["-np", "2"], "ref_603_channel0"),  # two worker processes
    ("Dataset603_Overlay2ch", ["-channel_idx", "1", "-overlay_intensity", "0.3", "-np", "1"],
     "ref_603_channel1_intensity0.3"),
    ("Dataset604_OverlayPng", ["-np", "1"], "ref_604"),  # 2-D PNG dataset: the single slice
])
def test_raw_overlays_equal_nnunet(nnunet_dirs, tmp_path, dataset, args, ref):
    shutil.copytree(OVERLAY / dataset, nnunet_dirs["raw"] / dataset)
    out = tmp_path / "png"
    assert overlay_main(["-d", dataset[7:10], "-o", str(out), "--use_raw", "--no_pbar", *args]) == 0
    _same_as_reference(out, OVERLAY / ref)
    assert not list(out.glob(".*"))  # no temporary files left


def test_preprocessed_overlays_equal_nnunet(nnunet_dirs, tmp_path):
    name = "Dataset603_Overlay2ch"
    shutil.copytree(OVERLAY / "preprocessed" / name, nnunet_dirs["preprocessed"] / name)
    out = tmp_path / "png"
    assert overlay_main(["-d", "603", "-o", str(out), "-np", "1", "--no_pbar"]) == 0  # default -c: 3d_fullres
    _same_as_reference(out, OVERLAY / "ref_603_preprocessed")


def _mark_outside(seg: np.ndarray, rng) -> np.ndarray:
    seg = seg.copy()
    seg[:, :, :2] = -1  # voxels outside the nonzero mask, as preprocessing writes them
    return seg


def test_preprocessed_overlays(nnunet_dirs, tmp_path):
    from nnunet.training.data.dataset import PreprocessedDataset
    from tests.training.helpers import make_3d_dataset

    make_3d_dataset(nnunet_dirs["preprocessed"], "Dataset605_Pre", n_cases=2, shape=(12, 16, 20),
                    seg_transform=_mark_outside, write_gt=False)
    out = tmp_path / "png"
    assert overlay_main(["-d", "605", "-o", str(out), "-np", "1", "--no_pbar"]) == 0
    folder = nnunet_dirs["preprocessed"] / "Dataset605_Pre" / "nnUNetPlans_3d_fullres"
    dataset = PreprocessedDataset(folder)
    assert sorted(p.stem for p in out.glob("*.png")) == dataset.identifiers == ["case_000", "case_001"]
    for case in dataset.identifiers:
        _, seg, _, _ = dataset.load_case(case)
        seg = np.asarray(seg[0])
        index = select_slice(seg)
        labels = seg[index]
        png = _pixels(out / f"{case}.png")
        assert png.shape == labels.shape + (4,)  # rows x columns of the slice, RGBA
        rgb = png[..., :3].astype(int)
        background = labels <= 0
        assert (rgb[background][:, 0] == rgb[background][:, 1]).all()  # grey stays grey
        blob, core = rgb[labels == 1], rgb[labels == 2]
        assert len(blob) and len(core)
        assert (blob[:, 2] > blob[:, 0]).all()  # label 1 gets 4363d8 (blue)
        assert (core[:, 0] > core[:, 2]).all()  # label 2 gets f58231 (orange)
        # the chosen slice is the one with the most foreground of both classes
        assert (seg[index] == 2).sum() == max((s == 2).sum() for s in seg)


def test_select_slice_balances_classes():
    seg = np.zeros((3, 10, 10), dtype=np.int16)
    seg[0, :, :6] = 1  # most foreground voxels, class 1 only
    seg[1, :4, :] = 1  # fewer voxels in total (42 < 60) ...
    seg[1, 5, 5:7] = 2  # ... but all of the small class 2
    seg[2, :3, :3] = -1  # outside the nonzero mask: ignored
    assert select_slice(seg) == 1
    assert select_slice(np.zeros((4, 3, 3))) == 0


def test_overlay_slice_colours_by_rank():
    image = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    seg = np.zeros((4, 4), dtype=np.int16)
    seg[0, 0], seg[3, 3] = 3, 7  # ranks 1 and 2, whatever the values
    rgb = overlay_slice(image, seg, 0.6).astype(float)
    assert rgb.dtype == float and rgb.max() == 255
    grey = rgb[1:3, 1:3]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    first, second = np.array(hex_to_rgb(COLOR_CYCLE[1])), np.array(hex_to_rgb(COLOR_CYCLE[2]))
    assert np.argmax(rgb[0, 0] - rgb[0, 0].min()) == np.argmax(first)  # 4363d8: blue dominates
    assert np.argmax(rgb[3, 3] - rgb[3, 3].min()) == np.argmax(second)  # f58231: red dominates
    many = np.arange(20, dtype=np.int16).reshape(4, 5)  # more values than colours: no IndexError
    assert overlay_slice(np.ones((4, 5)), many).shape == (4, 5, 3)
    assert not np.isnan(overlay_slice(np.ones((4, 5)), np.zeros((4, 5)))).any()


def test_errors_are_one_line(nnunet_dirs, tmp_path, capsys):
    shutil.copytree(OVERLAY / "Dataset603_Overlay2ch", nnunet_dirs["raw"] / "Dataset603_Overlay2ch")
    assert overlay_main(["-d", "603", "-o", str(tmp_path / "a"), "--use_raw", "-channel_idx", "2"]) == 1
    assert "-channel_idx 2 is out of range" in capsys.readouterr().err
    assert overlay_main(["-d", "603", "-o", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "nnUNet_plan_and_preprocess" in err and "Traceback" not in err
