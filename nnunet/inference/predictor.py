"""``nnUNetPredictor``: predict with a trained model folder (ours or one trained by nnU-Net v2).

Typical use::

    predictor = nnUNetPredictor(tile_step_size=0.5, device=torch.device("cuda"))
    predictor.initialize_from_trained_model_folder(model_folder, use_folds=(0, 1, 2, 3, 4))
    predictor.predict_from_files(input_folder, output_folder, save_probabilities=False)

The predictor is a facade: it keeps the attributes nnU-Net's predictor has (programs assign them by hand) and,
when a prediction starts, turns them into one :class:`~nnunet.inference.cases.PredictionContext` (the model,
the folds as runners, the settings) that the per-case code (:mod:`~nnunet.inference.cases`) and the sliding
window (:mod:`~nnunet.inference.engine`) work from. :meth:`nnUNetPredictor._fold_runners` is the one place
where the backend decides how a fold runs (a torch network, or an OpenVINO / ONNX Runtime compilation of it,
:mod:`~nnunet.inference.backends`). The model folder is read by :mod:`nnunet.models`.

With OpenVINO or ONNX Runtime and every fold's conversion cached, the predictor neither loads a checkpoint nor
imports torch (:func:`~nnunet.inference.cached_model.load_cached_model`, :class:`~nnunet.inference.engine.NumpyOps`).

``use_cropped_logits_resampling`` (the ``predict_from_*`` methods) is accepted and changes nothing. In
TotalSegmentator's patched nnU-Net it resamples each foreground class's logits only inside the bounding box of
its low-resolution prediction, an approximation that saves memory on large images. Here the export resamples
only the region nnU-Net cropped to (the input's nonzero bounding box), as nnU-Net does, and a case whose
full-resolution logits would not fit ``max_ram_gb`` is predicted and exported in slabs; so memory stays bounded
without the approximation, and the segmentation is that of nnU-Net's default export whatever the flag says.
"""
from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from nnunet.constants import default_num_processes
from nnunet.errors import NnunetError
from nnunet.inference import cases, data_iterators, engine, inputs
from nnunet.inference.backends import check_backend, compile_folds, device_type, open_cached, runs_on_torch
from nnunet.inference.inputs import case_identifier, check_list_of_lists, lists_from_folder  # noqa: F401
from nnunet.inference.cached_model import load_cached_model
from nnunet.models import available_folds, load_model_folder, num_input_channels  # noqa: F401
from nnunet.inference.runners import prediction_threads
from nnunet.io.dataset_json import channel_names
from nnunet.planning.plans import Configuration, Plans

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


