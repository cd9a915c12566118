"""Blosc2 storage layout and foreground class locations against the reference (fixtures from nnU-Net 2.8.1)."""
from __future__ import annotations

import json
import pickle

import blosc2
import numpy as np
import pytest

from nnunet.preprocessing.class_locations import num_samples, sample_class_locations
from nnunet.preprocessing.blosc2_layout import block_and_chunk_shape, choose_filter
from nnunet.preprocessing.storage import case_ids, load_case, save_case
from tests.helpers import FIXTURES

HERE = FIXTURES / "preprocessing"


def test_block_and_chunk_shapes_equal_the_reference():
    table = json.loads((HERE / "blosc2_params_ref.json").read_text())
    assert len(table) == 300
    for image, patch, itemsize, blocks, chunks in table:
        assert block_and_chunk_shape(image, patch, itemsize) == (blocks, chunks), (image, patch, itemsize)


def test_block_and_chunk_rules_on_a_known_case():
    blocks, chunks = block_and_chunk_shape((1, 129, 168, 191), (96, 128, 160), 4)
    assert blocks == [1, 32, 32, 32]  # 128 KiB of float32
    assert chunks[0] == 1 and all(c <= 1.5 * p for c, p in zip(chunks[1:], (96, 128, 160)))
    assert np.prod(chunks) * 4 <= 6 * 1024 ** 2
    blocks_2d, chunks_2d = block_and_chunk_shape((3, 1, 500, 600), (256, 320), 4)
    assert blocks_2d[1] == 1 and chunks_2d[1] == 1  # the slice axis of 2-D data never grows


def test_filter_trial_picks_the_smaller_encoding():
    smooth = np.linspace(0, 1, 64 * 64 * 64, dtype=np.float32).reshape(1, 64, 64, 64)
    assert choose_filter(smooth, [1, 32, 32, 32], [1, 64, 64, 64]) == blosc2.Filter.SHUFFLE
    labels = np.zeros((1, 64, 64, 64), np.int16)
    labels[0, 10:30] = 1
    assert choose_filter(labels, [1, 32, 32, 32], [1, 64, 64, 64]) in (blosc2.Filter.NOFILTER, blosc2.Filter.SHUFFLE)


def test_saved_case_round_trips_with_the_reference_layout(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, 20, 30, 40)).astype(np.float32)
    seg = rng.integers(-1, 3, (1, 20, 30, 40)).astype(np.int8)
    props = {"spacing": [1.0, 2.0, 3.0], "shape_before_cropping": (22, 30, 40)}
    save_case(tmp_path, "c1", data, seg, props, [16, 16, 32])
    d, s, p = load_case(tmp_path, "c1")
    assert d.dtype == np.float32 and s.dtype == np.int16  # the seg is stored as int16, as the reference does
    assert np.array_equal(d[:], data) and np.array_equal(s[:], seg)
    assert p == props
    assert list(d.blocks) == block_and_chunk_shape(data.shape, [16, 16, 32], 4)[0]
    assert list(d.chunks) == block_and_chunk_shape(data.shape, [16, 16, 32], 4)[1]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["c1.b2nd", "c1.pkl", "c1_seg.b2nd"]  # no temp files left


def test_interrupted_write_leaves_no_case(tmp_path, monkeypatch):
    import nnunet.preprocessing.blosc2_layout as storage

    data = np.ones((1, 4, 4, 4), np.float32)
    seg = np.zeros((1, 4, 4, 4), np.int8)
    original = storage._filter_trial

    def crash_on_seg(array, *args):
        if array.dtype == np.int16:  # the seg: written second
            raise KeyboardInterrupt
        return original(array, *args)

    monkeypatch.setattr(storage, "_filter_trial", crash_on_seg)
    with pytest.raises(KeyboardInterrupt):
        save_case(tmp_path, "half", data, seg, {}, [4, 4, 4])
    assert case_ids(tmp_path) == []  # data file written, seg interrupted: the case does not count
    assert not (tmp_path / "half.pkl").exists() and not (tmp_path / "half_seg.b2nd").exists()


def test_class_locations_equal_the_reference():
    with open(HERE / "class_locations_ref.pkl", "rb") as f:
        cases = pickle.load(f)
    assert len(cases) == 8
    for seg, keys, expected in cases:
        ours = sample_class_locations(seg, keys)
        assert list(ours) == list(expected)
        for key, ref in expected.items():
            if isinstance(ref, list):
                assert ours[key] == []
                continue
            flat, dtype = ref
            coords = ours[key]
            assert coords.dtype == np.dtype(dtype) and coords.shape == (len(flat), 4) and np.all(coords[:, 0] == 0)
            assert np.array_equal(np.ravel_multi_index(tuple(coords.T), seg.shape), flat), key


def test_num_samples_rule():
    assert num_samples(50) == 50
    assert num_samples(10000) == 10000
    assert num_samples(500000) == 10000
    assert num_samples(2_000_001) == 20001  # ceil(1 %) once that exceeds 10000
