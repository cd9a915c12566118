"""Which cases to predict: input listing and checks, output names, and which outputs already exist.

Everything here runs before anything is written, so bad input stops a command with one line and no output.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnunet.errors import DatasetError, NnunetError, exception_line

logger = logging.getLogger(__name__)

#: files a folder of images may hold besides the images without a warning (listings, hidden files)
_QUIET_NAMES = ("dataset.json", "plans.json", "predict_from_raw_data_args.json")


def _channel_index_pattern(file_ending: str) -> re.Pattern:
    return re.compile(r"^(.+)_(\d{4})" + re.escape(file_ending) + "$")


def _warn_other_files(folder: Path, others: list[str], file_ending: str) -> None:
    """Mixed endings (``a_0000.nii.gz`` next to ``b_0000.nii``): the odd ones out are not predicted; say which."""
    others = [n for n in others if not n.startswith(".") and n not in _QUIET_NAMES]
    if others:
        shown = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
        logger.warning("Ignoring %d file(s) in %s that are not named CASE_XXXX%s (the model's file ending): %s.",
                       len(others), folder, file_ending, shown)


def lists_from_folder(folder: str | os.PathLike, file_ending: str, num_channels: int,
                      holds_outputs: bool = False) -> list[list[str]]:
    """One sorted list of channel files per case in ``folder``, checked against the model's channel count.

    Files that do not match ``{ID}_{XXXX}{file_ending}`` are skipped with a warning that names them.
    ``holds_outputs``: the folder is also the output folder, so ``{ID}{file_ending}``, ``{ID}.npz`` and
    ``{ID}.pkl`` of its cases are earlier predictions, skipped silently (``case_0001.nii.gz``, the prediction
    of ``case_0001_0000.nii.gz``, would otherwise be taken for channel 1 of a case ``case``).

    Raises:
        DatasetError: the folder is missing or holds no ``{ID}_{XXXX}{file_ending}`` files, or a case misses
            channel files or has more channels than the model expects.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"Input folder {folder} does not exist.")
    names = sorted(f.name for f in folder.iterdir() if f.is_file())
    pattern = _channel_index_pattern(file_ending)
    cases: dict[str, dict[int, str]] = {}
    others = []
    for name in names:
        m = pattern.match(name)
        if m:
            cases.setdefault(m.group(1), {})[int(m.group(2))] = str(folder / name)
        else:
            others.append(name)
    if holds_outputs:
        others = _drop_predictions(cases, others, file_ending)
    if not cases:
        if not names:
            raise DatasetError(f"Input folder {folder} contains no images.")
        endings = sorted({"".join(Path(n).suffixes) or n for n in names})
        raise DatasetError(
            f"Input folder {folder} contains no images named CASE_XXXX{file_ending} (the model was trained on "
            f"{file_ending} files; channel files end in _0000{file_ending}, _0001{file_ending}, ...). Found "
            f"{len(names)} other file(s) ending in: {', '.join(endings[:10])}.")
    _warn_other_files(folder, others, file_ending)
    problems = []
    for case, channels in sorted(cases.items()):
        missing = [f"{case}_{c:04d}{file_ending}" for c in range(num_channels) if c not in channels]
        extra = sorted(c for c in channels if c >= num_channels)
        if missing:
            problems.append(f"case {case!r} is missing {', '.join(missing)}")
        if extra:
            problems.append(f"case {case!r} has {len(channels)} channel files (channels "
                            f"{', '.join(f'{c:04d}' for c in sorted(channels))}) but the model expects "
                            f"{num_channels} (_0000..._{num_channels - 1:04d})")
    if problems:
        raise DatasetError(f"Invalid input folder {folder}: " + "; ".join(problems) + ".")
    return [[channels[c] for c in range(num_channels)] for _, channels in sorted(cases.items())]


def _drop_predictions(cases: dict[str, dict[int, str]], others: list[str], file_ending: str) -> list[str]:
    """Remove the files that are predictions of a listed case (from ``cases`` in place); the other files left."""
    predictions = set()
    for case in list(cases):
        predictions.update(f"{case}{suffix}" for suffix in (file_ending, ".npz", ".pkl"))
    for case, channels in list(cases.items()):
        for c, path in list(channels.items()):
            if os.path.basename(path) in predictions:
                del channels[c]
        if not channels:
            del cases[case]
    return [n for n in others if n not in predictions]


def check_list_of_lists(list_of_lists: Sequence[Sequence[str | os.PathLike]], num_channels: int,
                        file_ending: str) -> list[list[str]]:
    """Validate explicit per-case file lists: existence, channel count, file ending."""
    checked, problems = [], []
    for files in list_of_lists:
        files = [str(f) for f in ([files] if isinstance(files, (str, os.PathLike)) else files)]
        if len(files) != num_channels:
            problems.append(f"{files} has {len(files)} file(s) but the model expects {num_channels} channel(s)")
        for f in files:
            if not os.path.isfile(f):
                problems.append(f"{f} does not exist")
            elif not f.lower().endswith(file_ending.lower()):
                problems.append(f"{f} does not end in {file_ending} (the model's file ending)")
        checked.append(files)
    if problems:
        raise DatasetError("Invalid input files: " + "; ".join(problems) + ".")
    if not checked:
        raise DatasetError("No input cases were given.")
    return checked


