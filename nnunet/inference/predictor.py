"""``nnUNetPredictor``: predict with a trained model folder (ours or one trained by nnU-Net v2).

Typical use::

    predictor = nnUNetPredictor(tile_step_size=0.5, device=torch.device("cuda"))
    predictor.initialize_from_trained_model_folder(model_folder, use_folds=(0, 1, 2, 3, 4))
    predictor.predict_from_files(input_folder, output_folder, save_probabilities=False)

The predictor is a facade: it keeps the attributes nnU-Net's predictor has (programs assign them by hand) and,
when a prediction starts, turns them into one :class:`~nnunet.inference.cases.PredictionContext` (the model,
the folds as runners, the settings) that the per-case code (:mod:`~nnunet.inference.cases`) and the sliding
window (:mod:`~nnunet.inference.engine`) work from. The methods delegate: :mod:`~nnunet.inference.coercion`
converts and checks what programs assign or hand in (plans, configurations, devices, arrays),
:mod:`~nnunet.inference.items` turns a call's cases into preprocessed items, and
:mod:`~nnunet.inference.fold_runners` reads the model folder (through :mod:`nnunet.models`) and turns the folds
into runners, the one place where the backend decides how a fold runs (a torch network, or an OpenVINO / ONNX
Runtime compilation of it, :mod:`~nnunet.inference.backends`).

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

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from nnunet.constants import default_num_processes
from nnunet.errors import NnunetError
from nnunet.inference import cases, coercion, engine, inputs, items
from nnunet.inference.backends import check_backend, runs_on_torch
from nnunet.inference.coercion import as_configuration, as_plans  # also imported from here (compat)
from nnunet.inference.fold_runners import FoldCache, compiled_network, fold_runners, load_model
from nnunet.inference.inputs import case_identifier, check_list_of_lists, lists_from_folder  # noqa: F401
from nnunet.models import LoadedModel, available_folds, load_model_folder, num_input_channels  # noqa: F401
from nnunet.io.dataset_json import channel_names
from nnunet.planning.plans import Configuration, Plans

if TYPE_CHECKING:
    import torch


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
        coercion.check_settings(tile_step_size, max_ram_gb)
        check_backend(backend, device)  # the CPU runtimes need no torch: do not import it for them
        self._torch = runs_on_torch(backend)  # the backend, resolved once (see _fold_runners)
        device, perform_everything_on_device = coercion.prediction_device(device, self._torch,
                                                                          perform_everything_on_device)
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
        self._folds = FoldCache()  # compiled folds and network copies, made once per loaded model

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
        model = load_model(model_training_output_dir, use_folds, checkpoint_name, self._torch)
        self.manual_initialization(model.network, model.plans, model.configuration, model.parameters,
                                   model.dataset_json, model.trainer_name, model.mirror_axes)
        self.checkpoint_files = model.checkpoint_files
        self.onnx_files = model.onnx_files

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
        self.checkpoint_files, self.onnx_files, self._folds = None, None, FoldCache()
        self.network = compiled_network(network, self._torch)

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

    # ------------------------------------------------------------------------------------------- the context

    def _fold_runners(self, interleaved: bool = False, current_weights: bool = False) -> list[engine.Runner]:
        """The folds as the attributes hold them now, as runners (see :mod:`~nnunet.inference.fold_runners`)."""
        model = LoadedModel(self.network, self.plans, self.configuration, self.list_of_parameters, self.dataset_json,
                            self.trainer_name, self.allowed_mirroring_axes, self.checkpoint_files, self.onnx_files)
        device = self.device if self._torch else self._device  # the CPU runtimes need no torch device
        return fold_runners(model, self.backend, self._torch, device, self.perform_everything_on_device, self._folds,
                            interleaved, current_weights)

    def _preprocessing(self) -> tuple:
        """What every preprocessing job ends with (see :mod:`~nnunet.inference.items`)."""
        return self.plans, self.configuration, self.dataset_json, self.verbose_preprocessing

    def prediction_context(self) -> cases.PredictionContext:
        """The model, the folds as runners and the settings as one value, built from the attributes as they are
        now (programs assign them by hand); the runners are made on first use."""
        self._require_initialized()
        window = coercion.window_settings(self.configuration, self.label_manager, self.tile_step_size,
                                          self.use_gaussian, self.allowed_mirroring_axes if self.use_mirroring
                                          else None, self._accumulation_dtype)
        return cases.PredictionContext(
            plans=self.plans, configuration=self.configuration, dataset_json=self.dataset_json,
            label_manager=self.label_manager, window=window, runners=self._fold_runners,
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
        coercion.check_part(num_parts, part_id)
        context = self.prediction_context()
        todo = cases.plan_file_cases(context, list_of_lists_or_source_folder,
                                     output_folder_or_list_of_truncated_output_files, save_probabilities,
                                     overwrite, folder_with_segs_from_prev_stage, num_parts, part_id)
        cases.write_run_files(context, todo.output_folder, call_args)
        if not todo.files:
            return []
        num_processes_preprocessing, num_processes_segmentation_export = inputs.processes_for_job(
            todo.files, num_processes_preprocessing, num_processes_segmentation_export)
        with items.file_items(todo, self._preprocessing(), num_processes_preprocessing) as iterator:
            return self.predict_from_data_iterator(iterator, save_probabilities, num_processes_segmentation_export,
                                                   use_cropped_logits_resampling, total=len(todo.files))

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
        iterator, total = items.array_items(
            image_or_list_of_images, segs_from_prev_stage_or_list_of_segs_from_prev_stage,
            properties_or_list_of_properties, truncated_ofname, self._preprocessing(), self.expected_num_channels,
            num_processes)
        return self.predict_from_data_iterator(iterator, save_probabilities, num_processes_segmentation_export,
                                               use_cropped_logits_resampling, total=total)

    def predict_single_npy_array(self, input_image: np.ndarray, image_properties: dict[str, Any],
                                 segmentation_previous_stage: np.ndarray | None = None,
                                 output_file_truncated: str | os.PathLike | None = None,
                                 save_or_return_probabilities: bool = False):
        """Predict one image read with the plans' reader (axis order!); ``image_properties`` needs ``spacing``.

        Returns the label map (and probabilities) when no output file is given, else writes the files.
        """
        self._require_initialized()
        item = items.single_item(input_image, image_properties, segmentation_previous_stage, output_file_truncated,
                                 self._preprocessing(), self.expected_num_channels)
        return cases.predict_items(self.prediction_context(), [item], save_or_return_probabilities, 0, 1,
                                   show_cases=False)[0]
