"""Batches from augmentation workers to the training process through reused shared memory.

Sent the plain way, every batch costs the worker a fresh shared-memory segment (torch moves each tensor into one
when it is pickled: a copy plus one page fault per 4 KiB) and the training process the mapping and the faults
again: about a third of the worker's CPU for a 3d_fullres batch. Here each worker keeps a few *slots*, shared
buffers made once and refilled: the worker copies a batch into a free slot and sends only its layout; the training
process maps each slot once and hands out arrays that are views of it.

A slot is free again when every array of its batch, and every view of one, has been garbage-collected: each array
is a view of its own buffer object (``np.frombuffer``), which every numpy view and ``torch.from_numpy`` tensor keeps
alive, and a finalizer on that object counts the batch's arrays down. So a batch that a trainer keeps (for a plot,
say) is never overwritten; its slot just stays taken, and when all of a worker's slots are taken the worker sends
the plain way. The first 8 bytes of a slot say whether it is taken (1, written by the worker) or free (0, written
by the training process); each side writes only its own transition.
"""
from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

HEADER_BYTES = 64  # the state word, and alignment for the first array
ALIGN = 64


@dataclass(frozen=True)
class Placeholder:
    """Where array ``index`` of the layout goes back into the batch."""

    index: int


@dataclass(frozen=True)
class ArraySpec:
    offset: int
    dtype: str
    shape: tuple[int, ...]
    is_tensor: bool

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class SlotBatch:
    """What a worker sends for a batch written into one of its slots."""

    worker: int  # the worker's pid
    slot: int
    storage: torch.Tensor | None  # the slot's shared memory, sent when the slot is new (or replaced) only
    layout: tuple[ArraySpec, ...]
    skeleton: Any  # the batch with each array replaced by a Placeholder


def _shareable(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.device.type == "cpu" and not value.requires_grad and value.dtype in _TORCH_TO_NUMPY
    return isinstance(value, np.ndarray) and value.dtype.kind in "biufc"


def split_arrays(batch: Any, arrays: list) -> Any:
    """``batch`` with its arrays (in dicts, lists and tuples) replaced by placeholders, appended to ``arrays``."""
    if _shareable(batch):
        arrays.append(batch)
        return Placeholder(len(arrays) - 1)
    if isinstance(batch, dict):
        return {k: split_arrays(v, arrays) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and type(batch) in (list, tuple):
        return type(batch)(split_arrays(v, arrays) for v in batch)
    return batch


def fill_arrays(skeleton: Any, arrays: list) -> Any:
    if isinstance(skeleton, Placeholder):
        return arrays[skeleton.index]
    if isinstance(skeleton, dict):
        return {k: fill_arrays(v, arrays) for k, v in skeleton.items()}
    if isinstance(skeleton, (list, tuple)) and type(skeleton) in (list, tuple):
        return type(skeleton)(fill_arrays(v, arrays) for v in skeleton)
    return skeleton


_TORCH_TO_NUMPY = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16",
                   torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8",
                   torch.uint8: "uint8", torch.bool: "bool"}


def plan_layout(arrays: list) -> tuple[tuple[ArraySpec, ...], int]:
    """Where each array goes in a slot, and the slot size that holds them all."""
    specs, offset = [], HEADER_BYTES
    for a in arrays:
        is_tensor = isinstance(a, torch.Tensor)
        dtype = _TORCH_TO_NUMPY[a.dtype] if is_tensor else a.dtype.str
        spec = ArraySpec(offset, dtype, tuple(int(s) for s in a.shape), is_tensor)
        specs.append(spec)
        offset += -(-spec.nbytes // ALIGN) * ALIGN
    return tuple(specs), offset


def _state(raw: np.ndarray) -> np.ndarray:
    return raw[:8].view(np.int64)


def _view(raw: np.ndarray, spec: ArraySpec) -> np.ndarray:
    return raw[spec.offset:spec.offset + spec.nbytes].view(spec.dtype).reshape(spec.shape)


class SlotWriter:
    """A worker's slots: ``pack`` copies a batch into a free one (made when none is free, up to ``max_slots``)."""

    def __init__(self, max_slots: int):
        self.max_slots = max_slots
        self.storages: list[torch.Tensor] = []
        self.raws: list[np.ndarray] = []
        self.sent: list[bool] = []

    def pack(self, batch: Any) -> Any:
        """A :class:`SlotBatch`, or ``batch`` itself where it has no arrays or no slot can take it now."""
        arrays: list = []
        skeleton = split_arrays(batch, arrays)
        if not arrays:
            return batch
        layout, size = plan_layout(arrays)
        slot = self._slot_for(size)
        if slot is None:
            return batch
        raw = self.raws[slot]
        for array, spec in zip(arrays, layout):
            target = _view(raw, spec)
            if spec.is_tensor:
                torch.from_numpy(target).copy_(array)
            else:
                np.copyto(target, array)
        _state(raw)[0] = 1
        storage = None if self.sent[slot] else self.storages[slot]
        self.sent[slot] = True
        return SlotBatch(os.getpid(), slot, storage, layout, skeleton)

    def _slot_for(self, size: int) -> int | None:
        free = [i for i, raw in enumerate(self.raws) if _state(raw)[0] == 0]
        fitting = [i for i in free if self.raws[i].size >= size]
        if fitting:
            return min(fitting, key=lambda i: self.raws[i].size)
        if len(self.raws) < self.max_slots:
            self.storages.append(None)
            self.raws.append(None)
            self.sent.append(False)
            slot = len(self.raws) - 1
        elif free:  # a batch larger than before: replace a free slot (the training process drops its old mapping)
            slot = free[0]
        else:
            return None
        storage = torch.zeros(size, dtype=torch.uint8).share_memory_()
        self.storages[slot], self.raws[slot], self.sent[slot] = storage, storage.numpy(), False
        return slot


class _Release:
    """Frees a slot once all arrays of its batch are gone."""

    def __init__(self, raw: np.ndarray, count: int):
        self.raw, self.count = raw, count

    def one_gone(self) -> None:
        self.count -= 1
        if self.count == 0:
            _state(self.raw)[0] = 0


def _buffer_owner(array: np.ndarray) -> Any:
    owner = array
    while isinstance(owner, np.ndarray):
        owner = owner.base
    return owner


class SlotReader:
    """The training process's side: maps each worker's slots once and turns a :class:`SlotBatch` into arrays."""

    def __init__(self):
        self.slots: dict[tuple[int, int], np.ndarray] = {}  # each array keeps its shared storage mapped

    def unpack(self, item: Any) -> Any:
        if not isinstance(item, SlotBatch):
            return item
        key = (item.worker, item.slot)
        if item.storage is not None:
            self.slots[key] = item.storage.numpy()
        if key not in self.slots:
            raise RuntimeError(f"A batch of worker {item.worker} names its slot {item.slot}, which this process "
                               f"never received.")
        raw = self.slots[key]
        release = _Release(raw, len(item.layout))
        arrays = []
        for spec in item.layout:
            flat = np.frombuffer(memoryview(raw)[spec.offset:spec.offset + spec.nbytes], dtype=spec.dtype)
            weakref.finalize(_buffer_owner(flat), release.one_gone)
            array = flat.reshape(spec.shape)
            arrays.append(torch.from_numpy(array) if spec.is_tensor else array)
        return fill_arrays(item.skeleton, arrays)

    def clear(self) -> None:
        """Forget the mappings (batches still held keep theirs)."""
        self.slots.clear()
