"""Checks of one raw case's arrays, shared by the integrity check, the fingerprint and preprocessing.

:func:`check_case` is the full per-case check of ``--verify_dataset_integrity`` (reads the files, collects every
problem). :func:`quick_case_check` is the part that always runs while the fingerprint and preprocessing read a
case anyway: non-finite intensities, image/label shape mismatch and label values outside dataset.json. It costs
two reductions per array (min and max); the exact offending values are only computed when one is off.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnunet.errors import DatasetError, NnunetError
from nnunet.io.dataset_json import label_manager
from nnunet.registry import READERS

_OVERLAY_HINT = "Check the overlay of image and label (e.g. nnUNetv2_plot_overlay_pngs or a viewer)."


# --- always on ------------------------------------------------------------------------------------------------

def allowed_label_values(dataset_json: dict[str, Any]) -> list[int]:
    """The values a training label file may contain: every label of dataset.json, the ignore label included."""
    manager = label_manager(dataset_json)
    return sorted(set(manager.expected_label_values()))


def quick_case_check(case_id: str, data: np.ndarray, seg: np.ndarray | None, image_files: Sequence[str],
                     label_file: str | None, allowed_labels: Sequence[int] | None) -> None:
    """Raise one :class:`DatasetError` naming the files if the image has NaN/Inf values, the image and label
    shapes differ, or the label has values outside ``allowed_labels``."""
    images = [str(f) for f in image_files]
    problems = nonfinite_image_problems(case_id, data, images)
    if seg is not None:
        if tuple(data.shape[1:]) != tuple(seg.shape[1:]):
            problems.append(f"case {case_id}: image shape {tuple(data.shape[1:])} ({images}) differs from label shape "
                            f"{tuple(seg.shape[1:])} ({label_file}): the label would not line up with the image")
        if allowed_labels is not None and not _within(seg, allowed_labels):
            problems += _label_problems(seg, str(label_file), list(allowed_labels))
    if problems:
        raise DatasetError("; ".join(p.rstrip(".") for p in problems) + ". Fix the raw dataset (nnUNet_plan_and_"
                           "preprocess --verify_dataset_integrity lists every such problem).")


def _within(seg: np.ndarray, allowed: Sequence[int]) -> bool:
    """Whether every value of ``seg`` is allowed, from its min and max when ``allowed`` has no gaps (then a
    non-integer value inside the range passes; the integrity check reports those)."""
    low, high = seg.min(), seg.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        return False
    allowed = sorted(allowed)
    if low < allowed[0] or high > allowed[-1]:
        return False
    if allowed == list(range(allowed[0], allowed[-1] + 1)):
        return True
    return bool(np.all(np.isin(np.unique(seg), allowed)))


def _all_finite(array: np.ndarray) -> bool:
    if not np.issubdtype(array.dtype, np.floating):
        return True
    return bool(np.isfinite(array.min()) and np.isfinite(array.max()))


def _nonfinite_words(array: np.ndarray) -> str:
    nan = int(np.count_nonzero(np.isnan(array)))
    pos = int(np.count_nonzero(np.isposinf(array)))
    neg = int(np.count_nonzero(np.isneginf(array)))
    parts = [f"{n} {word}" for n, word in ((nan, "NaN"), (pos, "+Inf"), (neg, "-Inf")) if n]
    return ", ".join(parts)


def nonfinite_image_problems(case_id: str, data: np.ndarray, images: list[str]) -> list[str]:
    """One problem per channel holding NaN or +-Inf, with the file and the counts (empty when all finite)."""
    if _all_finite(data):
        return []
    problems = []
    for c in range(data.shape[0]):
        if not _all_finite(data[c]):
            where = images[c] if len(images) == data.shape[0] else images
            problems.append(f"case {case_id}: image file {where} contains non-finite values "
                            f"({_nonfinite_words(data[c])}); nnU-Net cannot normalize such images")
    return problems


# --- the full check (--verify_dataset_integrity) -------------------------------------------------------------

def check_case(case_id: str, image_files: list[str], label_file: str, reader_name: str, num_channels: int,
               expected_labels: list[int] | None, root: str = "") -> tuple[list[str], list[str]]:
    """Read one case and return ``(problems, warnings)`` as messages naming the case and its files."""
    reader = READERS.get(reader_name)()
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, props = _read(lambda: reader.read_images(image_files), case_id, "image", problems)
        seg, seg_props = _read(lambda: reader.read_seg(label_file), case_id, "label", problems)
    notes = [f"case {case_id}: {w.message}" for w in caught]
    images = [_short(f, root) for f in image_files]
    label = _short(label_file, root)
    if data is not None:
        problems += _image_problems(case_id, data, images, num_channels)
    if seg is not None:
        problems += _label_problems(seg, label, expected_labels)
        if _all_finite(seg) and seg.max(initial=0) == 0 and seg.min(initial=0) == 0:
            # nnU-Net means to warn here too, but an inverted condition silences it; empty cases are legal
            notes.append(f"{label}: the label file contains only background (0).")
    if data is not None and seg is not None:
        problems += _match_problems(case_id, data, props, seg, seg_props, images, label)
        notes += _geometry_warnings(case_id, props, seg_props, images, label)
    return problems, notes


def _read(fn, case_id: str, what: str, problems: list[str]):
    try:
        return fn()
    except NnunetError as e:
        problems.append(f"case {case_id}: cannot read the {what}: {e}")
    except Exception as e:  # an unexpected library error must become a listed problem, not a traceback
        problems.append(f"case {case_id}: cannot read the {what}: {type(e).__name__}: {e}")
    return None, None


def _short(path: str, root: str) -> str:
    try:
        return str(Path(path).relative_to(root)) if root else path
    except ValueError:
        return path


def _image_problems(case_id: str, data: np.ndarray, images: list[str], num_channels: int) -> list[str]:
    problems = []
    if data.shape[0] != num_channels:
        problems.append(f"case {case_id}: {data.shape[0]} channel(s) read from {images}, but dataset.json "
                        f"'channel_names' lists {num_channels}.")
    problems += nonfinite_image_problems(case_id, data, images)
    return problems


def _label_problems(seg: np.ndarray, label: str, expected_labels: list[int] | None) -> list[str]:
    if not _all_finite(seg):
        return [f"{label}: the label file contains non-finite values ({_nonfinite_words(seg)})."]
    if expected_labels is None:
        return []
    found = np.unique(seg)
    unexpected = [_num(v) for v in found if v not in expected_labels]
    if unexpected:
        return [f"Unexpected labels found in file {label}: {unexpected}. dataset.json 'labels' allows only "
                f"{expected_labels}."]
    return []


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def _match_problems(case_id: str, data: np.ndarray, props: dict, seg: np.ndarray, seg_props: dict,
                    images: list[str], label: str) -> list[str]:
    problems = []
    if data.shape[1:] != seg.shape[1:]:
        problems.append(f"case {case_id}: image shape {tuple(data.shape[1:])} ({images}) differs from label "
                        f"shape {tuple(seg.shape[1:])} ({label}).")
    sp, seg_sp = props.get("spacing"), seg_props.get("spacing")
    if sp is not None and seg_sp is not None and (len(sp) != len(seg_sp) or not np.allclose(sp, seg_sp)):
        problems.append(f"case {case_id}: image spacing {_fmt(sp)} ({images}) differs from label spacing "
                        f"{_fmt(seg_sp)} ({label}).")
    return problems


def _fmt(values) -> list[float]:
    return [round(float(v), 6) for v in values]


def _geometry_warnings(case_id: str, props: dict, seg_props: dict, images: list[str], label: str) -> list[str]:
    notes = []
    if "sitk_stuff" in props and "sitk_stuff" in seg_props:
        for key in ("origin", "direction"):
            a, b = props["sitk_stuff"][key], seg_props["sitk_stuff"][key]
            if len(a) != len(b) or not np.allclose(a, b):
                notes.append(f"case {case_id}: the {key} of the image ({images[0]}: {_fmt(a)}) differs from the "
                             f"label's ({label}: {_fmt(b)}). {_OVERLAY_HINT}")
    if "nibabel_stuff" in props and "nibabel_stuff" in seg_props:
        a, b = props["nibabel_stuff"]["original_affine"], seg_props["nibabel_stuff"]["original_affine"]
        if not np.allclose(a, b):
            notes.append(f"case {case_id}: the affine of the image ({images[0]}) differs from the label's "
                         f"({label}). {_OVERLAY_HINT}")
    return notes
