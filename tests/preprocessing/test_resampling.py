"""Resampling: our fast paths against the straightforward recipe the reference uses.

The recipe (scikit-image ``resize`` per volume or per slice for images, batchgenerators' ``resize_segmentation``
for label maps, ``map_coordinates`` across slices) is what nnU-Net 2.8.1 runs; label maps must come out
bit-identical, images within float rounding.
"""
from __future__ import annotations

import numpy as np
import pytest
from batchgenerators.augmentations.utils import resize_segmentation
from scipy.ndimage import map_coordinates, zoom
from skimage.transform import resize

from nnunet.preprocessing import resampling, resampling_torch
from nnunet.preprocessing.resampling import (dense_axis_operator, resample_data_or_seg_to_shape, resize_labels,
                                             separate_z_axis)


def _recipe(data: np.ndarray, new_shape, current, target, is_seg: bool, order: int, order_z: int = 0,
            force=None) -> np.ndarray:
    """The reference algorithm written out plainly (slow): per channel, per slice when separate."""
    axis = separate_z_axis(current, target, force)
    out = np.zeros((data.shape[0], *new_shape), dtype=data.dtype)
    data = data.astype(float)

    def resize_fn(x, shape):
        if is_seg:
            return resize_segmentation(x, tuple(shape), order)
        return resize(x, tuple(shape), order, mode="edge", anti_aliasing=False)

    for c in range(data.shape[0]):
        if axis is None:
            out[c] = resize_fn(data[c], new_shape)
            continue
        plane = [s for a, s in enumerate(new_shape) if a != axis]
        stacked = np.stack([resize_fn(np.take(data[c], i, axis=axis), plane) for i in range(data.shape[axis + 1])],
                           axis=axis)
        if stacked.shape[axis] == new_shape[axis]:
            out[c] = stacked
            continue
        grid = np.meshgrid(*[(np.arange(n) + 0.5) * (stacked.shape[a] / n) - 0.5
                             for a, n in enumerate(new_shape)], indexing="ij")
        out[c] = map_coordinates(stacked, np.stack(grid), order=order_z, mode="nearest")
    return out


