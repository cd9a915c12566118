"""The engine's GPU behaviour, checked on the CPU: autocast in both windows, each fold's weights loaded once per
call in the slab path, no reads back to the host per tile, the device accumulation retried on the host."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from nnunet.inference import engine
from nnunet.inference.torch_engine import TorchOps, TorchRunner
from tests.inference.helpers import DeviceOutOfMemoryOps, make_predictor


class _CudaLikeOps(TorchOps):
    """The context a CUDA device gets (autocast), with the tensors left on the CPU."""

    def __init__(self):
        super().__init__("cpu")
        self.device = torch.device("cuda")

    def batch(self, view):
        return view[None].contiguous()

    def from_host(self, array):
        return torch.from_numpy(array)


def _net():
    torch.manual_seed(0)
    return torch.nn.Conv3d(1, 2, 3, padding=1).eval()


SETTINGS = engine.WindowSettings((8, 8, 8), 2, 0.5, True, (0, 2))


@pytest.fixture
def autocasts(monkeypatch):
    entered = []

    @contextlib.contextmanager
    def fake_autocast(device_type, *args, **kwargs):
        entered.append(device_type)
        yield

    monkeypatch.setattr(torch, "autocast", fake_autocast)
    return entered


def test_slab_and_in_memory_windows_autocast_on_cuda_once_per_call(autocasts):
    image = np.random.default_rng(0).normal(size=(1, 20, 9, 10)).astype(np.float32)
    net = _net()
    runner = TorchRunner(lambda x: net(x), None, _CudaLikeOps())  # a function: not moved to the device
    slabs = list(engine.predict_slabs([runner], image, SETTINGS))
    assert len(slabs) > 2 and autocasts == ["cuda"]
    engine.predict_logits([runner], image, SETTINGS)
    assert autocasts == ["cuda", "cuda"]
    cpu_runner = TorchRunner(_net(), None, TorchOps("cpu"))
    engine.predict_logits([cpu_runner], image, SETTINGS)
    list(engine.predict_slabs([cpu_runner], image, SETTINGS))
    assert autocasts == ["cuda", "cuda"]  # no autocast off CUDA


def test_accumulators_and_fold_sum_on_the_device_unless_told():
    ops = TorchOps("cuda")
    assert ops.on_device and ops.accumulator_device.type == "cuda"
    host = ops.host_accumulation()
    assert not host.on_device and host.accumulator_device.type == "cpu" and host.device.type == "cuda"
    assert not TorchOps("cuda", accumulate_on_device=False).on_device


def test_slab_path_loads_each_folds_weights_once_per_call(monkeypatch):
    predictor = make_predictor()
    first = {k: v.clone() for k, v in predictor.network.state_dict().items()}
    second = {k: v + 0.01 if v.is_floating_point() else v.clone() for k, v in first.items()}
    predictor.list_of_parameters = [first, second]  # assigned by hand, as programs do
    loads = []
    real = torch.nn.Module.load_state_dict
    monkeypatch.setattr(torch.nn.Module, "load_state_dict", lambda self, *a, **k: (loads.append(id(self)),
                                                                                   real(self, *a, **k))[1])
    image = np.random.default_rng(1).normal(size=(1, 40, 18, 21)).astype(np.float32)
    context = predictor.prediction_context()
    slabs = list(engine.predict_slabs(context.slab_runners(), image, context.window))
    assert len(slabs) > 2
    assert len(loads) == 2 and len(set(loads)) == 2  # each fold once, into its own network
    again = list(engine.predict_slabs(predictor.prediction_context().slab_runners(), image, context.window))
    assert len(loads) == 2  # the copies are kept and hold their weights
    for (a, x), (b, y) in zip(slabs, again):
        assert a == b and np.array_equal(x, y)
    in_memory = predictor.predict_logits_array(image.copy())
    np.testing.assert_array_equal(np.concatenate([rows for _, rows in slabs], axis=1), in_memory)


def test_no_host_reads_per_tile(monkeypatch):
    reads = []
    for name in ("__bool__", "item", "numpy", "tolist", "cpu"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _n=name, _r=real, **k: (reads.append(_n),
                                                                                       _r(self, *a, **k))[1])
    tiles = []
    image = np.random.default_rng(2).normal(size=(1, 20, 9, 10)).astype(np.float32)
    runners = [TorchRunner(_net(), None, TorchOps("cpu")) for _ in range(2)]
    slabs = list(engine.predict_slabs(runners, image, SETTINGS, on_tile=lambda: tiles.append(1)))
    assert len(tiles) > 2 * len(slabs)
    assert reads.count("__bool__") == len(slabs) + 1  # the overflow check per slab; the importance map's once
    assert reads.count("numpy") == len(slabs) and reads.count("item") == reads.count("cpu") == 0


def test_slab_path_falls_back_to_host_accumulation_before_the_first_slab():
    log = []
    run = lambda x: np.concatenate([x, 2 * x - 1], 1)  # noqa: E731
    runner = engine.ArrayRunner(run)
    runner.ops = DeviceOutOfMemoryOps(log)
    image = np.random.default_rng(3).normal(size=(1, 20, 9, 10)).astype(np.float32)
    settings = engine.WindowSettings((8, 8, 8), 2)
    got = list(engine.predict_slabs([runner], image, settings))
    assert log == ["device zeros", "emptied", "host"]
    expected = list(engine.predict_slabs([engine.ArrayRunner(run)], image, settings))
    assert [s for s, _ in got] == [s for s, _ in expected]
    for (_, a), (_, b) in zip(got, expected):
        np.testing.assert_array_equal(a, b)