class nnUNetPredictor:  # noqa: N801 - the reference's class name, kept for users porting scripts
    """Sliding-window predictor with fold ensembling, mirroring TTA and export to the original geometry.

    Args:
        tile_step_size: distance between tiles as a fraction of the patch size (0.5: half overlap).
        use_gaussian: weight tile predictions with the Gaussian importance map.
        use_mirroring: test-time augmentation over the model's allowed mirror axes.
        perform_everything_on_device: keep the image and the accumulators on the device (GPU); falls back to
            CPU accumulation on failure. Ignored (False) on the CPU.
        device: torch device (``"cuda"``, ``"cpu"``, ``"mps"`` or a ``torch.device``).
        verbose: log progress details and a line per case (time, peak memory). verbose_preprocessing: verbose
            preprocessor.
        allow_tqdm: show progress bars (cases, and the tiles of the current case).
        accumulation_dtype: dtype of the stitched logits (None: float16 as in nnU-Net; torch.float32 for more
            headroom).
        backend: ``"torch"``, or ``"openvino"`` / ``"onnxruntime"`` for faster CPU forward passes.
        max_ram_gb: memory one case may use; a case whose in-memory prediction would need more is predicted
            and exported in slabs. None: 70 % of the memory available when the case starts.
    """

    def __init__(self, tile_step_size: float = 0.5, use_gaussian: bool = True, use_mirroring: bool = True,
                 perform_everything_on_device: bool = True, device: torch.device | str = "cuda",
                 verbose: bool = False, verbose_preprocessing: bool = False, allow_tqdm: bool = True,
                 accumulation_dtype: torch.dtype | None = None, backend: str = "torch",
                 max_ram_gb: float | None = None):
        if not 0 < tile_step_size <= 1:
            raise NnunetError(f"The step size must be in (0, 1], got {tile_step_size}.")
        if max_ram_gb is not None and max_ram_gb <= 0:
            raise NnunetError(f"max_ram_gb must be positive, got {max_ram_gb}.")
        check_backend(backend, device)  # the CPU runtimes need no torch: do not import it for them
        self._torch = runs_on_torch(backend)  # the backend, resolved once (see _fold_runners)
        if self._torch:
            device = _torch_device(device)
        if device_type(device) == "cuda":
            import torch

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
        self._accumulation_dtype = accumulation_dtype
        self.backend = backend
        self.max_ram_gb = max_ram_gb
        self.plans: Plans | None = None
        self.configuration: Configuration | None = None
        self.list_of_parameters: list[dict[str, Any]] | None = None
        self.network: torch.nn.Module | None = None
        self.onnx_files: list[Path] | None = None
        self.dataset_json: dict[str, Any] | None = None
        self.trainer_name: str | None = None
        self.allowed_mirroring_axes: tuple[int, ...] | None = None
        self.label_manager = None
        self.checkpoint_files: list[Path] | None = None
        self._compiled: list[engine.ArrayRunner] | None = None
        self._fold_copies: tuple[tuple, list] | None = None

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device(self._device)

    @device.setter
    def device(self, value: torch.device | str) -> None:
        self._device = value

    @property
    def accumulation_dtype(self) -> torch.dtype:
        if self._accumulation_dtype is not None:
            return self._accumulation_dtype
        import torch

        return torch.float16

    @accumulation_dtype.setter
    def accumulation_dtype(self, value: torch.dtype | None) -> None:
        self._accumulation_dtype = value

    # nnU-Net's names for ``plans`` and ``configuration``. Programs that build the predictor by hand (MONAI's
    # bundles, custom trainers) assign them: a Plans or plans dict, a Configuration or configuration name, or an
    # nnU-Net PlansManager / ConfigurationManager (their ``plans`` / ``configuration`` dicts are read).
    @property
    def plans_manager(self) -> Plans | None:
        return self.plans

    @plans_manager.setter
    def plans_manager(self, value: Any) -> None:
        self.plans = as_plans(value)

    @property
    def configuration_manager(self) -> Configuration | None:
        return self.configuration

    @configuration_manager.setter
    def configuration_manager(self, value: Any) -> None:
        self.configuration = as_configuration(value, self.plans)

    # ------------------------------------------------------------------------------------------- initialisation

    def initialize_from_trained_model_folder(self, model_training_output_dir: str | os.PathLike,
                                             use_folds: Iterable[int | str] | int | str | None = None,
                                             checkpoint_name: str = "checkpoint_final.pth") -> None:
        """Load plans, dataset.json and the checkpoints of ``use_folds`` (None: all folds found); the network is
        built by the trainer class named in the checkpoint (see :mod:`nnunet.models`).

        Raises:
            ConfigurationError: missing files or folds (the message lists what the folder does contain), an
                unknown trainer, weights that do not fit.
        """
        model = None
        if not self._torch:  # every fold converted before: no checkpoint to load, no torch to import
            model = load_cached_model(model_training_output_dir, use_folds, checkpoint_name)
        if model is None:
            model = load_model_folder(model_training_output_dir, use_folds, checkpoint_name)
        self.manual_initialization(model.network, model.plans, model.configuration, model.parameters,
                                   model.dataset_json, model.trainer_name, model.mirror_axes)
        self.checkpoint_files = model.checkpoint_files
        self.onnx_files = model.onnx_files
        if model.network is not None and model.parameters:  # loading put fold 0's weights in
            from nnunet.inference.torch_engine import mark_loaded

            mark_loaded(model.network, model.parameters[0])

    def manual_initialization(self, network: torch.nn.Module, plans_manager: Plans | dict,
                              configuration_manager: Configuration | str, parameters: list[dict[str, Any]] | None,
                              dataset_json: dict[str, Any], trainer_name: str,
                              inference_allowed_mirroring_axes: Sequence[int] | None) -> None:
        """Use an existing network (e.g. the trainer's, for the final validation).

        ``plans_manager``: a Plans or plans dict (or an nnU-Net PlansManager); ``configuration_manager``: a
        Configuration or configuration name (or an nnU-Net ConfigurationManager). ``parameters=None`` predicts
        with the network's current weights.
        """
        plans = as_plans(plans_manager)
        configuration = as_configuration(configuration_manager, plans)
        self.plans = plans
        self.configuration = configuration
        self.list_of_parameters = parameters
        self.network = network
        self.dataset_json = dataset_json
        self.trainer_name = trainer_name
        self.allowed_mirroring_axes = (tuple(inference_allowed_mirroring_axes)
                                       if inference_allowed_mirroring_axes is not None else None)
        self.label_manager = plans.label_manager(dataset_json)
        self.checkpoint_files, self._compiled, self._fold_copies, self.onnx_files = None, None, None, None
        if os.environ.get("nnUNet_compile", "").lower() in ("true", "1", "t") and not hasattr(network, "_orig_mod") \
                and self._torch:
            import torch

            logger.info("Compiling the network (nnUNet_compile is set).")
            self.network = torch.compile(network)

    def _require_initialized(self) -> None:
        if self.configuration is None or (self.network is None and self.onnx_files is None):
            raise NnunetError("The predictor is not initialised: call initialize_from_trained_model_folder or "
                              "manual_initialization first.")

    @property
    def expected_num_channels(self) -> int:
        return len(channel_names(self.dataset_json))

    @property
    def num_folds(self) -> int:
        if self.onnx_files is not None:
            return len(self.onnx_files)
        return len(self.list_of_parameters) if self.list_of_parameters else 1

    # ------------------------------------------------------------------------------------------- folds as runners

    def _fold_runners(self, interleaved: bool = False, current_weights: bool = False) -> list[engine.Runner]:
        """The folds as runners; the one place where the backend decides how a fold runs.

        ``interleaved``: the folds take turns per row of tiles (the slab path), so each torch fold gets its own
        copy of the network, made once and kept while the network and parameters stay the same; its weights
        are then loaded once. ``current_weights``: one runner with the network's weights as they are.
        """
        if not self._torch:
            if self._compiled is None:
                self._compiled = self._compile_folds()
            return self._compiled[:1] if current_weights else self._compiled
        from nnunet.inference.torch_engine import TorchOps, TorchRunner

        ops = TorchOps(self.device, self.perform_everything_on_device)
        parameters = [None] if current_weights or not self.list_of_parameters else list(self.list_of_parameters)
        networks = [self.network] * len(parameters)
        if interleaved and len(parameters) > 1:
            networks = [self.network] + self._network_copies(len(parameters) - 1)
        return [TorchRunner(network, p, ops) for network, p in zip(networks, parameters)]

    def _network_copies(self, count: int) -> list:
        key = (id(self.network), id(self.list_of_parameters), count, str(self.device))
        if self._fold_copies is None or self._fold_copies[0] != key:
            module = getattr(self.network, "_orig_mod", self.network)
            self._fold_copies = (key, [copy.deepcopy(module) for _ in range(count)])
        return self._fold_copies[1]

    def _compile_folds(self) -> list:
        if self.onnx_files is not None:
            return open_cached(self.backend, self.onnx_files, prediction_threads())
        input_shape = (num_input_channels(self.plans, self.configuration, self.dataset_json),
                       *self.configuration.patch_size)
        facts = {"trainer_name": self.trainer_name or "", "configuration": self.configuration.name,
                 "mirror_axes": self.allowed_mirroring_axes}
        return compile_folds(self.backend, self.network, self.list_of_parameters, self.checkpoint_files, facts,
                             input_shape, prediction_threads())

    def _window_settings(self) -> engine.WindowSettings:
        mirror_axes = self.allowed_mirroring_axes if self.use_mirroring else None
        return engine.WindowSettings(tuple(int(p) for p in self.configuration.patch_size),
                                     self.label_manager.num_segmentation_heads, self.tile_step_size,
                                     self.use_gaussian, tuple(mirror_axes) if mirror_axes else None,
                                     engine.dtype_name(self._accumulation_dtype))

    def prediction_context(self) -> cases.PredictionContext:
        """The model, the folds as runners and the settings as one value, built from the attributes as they are
        now (programs assign them by hand); the runners are made on first use."""
        self._require_initialized()
        return cases.PredictionContext(
            plans=self.plans, configuration=self.configuration, dataset_json=self.dataset_json,
            label_manager=self.label_manager, window=self._window_settings(), runners=self._fold_runners,
            slab_runners=lambda: self._fold_runners(interleaved=True), num_folds=self.num_folds,
            input_channels=num_input_channels(self.plans, self.configuration, self.dataset_json),
            image_channels=self.expected_num_channels, max_ram_gb=self.max_ram_gb, allow_tqdm=self.allow_tqdm,
            verbose=self.verbose)

    # ------------------------------------------------------------------------------------------- prediction core

    def predict_sliding_window_return_logits(self, input_image: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits (heads, X, Y, Z) of one preprocessed image (C, X, Y, Z) with the network's current weights
        (with a CPU backend: the first fold's network), where the accumulators were (the device, if there)."""
        import torch

        context = self.prediction_context()
        if input_image.ndim != 4:
            raise NnunetError(f"Expected a 4-D preprocessed image (C, X, Y, Z), got shape {tuple(input_image.shape)}.")
        with cases.limited_threads():
            logits = engine.predict_logits(self._fold_runners(current_weights=True), input_image, context.window,
                                           to_host=False)
        return torch.as_tensor(logits)

    def predict_logits_from_preprocessed_data(self, data: torch.Tensor | np.ndarray,
                                              on_tile: Callable[[], None] | None = None) -> torch.Tensor:
        """Logits on the CPU, averaged over the loaded folds (sum of the folds' logits / number of folds).

        For cascades the previous stage's one-hot segmentation must already be appended to ``data``.
        ``on_tile`` is called after every tile of every fold (progress).
        """
        import torch

        return torch.as_tensor(self.prediction_context().logits(data, on_tile))

    def predict_logits_array(self, data: np.ndarray, on_tile: Callable[[], None] | None = None) -> np.ndarray:
        """:meth:`predict_logits_from_preprocessed_data` as a numpy array; with a CPU runtime, torch is not used."""
        return np.asarray(self.prediction_context().logits(data, on_tile))

    # ------------------------------------------------------------------------------------------- entry points

    def predict_from_data_iterator(self, data_iterator: Iterable[dict[str, Any]], save_probabilities: bool = False,
                                   num_processes_segmentation_export: int = default_num_processes(),
                                   use_cropped_logits_resampling: bool = False, *,
                                   total: int | None = None) -> list[Any]:
        """Predict every item ``{"data", "data_properties", "ofile"}`` of an iterator.

        Items with an ``ofile`` are written to ``ofile`` + file ending (+ ``.npz``/``.pkl``) and give None; items
        without one give the label map (or ``(label_map, probabilities)``). Exports run in
        ``num_processes_segmentation_export`` background processes (0: here, in order). A case whose
        in-memory prediction would not fit ``max_ram_gb`` is predicted and exported here, in slabs. ``total``:
        the number of items, for the progress bar.

        ``use_cropped_logits_resampling`` is accepted for programs written for TotalSegmentator's patched
        nnU-Net and changes nothing (see the module docstring).
        """
        self._require_initialized()
        return cases.predict_items(self.prediction_context(), data_iterator, save_probabilities,
                                   num_processes_segmentation_export, total)

    def predict_from_files(self, list_of_lists_or_source_folder: str | os.PathLike | list[list[str]],
                           output_folder_or_list_of_truncated_output_files: str | os.PathLike | list[str] | None,
                           save_probabilities: bool = False, overwrite: bool = True,
                           num_processes_preprocessing: int = default_num_processes(),
                           num_processes_segmentation_export: int = default_num_processes(),
                           folder_with_segs_from_prev_stage: str | os.PathLike | None = None, num_parts: int = 1,
                           part_id: int = 0, use_cropped_logits_resampling: bool = False) -> list[Any]:
        """Predict a folder (``CASE_XXXX{ending}`` files) or explicit per-case file lists.

        Everything is validated before anything is written. The output folder receives
        ``predict_from_raw_data_args.json``, ``dataset.json`` and ``plans.json``; it may be the input folder
        (``CASE.nii.gz`` next to ``CASE_0000.nii.gz``, as TotalSegmentator predicts), and then earlier
        predictions there are not taken for images. With ``overwrite=False`` cases whose outputs exist and can
        be read back are skipped (``--continue_prediction``). Cases are split into ``num_parts`` parts; this
        call does part ``part_id``. ``use_cropped_logits_resampling``: accepted, changes nothing
        (see the module docstring).
        """
        self._require_initialized()
        call_args = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in locals().items()
                     if k not in ("self",)}
        if num_parts < 1 or not 0 <= part_id < num_parts:
            raise NnunetError(f"part_id must be in [0, num_parts): got part_id={part_id}, num_parts={num_parts} "
                              f"(parts are counted from 0).")
        context = self.prediction_context()
        todo = cases.plan_file_cases(context, list_of_lists_or_source_folder,
                                     output_folder_or_list_of_truncated_output_files, save_probabilities,
                                     overwrite, folder_with_segs_from_prev_stage, num_parts, part_id)
        cases.write_run_files(context, todo.output_folder, call_args)
        if not todo.files:
            return []
        num_processes_preprocessing, num_processes_segmentation_export = inputs.processes_for_job(
            todo.files, num_processes_preprocessing, num_processes_segmentation_export)
        jobs = [(files, prev, self.plans, self.configuration, self.dataset_json, self.verbose_preprocessing)
                for files, prev in zip(todo.files, todo.previous)]
        with cases.handover_folder(todo.output_folder, num_processes_preprocessing > 0) as handover:
            iterator = data_iterators.iterate_in_order(data_iterators.preprocess_files, jobs, todo.ofiles,
                                                       num_processes_preprocessing, handover)
            return self.predict_from_data_iterator(iterator, save_probabilities, num_processes_segmentation_export,
                                                   use_cropped_logits_resampling, total=len(jobs))

    def predict_from_files_sequential(self, list_of_lists_or_source_folder,
                                      output_folder_or_list_of_truncated_output_files, save_probabilities: bool = False,
                                      overwrite: bool = True, folder_with_segs_from_prev_stage=None,
                                      use_cropped_logits_resampling: bool = False) -> list[Any]:
        """:meth:`predict_from_files` without background processes."""
        return self.predict_from_files(list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files,
                                       save_probabilities, overwrite, 0, 0, folder_with_segs_from_prev_stage,
                                       use_cropped_logits_resampling=use_cropped_logits_resampling)

    def predict_from_list_of_npy_arrays(self, image_or_list_of_images: np.ndarray | list[np.ndarray],
                                        segs_from_prev_stage_or_list_of_segs_from_prev_stage,
                                        properties_or_list_of_properties: dict | list[dict],
                                        truncated_ofname: str | list[str] | None, num_processes: int = 3,
                                        save_probabilities: bool = False,
                                        num_processes_segmentation_export: int = default_num_processes(),
                                        use_cropped_logits_resampling: bool = False) -> list:
        """Predict images already read (C, X, Y, Z) with their properties (``spacing`` at least).

        ``use_cropped_logits_resampling``: accepted, changes nothing (see the module docstring)."""
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
                                               use_cropped_logits_resampling, total=len(jobs))

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
        item = {"data": data, "data_properties": properties,
                "ofile": str(output_file_truncated) if output_file_truncated is not None else None}
        return cases.predict_items(self.prediction_context(), [item], save_or_return_probabilities, 0, 1,
                                   show_cases=False)[0]

    def _check_array(self, image: np.ndarray, properties: dict[str, Any], what: str) -> None:
        if not isinstance(image, np.ndarray) or image.ndim != 4:
            raise NnunetError(f"{what} must be a 4-D numpy array (C, X, Y, Z) as the plans' reader returns it; "
                              f"got {getattr(image, 'shape', type(image))}.")
        if image.shape[0] != self.expected_num_channels:
            raise NnunetError(f"{what} has {image.shape[0]} channels but the model expects "
                              f"{self.expected_num_channels}.")
        if "spacing" not in properties or len(properties["spacing"]) != 3:
            raise NnunetError(f"The properties of {what} need 'spacing' (3 values in array axis order).")


