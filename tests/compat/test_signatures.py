"""Every function and class the nnunetv2 namespace provides takes nnU-Net 2.8.1's parameters: the same names,
kinds and order, and the same defaults (tests/fixtures/compat/signatures_2_8_1.json, written by 2.8.1 itself
with tests/fixtures/compat/make_fixtures.py). Extra parameters of ours may follow, each with a default."""
from __future__ import annotations

import importlib
import json

import pytest

from tests.compat.signatures import our_signature, same_default
from tests.helpers import FIXTURES

REFERENCE = json.loads((FIXTURES / "compat" / "signatures_2_8_1.json").read_text())

@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_signature_matches_nnunet_2_8_1(key):
    reference, ours = REFERENCE[key], our_signature(key)
    assert [p[:2] for p in ours[:len(reference)]] == [p[:2] for p in reference], f"{key}: ours {ours}"
    for (name, _, ref_default), (_, _, our_default) in zip(reference, ours):
        assert same_default(name, ref_default, our_default), f"{key}: {name}={our_default}, 2.8.1 {ref_default}"
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
