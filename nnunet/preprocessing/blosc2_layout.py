"""Blosc2 layout of preprocessed arrays: block and chunk shapes from the patch size, and the compression filter.

Same rules as nnU-Net 2.8.1, so the files have the same layout, size and filter as the reference's.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import blosc2
import numpy as np

BLOCK_BYTES = 128 * 1024
CHUNK_BYTES = 6 * 1024 * 1024
CODEC = blosc2.Codec.LZ4HC
CLEVEL = 5
#: compression threads (blosc2 output does not depend on it). Keep 4 in pool workers too: with any other count,
#: blosc2 4.x re-creates its thread pool for every chunk when serialising a multi-chunk array (measured 5-6 ms
#: per 36-chunk 2d case instead of 0.15 ms), which costs far more than the idle threads.
NTHREADS = 4


def _pow2_at_least(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _pow2_below(n: int) -> int:
    """The largest power of two strictly below ``n`` (1 for n <= 2)."""
    return 1 if n <= 1 else 1 << ((n - 1).bit_length() - 1)


def block_and_chunk_shape(shape: Sequence[int], patch_size: Sequence[int],
                          itemsize: int) -> tuple[list[int], list[int]]:
    """Blosc2 block and chunk shapes for a (C, X, Y, Z) array that training reads patch by patch.

    The channel axis is always 1. A 2-D patch ``(y, z)`` is treated as ``(1, y, z)``. Per spatial axis the
    target extent is ``min(image, floor(1.5 * patch))``.

    * Block: the next power of two >= the patch extent (at most the image extent); while it holds more than
      128 KiB, the axis with the largest block/target ratio (ties: the later axis) drops to the next smaller
      power of two.
    * Chunk: starts as the block and grows one block step at a time (clamped to the image and the target
      extent) on the axis covering the smallest fraction of its target (ties: the larger image axis, then the
      earlier axis), while it stays within 6 MiB. Singleton patch axes (the 2-D slice axis) never grow.
    """
    spatial = [int(s) for s in shape[1:]]
    patch = [1] + [int(p) for p in patch_size] if len(patch_size) == 2 else [int(p) for p in patch_size]
    target = [max(1, min(s, math.floor(1.5 * p))) for s, p in zip(spatial, patch)]

    def nbytes(extent: Sequence[int]) -> int:
        return math.prod(extent) * itemsize

    block = [min(_pow2_at_least(p), s) for p, s in zip(patch, spatial)]
    while nbytes(block) > BLOCK_BYTES:
        shrinkable = [a for a in range(3) if block[a] > 1]
        if not shrinkable:
            break
        axis = max(shrinkable, key=lambda a: (block[a] / target[a], a))
        block[axis] = _pow2_below(block[axis])

    chunk = list(block)
    while True:
        options = []
        for a in range(3):
            if patch[a] == 1 or chunk[a] >= spatial[a] or chunk[a] >= target[a]:
                continue
            grown = list(chunk)
            grown[a] = min(chunk[a] + block[a], spatial[a], target[a])
            if nbytes(grown) > CHUNK_BYTES:
                continue
            options.append(((chunk[a] / target[a], -spatial[a], a), grown))
        if not options:
            break
        chunk = min(options, key=lambda option: option[0])[1]
    return [1] + block, [1] + chunk


def _filter_trial(array: np.ndarray, blocks: Sequence[int], chunks: Sequence[int],
                  nthreads: int) -> tuple[blosc2.Filter, Any]:
    """The filter that compresses a centred slab (at most one chunk) smaller, and the winning compressed slab
    when that slab is the whole array stored with the final layout (then it is the finished file's content)."""
    slab_shape = [min(int(c), int(s)) for c, s in zip(chunks, array.shape)]
    slab = np.ascontiguousarray(array[tuple(slice((s - e) // 2, (s - e) // 2 + e)
                                            for s, e in zip(array.shape, slab_shape))])
    slab_blocks = [max(1, min(int(b), e)) for b, e in zip(blocks, slab_shape)]
    trials = {}
    for candidate in (blosc2.Filter.NOFILTER, blosc2.Filter.SHUFFLE):
        cparams = {"codec": CODEC, "clevel": CLEVEL, "nthreads": nthreads, "filters": [candidate]}
        trials[candidate] = blosc2.asarray(slab, chunks=slab_shape, blocks=slab_blocks, cparams=cparams)
    best = blosc2.Filter.SHUFFLE if trials[blosc2.Filter.SHUFFLE].schunk.cbytes < \
        trials[blosc2.Filter.NOFILTER].schunk.cbytes else blosc2.Filter.NOFILTER
    whole = (slab.shape == array.shape and list(slab_shape) == list(chunks) and list(slab_blocks) == list(blocks))
    return best, trials[best] if whole else None


def choose_filter(array: np.ndarray, blocks: Sequence[int], chunks: Sequence[int],
                  nthreads: int = NTHREADS) -> blosc2.Filter:
    """NOFILTER or SHUFFLE, whichever compresses a centred slab (at most one chunk) of ``array`` smaller
    (ties and failures: NOFILTER). Resampled intensities usually prefer SHUFFLE, raw quantized ones NOFILTER."""
    try:
        return _filter_trial(array, blocks, chunks, nthreads)[0]
    except Exception:  # noqa: BLE001 - the filter is an optimisation; never fail a case over it
        return blosc2.Filter.NOFILTER


def compressed_frame(array: np.ndarray, patch_size: Sequence[int], nthreads: int = NTHREADS) -> bytes:
    """The whole ``.b2nd`` file of ``array`` (compressed in memory: faster than letting blosc2 append chunk by
    chunk to a file, and it lets the caller write the file in one go)."""
    array = np.ascontiguousarray(array)
    blocks, chunks = block_and_chunk_shape(array.shape, patch_size, array.itemsize)
    try:
        best, finished = _filter_trial(array, blocks, chunks, nthreads)
    except Exception:  # noqa: BLE001 - the filter is an optimisation; never fail a case over it
        best, finished = blosc2.Filter.NOFILTER, None
    if finished is None:
        cparams = {"codec": CODEC, "clevel": CLEVEL, "nthreads": nthreads, "filters": [best]}
        finished = blosc2.asarray(array, chunks=chunks, blocks=blocks, cparams=cparams)
    return finished.to_cframe()