def as_plans(value: Any) -> Any:
    """A Plans from what a program assigns to ``plans_manager``; unknown objects are kept as they are."""
    if value is None or isinstance(value, Plans):
        return value
    if isinstance(value, dict):
        return Plans(value)
    data = getattr(value, "plans", None)  # nnU-Net's PlansManager keeps the plans dict in .plans
    return Plans(data) if isinstance(data, dict) else value


def as_configuration(value: Any, plans: Plans | None) -> Any:
    """A Configuration from what a program assigns to ``configuration_manager``; unknown objects (a
    namespace with a ``patch_size``) are kept as they are."""
    if value is None or isinstance(value, Configuration):
        return value
    if isinstance(value, str):
        if not isinstance(plans, Plans):
            raise NnunetError(f"configuration_manager = {value!r} names a configuration: assign plans_manager "
                              f"first.")
        return plans.configuration(value)
    data = value if isinstance(value, dict) else getattr(value, "configuration", None)
    if not isinstance(data, dict):
        return value
    return Configuration(_configuration_name(data, plans), data)


def _configuration_name(data: dict[str, Any], plans: Plans | None) -> str:
    """The name of the plans' configuration equal to ``data`` (a ConfigurationManager knows only its dict)."""
    if isinstance(plans, Plans):
        for name in plans.available_configurations:
            if plans.configuration(name).data == data or plans.data["configurations"][name] == data:
                return name
    return str(data.get("data_identifier", "configuration"))


def _torch_device(device):
    import torch

    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NnunetError("CUDA was requested but is not available on this machine; use -device cpu "
                          "(or device='cpu').")
    return device

