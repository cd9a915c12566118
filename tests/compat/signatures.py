"""How a signature of ours is compared with 2.8.1's (shared by test_signatures and test_trainer_side): each
parameter as ``[name, kind, default]``, and which differences of default still accept every call of 2.8.1's."""
from __future__ import annotations

import importlib
import inspect


#: parameters whose default is None in ours and means what 2.8.1 writes out: the class's own default (the
#: ResEnc presets have their own GPU target and plans name; the extractor's worker count is nnUNet_def_n_proc)
NONE_MEANS_THE_CLASS_DEFAULT = {"gpu_memory_target_in_gb", "plans_name", "num_processes"}


def same_default(name: str, reference: str | None, ours: str | None) -> bool:
    if reference == ours:
        return True
    if reference is None:  # required in 2.8.1, optional here: every call of 2.8.1's works
        return True
    if reference == "device(type='cuda')" and ours == "'cuda'":  # the same device, without importing torch
        return True
    if reference.startswith("<class '") and ours is not None and ours.startswith("<class '"):
        return reference.rsplit(".", 1)[-1] == ours.rsplit(".", 1)[-1]  # our class of that name
    return ours == "None" and name in NONE_MEANS_THE_CLASS_DEFAULT


def our_signature(key: str) -> list[list]:
    from nnunetv2.configuration import default_num_processes

    module_name, _, qualname = key.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    params = []
    for p in inspect.signature(obj).parameters.values():
        if p.default is inspect.Parameter.empty:
            default = None
        elif callable(p.default) and getattr(p.default, "__name__", "") == "default_num_processes":
            default = "default_num_processes"
        elif type(p.default) is int and p.default == default_num_processes and p.name.startswith(("num_processes", "num_threads")):
            default = "default_num_processes"
        else:
            default = repr(p.default)
        params.append([p.name, p.kind.name, default])
    return params
