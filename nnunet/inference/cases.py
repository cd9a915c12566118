"""One case after another: which cases, in memory or in slabs, export, progress and the per-case report.

Everything here works from one :class:`PredictionContext` (the model, the fold runners and the settings), which
:meth:`nnunet.inference.predictor.nnUNetPredictor.prediction_context` builds when a prediction starts.

A case goes the in-memory way (sliding window over the whole image, then the export in a background process)
unless :func:`nnunet.inference.memory.in_ram_bytes` says that this would not fit the budget; then it is
predicted and exported here, in slabs (:func:`nnunet.inference.engine.predict_slabs`,
:mod:`~nnunet.inference.slab_export`), with the same results (see those modules for the exact agreement).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from nnunet.constants import default_num_processes
from nnunet.errors import DatasetError, NnunetError
from nnunet.inference import engine, inputs
from nnunet.inference.export import (convert_predicted_logits_to_segmentation_with_correct_shape,
                                     export_prediction_from_logits, write_outputs)
from nnunet.inference.memory import GIB, PeakMemory, budget_bytes, in_ram_bytes
from nnunet.inference.slab_export import ProbabilityFile, SlabExporter, SlabResampler
from nnunet.inference.tiling import tiles_per_fold
from nnunet.io.labels import LabelManager
from nnunet.io.readers import reader_class
from nnunet.planning.plans import Configuration, Plans
from nnunet.utils.files import PARTIAL_FOLDER, OutputError, describe_os_error
from nnunet.utils.json import load_json, save_json, to_builtin
from nnunet.utils.pool import BoundedPool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionContext:
    """Everything the per-case code needs, as one value.

    ``runners()``: the folds as runners, one after another (in memory); ``slab_runners()``: the folds as
    runners that can take turns per row of tiles (each holds its own weights). Both are made on first use.
    ``input_channels``: what the network takes (cascades: image channels + one per foreground label);
    ``image_channels``: what an input case has.
    """
    plans: Plans
    configuration: Configuration
    dataset_json: dict[str, Any]
    label_manager: LabelManager
    window: engine.WindowSettings
    runners: Callable[[], Sequence[engine.Runner]]
    slab_runners: Callable[[], Sequence[engine.Runner]]
    num_folds: int
    input_channels: int
    image_channels: int
    max_ram_gb: float | None = None
    allow_tqdm: bool = True
    verbose: bool = False

    def check_channels(self, channels: int) -> None:
        if channels != self.input_channels:
            raise NnunetError(f"The preprocessed input has {channels} channels but the network expects "
                              f"{self.input_channels}.")

    def tiles(self, spatial_shape: Sequence[int]) -> int:
        """Tiles of all folds together for a preprocessed image of this spatial shape (progress bars)."""
        return tiles_per_fold(spatial_shape, self.window.patch_size, self.window.step_size) * self.num_folds

    def logits(self, data: Any, on_tile: Callable[[], None] | None = None) -> Any:
        """Fold-averaged logits of one preprocessed (C, *spatial) image, on the host."""
        self.check_channels(data.shape[0])
        with limited_threads():
            return engine.predict_logits(self.runners(), data, self.window, on_tile)


@contextlib.contextmanager
def limited_threads() -> Iterator[None]:
    """At most ``default_num_processes()`` torch threads while predicting (as nnU-Net does).

    Nothing to do when torch is not loaded: the CPU runtimes get their thread count when they are compiled."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(min(default_num_processes(), threads))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------- which cases

@dataclass
class FileCases:
    files: list[list[str]]
    ofiles: list[str | None]
    previous: list[str | None]
    output_folder: Path | None


def previous_stage_files(context: PredictionContext, folder: str | os.PathLike | None, identifiers: list[str],
                         ending: str) -> list[str | None]:
    stage = context.configuration.previous_stage_name
    if stage is None:
        return [None] * len(identifiers)
    if folder is None:
        raise NnunetError(f"Configuration {context.configuration.name!r} is a cascade stage: it needs the "
                          f"predictions of {stage!r} (-prev_stage_predictions FOLDER).")
    files = [str(Path(folder) / f"{i}{ending}") for i in identifiers]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise DatasetError(f"Previous-stage predictions are missing for {len(missing)} case(s): "
                           f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}.")
    return files


def _outputs(output, identifiers: list[str], num_cases: int) -> tuple[Path | None, list[str | None]]:
    if isinstance(output, (str, os.PathLike)):
        return Path(output), [str(Path(output) / i) for i in identifiers]
    if output is None:
        return None, [None] * num_cases
    ofiles = [str(o) for o in output]
    if len(ofiles) != num_cases:
        raise NnunetError(f"{len(ofiles)} output names were given for {num_cases} cases.")
    return (Path(ofiles[0]).parent if ofiles else None), ofiles


