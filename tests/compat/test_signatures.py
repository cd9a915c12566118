"""Every function and class the nnunetv2 namespace provides takes nnU-Net 2.8.1's parameters: the same names,
kinds and order, and the same defaults (tests/fixtures/compat/signatures_2_8_1.json, written by 2.8.1 itself
with tests/fixtures/compat/make_fixtures.py). Extra parameters of ours may follow, each with a default."""
from __future__ import annotations

import importlib
import inspect
import json

import pytest

from tests.conftest import FIXTURES

REFERENCE = json.loads((FIXTURES / "compat" / "signatures_2_8_1.json").read_text())

#: parameters whose default is None in ours and means what 2.8.1 writes out: the class's own default (the
#: ResEnc presets have their own GPU target and plans name; the extractor's worker count is nnUNet_def_n_proc)
NONE_MEANS_THE_CLASS_DEFAULT = {"gpu_memory_target_in_gb", "plans_name", "num_processes"}


def _same_default(name: str, reference: str | None, ours: str | None) -> bool:
    if reference == ours:
        return True
    if reference is None:  # required in 2.8.1, optional here: every call of 2.8.1's works
        return True
    if reference == "device(type='cuda')" and ours == "'cuda'":  # the same device, without importing torch
        return True
    if reference.startswith("<class '") and ours is not None and ours.startswith("<class '"):
        return reference.rsplit(".", 1)[-1] == ours.rsplit(".", 1)[-1]  # our class of that name
    return ours == "None" and name in NONE_MEANS_THE_CLASS_DEFAULT


def _ours(key: str) -> list[list]:
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


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_signature_matches_nnunet_2_8_1(key):
    reference, ours = REFERENCE[key], _ours(key)
    assert [p[:2] for p in ours[:len(reference)]] == [p[:2] for p in reference], f"{key}: ours {ours}"
    for (name, _, ref_default), (_, _, our_default) in zip(reference, ours):
        assert _same_default(name, ref_default, our_default), f"{key}: {name}={our_default}, 2.8.1 {ref_default}"
    for name, kind, default in ours[len(reference):]:  # our additions: optional, never required
        assert default is not None or kind in ("VAR_POSITIONAL", "VAR_KEYWORD"), f"{key}: extra required {name}"


@pytest.mark.parametrize("key", sorted(k for k in REFERENCE if "experiment_planners" in k))
def test_a_planners_none_defaults_are_2_8_1s_values(key):
    """``gpu_memory_target_in_gb=None`` / ``plans_name=None`` resolve to the class defaults 2.8.1 writes out."""
    module_name, _, qualname = key.partition(":")
    planner = getattr(importlib.import_module(module_name), qualname)
    reference = {name: default for name, _, default in REFERENCE[key]}
    assert repr(planner.default_gpu_memory_target_in_gb) == reference["gpu_memory_target_in_gb"]
    assert repr(planner.default_plans_name) == reference["plans_name"]
