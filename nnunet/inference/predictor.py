"""``nnUNetPredictor``: predict with a trained model folder (ours or one trained by nnU-Net v2).

Typical use::

    predictor = nnUNetPredictor(tile_step_size=0.5, device=torch.device("cuda"))
    predictor.initialize_from_trained_model_folder(model_folder, use_folds=(0, 1, 2, 3, 4))
    predictor.predict_from_files(input_folder, output_folder, save_probabilities=False)

A model folder holds ``plans.json``, ``dataset.json`` and ``fold_X/<checkpoint>``; the checkpoints are in
nnU-Net's format (``network_weights``, ``trainer_name``, ``init_args['configuration']``,
``inference_allowed_mirroring_axes``), so folders trained by either implementation work.
"""
from __future__ import annotations

import importlib
import inspect
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from nnunet.constants import default_num_processes
from nnunet.errors import ConfigurationError, DatasetError, NnunetError
from nnunet.inference import data_iterators
from nnunet.inference.export import (convert_predicted_logits_to_segmentation_with_correct_shape,
                                     export_prediction_from_logits)
from nnunet.inference.sliding_window import sliding_window_logits_with_fallback
from nnunet.io.dataset_json import load_dataset_json
from nnunet.planning.plans import Configuration, Plans
from nnunet.training.checkpoint import load_checkpoint_file
from nnunet.utils.json import load_json, save_json
from nnunet.utils.pool import BoundedPool

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- model folders

def available_folds(model_folder: str | os.PathLike, checkpoint_name: str = "checkpoint_final.pth") -> list[int]:
    """Integer folds ``fold_X`` of a model folder that contain ``checkpoint_name`` (``fold_all`` excluded)."""
    folds = []
    for sub in Path(model_folder).glob("fold_*"):
        m = re.fullmatch(r"fold_(\d+)", sub.name)
        if m and (sub / checkpoint_name).is_file():
            folds.append(int(m.group(1)))
    return sorted(folds)


def normalize_folds(use_folds: Iterable[int | str] | int | str | None, model_folder: str | os.PathLike,
                    checkpoint_name: str) -> list[int | str]:
    """Fold list with ints and ``'all'``; None -> every fold found (:func:`available_folds`)."""
    if use_folds is None:
        folds: list[int | str] = list(available_folds(model_folder, checkpoint_name))
        if not folds:
            raise ConfigurationError(f"No fold_X/{checkpoint_name} found in the model folder {model_folder}.")
        logger.info("Using the folds found in %s: %s", model_folder, folds)
        return folds
    if isinstance(use_folds, (str, int)):
        use_folds = [use_folds]
    folds = []
    for f in use_folds:
        if str(f) == "all":
            folds.append("all")
            continue
        try:
            folds.append(int(f))
        except ValueError:
            raise ConfigurationError(f"Invalid fold {f!r}: folds are integers or 'all'.") from None
    return folds


def _describe_checkpoints(model_folder: Path) -> str:
    found = []
    for sub in sorted(model_folder.glob("fold_*")):
        names = sorted(p.name for p in sub.glob("*.pth"))
        found.append(f"{sub.name} ({', '.join(names) or 'no checkpoint'})")
    return "; ".join(found) or "no fold_* folders"


def _strip_prefixes(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Remove ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) key prefixes."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def _locate(dotted: str):
    module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        raise ConfigurationError(f"Cannot import {dotted!r} named in the plans' architecture block.") from None


def build_network_from_architecture(architecture: dict[str, Any], num_input_channels: int,
                                    num_output_channels: int, deep_supervision: bool = False) -> torch.nn.Module:
    """Instantiate the network class of a plans ``architecture`` block (dynamic_network_architectures layout)."""
    kwargs = dict(architecture["arch_kwargs"])
    for key in architecture.get("_kw_requires_import", []):
        if kwargs.get(key) is not None:
            kwargs[key] = _locate(kwargs[key])
    cls = _locate(architecture["network_class_name"])
    if "deep_supervision" in inspect.signature(cls).parameters:
        kwargs["deep_supervision"] = deep_supervision
    return cls(input_channels=num_input_channels, num_classes=num_output_channels, **kwargs)


