"""The sliding-window engine: one tile loop and one accumulator for every runner (torch, OpenVINO, ONNX Runtime).

A *runner* runs one fold's network on a (B, C, *patch) batch and carries the array operations the loop needs
(:class:`NumpyOps` here, ``TorchOps`` in :mod:`nnunet.inference.torch_engine`). The loop writes every
accumulation step with operators and in-place updates that numpy and torch evaluate alike (products in float32,
sums rounded to the accumulation dtype), so on the CPU a numpy runner and a torch runner give the same numbers.
This module imports no torch: with a cached export, prediction never loads it.

The tiles are visited in rows (tiles that share their first-axis start, :func:`~nnunet.inference.tiling.tile_rows`).
A :class:`RollingAccumulator` holds ``logits_sum`` and ``weight_sum`` for ``depth`` rows of the padded image;
:meth:`~RollingAccumulator.pop` returns the final logits of the rows that no later tile reaches and moves the
accumulator on. The in-memory window is the case where the depth is the whole padded image and everything is
popped once, in place; the slab window pops after every row of tiles, so its accumulators span one patch along
the first axis, and every voxel receives the same additions in the same order as in memory (the slabs are
bit-identical to the rows of the in-memory logits).

Folds: in memory they run one after another (one accumulator alive at a time, the fold sum beside it); in slabs
they are interleaved per row, each fold with its own accumulator and its own runner, so that no weights are
reloaded between rows. Either way the folds' logits are summed in fold order and divided by their number.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np

from nnunet.errors import exception_line
from nnunet.inference.tiling import (MIRROR_BATCH_VOXELS, Index, gaussian_weights, mirror_axis_combinations,
                                     padding_for_patch, read_tile, row_start, tile_rows)

logger = logging.getLogger(__name__)

OVERFLOW_MESSAGE = ("The accumulated logits overflowed (inf). Accumulate in float32 "
                    "(accumulation_dtype=torch.float32) or lower the importance-map scale.")


@dataclass(frozen=True)
class WindowSettings:
    """What the sliding window needs besides the runners and the image."""
    patch_size: tuple[int, ...]
    num_heads: int
    step_size: float = 0.5
    use_gaussian: bool = True
    mirror_axes: tuple[int, ...] | None = None
    accumulation_dtype: str = "float16"  # a dtype name both numpy and torch know


def dtype_name(dtype: Any) -> str:
    """``"float16"`` for ``torch.float16``, ``np.float16`` or ``"float16"`` (None: float16, as in nnU-Net)."""
    if dtype is None:
        return "float16"
    return str(dtype).replace("torch.", "") if not isinstance(dtype, type) else np.dtype(dtype).name


class ArrayOps(Protocol):
    """The array operations of one runner kind. ``on_device``: the accumulators live on an accelerator (then a
    failure is retried with :meth:`host_accumulation`)."""
    on_device: bool

    def context(self) -> contextlib.AbstractContextManager: ...
    def dtype(self, name: str) -> Any: ...
    def zeros(self, shape: Sequence[int], dtype: Any) -> Any: ...
    def importance_map(self, patch_size: Sequence[int], dtype: Any) -> Any: ...
    def image(self, image: Any) -> Any: ...
    def pad(self, image: Any, pads: Sequence[tuple[int, int]]) -> Any: ...
    def batch(self, view: Any) -> Any: ...
    def from_host(self, array: np.ndarray) -> Any: ...
    def flip(self, x: Any, dims: tuple[int, ...]) -> Any: ...
    def cat(self, xs: list) -> Any: ...
    def copy(self, x: Any) -> Any: ...
    def to_accumulator(self, x: Any) -> Any: ...
    def divide(self, a: Any, b: Any, in_place: bool) -> Any: ...
    def any_inf(self, x: Any) -> Any: ...
    def to_host(self, x: Any) -> Any: ...
    def to_numpy(self, x: Any) -> np.ndarray: ...
    def host_accumulation(self) -> "ArrayOps": ...
    def empty_cache(self) -> None: ...


class Runner(Protocol):
    """One fold's network: ``runner(batch)`` maps (B, C, *patch) to (B, heads, *patch) with ``runner.ops``'s
    arrays; :meth:`prepare` makes this fold's weights current before its tiles run."""
    ops: ArrayOps

    def prepare(self) -> None: ...
    def __call__(self, batch: Any) -> Any: ...


