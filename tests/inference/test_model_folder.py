"""The network is rebuilt by the trainer class named in the checkpoint (a user's trainer included)."""
from __future__ import annotations

import json
import shutil
import textwrap

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet.cli.predict import predict_main
from nnunet.models import (ModelFolder, find_trainer_class, load_model_folder, model_folder_name,
                           parse_model_folder_name)
from nnunet.models.checkpoint import read_network_weights
from nnunet.errors import ConfigurationError
from nnunet.registry import TRAINERS
from tests.inference.helpers import IMAGES, MODEL

FAST = ["-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar", "--disable_tta", "-f", "0"]

BN_TRAINER = textwrap.dedent('''
    import torch
    from nnunet.networks.from_plans import get_network_from_plans
    from nnunet.training.trainer import nnUNetTrainer


    class nnUNetTrainerInferenceTestBN(nnUNetTrainer):
        """Builds the plans' network with BatchNorm instead of InstanceNorm (like nnU-Net's *_BN variants)."""

        @staticmethod
        def build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                       num_output_channels, enable_deep_supervision=True):
            kwargs = dict(configuration_manager.arch_kwargs)
            kwargs["norm_op"] = "torch.nn.BatchNorm3d"
            kwargs["norm_op_kwargs"] = {"eps": 1e-5, "affine": True}
            return get_network_from_plans(configuration_manager.network_class_name, kwargs,
                                          configuration_manager.arch_kwargs_requiring_import, num_input_channels,
                                          num_output_channels, deep_supervision=enable_deep_supervision)
''')


@pytest.fixture(autouse=True)
def _trainers_restored(monkeypatch):
    """The trainers found in this module's folders are forgotten afterwards (TRAINERS is global)."""
    TRAINERS.names()  # the built-in trainers first, so that the copy holds them
    monkeypatch.setattr(TRAINERS, "_entries", dict(TRAINERS._entries))


@pytest.fixture
def bn_model(nnunet_dirs, tmp_path, monkeypatch):
    """Dataset251 trained 'with' the BN trainer: its checkpoint holds BatchNorm running statistics."""
    trainers = tmp_path / "my_trainers"
    trainers.mkdir()
    (trainers / "bn_trainer.py").write_text(BN_TRAINER)
    monkeypatch.setenv("nnUNet_extTrainer", str(trainers))
    folder = nnunet_dirs["results"] / "Dataset251_InferTiny" / "nnUNetTrainerInferenceTestBN__nnUNetPlans__3d_fullres"
    shutil.copytree(MODEL, folder)
    model = load_model_folder(MODEL, (0,))
    trainer = find_trainer_class("nnUNetTrainerInferenceTestBN", "test")
    torch.manual_seed(0)
    network = trainer.build_network_architecture(model.plans, model.configuration, 1, 3, enable_deep_supervision=False)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm3d):  # statistics that change the output when used
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    checkpoint = torch.load(MODEL / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    checkpoint["network_weights"] = network.state_dict()
    checkpoint["trainer_name"] = "nnUNetTrainerInferenceTestBN"
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    return folder, network


def test_user_trainer_network_predicts_through_nnunet_predict(bn_model, tmp_path, capsys):
    folder, network = bn_model
    out = tmp_path / "out"
    rc = predict_main(["-i", str(IMAGES), "-o", str(out), "-d", "251", "-c", "3d_fullres", "-tr",
                       "nnUNetTrainerInferenceTestBN", *FAST])
    assert rc == 0, capsys.readouterr().err
    model = load_model_folder(folder, (0,))
    assert any(isinstance(m, torch.nn.BatchNorm3d) for m in model.network.modules())
    assert not any(isinstance(m, torch.nn.InstanceNorm3d) for m in model.network.modules())
    # the same files as predicting with the BN network itself
    from nnunet.inference.predictor import nnUNetPredictor

    direct = nnUNetPredictor(device="cpu", use_mirroring=False, allow_tqdm=False)
    direct.manual_initialization(network, model.plans, model.configuration, None, model.dataset_json,
                                 "nnUNetTrainerInferenceTestBN", model.mirror_axes)
    for case in ("ts_regular", "ts_small"):
        seg = direct.predict_single_npy_array(*_read(case))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{case}.nii.gz"))), seg)


def _read(case):
    from nnunet.io.readers import SimpleITKIO

    return SimpleITKIO().read_images([IMAGES / f"{case}_0000.nii.gz"])


def test_weights_that_do_not_fit_the_trainers_network_are_refused(bn_model, tmp_path, capsys):
    folder, _ = bn_model
    checkpoint_file = folder / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=False)
    checkpoint["trainer_name"] = "nnUNetTrainer_1epoch"  # BN weights, but a trainer that builds InstanceNorm
    torch.save(checkpoint, checkpoint_file)
    with pytest.raises(ConfigurationError, match=r"do not fit the network that nnUNetTrainer_1epoch builds"):
        load_model_folder(folder, (0,))