def build_network(trainer_name: str, plans: Plans, configuration: Configuration, num_input_channels: int,
                  num_output_channels: int) -> torch.nn.Module:
    """The inference network (deep supervision off) for a trainer name.

    A trainer registered in :data:`nnunet.registry.TRAINERS` that defines ``build_network_architecture`` builds
    it; otherwise (unknown trainer, e.g. a variant that only exists in nnU-Net, or training code not present)
    the plans' architecture block is instantiated, which is what the standard trainers do.
    """
    builder = None
    try:
        from nnunet.registry import TRAINERS

        builder = getattr(TRAINERS.get(trainer_name), "build_network_architecture", None)
    except (ConfigurationError, ImportError):
        logger.info("Trainer %s is not available; building the network from the plans' architecture block.",
                    trainer_name)
    if builder is not None:
        try:
            return builder(plans, configuration, num_input_channels, num_output_channels,
                           enable_deep_supervision=False)
        except TypeError:
            logger.info("build_network_architecture of %s has another signature; using the plans' architecture "
                        "block.", trainer_name)
    return build_network_from_architecture(configuration.architecture, num_input_channels, num_output_channels)


def num_input_channels(plans: Plans, configuration: Configuration, dataset_json: dict[str, Any]) -> int:
    """Image channels, plus one per foreground label for cascaded configurations."""
    channels = dataset_json.get("channel_names", dataset_json.get("modality"))
    n = len(channels)
    if configuration.previous_stage_name is not None:
        n += len(plans.label_manager(dataset_json).foreground_labels)
    return n


# ----------------------------------------------------------------------------------------------- inputs

def _channel_index_pattern(file_ending: str) -> re.Pattern:
    return re.compile(r"^(.+)_(\d{4})" + re.escape(file_ending) + "$")