class NumpyOps:
    """numpy arrays on the CPU, for the runtimes that take and give numpy (OpenVINO, ONNX Runtime)."""
    on_device = False

    def context(self):
        return contextlib.nullcontext()

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(name)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def importance_map(self, patch_size, dtype):
        return gaussian_weights(patch_size, dtype)

    def image(self, image):
        return image if isinstance(image, np.ndarray) else np.asarray(image)

    def pad(self, image, pads):
        return np.pad(image, [(0, 0)] + list(pads)) if any(b or a for b, a in pads) else image

    def batch(self, view):
        return np.ascontiguousarray(view[None], dtype=np.float32)

    def from_host(self, array):
        return array

    def flip(self, x, dims):
        return np.flip(x, dims)

    def cat(self, xs):
        return np.ascontiguousarray(np.concatenate(xs))

    def copy(self, x):
        return x.copy()

    def to_accumulator(self, x):
        return x

    def divide(self, a, b, in_place):
        return np.divide(a, b, out=a) if in_place else np.divide(a, b)

    def any_inf(self, x):
        return np.isinf(x).any()

    def to_host(self, x):
        return x

    def to_numpy(self, x):
        return x

    def host_accumulation(self):
        return self

    def empty_cache(self) -> None:
        pass


class ArrayRunner:
    """A fold run by a compiled runtime: ``run`` maps (B, C, *patch) float32 to (B, heads, *patch) float32
    (:func:`nnunet.inference.runners.make_runner`). ``source``: the file it was compiled from, for messages."""
    ops = NumpyOps()

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], source: Any = None):
        self.run, self.source = run, source

    def prepare(self) -> None:
        pass

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(np.ascontiguousarray(batch, dtype=np.float32))


# ----------------------------------------------------------------------------------------------- one tile