def plan_file_cases(context: PredictionContext, source, output, save_probabilities: bool, overwrite: bool,
                    previous_folder, num_parts: int, part_id: int) -> FileCases:
    """Validate inputs and outputs of :meth:`nnUNetPredictor.predict_from_files`; drop finished cases."""
    ending = context.dataset_json["file_ending"]
    if isinstance(source, (str, os.PathLike)):
        # the output folder may be the input folder (TotalSegmentator writes CASE.nii.gz next to CASE_0000.nii.gz)
        holds_outputs = isinstance(output, (str, os.PathLike)) and inputs.same_folder(source, output)
        files = inputs.lists_from_folder(source, ending, context.image_channels, holds_outputs)
    else:
        files = inputs.check_list_of_lists(source, context.image_channels, ending)
    identifiers = [inputs.case_identifier(f[0], ending) for f in files]
    output_folder, ofiles = _outputs(output, identifiers, len(files))
    files, ofiles, identifiers = files[part_id::num_parts], ofiles[part_id::num_parts], identifiers[part_id::num_parts]
    previous = previous_stage_files(context, previous_folder, identifiers, ending)
    if not overwrite and output_folder is not None:
        reader = reader_class(context.plans.image_reader_writer)()
        keep = [i for i, o in enumerate(ofiles) if not inputs.finished(o, ending, save_probabilities, reader)]
        if len(keep) < len(ofiles):
            logger.info("Skipping %d case(s) whose outputs exist (continue_prediction).", len(ofiles) - len(keep))
        files, ofiles, previous = ([x[i] for i in keep] for x in (files, ofiles, previous))
    return FileCases(files, ofiles, previous, output_folder)


def write_run_files(context: PredictionContext, output_folder: Path | None, call_args: dict[str, Any]) -> None:
    """``predict_from_raw_data_args.json``, ``dataset.json`` and ``plans.json`` (needed by ensembling)."""
    if output_folder is None:
        return
    try:
        output_folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(describe_os_error(e, output_folder)) from None
    for name, content, sort_keys in (("predict_from_raw_data_args.json", call_args, True),
                                     ("dataset.json", context.dataset_json, False),
                                     ("plans.json", context.plans.data, False)):
        if not _same_json(output_folder / name, content):  # a resumed run rewrites nothing it does not change
            save_json(content, output_folder / name, sort_keys=sort_keys)


def _same_json(path: Path, content: Any) -> bool:
    try:
        return path.is_file() and load_json(path) == json.loads(json.dumps(to_builtin(content)))
    except NnunetError:  # unreadable: write it again
        return False