def lists_from_folder(folder: str | os.PathLike, file_ending: str, num_channels: int) -> list[list[str]]:
    """One sorted list of channel files per case in ``folder``, checked against the model's channel count.

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
    for name in names:
        m = pattern.match(name)
        if m:
            cases.setdefault(m.group(1), {})[int(m.group(2))] = str(folder / name)
    if not cases:
        if not names:
            raise DatasetError(f"Input folder {folder} contains no images.")
        other = sorted({"".join(Path(n).suffixes) or n for n in names})
        raise DatasetError(
            f"Input folder {folder} contains no images named CASE_XXXX{file_ending} (the model was trained on "
            f"{file_ending} files; channel files end in _0000{file_ending}, _0001{file_ending}, ...). Found "
            f"{len(names)} other file(s) ending in: {', '.join(other[:10])}.")
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


# ----------------------------------------------------------------------------------------------- predictor

class nnUNetPredictor:  # noqa: N801 - the reference's class name, kept for users porting scripts
    """Sliding-window predictor with fold ensembling, mirroring TTA and export to the original geometry.

    Args:
        tile_step_size: distance between tiles as a fraction of the patch size (0.5: half overlap).
        use_gaussian: weight tile predictions with the Gaussian importance map.
        use_mirroring: test-time augmentation over the model's allowed mirror axes.
        perform_everything_on_device: keep the image and the accumulators on the device (GPU); falls back to
            CPU accumulation on failure. Ignored (False) on the CPU.
        device: torch device (``"cuda"``, ``"cpu"``, ``"mps"`` or a ``torch.device``).
        verbose: log progress details. verbose_preprocessing: verbose preprocessor.
        allow_tqdm: show progress bars.
        accumulation_dtype: dtype of the stitched logits (float16 as in nnU-Net; float32 for more headroom).
    """

    def __init__(self, tile_step_size: float = 0.5, use_gaussian: bool = True, use_mirroring: bool = True,
                 perform_everything_on_device: bool = True, device: torch.device | str = "cuda",
                 verbose: bool = False, verbose_preprocessing: bool = False, allow_tqdm: bool = True,
                 accumulation_dtype: torch.dtype = torch.float16):
        if not 0 < tile_step_size <= 1:
            raise NnunetError(f"The step size must be in (0, 1], got {tile_step_size}.")
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise NnunetError("CUDA was requested but is not available on this machine; use -device cpu "
                              "(or device='cpu').")
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        elif perform_everything_on_device:
            logger.info("perform_everything_on_device only applies to CUDA devices; accumulating on the CPU.")
            perform_everything_on_device = False
        self.tile_step_size = tile_step_size
        self.use_gaussian = use_gaussian
        self.use_mirroring = use_mirroring
        self.perform_everything_on_device = perform_everything_on_device
        self.device = device
        self.verbose = verbose
        self.verbose_preprocessing = verbose_preprocessing
        self.allow_tqdm = allow_tqdm
        self.accumulation_dtype = accumulation_dtype
        self.plans: Plans | None = None
        self.configuration: Configuration | None = None
        self.list_of_parameters: list[dict[str, Any]] | None = None
        self.network: torch.nn.Module | None = None
        self.dataset_json: dict[str, Any] | None = None
        self.trainer_name: str | None = None
        self.allowed_mirroring_axes: tuple[int, ...] | None = None
        self.label_manager = None

    # reference-compatible names
    @property
    def plans_manager(self) -> Plans | None:
        return self.plans

    @property
    def configuration_manager(self) -> Configuration | None:
        return self.configuration

    # ------------------------------------------------------------------------------------------- initialisation

    def initialize_from_trained_model_folder(self, model_training_output_dir: str | os.PathLike,
                                             use_folds: Iterable[int | str] | int | str | None = None,
                                             checkpoint_name: str = "checkpoint_final.pth") -> None:
        """Load plans, dataset.json and the checkpoints of ``use_folds`` (None: all folds found).

        Raises:
            ConfigurationError: missing files or folds (the message lists what the folder does contain).
        """
        folder = Path(model_training_output_dir)
        if not folder.is_dir():
            raise ConfigurationError(f"Model folder {folder} does not exist.")
        for name in ("plans.json", "dataset.json"):
            if not (folder / name).is_file():
                raise ConfigurationError(f"Model folder {folder} has no {name}; is it a trained model folder "
                                         f"(it should contain plans.json, dataset.json and fold_X/)?")
        folds = normalize_folds(use_folds, folder, checkpoint_name)
        missing = [f for f in folds if not (folder / f"fold_{f}" / checkpoint_name).is_file()]
        if missing:
            raise ConfigurationError(
                f"Model folder {folder} has no {', '.join(f'fold_{f}/{checkpoint_name}' for f in missing)}. "
                f"It contains: {_describe_checkpoints(folder)}. Choose folds with -f (and the checkpoint with -chk).")
        dataset_json = load_dataset_json(folder / "dataset.json")
        plans = Plans(load_json(folder / "plans.json"), folder / "plans.json")
        parameters, first = [], None
        for f in folds:
            path = folder / f"fold_{f}" / checkpoint_name
            checkpoint = load_checkpoint_file(path)  # as data only: a model folder may come from anywhere
            for key in ("network_weights", "trainer_name", "init_args"):
                if key not in checkpoint:
                    raise ConfigurationError(f"{path} is not an nnU-Net checkpoint (no {key!r}).")
            if first is None:
                first = checkpoint
            parameters.append(_strip_prefixes(checkpoint["network_weights"]))
        configuration = plans.configuration(first["init_args"]["configuration"])
        mirror_axes = first.get("inference_allowed_mirroring_axes")
        label_manager = plans.label_manager(dataset_json)
        network = build_network(first["trainer_name"], plans, configuration,
                                num_input_channels(plans, configuration, dataset_json),
                                label_manager.num_segmentation_heads)
        try:
            network.load_state_dict(parameters[0])
        except RuntimeError as e:
            raise ConfigurationError(f"The weights in {folder} do not fit the network described by its plans "
                                     f"({configuration.name}): {str(e).splitlines()[0]}") from None
        self.manual_initialization(network, plans, configuration, parameters, dataset_json, first["trainer_name"],
                                   tuple(mirror_axes) if mirror_axes is not None else None)

    def manual_initialization(self, network: torch.nn.Module, plans: Plans | dict, configuration: Configuration | str,
                              parameters: list[dict[str, Any]] | None, dataset_json: dict[str, Any],
                              trainer_name: str, inference_allowed_mirroring_axes: Sequence[int] | None) -> None:
        """Use an existing network (e.g. the trainer's, for the final validation).

        ``parameters=None`` predicts with the network's current weights.
        """
        if isinstance(plans, dict):
            plans = Plans(plans)
        if isinstance(configuration, str):
            configuration = plans.configuration(configuration)
        self.plans = plans
        self.configuration = configuration
        self.list_of_parameters = parameters
        self.network = network
        self.dataset_json = dataset_json
        self.trainer_name = trainer_name
        self.allowed_mirroring_axes = (tuple(inference_allowed_mirroring_axes)
                                       if inference_allowed_mirroring_axes is not None else None)
        self.label_manager = plans.label_manager(dataset_json)
        if os.environ.get("nnUNet_compile", "").lower() in ("true", "1", "t") and not hasattr(network, "_orig_mod"):
            logger.info("Compiling the network (nnUNet_compile is set).")
            self.network = torch.compile(network)

    def _require_initialized(self) -> None:
        if self.network is None:
            raise NnunetError("The predictor is not initialised: call initialize_from_trained_model_folder or "
                              "manual_initialization first.")

    @property
    def expected_num_channels(self) -> int:
        channels = self.dataset_json.get("channel_names", self.dataset_json.get("modality"))
        return len(channels)

    # ------------------------------------------------------------------------------------------- prediction core

    @property
    def _mirror_axes(self) -> tuple[int, ...] | None:
        return self.allowed_mirroring_axes if self.use_mirroring else None

    def predict_sliding_window_return_logits(self, input_image: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits (heads, X, Y, Z) of one preprocessed image (C, X, Y, Z) with the network's current weights."""
        self._require_initialized()
        if isinstance(input_image, np.ndarray):
            input_image = torch.from_numpy(input_image)
        if input_image.ndim != 4:
            raise NnunetError(f"Expected a 4-D preprocessed image (C, X, Y, Z), got shape {tuple(input_image.shape)}.")
        self.network = self.network.to(self.device)
        self.network.eval()
        return sliding_window_logits_with_fallback(
            self.network, input_image, self.configuration.patch_size, self.label_manager.num_segmentation_heads,
            self.tile_step_size, self.use_gaussian, self._mirror_axes, self.device,
            self.perform_everything_on_device, self.accumulation_dtype, progress=self.allow_tqdm and self.verbose)

    def predict_logits_from_preprocessed_data(self, data: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits on the CPU, averaged over the loaded folds (sum of the folds' logits / number of folds).

        For cascades the previous stage's one-hot segmentation must already be appended to ``data``.
        """
        self._require_initialized()
        if isinstance(data, np.ndarray):
            data = torch.from_numpy(data)
        expected = num_input_channels(self.plans, self.configuration, self.dataset_json)
        if data.shape[0] != expected:
            raise NnunetError(f"The preprocessed input has {data.shape[0]} channels but the network expects "
                              f"{expected}.")
        threads = torch.get_num_threads()
        torch.set_num_threads(min(default_num_processes(), threads))
        try:
            with torch.inference_mode():
                prediction = None
                for params in self.list_of_parameters or [None]:
                    if params is not None:
                        target = getattr(self.network, "_orig_mod", self.network)
                        target.load_state_dict(params)
                    logits = self.predict_sliding_window_return_logits(data).to("cpu")
                    if prediction is None:
                        prediction = logits
                    else:
                        prediction += logits
                if self.list_of_parameters and len(self.list_of_parameters) > 1:
                    prediction /= len(self.list_of_parameters)
                return prediction
        finally:
            torch.set_num_threads(threads)

    # ------------------------------------------------------------------------------------------- entry points

    def predict_from_data_iterator(self, data_iterator: Iterable[dict[str, Any]], save_probabilities: bool = False,
                                   num_processes_segmentation_export: int = default_num_processes(),
                                   total: int | None = None) -> list[Any]:
        """Predict every item ``{"data", "data_properties", "ofile"}`` of an iterator.

        Items with an ``ofile`` are written to ``ofile`` + file ending (+ ``.npz``/``.pkl``) and give None; items
        without one give the label map (or ``(label_map, probabilities)``). Exports run in
        ``num_processes_segmentation_export`` background processes (0: here, in order).
        """
        self._require_initialized()
        exporter = BoundedPool(num_processes_segmentation_export, "export", "use fewer export processes (-nps)")
        with exporter:
            for item in tqdm(data_iterator, total=total, desc="Predicting", disable=not self.allow_tqdm,
                             unit="case"):
                data, properties, ofile = item["data"], item["data_properties"], item.get("ofile")
                if isinstance(data, str):  # a .npy file written by a producer: load and delete
                    path, data = data, np.load(data)
                    os.remove(path)
                start = time.perf_counter()
                logits = self.predict_logits_from_preprocessed_data(data).numpy()
                if self.verbose:
                    logger.info("predicted %s in %.1f s", ofile or f"an image of shape {tuple(data.shape)}",
                                time.perf_counter() - start)
                if ofile is not None:
                    exporter.submit(export_prediction_from_logits, logits, properties, self.configuration,
                                    self.plans, self.dataset_json, ofile, save_probabilities)
                else:
                    exporter.submit(convert_predicted_logits_to_segmentation_with_correct_shape, logits, self.plans,
                                    self.configuration, self.label_manager, properties, save_probabilities)
                del logits
            return exporter.results()

    def predict_from_files(self, list_of_lists_or_source_folder: str | os.PathLike | list[list[str]],
                           output_folder_or_list_of_truncated_output_files: str | os.PathLike | list[str] | None,
                           save_probabilities: bool = False, overwrite: bool = True,
                           num_processes_preprocessing: int = default_num_processes(),
                           num_processes_segmentation_export: int = default_num_processes(),
                           folder_with_segs_from_prev_stage: str | os.PathLike | None = None, num_parts: int = 1,
                           part_id: int = 0) -> list[Any]:
        """Predict a folder (``CASE_XXXX{ending}`` files) or explicit per-case file lists.

        Everything is validated before anything is written. The output folder receives
        ``predict_from_raw_data_args.json``, ``dataset.json`` and ``plans.json``. With ``overwrite=False``
        cases whose outputs exist are skipped (``--continue_prediction``). Cases are split into ``num_parts``
        parts; this call does part ``part_id``.
        """
        self._require_initialized()
        call_args = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in locals().items()
                     if k not in ("self",)}
        if num_parts < 1 or not 0 <= part_id < num_parts:
            raise NnunetError(f"part_id must be in [0, num_parts): got part_id={part_id}, num_parts={num_parts} "
                              f"(parts are counted from 0).")
        ending = self.dataset_json["file_ending"]
        if isinstance(list_of_lists_or_source_folder, (str, os.PathLike)):
            cases = lists_from_folder(list_of_lists_or_source_folder, ending, self.expected_num_channels)
        else:
            cases = check_list_of_lists(list_of_lists_or_source_folder, self.expected_num_channels, ending)
        identifiers = [case_identifier(files[0], ending) for files in cases]
        output = output_folder_or_list_of_truncated_output_files
        if isinstance(output, (str, os.PathLike)):
            output_folder: Path | None = Path(output)
            ofiles: list[str | None] = [str(Path(output) / i) for i in identifiers]
        elif output is None:
            output_folder, ofiles = None, [None] * len(cases)
        else:
            ofiles = [str(o) for o in output]
            if len(ofiles) != len(cases):
                raise NnunetError(f"{len(ofiles)} output names were given for {len(cases)} cases.")
            output_folder = Path(ofiles[0]).parent if ofiles else None
        cases, ofiles, identifiers = cases[part_id::num_parts], ofiles[part_id::num_parts], identifiers[part_id::num_parts]
        previous = self._previous_stage_files(folder_with_segs_from_prev_stage, identifiers, ending)
        if not overwrite and output_folder is not None:
            keep = [i for i, o in enumerate(ofiles) if not _outputs_exist(o, ending, save_probabilities)]
            if len(keep) < len(ofiles):
                logger.info("Skipping %d case(s) whose outputs exist (continue_prediction).", len(ofiles) - len(keep))
            cases, ofiles, previous = ([x[i] for i in keep] for x in (cases, ofiles, previous))
        if output_folder is not None:
            output_folder.mkdir(parents=True, exist_ok=True)
            save_json(call_args, output_folder / "predict_from_raw_data_args.json")
            save_json(self.dataset_json, output_folder / "dataset.json", sort_keys=False)
            save_json(self.plans.data, output_folder / "plans.json", sort_keys=False)
        if not cases:
            return []
        jobs = [(files, prev, self.plans, self.configuration, self.dataset_json, self.verbose_preprocessing)
                for files, prev in zip(cases, previous)]
        iterator = data_iterators.iterate_in_order(data_iterators.preprocess_files, jobs, ofiles,
                                                   num_processes_preprocessing)
        return self.predict_from_data_iterator(iterator, save_probabilities, num_processes_segmentation_export,
                                               total=len(jobs))

    def predict_from_files_sequential(self, list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files,
                                      save_probabilities: bool = False, overwrite: bool = True,
                                      folder_with_segs_from_prev_stage=None) -> list[Any]:
        """:meth:`predict_from_files` without background processes."""
        return self.predict_from_files(list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files,
                                       save_probabilities, overwrite, 0, 0, folder_with_segs_from_prev_stage)

    def _previous_stage_files(self, folder: str | os.PathLike | None, identifiers: list[str],
                              ending: str) -> list[str | None]:
        stage = self.configuration.previous_stage_name
        if stage is None:
            return [None] * len(identifiers)
        if folder is None:
            raise NnunetError(f"Configuration {self.configuration.name!r} is a cascade stage: it needs the "
                              f"predictions of {stage!r} (-prev_stage_predictions FOLDER).")
        files = [str(Path(folder) / f"{i}{ending}") for i in identifiers]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise DatasetError(f"Previous-stage predictions are missing for {len(missing)} case(s): "
                               f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}.")
        return files

    def predict_from_list_of_npy_arrays(self, image_or_list_of_images: np.ndarray | list[np.ndarray],
                                        segs_from_prev_stage_or_list_of_segs_from_prev_stage,
                                        properties_or_list_of_properties: dict | list[dict],
                                        truncated_ofname: str | list[str] | None, num_processes: int = 3,
                                        save_probabilities: bool = False,
                                        num_processes_segmentation_export: int = default_num_processes()) -> list:
        """Predict images already read (C, X, Y, Z) with their properties (``spacing`` at least)."""
        self._require_initialized()
        images = image_or_list_of_images if isinstance(image_or_list_of_images, list) else [image_or_list_of_images]
        props = (properties_or_list_of_properties if isinstance(properties_or_list_of_properties, list)
                 else [properties_or_list_of_properties])
        segs = segs_from_prev_stage_or_list_of_segs_from_prev_stage
        segs = [None] * len(images) if segs is None else (segs if isinstance(segs, list) else [segs])
        names = ([truncated_ofname] if isinstance(truncated_ofname, (str, os.PathLike)) else
                 (truncated_ofname if truncated_ofname is not None else [None] * len(images)))
        if not len(images) == len(props) == len(segs) == len(names):
            raise NnunetError(f"Got {len(images)} images, {len(props)} properties, {len(segs)} previous-stage "
                              f"segmentations and {len(names)} output names; they must match.")
        for i, (image, p) in enumerate(zip(images, props)):
            self._check_array(image, p, f"image {i}")
        if self.configuration.previous_stage_name is not None and any(s is None for s in segs):
            raise NnunetError(f"Configuration {self.configuration.name!r} is a cascade stage: pass the previous "
                              f"stage's segmentation for every image.")
        jobs = [(img, seg, p, self.plans, self.configuration, self.dataset_json, self.verbose_preprocessing)
                for img, seg, p in zip(images, segs, props)]
        iterator = data_iterators.iterate_in_order(data_iterators.preprocess_arrays, jobs,
                                                   [str(n) if n is not None else None for n in names],
                                                   min(num_processes, len(jobs)))
        return self.predict_from_data_iterator(iterator, save_probabilities, num_processes_segmentation_export,
                                               total=len(jobs))

    def predict_single_npy_array(self, input_image: np.ndarray, image_properties: dict[str, Any],
                                 segmentation_previous_stage: np.ndarray | None = None,
                                 output_file_truncated: str | os.PathLike | None = None,
                                 save_or_return_probabilities: bool = False):
        """Predict one image read with the plans' reader (axis order!); ``image_properties`` needs ``spacing``.

        Returns the label map (and probabilities) when no output file is given, else writes the files.
        """
        self._require_initialized()
        self._check_array(input_image, image_properties, "the image")
        if self.configuration.previous_stage_name is not None and segmentation_previous_stage is None:
            raise NnunetError(f"Configuration {self.configuration.name!r} is a cascade stage: pass "
                              f"segmentation_previous_stage.")
        data, properties = data_iterators.preprocess_arrays(input_image, segmentation_previous_stage,
                                                            image_properties, self.plans, self.configuration,
                                                            self.dataset_json, self.verbose_preprocessing)
        logits = self.predict_logits_from_preprocessed_data(data).numpy()
        if output_file_truncated is not None:
            export_prediction_from_logits(logits, properties, self.configuration, self.plans, self.dataset_json,
                                          output_file_truncated, save_or_return_probabilities)
            return None
        return convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, self.plans, self.configuration, self.label_manager, properties, save_or_return_probabilities)

    def _check_array(self, image: np.ndarray, properties: dict[str, Any], what: str) -> None:
        if not isinstance(image, np.ndarray) or image.ndim != 4:
            raise NnunetError(f"{what} must be a 4-D numpy array (C, X, Y, Z) as the plans' reader returns it; "
                              f"got {getattr(image, 'shape', type(image))}.")
        if image.shape[0] != self.expected_num_channels:
            raise NnunetError(f"{what} has {image.shape[0]} channels but the model expects "
                              f"{self.expected_num_channels}.")
        if "spacing" not in properties or len(properties["spacing"]) != 3:
            raise NnunetError(f"The properties of {what} need 'spacing' (3 values in array axis order).")


def _outputs_exist(ofile: str, ending: str, save_probabilities: bool) -> bool:
    if not os.path.isfile(ofile + ending):
        return False
    return not save_probabilities or os.path.isfile(ofile + ".npz")
