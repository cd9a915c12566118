"""Pure sliding-window pieces: tile starts, importance map, padding, tiles, mirroring, stitching."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from nnunet.inference import engine
from nnunet.inference import sliding_window as sw
from nnunet.inference.sliding_window import (compute_gaussian, compute_steps_for_sliding_window, iter_tile_slicers,
                                             mirror_axis_combinations, pad_to_patch, padding_for_patch,
                                             predict_with_mirroring, sliding_window_logits)
from tests.inference.helpers import DeviceOutOfMemoryOps

torch.set_num_threads(1)


@pytest.mark.parametrize("image, tile, step, expected", [
    ((110,), (64,), 0.5, [[0, 23, 46]]),            # the documented example
    ((64,), (64,), 0.5, [[0]]),                     # exactly one tile
    ((65,), (64,), 0.5, [[0, 1]]),                  # one voxel more -> two tiles
    ((100,), (64,), 0.5, [[0, 18, 36]]),
    ((200,), (64,), 0.75, [[0, 45, 91, 136]]),      # 136/3 = 45.33 -> 45, 90.67 -> 91
    ((73,), (40,), 0.5, [[0, 16, 33]]),             # 16.5 rounds half to even -> 16 (not 17)
    ((64,), (64,), 1.0, [[0]]),
    ((129,), (64,), 1.0, [[0, 32, 65]]),            # step 1: no overlap wanted, but the border is reached
    ((110, 64, 37), (64, 64, 32), 0.5, [[0, 23, 46], [0], [0, 5]]),
    ((17, 300), (16, 128), 0.5, [[0, 1], [0, 57, 115, 172]]),
])
def test_steps_exact(image, tile, step, expected):
    assert compute_steps_for_sliding_window(image, tile, step) == expected


@pytest.mark.parametrize("image, tile, step", [
    ((63,), (64,), 0.5),            # image smaller than the tile
    ((100, 10), (64, 16), 0.5),
    ((100,), (64,), 0.0),
    ((100,), (64,), 1.5),
    ((100,), (64,), -0.5),
    ((100, 100), (64,), 0.5),       # axis count mismatch
    ((100,), (0,), 0.5),
])
def test_steps_invalid_raise_value_error(image, tile, step):
    with pytest.raises(ValueError):
        compute_steps_for_sliding_window(image, tile, step)


def test_steps_cover_image_and_respect_max_distance():
    for image, tile, step in itertools.product(range(16, 90, 7), (16, 23, 40), (0.25, 0.5, 0.75, 1.0)):
        if image < tile:
            continue
        starts = compute_steps_for_sliding_window((image,), (tile,), step)[0]
        assert starts[0] == 0 and starts[-1] == image - tile
        assert all(b - a <= tile * step + 0.5 for a, b in zip(starts, starts[1:]))
        assert starts == sorted(set(starts))


@pytest.mark.parametrize("shape", [(7, 9, 10), (16, 16, 16), (5, 12), (20, 11, 6)])
def test_gaussian_equals_filtered_delta(shape):
    delta = np.zeros(shape)
    delta[tuple(s // 2 for s in shape)] = 1
    expected = gaussian_filter(delta, [s / 8 for s in shape], 0, mode="constant", cval=0)
    expected /= expected.max() / 10
    ours64 = compute_gaussian(shape, dtype=torch.float64).numpy()
    np.testing.assert_array_equal(ours64, expected)
    assert ours64[tuple(s // 2 for s in shape)] == 10
    ours16 = compute_gaussian(shape).numpy()
    expected16 = expected.astype(np.float16)
    expected16[expected16 == 0] = expected16[expected16 > 0].min()
    assert ours16.dtype == np.float16
    np.testing.assert_array_equal(ours16, expected16)


def test_gaussian_float16_zeros_replaced_by_min():
    shape = (64, 64, 64)  # corners: 10 * exp(-24) underflows float16
    raw = sw._gaussian_float64(shape, 1 / 8, 10.0).astype(np.float16)
    assert (raw == 0).sum() > 0
    g = compute_gaussian(shape).numpy()
    assert (g == 0).sum() == 0
    smallest = raw[raw > 0].min()
    assert g.min() == smallest
    np.testing.assert_array_equal(g[raw > 0], raw[raw > 0])
    assert (g[raw == 0] == smallest).all()
    g32 = compute_gaussian(shape, dtype=torch.float32).numpy()
    assert g32.dtype == np.float32 and g32.min() > 0 and g32.max() == 10


def test_padding_split_evenly_extra_voxel_high_side():
    assert padding_for_patch((10, 20, 13), (16, 16, 16)) == [(3, 3), (0, 0), (1, 2)]
    assert padding_for_patch((3, 10, 9), (16, 16)) == [(0, 0), (3, 3), (3, 4)]  # leading axis never padded
    image = torch.arange(1 * 10 * 20 * 13, dtype=torch.float32).reshape(1, 10, 20, 13) + 1
    padded, unpad = pad_to_patch(image, (16, 16, 16))
    assert padded.shape == (1, 16, 20, 16)
    assert unpad == (slice(None), slice(3, 13), slice(0, 20), slice(1, 14))
    assert torch.equal(padded[unpad], image)
    assert padded.sum() == image.sum() and padded[:, :3].abs().sum() == 0 and padded[..., 14:].abs().sum() == 0
    same, unpad2 = pad_to_patch(image, (8, 8, 8))
    assert same is image and torch.equal(same[unpad2], image)


def test_tile_slicers_3d_and_2d_on_3d():
    tiles = list(iter_tile_slicers((20, 16, 24), (16, 16, 16), 0.5))
    assert len(tiles) == 2 * 1 * 2 == sw.num_tiles((20, 16, 24), (16, 16, 16), 0.5)
    assert tiles[0] == (slice(None), slice(0, 16), slice(0, 16), slice(0, 16))
    assert tiles[1] == (slice(None), slice(0, 16), slice(0, 16), slice(8, 24))
    assert tiles[3] == (slice(None), slice(4, 20), slice(0, 16), slice(8, 24))
    tiles2d = list(iter_tile_slicers((3, 20, 16), (16, 16), 0.5))
    assert len(tiles2d) == 3 * 2 == sw.num_tiles((3, 20, 16), (16, 16), 0.5)
    assert tiles2d[0] == (slice(None), 0, slice(0, 16), slice(0, 16))
    assert tiles2d[5] == (slice(None), 2, slice(4, 20), slice(0, 16))
    with pytest.raises(ValueError):
        list(iter_tile_slicers((20, 16, 24), (16,), 0.5))


def test_mirror_combinations_include_all_subsets():
    assert mirror_axis_combinations([0, 1, 2]) == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    assert mirror_axis_combinations([1, 2]) == [(1,), (2,), (1, 2)]
    assert mirror_axis_combinations([]) == []


class _RampNet(torch.nn.Module):
    """Multiplies the input by a fixed, asymmetric ramp and counts calls: not flip-equivariant on purpose."""

    def __init__(self, spatial_shape):
        super().__init__()
        self.ramp = torch.arange(int(np.prod(spatial_shape)), dtype=torch.float64).reshape(spatial_shape) + 1
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * self.ramp


@pytest.mark.parametrize("axes, flips", [((0, 1, 2), 8), ((1, 2), 4), ((0,), 2), (None, 1), ((), 1)])
@pytest.mark.parametrize("max_batch_voxels, per_pass", [(None, 1), (60, 1), (180, 3), (10 ** 6, 8)])
def test_mirroring_averages_all_flip_combinations(axes, flips, max_batch_voxels, per_pass):
    shape = (3, 4, 5)  # 60 voxels
    net = _RampNet(shape)
    x = torch.rand((1, 2, *shape), dtype=torch.float64)
    out = predict_with_mirroring(net, x, axes, max_batch_voxels=max_batch_voxels)
    assert net.calls == -(-flips // per_pass)
    ramp = net.ramp.numpy()
    flips = [ramp] + [np.flip(ramp, c) for c in mirror_axis_combinations(axes or [])]
    expected = x.numpy() * np.mean(flips, axis=0)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


def test_mirroring_rejects_axes_the_input_lacks():
    with pytest.raises(ValueError):
        predict_with_mirroring(lambda t: t, torch.zeros((1, 1, 4, 4)), (0, 2))


class _ChannelNet(torch.nn.Module):
    """Outputs [x, 2x - 1] (two heads) for a single-channel input: position independent, exact stitching check."""

    def forward(self, x):
        return torch.cat([x, 2 * x - 1], 1)


def _emulated_stitching(image, patch, step, weights, acc_dtype):
    """Numpy stitching of the _ChannelNet output: products in float32, sums rounded to ``acc_dtype``."""
    c, *spatial = image.shape
    pads = padding_for_patch(spatial, patch)
    padded = np.pad(image, [(0, 0)] + pads).astype(np.float32)
    num = np.zeros((2, *padded.shape[1:]), dtype=acc_dtype)
    den = np.zeros(padded.shape[1:], dtype=acc_dtype)
    for index in iter_tile_slicers(padded.shape[1:], patch, step):
        tile = padded[index]
        prediction = np.stack([tile[0], 2 * tile[0] - 1]) * weights.astype(np.float32)
        num[index] = (num[index].astype(np.float32) + prediction).astype(acc_dtype)
        den[index[1:]] = den[index[1:]] + weights
    out = (num.astype(np.float32) / den.astype(np.float32)).astype(acc_dtype)
    return out[(slice(None),) + tuple(slice(b, b + s) for (b, _), s in zip(pads, spatial))]


@pytest.mark.parametrize("shape, patch, step", [((1, 20, 18, 23), (8, 8, 8), 0.5), ((1, 5, 12, 9), (8, 8, 8), 0.75),
                                                ((1, 3, 17, 11), (8, 8), 0.5)])
def test_stitching_matches_emulated_accumulation(shape, patch, step):
    rng = np.random.default_rng(0)
    image = rng.uniform(-2, 2, shape)
    for torch_dtype, np_dtype in ((torch.float16, np.float16), (torch.float32, np.float32)):
        weights = compute_gaussian(patch, dtype=torch_dtype).numpy()
        expected = _emulated_stitching(image, patch, step, weights, np_dtype)
        got = sliding_window_logits(_ChannelNet(), torch.from_numpy(image).float(), patch, 2, step,
                                    accumulation_dtype=torch_dtype)
        assert got.dtype == torch_dtype and got.shape == (2, *shape[1:])
        if torch_dtype == torch.float16:  # float16 accumulation is reproduced bit for bit
            np.testing.assert_array_equal(got.numpy(), expected)
        else:
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    # float32 accumulation is a weighted average of the tile outputs: compare with float64 arithmetic
    weights64 = compute_gaussian(patch, dtype=torch.float64).numpy()
    exact = _emulated_stitching(image, patch, step, weights64, np.float64)
    got32 = sliding_window_logits(_ChannelNet(), torch.from_numpy(image).float(), patch, 2, step,
                                  accumulation_dtype=torch.float32)
    np.testing.assert_allclose(got32.numpy(), exact, atol=1e-5)


def test_stitching_without_gaussian_is_plain_mean_and_constant_exact():
    image = torch.full((1, 13, 9, 10), 0.25)
    got = sliding_window_logits(_ChannelNet(), image, (8, 8, 8), 2, 0.5, use_gaussian=False)
    # padding zeros never reach the kept region: every kept voxel sees only 0.25 -> exactly 0.25 and -0.5
    assert torch.equal(got[0], torch.full((13, 9, 10), 0.25, dtype=torch.float16))
    assert torch.equal(got[1], torch.full((13, 9, 10), -0.5, dtype=torch.float16))


def test_stitching_with_mirroring_and_real_network_on_small_image():
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    torch.manual_seed(0)
    net = PlainConvUNet(1, 2, (4, 8), torch.nn.Conv3d, 3, ((1, 1, 1), (2, 2, 2)), 1, 3, 1, True,
                        torch.nn.InstanceNorm3d, {"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU).eval()
    image = torch.randn(1, 6, 9, 7)  # smaller than the patch on every axis: padded, one tile
    got = sliding_window_logits(net, image, (8, 12, 8), 3, 0.5, mirror_axes=(0, 1, 2),
                                accumulation_dtype=torch.float32)
    padded, unpad = pad_to_patch(image, (8, 12, 8))
    with torch.inference_mode():
        direct = predict_with_mirroring(net, padded[None], (0, 1, 2))[0][unpad]
    # one tile: the importance map cancels out (up to the float16 rounding of the map)
    torch.testing.assert_close(got, direct, atol=1e-4, rtol=1e-3)


def test_fallback_to_host_accumulation_on_device_error():
    log = []
    runner = engine.ArrayRunner(lambda x: np.concatenate([x, 2 * x - 1], 1))
    runner.ops = DeviceOutOfMemoryOps(log)
    image = np.random.default_rng(0).uniform(-1, 1, (1, 9, 10, 11)).astype(np.float32)
    settings = engine.WindowSettings((8, 8, 8), 2)
    got = engine.predict_logits([runner], image, settings)
    assert log == ["device zeros", "emptied", "host"]
    expected = engine.predict_logits([engine.ArrayRunner(runner.run)], image, settings)
    np.testing.assert_array_equal(got, expected)


def test_overflow_raises():
    image = torch.full((1, 8, 8, 8), 30000.0)
    with pytest.raises(RuntimeError, match="overflow"):
        sliding_window_logits(lambda t: t * 4, image, (8, 8, 8), 1, accumulation_dtype=torch.float16)
