"""Multi-process (DDP) helpers: joining the process group, ranks and devices, batch split over ranks, per-rank
oversampling, collectives for logging and for decisions all ranks must share.

Two launchers set up the same environment for :func:`init_process_group`: ``nnUNet_train -num_gpus N`` spawns N
processes on one node and sets ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` itself; ``torchrun`` (one or many nodes,
elastic restarts) sets them, plus ``MASTER_ADDR``/``MASTER_PORT`` and ``TORCHELASTIC_RESTART_COUNT``.
"""
from __future__ import annotations

import inspect
import os
from typing import Any

import torch
import torch.distributed as dist

from nnunet.errors import ConfigurationError, NnunetError

#: variables torchrun (and our -num_gpus launcher) set for every worker
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def is_ddp() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if is_ddp() else (0, 1)


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ConfigurationError(f"The environment variable {name} is not set; start the training with torchrun "
                                     f"(which sets RANK, WORLD_SIZE and LOCAL_RANK) or without any of them.")
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"The environment variable {name} must be an integer, got {value!r}.") from None


def launched_by_torchrun() -> bool:
    """True when a launcher set RANK / WORLD_SIZE / LOCAL_RANK for this process (torchrun does)."""
    present = [v for v in LAUNCHER_VARIABLES if v in os.environ]
    if present and len(present) < len(LAUNCHER_VARIABLES):
        missing = [v for v in LAUNCHER_VARIABLES if v not in os.environ]
        raise ConfigurationError(f"{', '.join(present)} set but {', '.join(missing)} not: start the training with "
                                 f"torchrun, which sets all of them, or unset them for a single-process training.")
    return bool(present)


def launcher_world_size() -> int:
    """WORLD_SIZE of the launcher (1 without one)."""
    return _env_int("WORLD_SIZE", 1)


def elastic_restart_count() -> int:
    """How often torchrun's elastic agent has restarted this node's workers (0 on the first start)."""
    return _env_int("TORCHELASTIC_RESTART_COUNT", 0)


def check_elastic_store() -> None:
    """Refuse elastic restarts that cannot work: with torchrun's shared rendezvous store (the default since torch
    2.5, and always with the static rendezvous) a restarted group reads the previous group's addresses from the
    store and cannot connect (pytorch/pytorch#135712). Better one clear line now than a failed restart later."""
    max_restarts = _env_int("TORCHELASTIC_MAX_RESTARTS", 0)
    if max_restarts > 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        raise ConfigurationError(
            f"torchrun --max-restarts {max_restarts} with its shared rendezvous store: a restarted group would fail "
            f"to connect (its store still holds the previous group's addresses, pytorch/pytorch#135712). Start "
            f"torchrun with --rdzv-backend c10d and TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in its environment, or with "
            f"--max-restarts 0 (see documentation/multi_node.md).")


def local_rank() -> int:
    """Index of this process among the processes of its node (its GPU index); 0 without DDP."""
    if not is_ddp():
        return 0
    return _env_int("LOCAL_RANK", dist.get_rank())


def device_for_rank(device: torch.device) -> torch.device:
    """The device this process trains on: ``cuda:LOCAL_RANK`` under DDP, ``cuda:0`` alone, others unchanged."""
    if device.type != "cuda":
        return device
    return torch.device("cuda", local_rank())


def init_process_group(device: torch.device) -> None:
    """Join the group described by RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT: NCCL on CUDA, gloo otherwise.

    On CUDA the process first selects GPU ``LOCAL_RANK``. Ranks other than 0 then move torch's generator away
    from its fixed default seed, so that augmentations drawn in this process differ between ranks (numpy and
    Python generators already start from OS entropy in every process).
    """
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    kwargs: dict[str, Any] = {}
    if device.type == "cuda":
        index = _env_int("LOCAL_RANK")
        if index >= torch.cuda.device_count():
            raise NnunetError(f"LOCAL_RANK is {index} but only {torch.cuda.device_count()} GPU(s) are visible on "
                              f"this node: start at most that many processes per node (torchrun --nproc-per-node).")
        torch.cuda.set_device(index)
        if "device_id" in inspect.signature(dist.init_process_group).parameters:  # torch >= 2.3
            kwargs["device_id"] = torch.device("cuda", index)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world, **kwargs)
    if rank > 0:
        torch.manual_seed(torch.initial_seed() + rank)


def destroy_process_group() -> None:
    if is_ddp():
        dist.destroy_process_group()


def split_batch(global_batch_size: int, world_size: int) -> list[int]:
    """Per-rank batch sizes: ``bs // world`` each, the first ``bs % world`` ranks get one more."""
    if global_batch_size < world_size:
        raise ValueError(f"The batch size ({global_batch_size}) must be at least the number of processes "
                         f"({world_size}) for multi-GPU training.")
    base, extra = divmod(global_batch_size, world_size)
    return [base + (1 if r < extra else 0) for r in range(world_size)]


def rank_oversample_percent(global_batch_size: int, world_size: int, rank: int, percent: float) -> tuple[int, float]:
    """(batch size, oversampling fraction) of ``rank`` so that the union of ranks forces the same positions as
    a single process with the global batch would."""
    sizes = split_batch(global_batch_size, world_size)
    low, high = sum(sizes[:rank]), sum(sizes[:rank + 1])
    forced = [not j < round(global_batch_size * (1 - percent)) for j in range(global_batch_size)]
    if high / global_batch_size < (1 - percent):
        frac = 0.0
    elif low / global_batch_size > (1 - percent):
        frac = 1.0
    else:
        frac = sum(forced[low:high]) / sizes[rank]
    return sizes[rank], frac


def gather_objects(obj: Any) -> list[Any]:
    """``[obj]`` without DDP, else the objects of all ranks."""
    if not is_ddp():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` of the other ranks is ignored)."""
    if not is_ddp():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one."""
    return any(gather_objects(bool(flag)))


def barrier() -> None:
    if is_ddp():
        dist.barrier()
