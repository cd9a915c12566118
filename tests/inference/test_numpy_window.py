"""The engine with a numpy runner (CPU runtimes) gives the same numbers as with a torch runner."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nnunet.inference import engine
from nnunet.inference.sliding_window import compute_gaussian, sliding_window_logits
from nnunet.inference.tiling import gaussian_weights


def _numpy_logits(run, image, patch, heads, step, gaussian, axes, dtype="float16"):
    settings = engine.WindowSettings(tuple(patch), heads, step, gaussian, axes, engine.dtype_name(dtype))
    return engine.predict_logits([engine.ArrayRunner(run)], image, settings)


def _network(conv: type, channels: int):
    torch.manual_seed(0)
    net = torch.nn.Sequential(conv(channels, 3, 3, padding=1), torch.nn.LeakyReLU()).eval()

    def as_numpy(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()
    return net, as_numpy


@pytest.mark.parametrize("conv, shape, patch, axes", [
    (torch.nn.Conv3d, (2, 37, 50, 29), (16, 24, 16), (0, 1, 2)),  # several tiles on every axis
    (torch.nn.Conv3d, (1, 10, 12, 9), (16, 16, 16), (0, 2)),  # padded to the patch, two of three axes mirrored
    (torch.nn.Conv2d, (1, 5, 70, 45), (32, 32), (0, 1)),  # a 2-D configuration, slice by slice
    (torch.nn.Conv3d, (1, 20, 20, 20), (16, 16, 16), None),  # no mirroring
])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_numpy_window_equals_torch_window(conv, shape, patch, axes, dtype):
    net, as_numpy = _network(conv, shape[0])
    image = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    expected = sliding_window_logits(net, torch.from_numpy(image), patch, 3, 0.5, True, axes,
                                     accumulation_dtype=getattr(torch, dtype)).numpy()
    got = _numpy_logits(as_numpy, image, patch, 3, 0.5, True, axes, np.dtype(dtype))
    assert got.dtype == expected.dtype and got.shape == (3, *shape[1:])
    np.testing.assert_array_equal(got, expected)


def test_numpy_window_without_gaussian_equals_torch_window():
    net, as_numpy = _network(torch.nn.Conv3d, 1)
    image = np.random.default_rng(2).standard_normal((1, 30, 20, 20)).astype(np.float32)
    expected = sliding_window_logits(net, torch.from_numpy(image), (16, 16, 16), 3, 0.5, False, (0,)).numpy()
    got = _numpy_logits(as_numpy, image, (16, 16, 16), 3, 0.5, False, (0,))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("patch", [(40, 56, 40), (20, 24, 16), (512, 512)])
def test_numpy_importance_map_equals_torch_map(patch):
    for dtype in ("float16", "float32"):
        expected = compute_gaussian(patch, dtype=getattr(torch, dtype)).numpy()
        np.testing.assert_array_equal(gaussian_weights(patch, np.dtype(dtype)), expected)
        assert (expected > 0).all()


def test_numpy_mirroring_rejects_axes_the_input_lacks():
    with pytest.raises(ValueError, match="do not fit"):
        engine.mirrored_prediction(lambda x: x, engine.NumpyOps(), np.zeros((1, 1, 4, 4), np.float32), (2,))