def mirrored_prediction(network: Callable[[Any], Any], ops: ArrayOps, x: Any, mirror_axes: Sequence[int] | None,
                        max_batch_voxels: int | None = MIRROR_BATCH_VOXELS) -> Any:
    """``network(x)`` for a batch (B, C, *spatial), averaged over all flips of the spatial ``mirror_axes``.

    ``mirror_axes`` count spatial axes (0 = first spatial axis); None or empty: a single forward pass. Small
    tiles are flipped into one larger batch (at most ``max_batch_voxels`` spatial voxels per forward pass; None =
    one pass per flip), so the network is called fewer times; the outputs are summed in the same order either way.

    Raises:
        ValueError: a mirror axis that ``x`` does not have.
    """
    if not mirror_axes:
        return network(x)
    num_spatial = x.ndim - 2
    if max(mirror_axes) >= num_spatial or min(mirror_axes) < 0:
        raise ValueError(f"Mirror axes {tuple(mirror_axes)} do not fit an input with {num_spatial} spatial axes.")
    flips = [()] + mirror_axis_combinations([a + 2 for a in mirror_axes])
    batch = x.shape[0]
    tile_voxels = batch * math.prod(x.shape[2:])
    per_pass = max(1, max_batch_voxels // tile_voxels) if max_batch_voxels else 1
    prediction = None
    for start in range(0, len(flips), per_pass):
        group = flips[start:start + per_pass]
        outputs = network(ops.cat([ops.flip(x, dims) for dims in group]))
        for i, dims in enumerate(group):
            output = ops.flip(outputs[i * batch:(i + 1) * batch], dims)
            if prediction is None:
                prediction = ops.copy(output)  # the sum owns its memory
            else:
                prediction += output
    prediction /= len(flips)
    return prediction


# ----------------------------------------------------------------------------------------------- accumulation

class RollingAccumulator:
    """``logits_sum`` and ``weight_sum`` of the padded rows ``[origin, origin + depth)``; the arrays are made at
    the first tile (so that folds run one after another hold one accumulator at a time)."""

    def __init__(self, ops: ArrayOps, num_heads: int, depth: int, plane: Sequence[int], dtype: Any):
        self.ops, self.num_heads, self.depth, self.plane, self.dtype = ops, num_heads, depth, list(plane), dtype
        self.origin = 0
        self.logits = self.weights = None

    def _local(self, index: Index) -> Index:
        first = index[1]
        if isinstance(first, int):
            return (slice(None), first - self.origin, *index[2:])
        return (slice(None), slice(first.start - self.origin, first.stop - self.origin), *index[2:])

    def add(self, index: Index, prediction: Any, weights: Any | None) -> None:
        """Weight the tile's prediction (in place), add it and its weights."""
        if self.logits is None:
            self.logits = self.ops.zeros((self.num_heads, self.depth, *self.plane), self.dtype)
            self.weights = self.ops.zeros((self.depth, *self.plane), self.dtype)
        local = self._local(index)
        if weights is not None:
            prediction *= weights
            self.weights[local[1:]] += weights
        else:
            self.weights[local[1:]] += 1
        self.logits[local] += prediction

    def pop(self, stop: int) -> Any:
        """Final logits of the rows ``[origin, stop)``; the accumulator then starts at ``stop``.

        Popping every row divides in place and hands the storage over (no copy); new arrays are made if more
        tiles follow."""
        n = stop - self.origin
        self.origin = stop
        if n >= self.depth:
            final = self.ops.divide(self.logits, self.weights, in_place=True)
            self.logits = self.weights = None
            return final
        final = self.ops.divide(self.logits[:, :n], self.weights[:n], in_place=False)
        keep = self.depth - n
        self.logits[:, :keep] = self.ops.copy(self.logits[:, n:])
        self.weights[:keep] = self.ops.copy(self.weights[n:])
        self.logits[:, keep:] = 0
        self.weights[keep:] = 0
        return final


# ----------------------------------------------------------------------------------------------- tiles

class PaddedImage:
    """The whole image, padded once where the accumulators live; tiles are cut from it."""

    def __init__(self, ops: ArrayOps, image: Any, patch_size: Sequence[int]):
        image = ops.image(image)
        self.ops, self.spatial = ops, list(image.shape[1:])
        self.pads = padding_for_patch(self.spatial, patch_size)
        self.data = ops.pad(ops.to_accumulator(image), self.pads)
        self.padded = list(self.data.shape[1:])

    def read(self, index: Index) -> Any:
        return self.ops.batch(self.data[index])  # convolutions are faster on dense input


class MappedImage:
    """An image too large to copy (a memory map): each tile is read with zeros where it leaves the image."""

    def __init__(self, ops: ArrayOps, image: np.ndarray, patch_size: Sequence[int]):
        self.ops, self.image, self.spatial = ops, image, list(image.shape[1:])
        self.pads = padding_for_patch(self.spatial, patch_size)
        self.padded = [s + a + b for s, (a, b) in zip(self.spatial, self.pads)]

    def read(self, index: Index) -> Any:
        return self.ops.from_host(read_tile(self.image, index, self.pads))


# ----------------------------------------------------------------------------------------------- the loop

def _fold_averaged_slabs(runners: Sequence[Runner], ops: ArrayOps, tiles: PaddedImage | MappedImage,
                         settings: WindowSettings, per_row: bool,
                         on_tile: Callable[[], None] | None) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(start, stop, logits)``: the fold-averaged logits of the padded rows ``[start, stop)``, on the
    accumulators' side. ``per_row``: pop after every row of tiles (slabs), else once at the end (in memory)."""
    patch = settings.patch_size
    rows = tile_rows(tiles.padded, patch, settings.step_size)
    groups = rows if per_row else [[index for row in rows for index in row]]
    depth = (patch[0] if len(patch) == len(tiles.padded) else 1) if per_row else tiles.padded[0]
    dtype = ops.dtype(settings.accumulation_dtype)
    weights = ops.importance_map(patch, dtype) if settings.use_gaussian else None
    accumulators = [RollingAccumulator(ops, settings.num_heads, depth, tiles.padded[1:], dtype) for _ in runners]
    with ops.context():
        for i, group in enumerate(groups):
            stop = row_start(groups[i + 1][0]) if i + 1 < len(groups) else tiles.padded[0]
            total = overflow = None
            for runner, accumulator in zip(runners, accumulators):
                runner.prepare()
                for index in group:
                    prediction = mirrored_prediction(runner, ops, tiles.read(index), settings.mirror_axes)[0]
                    accumulator.add(index, ops.to_accumulator(prediction), weights)
                    if on_tile is not None:
                        on_tile()
                part = accumulator.pop(stop)
                flag = ops.any_inf(part)  # read once per slab, below: the device is not waited for per tile or fold
                overflow = flag if overflow is None else overflow | flag
                if total is None:
                    total = part
                else:
                    total += part
                del part
            if bool(overflow):
                raise RuntimeError(OVERFLOW_MESSAGE)
            if len(runners) > 1:
                total /= len(runners)
            yield row_start(group[0]), stop, total


def _unpad(tiles: PaddedImage | MappedImage, start: int, stop: int, logits: Any) -> tuple[int, Any] | None:
    """The rows of a padded slab that belong to the image, cropped in-plane; None if there are none."""
    before = tiles.pads[0][0]
    lo, hi = max(start - before, 0), min(stop - before, tiles.spatial[0])
    if hi <= lo:
        return None
    crop = [slice(b, b + n) for (b, _), n in zip(tiles.pads[1:], tiles.spatial[1:])]
    return lo, logits[(slice(None), slice(lo + before - start, hi + before - start), *crop)]


def _logits_once(runners: Sequence[Runner], ops: ArrayOps, image: Any, settings: WindowSettings,
                 on_tile: Callable[[], None] | None, to_host: bool) -> Any:
    tiles = PaddedImage(ops, image, settings.patch_size)
    (start, stop, total), = _fold_averaged_slabs(runners, ops, tiles, settings, False, on_tile)
    _, logits = _unpad(tiles, start, stop, total)
    return ops.to_host(logits) if to_host else logits


def predict_logits(runners: Sequence[Runner], image: Any, settings: WindowSettings,
                   on_tile: Callable[[], None] | None = None, to_host: bool = True) -> Any:
    """Fold-averaged logits (heads, *spatial) of a whole (C, *spatial) image, in ``settings.accumulation_dtype``.

    When the runners accumulate on a device, the image, the accumulators and the fold sum stay there and the
    result is moved to the host once (``to_host=False``: left on the device); a RuntimeError on the device
    (typically out of memory) empties its cache and the whole image is predicted again with the accumulators
    on the host (the networks stay on the device). ``on_tile`` is called after every tile of every fold.

    Raises:
        RuntimeError: the accumulated logits overflowed (inf).
    """
    ops = runners[0].ops
    if ops.on_device:
        try:
            return _logits_once(runners, ops, image, settings, on_tile, to_host)
        except RuntimeError as e:
            logger.warning("Prediction with the results on the device failed (%s); predicting this image again "
                           "with the results accumulated on the CPU.", exception_line(e))
            ops.empty_cache()
            ops = ops.host_accumulation()
    return _logits_once(runners, ops, image, settings, on_tile, to_host)


def predict_slabs(runners: Sequence[Runner], image: np.ndarray, settings: WindowSettings,
                  on_tile: Callable[[], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, logits)`` for consecutive slabs of a (C, *spatial) image, fold-averaged.

    ``image`` may be a read-only memory map; each runner must hold its own fold's weights (they are
    interleaved per row). The logits (heads, rows, *plane) are numpy arrays of the accumulation dtype, moved to
    the host once per slab; together the slabs cover every row once, in order.
    """
    ops = runners[0].ops
    yielded = False
    if ops.on_device:
        try:
            for slab in _slabs_once(runners, ops, image, settings, on_tile):
                yielded = True
                yield slab
            return
        except RuntimeError as e:
            if yielded:  # the first slabs are exported already: nothing to predict again
                raise
            # the accumulators are allocated in the first row, so running out of device memory shows there
            logger.warning("Prediction in slabs with the results on the device failed (%s); accumulating on the "
                           "CPU.", exception_line(e))
            ops.empty_cache()
            ops = ops.host_accumulation()
    yield from _slabs_once(runners, ops, image, settings, on_tile)


def _slabs_once(runners: Sequence[Runner], ops: ArrayOps, image: np.ndarray, settings: WindowSettings,
                on_tile: Callable[[], None] | None) -> Iterator[tuple[int, np.ndarray]]:
    tiles = MappedImage(ops, image, settings.patch_size)
    for start, stop, total in _fold_averaged_slabs(runners, ops, tiles, settings, True, on_tile):
        rows = _unpad(tiles, start, stop, total)
        if rows is not None:
            yield rows[0], ops.to_numpy(rows[1])