def case_identifier(first_channel_file: str, file_ending: str) -> str:
    """``.../ID_0000.nii.gz`` -> ``ID``."""
    name = os.path.basename(first_channel_file)
    return name[:-(len(file_ending) + 5)]


def same_folder(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when the two paths name one folder (also through links)."""
    a, b = Path(a), Path(b)
    return a.resolve() == b.resolve() or (b.exists() and a.exists() and os.path.samefile(a, b))


def check_output_folder(input_folder: str | os.PathLike, output_folder: str | os.PathLike) -> None:
    """Refuse an output folder that is the input folder (the commands do: predictions mixed with the images
    are easy to delete or copy by mistake; the Python API allows it, see :func:`lists_from_folder`)."""
    if same_folder(input_folder, output_folder):
        raise NnunetError(f"The output folder {output_folder} is the input folder: predictions would be mixed "
                          f"with the images. Choose another output folder (-o).")


def output_files(ofile: str, file_ending: str, save_probabilities: bool) -> list[str]:
    """The files a finished case has: ``.npz`` and ``.pkl`` (with probabilities), then the segmentation."""
    files = [ofile + ".npz", ofile + ".pkl"] if save_probabilities else []
    return files + [ofile + file_ending]


def _check_readable(path: str, reader: Any) -> None:
    if path.endswith(".npz"):
        with open(path, "rb") as f, np.load(f) as npz:  # our handle: closed even when the zip is damaged
            if "probabilities" not in npz.files:
                raise ValueError("no 'probabilities' array")
            npz["probabilities"]  # reading it whole checks the zip's CRC
    elif path.endswith(".pkl"):
        from nnunet.utils.safe_pickle import load_data_pickle

        load_data_pickle(path)
    else:
        reader.read_seg(path)


def finished(ofile: str, file_ending: str, save_probabilities: bool, reader: Any) -> bool:
    """True when every output of a case exists and can be read back completely (``--continue_prediction``).

    A file that exists but cannot be read (truncated by a crash of another tool, a full disk, a copy that
    stopped half-way) is reported and the case is predicted again.
    """
    files = output_files(ofile, file_ending, save_probabilities)
    if not all(os.path.isfile(f) for f in files):
        return False
    for f in files:
        try:
            _check_readable(f, reader)
        except Exception as e:  # any reader error means the file is not a usable output
            logger.warning("%s exists but cannot be read (%s); predicting this case again.", f,
                           exception_line(e))
            return False
    return True


#: a job whose input files are together smaller than this many MB (environment variable
#: ``nnUNet_small_job_mb``; 0 switches the rule off), and that has fewer than two cases per worker or less than
#: :data:`MB_PER_WORKER` of input per worker, is preprocessed and exported in the predicting process (see
#: :func:`processes_for_job`)
SMALL_JOB_MB = 32
#: the input a worker must get to earn back its start-up: about 1 MB of compressed images is 0.2 s (no
#: resampling) to 1 s (resampling) of preprocessing and export, the 0.4-0.6 s of CPU a spawned worker costs
MB_PER_WORKER = 1.0


def small_job_bytes() -> int:
    value = os.environ.get("nnUNet_small_job_mb", str(SMALL_JOB_MB))
    try:
        return int(float(value) * 1024 ** 2)
    except ValueError:
        raise NnunetError(f"nnUNet_small_job_mb must be a number of MB, got {value!r}.") from None


def processes_for_job(files: Sequence[Sequence[str]], preprocessing: int, export: int) -> tuple[int, int]:
    """The preprocessing and export process counts to use for these cases: 0 and 0 for a small job.

    A spawned worker costs about 0.4-0.6 s of CPU before its first case (interpreter and imports). Small images
    do not earn that back: a Hippocampus case takes 8 ms to preprocess and 7 ms to export. On a 2-core machine,
    with the forward passes on both cores, 3 Hippocampus cases took 7.0 s with two workers of each kind and
    5.8-6.1 s without any; 10 cases (0.8 MB) 21.8-22.0 s against 20.7-21.4 s; 30 cases (2.3 MB) were even.
    Large images keep their workers, whose preprocessing overlaps the forward passes.
    """
    workers, limit = max(preprocessing, export), small_job_bytes()
    if workers == 0 or limit <= 0:
        return preprocessing, export
    if len(files) >= 2 * workers:  # enough cases to share out: small only if the input is too
        limit = min(limit, int(workers * MB_PER_WORKER * 1024 ** 2))
    size = 0
    for case in files:
        for f in case:
            with contextlib.suppress(OSError):
                size += os.path.getsize(f)
        if size >= limit:  # a large job: no need to look at every file
            return preprocessing, export
    logger.info("Small job (%d case(s), %.1f MB of images): preprocessing and export run in this process.",
                len(files), size / 1024 ** 2)
    return 0, 0
