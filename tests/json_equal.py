"""Comparing a JSON file of ours with the reference's, shared by the parity tests of evaluation, postprocessing and
model selection."""
from __future__ import annotations

import math

import pytest


def assert_json_equal(ours, ref, path="", tol=1e-9):
    """Same structure, same key order (the files are written with sorted keys), floats equal to ``tol``."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict), path
        assert list(ours) == list(ref), f"{path}: keys {list(ours)} != {list(ref)}"
        for k in ref:
            assert_json_equal(ours[k], ref[k], f"{path}/{k}", tol)
    elif isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref), path
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_json_equal(a, b, f"{path}[{i}]", tol)
    elif isinstance(ref, float):
        assert isinstance(ours, (int, float)), f"{path}: {ours!r} is not a number"
        if math.isnan(ref):
            assert math.isnan(ours), f"{path}: expected NaN, got {ours}"
        else:
            assert ours == pytest.approx(ref, rel=tol, abs=tol), f"{path}: {ours} != {ref}"
    else:
        assert type(ours) is type(ref) and ours == ref, f"{path}: {ours!r} != {ref!r}"
