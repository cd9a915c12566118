"""The nnunetv2 namespace called as its real clients call it: TotalSegmentator's predictor calls (output folder =
input folder, the use_cropped_logits_resampling probe, a patched trainer lookup), MONAI's assignments of the
predictor's managers and its runner's pipeline calls, by position and by keyword."""
from __future__ import annotations

import inspect
import json
import pickle
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet.cli.predict import predict_from_modelfolder_main
from nnunet.errors import ConfigurationError
from tests.inference.helpers import CASES, IMAGES, MODEL

ARRAY = sitk.GetArrayFromImage


def _segmentations(folder) -> dict[str, np.ndarray]:
    return {case: ARRAY(sitk.ReadImage(str(folder / f"{case}.nii.gz"))) for case in CASES}


@pytest.fixture(scope="module")
def our_cli_predictions(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    assert predict_from_modelfolder_main(["-i", str(IMAGES), "-o", str(out), "-m", str(MODEL), "-f", "0",
                                          "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar"]) == 0
    return _segmentations(out)


def _totalsegmentator_predictor():
    """The predictor exactly as TotalSegmentator (nnUNetv2_predict in its nnunet.py) builds it."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    assert "perform_everything_on_gpu" not in inspect.signature(nnUNetPredictor).parameters  # its probe
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=True, device=torch.device("cpu"), verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(MODEL), use_folds=[0], checkpoint_name="checkpoint_final.pth")
    return predictor


def test_totalsegmentator_predicts_into_its_input_folder(tmp_path, our_cli_predictions):
    folder = tmp_path / "nnunet_tmp"
    shutil.copytree(IMAGES, folder)
    predictor = _totalsegmentator_predictor()
    predictor.predict_from_files(str(folder), str(folder), save_probabilities=False, overwrite=True,
                                 num_processes_preprocessing=1, num_processes_segmentation_export=1,
                                 folder_with_segs_from_prev_stage=None, num_parts=1, part_id=0)
    for case, expected in our_cli_predictions.items():
        assert np.array_equal(ARRAY(sitk.ReadImage(str(folder / f"{case}.nii.gz"))), expected), case
        assert (folder / f"{case}_0000.nii.gz").is_file()  # the images are still there
    # a second run over the same folder: the segmentations written next to the images are not taken for images
    predictor.predict_from_files(str(folder), str(folder), overwrite=True, num_processes_preprocessing=0,
                                 num_processes_segmentation_export=0)
    assert _segmentations(folder).keys() == our_cli_predictions.keys()
    assert sorted(p.name for p in folder.glob("*.nii.gz")) == sorted(
        [f"{c}.nii.gz" for c in CASES] + [f"{c}_0000.nii.gz" for c in CASES])


def test_use_cropped_logits_resampling_is_accepted_where_totalsegmentator_passes_it(tmp_path, our_cli_predictions):
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    for method in (nnUNetPredictor.predict_from_files, nnUNetPredictor.predict_from_files_sequential,
                   nnUNetPredictor.predict_from_list_of_npy_arrays):
        assert "use_cropped_logits_resampling" in inspect.signature(method).parameters, method
    # its patches call predict_from_data_iterator with the flag as the 4th positional argument
    assert list(inspect.signature(nnUNetPredictor.predict_from_data_iterator).parameters)[1:5] == [
        "data_iterator", "save_probabilities", "num_processes_segmentation_export", "use_cropped_logits_resampling"]
    predictor = _totalsegmentator_predictor()
    predictor.predict_from_files(str(IMAGES), str(tmp_path / "a"), num_processes_preprocessing=0,
                                 num_processes_segmentation_export=0, use_cropped_logits_resampling=True)
    assert all(np.array_equal(a, our_cli_predictions[c]) for c, a in _segmentations(tmp_path / "a").items())
    from nnunet.inference.data_iterators import preprocess_files

    data, properties = preprocess_files([str(IMAGES / "ts_small_0000.nii.gz")], None, predictor.plans,
                                        predictor.configuration, predictor.dataset_json)
    item = {"data": data, "data_properties": properties, "ofile": None}
    results = predictor.predict_from_data_iterator(iter([item]), False, 0, True)
    assert np.array_equal(results[0], our_cli_predictions["ts_small"])


def test_monai_assigns_the_predictors_managers(our_cli_predictions):
    """MONAI's bundle code builds the predictor by hand: managers, network, parameters, names assigned."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    trained = _totalsegmentator_predictor()
    plans = json.loads((MODEL / "plans.json").read_text())
    predictor = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    predictor.plans_manager = PlansManager(plans)
    predictor.configuration_manager = predictor.plans_manager.get_configuration("3d_fullres")
    predictor.list_of_parameters = trained.list_of_parameters
    predictor.network = trained.network
    predictor.dataset_json = trained.dataset_json
    predictor.trainer_name = "nnUNetTrainer"
    predictor.allowed_mirroring_axes = trained.allowed_mirroring_axes
    predictor.label_manager = predictor.plans_manager.get_label_manager(trained.dataset_json)
    assert predictor.configuration_manager.patch_size == trained.configuration.patch_size
    image = sitk.ReadImage(str(IMAGES / "ts_small_0000.nii.gz"))
    props = {"spacing": image.GetSpacing()[::-1]}
    seg = predictor.predict_single_npy_array(ARRAY(image)[None].astype(np.float32), props)
    assert (seg == our_cli_predictions["ts_small"]).mean() > 0.999


def _model_with_trainer_name(tmp_path, trainer_name: str):
    model = tmp_path / "model"
    shutil.copytree(MODEL, model)
    path = model / "fold_0" / "checkpoint_final.pth"
    from nnunet.training.checkpoint import load_checkpoint_file

    checkpoint = load_checkpoint_file(path)  # as data, with the allow-list
    checkpoint["trainer_name"] = trainer_name
    torch.save(checkpoint, path)
    return model


def test_a_patched_recursive_find_python_class_makes_a_clients_trainer_findable(tmp_path, monkeypatch):
    import nnunetv2.inference.predict_from_raw_data as predict_module
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    model = _model_with_trainer_name(tmp_path, "nnUNetTrainerOfAClient")
    predictor = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    with pytest.raises(ConfigurationError, match="trained with the trainer 'nnUNetTrainerOfAClient', which is not "
                                                 "available here"):
        predictor.initialize_from_trained_model_folder(str(model), use_folds=(0,))

    client_trainer = type("nnUNetTrainerOfAClient", (nnUNetTrainer,), {})
    calls = []
    original = predict_module.recursive_find_python_class

    def patched(folder, class_name, current_module, *args, **kwargs):
        calls.append((folder, class_name, current_module))
        return client_trainer if class_name == "nnUNetTrainerOfAClient" else original(folder, class_name,
                                                                                      current_module)

    monkeypatch.setattr(predict_module, "recursive_find_python_class", patched)
    predictor.initialize_from_trained_model_folder(str(model), use_folds=(0,))
    assert predictor.trainer_name == "nnUNetTrainerOfAClient"
    folder, name, module = calls[-1]
    assert name == "nnUNetTrainerOfAClient" and module == "nnunetv2.training.nnUNetTrainer"
    assert folder.endswith("nnunetv2/training/nnUNetTrainer")
    monkeypatch.undo()  # the lookup is asked each time: without the patch the name is unknown again
    with pytest.raises(ConfigurationError):
        nnUNetPredictor(device=torch.device("cpu")).initialize_from_trained_model_folder(str(model), (0,))


def test_get_output_folder_and_dataset_names_as_clients_call_them(nnunet_dirs):
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    (nnunet_dirs["raw"] / "Dataset004_Hippocampus").mkdir()
    assert maybe_convert_to_dataset_name(4) == maybe_convert_to_dataset_name("4") == "Dataset004_Hippocampus"
    folder = get_output_folder(4, "nnUNetTrainer", "nnUNetPlans", "3d_fullres")
    assert folder == str(nnunet_dirs["results"] / "Dataset004_Hippocampus" / "nnUNetTrainer__nnUNetPlans__3d_fullres")
    assert get_output_folder(4, "nnUNetTrainer", "nnUNetPlans", "3d_fullres", fold=1).endswith("/fold_1")


def test_configuration_constants_are_2_8_1s():
    from nnunetv2.configuration import ANISO_THRESHOLD, default_num_processes

    assert isinstance(default_num_processes, int) and default_num_processes == 1  # tests set nnUNet_def_n_proc=1
    assert ANISO_THRESHOLD == 3


@pytest.mark.slow
def test_monai_runner_plans_and_preprocesses_by_position_and_keyword(nnunet_dirs):
    """nnUNetV2Runner.extract_fingerprints / plan_experiments / preprocess, argument for argument."""
    from nnunet.demo.synthetic import SyntheticSpec, make_dataset
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess

    make_dataset(nnunet_dirs["raw"], 961, "Runner", SyntheticSpec(num_cases=3, shape=(16, 16, 16)))
    extract_fingerprints([961], "DatasetFingerprintExtractor", 1, False, True, False)
    plan_experiments([961], "ExperimentPlanner", 8, "DefaultPreprocessor", None, "nnUNetPlans")
    preprocess([961], "nnUNetPlans", configurations=("3d_fullres",), num_processes=(1,), verbose=False)
    pre = nnunet_dirs["preprocessed"] / "Dataset961_Runner"
    assert json.loads((pre / "dataset_fingerprint.json").read_text())["spacings"]
    assert "3d_fullres" in json.loads((pre / "nnUNetPlans.json").read_text())["configurations"]
    assert sorted(p.name for p in (pre / "nnUNetPlans_3d_fullres").glob("*.pkl")) == [
        f"case_{i:03d}.pkl" for i in range(3)]


def test_monai_runner_finds_the_best_configuration_ensembles_and_postprocesses(nnunet_dirs):
    from nnunetv2.ensembling.ensemble import ensemble_folders
    from nnunetv2.evaluation.find_best_configuration import (dumb_trainer_config_plans_to_trained_models_dict,
                                                             find_best_configuration)
    from nnunetv2.postprocessing.remove_connected_components import apply_postprocessing_to_folder
    from tests.ensembling.trained_models import DATASET, make_trained_models

    folders = make_trained_models(nnunet_dirs, {"2d": 1.6, "3d_fullres": 1.2})
    models = dumb_trainer_config_plans_to_trained_models_dict(("nnUNetTrainer",), ("2d", "3d_fullres"),
                                                              ("nnUNetPlans",))
    assert list(models) == [{"plans": "nnUNetPlans", "configuration": c, "trainer": "nnUNetTrainer"}
                      for c in ("2d", "3d_fullres")]
    find_best_configuration(950, models, allow_ensembling=True, num_processes=1, overwrite=True, folds=(0, 1),
                            strict=False)
    info = json.loads((nnunet_dirs["results"] / DATASET / "inference_information.json").read_text())
    best = info["best_model_or_ensemble"]
    assert best["selected_model_or_models"]
    validation = [folders[c] / "fold_0" / "validation" for c in ("2d", "3d_fullres")]
    for folder, model in zip(validation, (folders["2d"], folders["3d_fullres"])):  # as a prediction folder has
        for name in ("dataset.json", "plans.json"):
            shutil.copy(model / name, folder / name)
    out = nnunet_dirs["results"] / DATASET / "ensemble_predictions"
    ensemble_folders([str(f) for f in validation], str(out), save_merged_probabilities=False)
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(p.name for p in validation[0].glob("*.nii.gz"))
    with open(best["postprocessing_file"], "rb") as f:  # MONAI reads it with a plain pickle load
        pp_fns, pp_fn_kwargs = pickle.load(f)
    final = nnunet_dirs["results"] / DATASET / "ensemble_predictions_postprocessed"
    apply_postprocessing_to_folder(str(out), str(final), pp_fns, pp_fn_kwargs,
                                   plans_file_or_dict=best["some_plans_file"])
    assert sorted(p.name for p in final.glob("*.nii.gz")) == sorted(p.name for p in out.glob("*.nii.gz"))


def test_find_best_configuration_with_strict_as_2_8_1(nnunet_dirs):
    """A model in the plans without an output folder is an error (with strict or not, as in 2.8.1, where the
    non-strict path fails a step later); a configuration the plans lack is skipped."""
    from nnunetv2.evaluation.find_best_configuration import find_best_configuration
    from tests.ensembling.trained_models import make_trained_models

    folders = make_trained_models(nnunet_dirs, {"2d": 1.6, "3d_fullres": 1.2})
    shutil.rmtree(folders["3d_fullres"])
    models = [{"plans": "nnUNetPlans", "configuration": c, "trainer": "nnUNetTrainer"} for c in ("2d", "3d_fullres")]
    for strict in (True, False):
        with pytest.raises(Exception, match="3d_fullres"):
            find_best_configuration(950, models, allow_ensembling=False, num_processes=1, overwrite=True,
                                    folds=(0, 1), strict=strict)
    models[1]["configuration"] = "3d_lowres"  # not in these plans: skipped
    info = find_best_configuration(950, models, allow_ensembling=False, num_processes=1, overwrite=True,
                                   folds=(0, 1), strict=True)
    assert [m["configuration"] for m in info["best_model_or_ensemble"]["selected_model_or_models"]] == ["2d"]
