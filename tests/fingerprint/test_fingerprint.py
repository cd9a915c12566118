"""Fingerprint extraction: equal to the reference's dataset_fingerprint.json on generated datasets."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from nnunet.cli.fingerprint import extract_fingerprint_main
from nnunet.demo.synthetic import make_dataset
from nnunet.fingerprint.extract import (DatasetFingerprintExtractor, PooledSamples, aggregate, analyze_case,
                                       intensity_statistics, sample_foreground_intensities)
from tests.helpers import FIXTURES

_spec = importlib.util.spec_from_file_location("fp_fixtures", FIXTURES / "fingerprint" / "make_fixtures.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
FIXTURE_DATASETS = _mod.FIXTURE_DATASETS


def _assert_close(ours, ref, path="fingerprint"):
    if isinstance(ref, dict):
        assert set(ours) == set(ref), path
        for k in ref:
            _assert_close(ours[k], ref[k], f"{path}.{k}")
    elif isinstance(ref, list):
        assert len(ours) == len(ref), path
        for i, (a, b) in enumerate(zip(ours, ref)):
            _assert_close(a, b, f"{path}[{i}]")
    elif isinstance(ref, float):
        assert ours == pytest.approx(ref, rel=1e-6, abs=1e-6), path
    else:
        assert ours == ref, path


@pytest.mark.parametrize("name", list(FIXTURE_DATASETS))
def test_fingerprint_equals_reference(name, nnunet_dirs):
    dataset_id, preset, overrides = FIXTURE_DATASETS[name]
    make_dataset(nnunet_dirs["raw"], dataset_id, name, preset, **overrides)
    assert extract_fingerprint_main(["-d", str(dataset_id), "-np", "1", "--no_pbar"]) == 0
    out = nnunet_dirs["preprocessed"] / f"Dataset{dataset_id:03d}_{name}" / "dataset_fingerprint.json"
    ours = json.loads(out.read_text())
    ref = json.loads((FIXTURES / "fingerprint" / f"{name}.json").read_text())
    _assert_close(ours, ref)
    # same file layout as the reference: sorted keys, indent 4
    assert out.read_text().splitlines()[1].startswith('    "foreground_intensity_properties_per_channel"')


def test_existing_fingerprint_is_reused_unless_clean(nnunet_dirs):
    make_dataset(nnunet_dirs["raw"], 5, "Reuse", "3d_iso", num_cases=2)
    out = nnunet_dirs["preprocessed"] / "Dataset005_Reuse" / "dataset_fingerprint.json"
    assert extract_fingerprint_main(["-d", "5", "-np", "1", "--no_pbar"]) == 0
    out.write_text(json.dumps({"marker": True}))
    assert extract_fingerprint_main(["-d", "5", "-np", "1", "--no_pbar"]) == 0
    assert json.loads(out.read_text()) == {"marker": True}
    assert extract_fingerprint_main(["-d", "5", "-np", "1", "--no_pbar", "--clean"]) == 0
    assert "spacings" in json.loads(out.read_text())


def test_sampling_uses_only_foreground_and_fixed_seed():
    data = np.stack([np.arange(27, dtype=np.float32).reshape(3, 3, 3), -np.ones((3, 3, 3), np.float32)])
    seg = np.zeros((1, 3, 3, 3), np.int8)
    seg[0, 1] = 1
    seg[0, 0, 0, 0] = -1  # outside the nonzero mask: never foreground
    a = sample_foreground_intensities(data, seg, 50)
    b = sample_foreground_intensities(data, seg, 50)
    assert np.array_equal(a[0], b[0]) and len(a[0]) == 50
    assert set(np.unique(a[0])) <= set(range(9, 18))
    assert np.all(a[1] == -1)


def test_case_without_foreground_contributes_nothing():
    data = np.ones((1, 2, 2, 2), np.float32)
    samples = sample_foreground_intensities(data, np.zeros((1, 2, 2, 2), np.int8), 10)
    assert samples[0].size == 0


def test_intensity_statistics_formulas():
    x = np.arange(1, 201, dtype=np.float32)
    s = intensity_statistics(x)
    assert s["mean"] == pytest.approx(100.5)
    assert s["median"] == pytest.approx(100.5)
    assert s["std"] == pytest.approx(np.std(np.arange(1, 201)))  # population std
    assert s["percentile_00_5"] == pytest.approx(1 + 0.005 * 199)
    assert (s["min"], s["max"]) == (1.0, 200.0)


def test_unknown_dataset_gives_clear_error(nnunet_dirs, capsys):
    assert extract_fingerprint_main(["-d", "77", "--no_pbar"]) == 1
    err = capsys.readouterr().err
    assert "77" in err and "Traceback" not in err


def test_statistics_in_place_equal_the_copying_ones():
    x = np.random.default_rng(3).normal(100, 20, size=100_001).astype(np.float32)
    expected = intensity_statistics(x.copy())
    reordered = x.copy()
    assert intensity_statistics(reordered, overwrite=True) == expected
    assert not np.array_equal(reordered, x)  # the percentiles did work in place


def test_pooled_samples_equal_the_concatenation_in_case_order():
    rng = np.random.default_rng(4)
    cases = [[rng.random(5, dtype=np.float32), rng.random(5, dtype=np.float32)],
             [np.zeros(0, np.float32), np.zeros(0, np.float32)],  # a case without foreground
             [rng.random(5, dtype=np.float32), rng.random(5, dtype=np.float32)]]
    pooled = PooledSamples(num_cases=3, num_channels=2, per_case=5)
    for index in (2, 0, 1):  # results arrive in any order
        pooled.add(index, cases[index])
    for c in range(2):
        expected = np.concatenate([case[c] for case in cases])
        assert pooled.channel(c).dtype == expected.dtype and np.array_equal(pooled.channel(c), expected)

    full = PooledSamples(num_cases=2, num_channels=1, per_case=3)
    full.add(1, [np.array([4, 5, 6], np.float32)])
    full.add(0, [np.array([1, 2, 3], np.float64)])  # a reader that returns float64: widened, as numpy would
    assert full.channel(0).dtype == np.float64 and full.channel(0).tolist() == [1, 2, 3, 4, 5, 6]


def test_fingerprint_equals_the_concatenating_computation(nnunet_dirs, monkeypatch):
    monkeypatch.setattr("nnunet.fingerprint.extract.NUM_FOREGROUND_SAMPLES", 30_000)  # 10^8 takes 20 s here
    make_dataset(nnunet_dirs["raw"], 41, "Pooled", "multichannel", num_cases=3, spacing_jitter=0.2)
    extractor = DatasetFingerprintExtractor(41, num_processes=2)
    fingerprint = extractor.run(overwrite_existing=True, show_progress=False)
    cases = [analyze_case([str(f) for f in c["images"]], str(c["label"]), "SimpleITKIO",
                          10_000) for c in extractor.cases.values()]
    assert len(fingerprint["foreground_intensity_properties_per_channel"]) == 2
    assert json.loads(json.dumps(fingerprint)) == json.loads(json.dumps(aggregate(cases, 2)))
