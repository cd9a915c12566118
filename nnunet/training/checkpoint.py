"""The random-generator states a training's checkpoint carries, so that a resumed run continues every process's
random stream: ``rng_state`` (python/numpy/torch generator states of the first process) and, for DDP trainings,
``rng_state_per_rank`` (one such state per global rank). nnU-Net ignores these keys. The states hold only plain
Python values and a uint8 tensor.

The file format and the data-only loader are in :mod:`nnunet.networks.checkpoint_files` (inference and the
sharing commands read checkpoints too); they are importable from here as well.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

# the file format and the data-only loader are shared with inference and sharing; importable from here too
from nnunet.networks.checkpoint_files import (CHECKPOINT_KEYS, UnsafeCheckpointError,  # noqa: F401
                                              checkpoint_safe_globals, load_checkpoint_file,
                                              save_checkpoint_file, strip_module_prefixes,
                                              verify_checkpoint_file)

RNG_KEY, RNG_PER_RANK_KEY = "rng_state", "rng_state_per_rank"


def capture_rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch (and current CUDA device's) generator states, as plain values."""
    state = {"python": random.getstate(), "numpy": _plain_numpy_state(np.random.get_state()),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any] | None) -> None:
    """Set the generators to a state from :func:`capture_rng_state` (older checkpoints: NumPy keys as an array)."""
    if not state:
        return
    random.setstate(_as_python_state(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if torch.cuda.is_available():
        if state.get("cuda") is not None:
            torch.cuda.set_rng_state(state["cuda"].cpu())
        elif state.get("cuda_seed") is not None:
            torch.cuda.manual_seed(state["cuda_seed"])


def _plain_numpy_state(state: tuple) -> tuple:
    kind, keys, pos, has_gauss, cached = state
    return kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)


def _as_python_state(state: Any) -> tuple:
    # a state that went through a JSON-like round trip has lists where random.setstate wants tuples
    version, internal, gauss = state
    return version, tuple(internal), gauss


def gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's generator states, indexed by global rank (a collective: all ranks must call it)."""
    from nnunet.training.ddp import gather_objects

    return gather_objects(capture_rng_state())


def add_rng_states(checkpoint: dict[str, Any], states: list[dict[str, Any]]) -> dict[str, Any]:
    """Store ``states`` (from :func:`gather_rng_states`) in a checkpoint dict: rank 0's as ``rng_state`` (what a
    single process restores), all of them as ``rng_state_per_rank`` when there is more than one."""
    checkpoint[RNG_KEY] = states[0]
    if len(states) > 1:
        checkpoint[RNG_PER_RANK_KEY] = states
    else:
        checkpoint.pop(RNG_PER_RANK_KEY, None)
    return checkpoint


def rng_state_for_rank(checkpoint: dict[str, Any], rank: int) -> dict[str, Any] | None:
    """The generator state global rank ``rank`` restores from a checkpoint.

    Its own entry of ``rng_state_per_rank`` when there is one. A rank the checkpoint has no entry for (a
    single-process checkpoint resumed with DDP, a group that grew) gets a stream derived from the first state and
    its rank, so no two ranks draw the same batches. None when the checkpoint has no states (nnU-Net's): the
    generators are left as they are.
    """
    per_rank = checkpoint.get(RNG_PER_RANK_KEY)
    if isinstance(per_rank, (list, tuple)) and rank < len(per_rank):
        return per_rank[rank]
    base = checkpoint.get(RNG_KEY)
    if base is None or rank == 0:
        return base
    return derived_rng_state(base, rank)


def derived_rng_state(base: dict[str, Any], rank: int) -> dict[str, Any]:
    """A generator state for ``rank`` seeded from ``base`` (deterministic, different for every rank)."""
    entropy = [int(k) for k in base["numpy"][1][:8]]
    python_seq, numpy_seq, torch_seq = np.random.SeedSequence(entropy, spawn_key=(rank,)).spawn(3)
    torch_gen = torch.Generator()
    torch_gen.manual_seed(int(torch_seq.generate_state(1, dtype=np.uint64)[0]))
    state = {"python": random.Random(int(python_seq.generate_state(1, dtype=np.uint64)[0])).getstate(),
             "numpy": _plain_numpy_state(np.random.RandomState(np.random.MT19937(numpy_seq)).get_state()),
             "torch": torch_gen.get_state()}
    if base.get("cuda") is not None:
        state["cuda_seed"] = int(torch_seq.generate_state(2, dtype=np.uint64)[1])
    return state