def test_unknown_trainer_is_one_clear_line(bn_model, tmp_path, capsys, monkeypatch):
    folder, _ = bn_model
    monkeypatch.delenv("nnUNet_extTrainer")
    checkpoint_file = folder / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=False)
    checkpoint["trainer_name"] = "nnUNetTrainerNobodyHas"
    torch.save(checkpoint, checkpoint_file)
    out = tmp_path / "out"
    rc = predict_main(["-i", str(IMAGES), "-o", str(out), "-d", "251", "-c", "3d_fullres", "-tr",
                       "nnUNetTrainerInferenceTestBN", *FAST])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "trainer 'nnUNetTrainerNobodyHas', which is not available here" in err
    assert "nnUNet_extTrainer" in err and str(checkpoint_file) in err
    assert not out.exists()


def test_a_trainer_file_that_fails_to_import_is_named_with_its_error(bn_model, tmp_path, capsys):
    # before, a SyntaxError in the trainer's file read as "not available here" and hid the cause
    folder, _ = bn_model
    (tmp_path / "my_trainers" / "bn_trainer.py").unlink()  # imported already: a new file instead
    trainer_file = tmp_path / "my_trainers" / "bn_trainer_edited.py"
    trainer_file.write_text(BN_TRAINER.replace("def build_network_architecture(", "def build_network_architecture(("))
    TRAINERS._entries.pop("nnUNetTrainerInferenceTestBN", None)  # found by the fixture: look again
    out = tmp_path / "out"
    rc = predict_main(["-i", str(IMAGES), "-o", str(out), "-d", "251", "-c", "3d_fullres", "-tr",
                       "nnUNetTrainerInferenceTestBN", *FAST])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err, err
    warning, error = err.strip().splitlines()  # the registry's warning (logging), then the error in one line
    assert warning.startswith(f"Could not import {trainer_file} (searched for trainers): SyntaxError: ")
    assert error.startswith("nnunet: error: ") and "'nnUNetTrainerInferenceTestBN', which is not available" in error
    assert f"{trainer_file} (SyntaxError: '(' was never closed (line 11))" in error


def test_the_model_folder_name_is_built_and_parsed_in_one_place():
    name = model_folder_name("nnUNetTrainer", "nnUNetPlans", "3d_fullres")
    assert name == "nnUNetTrainer__nnUNetPlans__3d_fullres"
    assert parse_model_folder_name(f"/results/Dataset001/{name}/") == ("nnUNetTrainer", "nnUNetPlans", "3d_fullres")
    for bad in ("nnUNetTrainer__nnUNetPlans", "a__b__c__d", "a____c"):
        with pytest.raises(ConfigurationError, match="TRAINER__PLANS__CONFIGURATION"):
            parse_model_folder_name(bad)


def test_model_folder_value_reads_plans_dataset_json_and_folds(tmp_path):
    folder = tmp_path / model_folder_name("nnUNetTrainer", "nnUNetPlans", "3d_fullres")
    shutil.copytree(MODEL, folder)
    model = ModelFolder.read(folder)  # no folds given: the folds found
    assert model.folds == (0,) and model.checkpoint_files == [folder / "fold_0" / "checkpoint_final.pth"]
    assert model.plans.dataset_name == json.loads((MODEL / "plans.json").read_text())["dataset_name"]
    assert model.dataset_json["labels"] == json.loads((MODEL / "dataset.json").read_text())["labels"]
    assert (model.trainer, model.plans_name, model.configuration) == ("nnUNetTrainer", "nnUNetPlans", "3d_fullres")
    renamed = ModelFolder.read(MODEL, (0,))  # any name: what trained it is in the checkpoints
    assert (renamed.trainer, renamed.plans_name, renamed.configuration) == (None, None, None)
    with pytest.raises(ConfigurationError, match=r"has no fold_3/checkpoint_final\.pth.*fold_0 \(checkpoint_final"):
        ModelFolder.read(folder, (0, 3))


def test_pretrained_weights_are_read_by_the_model_layer(tmp_path):
    weights = read_network_weights(MODEL / "fold_0" / "checkpoint_final.pth")
    assert weights and not any(k.startswith(("module.", "_orig_mod.")) for k in weights)
    not_a_checkpoint = tmp_path / "weights.pth"
    torch.save({"state_dict": {}}, not_a_checkpoint)
    with pytest.raises(ConfigurationError, match="has no 'network_weights' state dict"):
        read_network_weights(not_a_checkpoint)