@contextlib.contextmanager
def handover_folder(output_folder: Path | None, needed: bool = True) -> Iterator[Path | None]:
    """A private folder where preprocessing workers leave large arrays for this process (removed at the end).

    It is inside the output folder's ``.nnunet_partial`` (same disk as the outputs, never a RAM-backed /tmp).
    ``needed=False`` (no worker processes): no folder, None.
    """
    if not needed:
        yield None
        return
    if output_folder is not None:
        folder = output_folder / PARTIAL_FOLDER / f"handover-{uuid.uuid4().hex}"
        try:
            folder.mkdir(parents=True)
        except OSError as e:
            raise OutputError(describe_os_error(e, folder)) from None
    else:
        folder = Path(tempfile.mkdtemp(prefix="nnunet_handover_"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()


# ----------------------------------------------------------------------------------------------- one case

def _slab_bytes_fixed(context: PredictionContext, data: np.ndarray, properties: dict[str, Any]) -> int:
    """Memory of the slab path that does not depend on the slab height: image, accumulators, label map."""
    patch = context.window.patch_size
    depth = patch[0] if len(patch) == data.ndim - 1 else 1
    plane = math.prod(max(s, p) for s, p in zip(data.shape[-2:], patch[-2:]))
    heads = context.window.num_heads
    accumulators = context.num_folds * (heads + 1) * depth * plane * 2
    return data.nbytes + accumulators + 3 * math.prod(properties["shape_before_cropping"])


def _collect_then_export(slabs, data_shape, heads: int, dtype: str) -> np.ndarray:
    logits = np.empty((heads, *data_shape[1:]), dtype=np.float16 if dtype == "float16" else np.float32)
    for start, rows in slabs:
        logits[:, start:start + rows.shape[1]] = rows
    return logits


def predict_in_slabs(context: PredictionContext, data: np.ndarray, properties: dict[str, Any],
                     ofile: str | None, save_probabilities: bool, budget: int, on_tile=None):
    """Predict and export one case slab by slab; returns None (files written) or the arrays, and the slab count."""
    plans, configuration, labels = context.plans, context.configuration, context.label_manager
    heads = labels.num_segmentation_heads
    slabs = engine.predict_slabs(context.slab_runners(), data, context.window, on_tile)
    resampler = SlabResampler.for_case(data.shape[1:], properties, plans, configuration)
    if resampler is None:
        logger.warning("The probabilities resampling of %s (%s) has no slab-wise version: the logits are "
                       "resampled as a whole.", configuration.name, configuration.data["resampling_fn_probabilities"])
        logits = _collect_then_export(slabs, data.shape, heads, context.window.accumulation_dtype)
        return _export_in_memory(context, logits, properties, ofile, save_probabilities), 1
    max_rows = max(1, (budget - _slab_bytes_fixed(context, data, properties)) // resampler.row_bytes(heads))
    full = [int(s) for s in properties["shape_before_cropping"]]
    probabilities = None
    if save_probabilities and ofile is not None:
        scratch = Path(ofile).parent / PARTIAL_FOLDER
        scratch.mkdir(parents=True, exist_ok=True)
        probabilities = ProbabilityFile(scratch / f"{uuid.uuid4().hex}.raw", heads, full, plans.transpose_forward,
                                        not labels.has_regions, destination=ofile + ".npz")
    elif save_probabilities:
        probabilities = np.zeros((heads, *full), dtype=np.float32)
        probabilities[0] = 0 if labels.has_regions else 1
    try:
        exporter = SlabExporter(data.shape[1:], properties, plans, configuration, labels, resampler, probabilities,
                                int(max_rows))
        for _, rows in slabs:
            exporter.push(rows)
        seg = exporter.segmentation()
        if ofile is not None:
            write_outputs(seg, probabilities, properties, plans, context.dataset_json, ofile)
            return None, exporter.slabs
        if probabilities is None:
            return seg, exporter.slabs
        backward = [0] + [a + 1 for a in plans.transpose_backward]
        return (seg, probabilities.transpose(backward)), exporter.slabs
    finally:
        if isinstance(probabilities, ProbabilityFile):
            probabilities.remove()


def _export_in_memory(context: PredictionContext, logits: np.ndarray, properties: dict[str, Any],
                      ofile: str | None, save_probabilities: bool):
    if ofile is not None:
        export_prediction_from_logits(logits, properties, context.configuration, context.plans,
                                      context.dataset_json, ofile, save_probabilities)
        return None
    return convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, context.plans, context.configuration, context.label_manager, properties, save_probabilities)


def _load(data: Any, mapped: bool) -> np.ndarray:
    """The preprocessed array; a worker's hand-over file is read (mapped for the slab path) and deleted."""
    if not isinstance(data, str):
        return data if isinstance(data, np.ndarray) else data.numpy()  # a torch tensor
    array = np.load(data, mmap_mode="r" if mapped else None)
    os.remove(data)  # a mapped file stays readable until it is unmapped
    return array


def _array_shape(data: Any) -> tuple[int, ...]:
    if isinstance(data, str):
        return tuple(np.load(data, mmap_mode="r").shape)
    return tuple(data.shape)


def predict_items(context: PredictionContext, items: Iterable[dict[str, Any]], save_probabilities: bool,
                  num_processes_export: int, total: int | None, show_cases: bool = True) -> list[Any]:
    """The loop of :meth:`nnUNetPredictor.predict_from_data_iterator` (see there)."""
    heads = context.label_manager.num_segmentation_heads
    peak = PeakMemory()
    slots: list[tuple[bool, Any]] = []  # (from the export pool, value or pool index)
    pooled_jobs = 0
    exporter = BoundedPool(num_processes_export, "export", "use fewer export processes (-nps)")
    with exporter:
        for item in tqdm(items, total=total, desc="Predicting", disable=not (context.allow_tqdm and show_cases),
                         unit="case"):
            properties, ofile = item["data_properties"], item.get("ofile")
            name = os.path.basename(ofile) if ofile else f"case {len(slots)}"
            shape = _array_shape(item["data"])
            need = in_ram_bytes(shape, heads, properties["shape_after_cropping_and_before_resampling"],
                                properties["shape_before_cropping"], save_probabilities)
            budget = budget_bytes(context.max_ram_gb)
            in_slabs = need > budget
            data = _load(item["data"], mapped=in_slabs)
            peak.reset()
            start = time.perf_counter()
            bar = tqdm(total=context.tiles(shape[1:]), desc=name, unit="tile", leave=False,
                       disable=not context.allow_tqdm)
            with bar:
                if in_slabs:
                    logger.info("%s: predicting in slabs (in memory it would need about %.1f GB, the budget is "
                                "%.1f GB).", name, need / GIB, budget / GIB)
                    context.check_channels(shape[0])
                    with limited_threads():
                        value, count = predict_in_slabs(context, data, properties, ofile, save_probabilities,
                                                        budget, bar.update)
                    slots.append((False, value))
                else:
                    logits = np.asarray(context.logits(data, bar.update))
                    del data
                    if ofile is not None:
                        exporter.submit(export_prediction_from_logits, logits, properties, context.configuration,
                                        context.plans, context.dataset_json, ofile, save_probabilities)
                    else:
                        exporter.submit(convert_predicted_logits_to_segmentation_with_correct_shape, logits,
                                        context.plans, context.configuration, context.label_manager,
                                        properties, save_probabilities)
                    slots.append((True, pooled_jobs))
                    pooled_jobs += 1
                    del logits
            if context.verbose:
                how = f", {count} slabs" if in_slabs else ""
                logger.info("%s: %.1f s, peak memory of the prediction process %.2f GB%s", name,
                            time.perf_counter() - start, peak.peak_bytes() / GIB, how)
        pooled = exporter.results()
    return [pooled[v] if from_pool else v for from_pool, v in slots]
