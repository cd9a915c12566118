"""Batches from augmentation workers through reused shared memory (nnunet.training.data.shared_batches)."""
from __future__ import annotations

import gc
import os

import numpy as np
import torch

from nnunet.training.data.shared_batches import SlotBatch, SlotReader, SlotWriter
from nnunet.training.data.workers import background_loader, finish_loader, slots_per_worker


def _batch(value: float) -> dict:
    return {"data": torch.full((2, 1, 4, 4, 4), value),
            "target": [torch.full((2, 1, 4, 4, 4), int(value), dtype=torch.int16),
                       torch.full((2, 1, 2, 2, 2), int(value), dtype=torch.int16)],
            "keys": ["case_a", "case_b"], "extra": np.arange(5, dtype=np.uint8) + int(value)}


def _sent(writer: SlotWriter, reader: SlotReader, batch: dict):
    item = writer.pack(batch)
    assert isinstance(item, SlotBatch)
    return reader.unpack(item)


def test_a_batch_comes_back_equal_with_its_types():
    writer, reader = SlotWriter(max_slots=2), SlotReader()
    batch = _batch(3.0)
    received = _sent(writer, reader, batch)
    assert received["keys"] == ["case_a", "case_b"]
    assert torch.equal(received["data"], batch["data"]) and received["data"].dtype == torch.float32
    assert [t.dtype for t in received["target"]] == [torch.int16, torch.int16]
    assert all(torch.equal(a, b) for a, b in zip(received["target"], batch["target"]))
    assert isinstance(received["extra"], np.ndarray) and np.array_equal(received["extra"], batch["extra"])


def test_a_slot_is_reused_only_after_every_view_of_its_batch_is_gone():
    writer, reader = SlotWriter(max_slots=3), SlotReader()
    first = _sent(writer, reader, _batch(1.0))
    kept_view = first["data"][0]  # a trainer keeping part of a batch keeps the whole slot
    kept_numpy = first["extra"][1:3]
    del first
    gc.collect()
    second = _sent(writer, reader, _batch(2.0))
    assert len(writer.raws) == 2  # the first slot was still taken: a second one was made
    assert torch.all(kept_view == 1.0) and list(kept_numpy) == [2, 3]
    del kept_view
    gc.collect()
    third = _sent(writer, reader, _batch(4.0))
    assert len(writer.raws) == 3  # the numpy view still holds slot 0
    del kept_numpy, second, third
    gc.collect()
    fourth = _sent(writer, reader, _batch(5.0))
    assert len(writer.raws) == 3 and torch.all(fourth["data"] == 5.0)


def test_with_every_slot_taken_a_batch_goes_the_plain_way():
    writer, reader = SlotWriter(max_slots=1), SlotReader()
    held = _sent(writer, reader, _batch(1.0))
    plain = _batch(2.0)
    assert writer.pack(plain) is plain
    assert torch.all(held["data"] == 1.0)


def test_a_larger_batch_replaces_a_free_slot_and_the_reader_maps_the_new_one():
    writer, reader = SlotWriter(max_slots=1), SlotReader()
    del _sent(writer, reader, _batch(1.0))["data"]
    gc.collect()
    bigger = {"data": torch.arange(4096, dtype=torch.float32)}
    item = writer.pack(bigger)
    assert isinstance(item, SlotBatch) and item.storage is not None  # sent again: the slot is new
    assert torch.equal(reader.unpack(item)["data"], bigger["data"])


def test_batches_without_arrays_and_unsupported_values_pass_unchanged():
    writer = SlotWriter(max_slots=2)
    assert writer.pack({"keys": ["a"]}) == {"keys": ["a"]}
    grad = torch.ones(3, requires_grad=True)
    item = writer.pack({"w": grad, "x": torch.ones(2)})
    assert isinstance(item, SlotBatch) and item.skeleton["w"] is grad


class _CountingLoader:
    """An endless loader whose batches say which worker made them and how many it made."""

    def __init__(self):
        self.count = 0

    def set_thread_id(self, thread_id):
        self.thread_id = thread_id

    def __iter__(self):
        return self

    def __next__(self):
        self.count += 1
        return {"data": torch.full((2, 1, 16, 16, 16), float(self.count)),
                "target": [torch.full((2, 1, 16, 16, 16), self.count, dtype=torch.int16)],
                "worker": os.getpid()}


def _shm_files() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def test_background_workers_send_through_slots_and_the_batches_are_right(monkeypatch):
    before = _shm_files()
    loader = background_loader(_CountingLoader(), 2, 2, False)
    seen = []
    unpack = loader.reader.unpack

    def spy(item):
        seen.append(isinstance(item, SlotBatch))
        return unpack(item)
    monkeypatch.setattr(loader.reader, "unpack", spy)
    try:
        batches = [next(loader) for _ in range(30)]
        for b in batches:  # all held at once: many slots taken, then the plain way, never a torn batch
            value = b["data"].flatten()[0].item()
            assert torch.all(b["data"] == value) and torch.all(b["target"][0] == int(value))
        assert len({b["worker"] for b in batches}) == 2
        assert any(seen)
        assert len(loader.reader.slots) <= 2 * slots_per_worker(2)
        assert _shm_files() == before  # slots are unlinked at once: a killed run leaves nothing in /dev/shm
    finally:
        finish_loader(loader)


def test_shared_batches_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("nnUNet_shared_batches", "0")
    assert slots_per_worker(6) == 0
    loader = background_loader(_CountingLoader(), 1, 2, False)
    try:
        assert torch.all(next(loader)["data"] >= 1)
        assert loader.reader.slots == {}
    finally:
        finish_loader(loader)
