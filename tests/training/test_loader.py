"""Patch sampling: positional oversampling, crop bounds, forced-foreground corners, padding, partial reads."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nnunet.io.labels import LabelManager
from nnunet.preprocessing.storage import load_case
from nnunet.training.data.dataset import PreprocessedDataset, case_identifiers
from nnunet.training.data.loader import (PatchLoader, choose_patch_corner, crop_and_pad, crop_bounds,
                                         forced_foreground_positions)
from nnunet.training.data.workers import (InProcessLoader, background_loader, finish_loader,
                                         num_processes_for_augmentation)
from tests.training.helpers import make_2d_dataset, make_3d_dataset

torch.set_num_threads(1)
LM = LabelManager({"background": 0, "blob": 1, "core": 2})


def test_positional_oversampling():
    assert forced_foreground_positions(2, 0.33) == [False, True]
    assert forced_foreground_positions(12, 0.33) == [False] * 8 + [True] * 4
    assert forced_foreground_positions(3, 0.33) == [False, False, True]
    assert forced_foreground_positions(1, 0.33) == [False]
    assert forced_foreground_positions(4, 0.0) == [False] * 4


@pytest.mark.parametrize("shape, patch, pad, lb, ub", [
    (20, 16, 0, 0, 4),
    (10, 16, 0, -3, -3),      # smaller than the patch: padded to it, split evenly
    (20, 25, 9, -5, 0),       # odd padding: lb = (-9)//2 = -5, ub = 20 + 4 + 1 - 25
    (11, 16, 0, -3, -2),      # pad 5 -> lower side 3 (floor of negative), upper side 2
])
def test_crop_bounds(shape, patch, pad, lb, ub):
    assert crop_bounds([shape], [patch], [pad]) == ([lb], [ub])


def test_forced_corner_is_only_clamped_below():
    locs = {1: np.array([[0, 18, 10, 1]]), 2: []}
    corner = choose_patch_corner((20, 20, 20), (16, 16, 16), (0, 0, 0), True, locs, False)
    assert corner == [10, 2, 0]  # 18 - 8 exceeds ub = 4 (kept); 1 - 8 clamped to lb = 0


def test_unforced_corner_uniform_in_bounds():
    np.random.seed(0)
    corners = np.array([choose_patch_corner((20, 12), (16, 16), (0, 0), False, None, False) for _ in range(300)])
    assert corners[:, 0].min() == 0 and corners[:, 0].max() == 4
    assert set(corners[:, 1]) == {-2}


def test_ignore_label_sampling():
    annotated = (-1, 0, 1)
    locs = {1: np.array([[0, 5, 5]]), annotated: np.array([[0, 15, 15]])}
    # not forced: centred on an annotated voxel
    assert choose_patch_corner((20, 20), (8, 8), (0, 0), False, locs, True, annotated) == [11, 11]
    # forced: the annotated key is dropped when a real class is available
    for _ in range(20):
        assert choose_patch_corner((20, 20), (8, 8), (0, 0), True, locs, True, annotated) == [1, 1]
    # only the annotated key present: it is used
    only = {1: [], annotated: np.array([[0, 15, 15]])}
    assert choose_patch_corner((20, 20), (8, 8), (0, 0), True, only, True, annotated) == [11, 11]


def test_crop_and_pad_partial_read(tmp_path):
    base = make_3d_dataset(tmp_path, n_cases=5, shape=(20, 20, 20))
    data, seg, _ = load_case(base / "nnUNetPlans_3d_fullres", "case_000")
    full = np.asarray(seg[:])
    patch = crop_and_pad(seg, [[-3, 13], [5, 21], [0, 16]], -1, np.int16)
    expected = np.full((1, 16, 16, 16), -1, dtype=np.int16)
    expected[:, 3:16, 0:15, :] = full[:, 0:13, 5:20, 0:16]
    assert np.array_equal(patch, expected)
    img = crop_and_pad(data, [[2, 18], [2, 18], [2, 18]], 0, np.float32)
    assert np.array_equal(img, np.asarray(data[:])[:, 2:18, 2:18, 2:18])


def test_loader_batches_and_forced_foreground(tmp_path):
    base = make_3d_dataset(tmp_path, n_cases=5, shape=(24, 24, 24), with_core=False)
    folder = base / "nnUNetPlans_3d_fullres"
    ds = PreprocessedDataset(folder, case_identifiers(folder))
    loader = PatchLoader(ds, 3, (8, 8, 8), (8, 8, 8), LM, oversample_foreground_percent=0.33)
    np.random.seed(1)
    fg_by_position = np.zeros(3)
    for _ in range(30):
        batch = next(loader)
        assert batch["data"].shape == (3, 1, 8, 8, 8) and batch["data"].dtype == torch.float32
        assert batch["target"].shape == (3, 1, 8, 8, 8) and batch["target"].dtype == torch.int16
        assert len(batch["keys"]) == 3 and set(batch["keys"]) <= set(ds.identifiers)
        fg_by_position += [(batch["target"][j] > 0).any().item() for j in range(3)]
    assert fg_by_position[2] == 30  # the last position always holds foreground
    assert fg_by_position[0] < 30   # random positions sometimes miss the small blob


def test_loader_pads_small_cases_and_2d(tmp_path):
    base = make_2d_dataset(tmp_path, n_cases=5, shape=(3, 10, 12))
    folder = base / "nnUNetPlans_2d"
    loader = PatchLoader(PreprocessedDataset(folder), 2, (16, 16), (16, 16), LM, 0.33)
    batch = next(loader)
    assert batch["data"].shape == (2, 1, 16, 16)
    seg = batch["target"]
    assert (seg == -1).sum() >= 2 * (16 * 16 - 10 * 12)  # padded area marked -1
    assert (batch["data"][seg == -1] == 0).all()


def test_background_workers(tmp_path, monkeypatch):
    base = make_3d_dataset(tmp_path, n_cases=5, shape=(12, 12, 12))
    folder = base / "nnUNetPlans_3d_fullres"
    monkeypatch.setenv("nnUNet_n_proc_DA", "1")
    assert num_processes_for_augmentation() == 1
    loader = PatchLoader(PreprocessedDataset(folder), 2, (8, 8, 8), (8, 8, 8), LM, 0.33)
    bg = background_loader(loader, 1, 2, False)
    try:
        batches = [next(bg) for _ in range(3)]
    finally:
        finish_loader(bg)
    assert all(b["data"].shape == (2, 1, 8, 8, 8) for b in batches)
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    assert next(background_loader(loader, 0, 1, False))["data"].shape == (2, 1, 8, 8, 8)


def test_legacy_npz_folder(tmp_path):
    from nnunet.training.data.dataset import dataset_format, unpack_npz
    from nnunet.utils.json import save_pickle

    data = np.random.rand(1, 6, 6, 6).astype(np.float32)
    seg = (data > 0.5).astype(np.int16)
    np.savez(tmp_path / "a.npz", data=data, seg=seg)
    save_pickle({"class_locations": {1: np.argwhere(seg)}}, tmp_path / "a.pkl")
    assert dataset_format(tmp_path) == "npz" and case_identifiers(tmp_path) == ["a"]
    unpack_npz(tmp_path)
    d, s, prev, props = PreprocessedDataset(tmp_path).load_case("a")
    assert isinstance(d, np.memmap) and np.array_equal(d, data) and np.array_equal(s, seg) and prev is None
    (tmp_path / "b.b2nd").write_bytes(b"")
    from nnunet.errors import DatasetError

    with pytest.raises(DatasetError, match="more than one kind"):
        dataset_format(tmp_path)


class _ShutdownRace:
    """Stands in for batchgenerators' augmenter: its results thread fails once the shutdown has begun, as the
    real one does when it unpickles a batch from a worker that has just exited."""

    def __init__(self):
        import threading

        self.stopping = threading.Event()
        self.results_loop_thread = threading.Thread(target=self._results_loop)
        self.results_loop_thread.start()

    def _results_loop(self):
        self.stopping.wait()
        raise FileNotFoundError(2, "No such file or directory")

    def _finish(self):
        self.stopping.set()
        self.results_loop_thread.join()


def test_finishing_a_loader_hides_the_shutdown_race_of_its_results_thread(monkeypatch):
    import threading

    reported = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_type))
    finish_loader(_ShutdownRace())
    finish_loader(InProcessLoader(iter([])))  # nothing to stop
    assert reported == []
    other = threading.Thread(target=lambda: 1 / 0)  # other threads still report their errors
    other.start()
    other.join()
    assert reported == [ZeroDivisionError]
