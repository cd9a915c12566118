"""One pipeline run per dataset kind, shared by all tests of this package (built on first use)."""
from __future__ import annotations

import pytest

from nnunet.registry import TRAINERS
from tests.regions.pipeline import Pipeline, RegionsTinyTrainer, run_pipeline

_cache: dict[str, Pipeline | BaseException] = {}


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, RegionsTinyTrainer)  # the pipelines' models name it


@pytest.fixture(scope="session")
def pipelines(tmp_path_factory):
    """``pipelines(kind)`` -> the finished :class:`Pipeline` of that kind (run once per session)."""
    def get(kind: str) -> Pipeline:
        if kind not in _cache:
            try:
                _cache[kind] = run_pipeline(tmp_path_factory.mktemp(kind), kind)
            except BaseException as e:  # fail the other tests of this kind at once instead of rerunning
                _cache[kind] = e
                raise
        result = _cache[kind]
        if isinstance(result, BaseException):
            pytest.fail(f"the {kind} pipeline failed earlier: {result!r}")
        return result
    return get