def _blocky_labels(rng, shape, n_labels, cell=3):
    coarse = rng.integers(-1, n_labels, tuple(max(1, -(-s // cell)) for s in shape))
    return np.kron(coarse, np.ones((cell,) * len(shape), dtype=int))[tuple(slice(0, s) for s in shape)]


@pytest.mark.parametrize("seed", range(6))
def test_label_resize_is_bit_identical_to_resize_segmentation(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        ndim = int(rng.choice([2, 3]))
        shape = tuple(int(s) for s in rng.integers(2, 11, ndim))
        new = tuple(int(s) for s in rng.integers(2, 16, ndim))
        if rng.random() < 0.4:
            new = tuple(2 * s for s in shape)  # even factors: exact ties between labels at every border
        labels = _blocky_labels(rng, shape, int(rng.integers(1, 5))) if rng.random() < 0.5 \
            else rng.integers(-1, 4, shape)
        labels = labels.astype(np.int16)
        for order in (0, 1):
            expected = resize_segmentation(labels.astype(float), new, order)
            assert np.array_equal(resize_labels(labels, new, order), expected), (shape, new, order)


def test_label_resize_ties_follow_the_nearest_neighbour():
    # upsampling x2 puts every output voxel next to a border exactly between two labels (score 0.5 each)
    labels = np.array([[0, 0, 3, 3], [1, 1, 2, 2]], dtype=np.int8)
    out = resize_labels(labels, (4, 8), 1)
    assert np.array_equal(out, resize_segmentation(labels.astype(float), (4, 8), 1))
    assert set(np.unique(out)) <= {0, 1, 2, 3}  # no interpolated label values


@pytest.mark.parametrize("n_in,n_out", [(1, 4), (2, 9), (7, 5), (40, 40), (168, 191), (300, 123)])
@pytest.mark.parametrize("order", [0, 1, 3])
def test_axis_operator_is_scipys_zoom_of_each_impulse(n_in, n_out, order):
    impulses = np.stack([zoom(np.eye(n_in)[j], n_out / n_in, order=order, mode="nearest", grid_mode=True)
                         for j in range(n_in)], axis=1)
    assert np.abs(dense_axis_operator(n_in, n_out, order) - impulses).max() < 1e-13


@pytest.mark.parametrize("shape,new,order", [((9, 10, 11), (13, 7, 11), 3), ((12, 5, 6), (7, 9, 6), 1),
                                             ((700, 3), (610, 4), 3), ((5, 300), (4, 555), 3)])
def test_image_resize_matches_skimage(shape, new, order):
    """Includes axes longer than one operator block (banded products)."""
    rng = np.random.default_rng(1)
    img = rng.normal(size=shape) * 100
    expected = resize(img, new, order, mode="edge", anti_aliasing=False)
    ours = resampling._resize_image(img, new, order, None)
    assert np.abs(ours - expected).max() < 1e-9
    assert ours.min() >= img.min() and ours.max() <= img.max()


CASES = [
    # (shape, new_shape, current spacing, target spacing, force_separate_z)
    ((10, 20, 18), (25, 17, 21), (4.0, 1.0, 1.0), (1.6, 1.2, 0.86), None),   # separate along axis 0, z changes
    ((16, 14, 6), (18, 11, 6), (0.8, 0.8, 4.0), (0.7, 1.0, 4.0), None),      # separate along axis 2, z kept
    ((9, 12, 10), (11, 9, 13), (1.0, 1.0, 1.0), (0.8, 1.3, 0.77), None),     # isotropic: 3-D resize
    ((8, 10, 12), (12, 10, 9), (1.0, 3.5, 1.0), (1.0, 3.5, 1.0), True),      # forced, lowres axis 1
    ((6, 11, 13), (6, 15, 10), (2.5, 1.0, 1.0), (2.5, 0.7, 1.3), False),     # forced off
]


@pytest.mark.parametrize("shape,new,current,target,force", CASES)
def test_resample_to_shape_equals_the_reference_recipe(shape, new, current, target, force):
    rng = np.random.default_rng(2)
    data = (rng.normal(size=(2, *shape)) * 30).astype(np.float32)
    seg = _blocky_labels(rng, shape, 3)[None].astype(np.int8)
    ours = resample_data_or_seg_to_shape(data, new, current, target, is_seg=False, order=3, order_z=0,
                                         force_separate_z=force)
    expected = _recipe(data, new, current, target, False, 3, 0, force)
    assert ours.dtype == np.float32 and ours.shape == (2, *new)
    assert np.abs(ours - expected).max() < 1e-4
    ours_seg = resample_data_or_seg_to_shape(seg, new, current, target, is_seg=True, order=1, order_z=0,
                                             force_separate_z=force)
    assert ours_seg.dtype == np.int8
    assert np.array_equal(ours_seg, _recipe(seg, new, current, target, True, 1, 0, force))


def test_order_z_one_across_slices_for_images():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(1, 5, 8, 8)).astype(np.float32)
    ours = resample_data_or_seg_to_shape(data, (9, 10, 7), (4, 1, 1), (2, 0.8, 1.1), order=3, order_z=1,
                                         force_separate_z=None)
    assert np.abs(ours - _recipe(data, (9, 10, 7), (4, 1, 1), (2, 0.8, 1.1), False, 3, 1)).max() < 1e-4


def test_same_shape_returns_input_and_no_resampling_hack():
    data = np.ones((1, 3, 4, 5), np.float32)
    assert resample_data_or_seg_to_shape(data, (3, 4, 5), (1, 1, 1), (2, 2, 2)) is data
    assert resampling.no_resampling_hack(data, (9, 9, 9), (1, 1, 1), (2, 2, 2)) is data


def _fixture_module():
    import importlib.util

    from tests.helpers import FIXTURES

    spec = importlib.util.spec_from_file_location("pp_fixtures", FIXTURES / "preprocessing" / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, FIXTURES / "preprocessing"


def test_torch_resampling_equals_the_reference():
    module, folder = _fixture_module()
    ref = np.load(folder / "torch_resampling_ref.npz")
    for i, (new, current, target, force, memefficient) in enumerate(module.TORCH_CASES):
        data = resampling_torch.resample_torch_fornnunet(ref[f"{i}_data_in"], new, current, target, is_seg=False,
                                                         force_separate_z=force)
        assert data.dtype == np.float32 and np.array_equal(data, ref[f"{i}_data_out"]), i
        seg = resampling_torch.resample_torch_fornnunet(ref[f"{i}_seg_in"], new, current, target, is_seg=True,
                                                  force_separate_z=force, memefficient_seg_resampling=memefficient)
        assert seg.dtype == ref[f"{i}_seg_out"].dtype and np.array_equal(seg, ref[f"{i}_seg_out"]), i
