"""A trainer file written for nnU-Net 2.8.1 (it imports only nnunetv2.*) trains and predicts on ours, and the
same file predicts on nnU-Net 2.8.1; the managers, losses and variants answer as 2.8.1's do."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from tests.conftest import FIXTURES
from tests.reliability.conftest import TINY, TINY_ID, command_env, script
from tests.training.helpers import REF_PYTHON

REF_MODEL = FIXTURES / "inference" / "model"

TRAINER_FILE = '''
import numpy as np
import torch

from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager


class nnUNetTrainerFromAClient(nnUNetTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 2
        self.num_iterations_per_epoch = 3
        self.num_val_iterations_per_epoch = 2
        self.initial_lr = 1e-3

    def _build_loss(self):
        loss = DC_and_CE_loss({"batch_dice": self.configuration_manager.batch_dice, "smooth": 1e-5, "do_bg": False,
                               "ddp": self.is_ddp}, {}, weight_ce=1, weight_dice=1,
                              ignore_label=self.label_manager.ignore_label, dice_class=MemoryEfficientSoftDiceLoss)
        if self.enable_deep_supervision:
            scales = self._get_deep_supervision_scales()
            weights = np.array([1 / (2 ** i) for i in range(len(scales))])
            weights[-1] = 0
            loss = DeepSupervisionWrapper(loss, weights / weights.sum())
        return loss

    @staticmethod
    def build_network_architecture(plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels, num_output_channels, enable_deep_supervision=True):
        return get_network_from_plans(configuration_manager.network_arch_class_name,
                                      configuration_manager.network_arch_init_kwargs,
                                      configuration_manager.network_arch_init_kwargs_req_import,
                                      num_input_channels, num_output_channels, allow_init=True,
                                      deep_supervision=enable_deep_supervision)
'''



@pytest.fixture(scope="module")
def trained_client_model(tiny_preprocessed, tmp_path_factory):
    """The client's trainer file, trained 2 x 3 iterations by our nnUNet_train (found via nnUNet_extTrainer)."""
    root = tmp_path_factory.mktemp("client")
    (root / "trainers").mkdir()
    trainer_file = root / "trainers" / "client_trainer.py"
    trainer_file.write_text(TRAINER_FILE)
    dirs = dict(tiny_preprocessed, results=root / "results")
    env = command_env(dirs, nnUNet_extTrainer=str(root / "trainers"), nnUNet_n_proc_DA="0")
    result = subprocess.run([script("nnUNet_train"), str(TINY_ID), "3d_fullres", "0", "-tr",
                             "nnUNetTrainerFromAClient", "-device", "cpu"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    model = dirs["results"] / TINY / "nnUNetTrainerFromAClient__nnUNetPlans__3d_fullres"
    return {"root": root, "model": model, "env": env, "trainer_file": trainer_file, "dirs": dirs, "log": result}


def test_the_client_trainer_trains_with_its_own_settings(trained_client_model):
    from nnunet.training.checkpoint import load_checkpoint_file

    checkpoint = load_checkpoint_file(trained_client_model["model"] / "fold_0" / "checkpoint_final.pth")
    assert checkpoint["trainer_name"] == "nnUNetTrainerFromAClient"
    assert checkpoint["current_epoch"] == 2  # num_epochs set after super().__init__ took effect
    assert checkpoint["optimizer_state"]["param_groups"][0]["initial_lr"] == 1e-3
    log = next((trained_client_model["model"] / "fold_0").glob("training_log_*.txt")).read_text()
    assert "Epoch 1" in log and "Epoch 2" not in log


def _segmentations(folder):
    return {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in sorted(folder.glob("*.nii.gz"))}


def test_ours_and_nnunet_2_8_1_predict_the_client_model_alike(trained_client_model):
    images = trained_client_model["dirs"]["raw"] / TINY / "imagesTr"
    ours = trained_client_model["root"] / "ours"
    result = subprocess.run([script("nnUNet_predict_from_modelfolder"), "-i", str(images), "-o", str(ours), "-m",
                             str(trained_client_model["model"]), "-f", "0", "-device", "cpu", "-npp", "0", "-nps",
                             "0", "--disable_progress_bar"], env=trained_client_model["env"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(_segmentations(ours)) == 5
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv (/work/ref/.venv-ref) not installed: only ours predicted")
    reference = trained_client_model["root"] / "reference"
    # the same trainer file, found by 2.8.1 through nnUNet_extTrainer too (it imports only nnunetv2.* names)
    env = {k: v for k, v in trained_client_model["env"].items() if k != "PYTHONPATH"}
    result = subprocess.run([str(REF_PYTHON.parent / "nnUNetv2_predict_from_modelfolder"), "-i", str(images), "-o",
                             str(reference), "-m", str(trained_client_model["model"]), "-f", "0", "-device", "cpu",
                             "-npp", "1", "-nps", "1", "--disable_progress_bar"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    theirs = _segmentations(reference)
    assert theirs.keys() == _segmentations(ours).keys()
    for name, seg in _segmentations(ours).items():
        assert (seg == theirs[name]).mean() >= 0.999, name


def _reference_value(code: str):
    result = subprocess.run([str(REF_PYTHON), "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


LOSS_INPUTS = '''
import torch
torch.manual_seed(0)
x = torch.randn(2, 3, 8, 8, 8)
y = torch.randint(0, 3, (2, 1, 8, 8, 8))
'''
LOSSES = {
    "DC_and_CE_loss": ("compound_losses", "DC_and_CE_loss({'batch_dice': True, 'smooth': 1e-5, 'do_bg': False, "
                       "'ddp': False}, {}, dice_class=MemoryEfficientSoftDiceLoss)"),
    "DC_and_CE_loss_ignore": ("compound_losses", "DC_and_CE_loss({'batch_dice': False, 'smooth': 1e-5, 'do_bg': False, "
                              "'ddp': False}, {}, ignore_label=2, dice_class=MemoryEfficientSoftDiceLoss)"),
    "DC_and_topk_loss": ("compound_losses", "DC_and_topk_loss({'batch_dice': True, 'smooth': 1e-5, 'do_bg': False, "
                         "'ddp': False}, {'k': 10})"),
    "TopKLoss": ("robust_ce_loss", "TopKLoss(k=10)"),
    "RobustCrossEntropyLoss": ("robust_ce_loss", "RobustCrossEntropyLoss()"),
    "MemoryEfficientSoftDiceLoss": ("dice", "MemoryEfficientSoftDiceLoss(apply_nonlin=torch.nn.Softmax(1), "
                                    "batch_dice=True, do_bg=False, smooth=1e-5, ddp=False)"),
    "SoftDiceLoss": ("dice", "SoftDiceLoss(apply_nonlin=torch.nn.Softmax(1), batch_dice=False, do_bg=True, "
                     "smooth=1.0, ddp=False)"),
}


def _loss_code(module: str, construct: str) -> str:
    return (LOSS_INPUTS + f"from nnunetv2.training.loss.{module} import *\n"
            "from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss\n"
            f"loss = {construct}\nprint(float(loss(x, y)))\n")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_name_computes_what_2_8_1s_does(name):
    module, construct = LOSSES[name]
    namespace: dict = {}
    exec(_loss_code(module, construct).replace("print(float(loss(x, y)))", "value = float(loss(x, y))"), namespace)
    ours = namespace["value"]
    assert np.isfinite(ours)
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed: computed ours only")
    assert ours == pytest.approx(_reference_value(_loss_code(module, construct)), rel=1e-5, abs=1e-6)


def test_deep_supervision_wrapper_and_tp_fp_fn_tn_as_2_8_1():
    code = LOSS_INPUTS + '''
import json
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.robust_ce_loss import RobustCrossEntropyLoss
from nnunetv2.training.loss.dice import get_tp_fp_fn_tn
w = DeepSupervisionWrapper(RobustCrossEntropyLoss(), [0.6, 0.4])
half = (torch.nn.functional.avg_pool3d(x, 2), y[:, :, ::2, ::2, ::2])
ds = float(w((x, half[0]), (y, half[1])))
tp, fp, fn, tn = get_tp_fp_fn_tn(torch.softmax(x, 1), y, axes=(0, 2, 3, 4))
mtp = get_tp_fp_fn_tn(torch.softmax(x, 1), y, mask=(y != 1).float(), square=True)[0]
print(json.dumps([ds, tp.tolist(), fp.tolist(), fn.tolist(), tn.tolist(), mtp.sum().item()]))
'''
    namespace: dict = {}
    exec(code.replace("print(json.dumps(", "value = (("), namespace)
    ours = json.loads(json.dumps(namespace["value"]))
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed")
    np.testing.assert_allclose(np.concatenate([np.ravel(v) for v in ours]),
                               np.concatenate([np.ravel(v) for v in _reference_value(code)]), rtol=1e-5)


MANAGERS = f'''
import json
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
pm = PlansManager({str(REF_MODEL / "plans.json")!r})
cm = pm.get_configuration("3d_fullres")
ds = json.load(open({str(REF_MODEL / "dataset.json")!r}))
lm = pm.get_label_manager(ds)
values = dict(
    dataset_name=pm.dataset_name, plans_name=pm.plans_name, transpose_forward=list(pm.transpose_forward),
    available=list(pm.available_configurations), spacing=list(pm.original_median_spacing_after_transp),
    shape=list(pm.original_median_shape_after_transp), reader=pm.image_reader_writer_class.__name__,
    planner=pm.experiment_planner_name, planner_class=pm.experiment_planner_class.__name__,
    patch=list(cm.patch_size), batch=cm.batch_size,
    arch=cm.network_arch_class_name, arch_kwargs=cm.network_arch_init_kwargs,
    req_import=list(cm.network_arch_init_kwargs_req_import), pool=cm.pool_op_kernel_sizes,
    preprocessor=cm.preprocessor_class.__name__, data_identifier=cm.data_identifier,
    norm=list(cm.normalization_schemes), batch_dice=cm.batch_dice,
    labels=list(lm.all_labels), fg=list(lm.foreground_labels), heads=lm.num_segmentation_heads,
    regions=lm.has_regions, ignore=lm.ignore_label, channels=determine_num_input_channels(pm, cm, ds),
    kernel=cm.configuration["architecture"]["arch_kwargs"]["kernel_sizes"])
print(json.dumps(values, default=lambda o: o.tolist()))
'''


def test_plans_configuration_and_label_managers_answer_as_2_8_1s():
    namespace: dict = {}
    exec(MANAGERS.replace("print(json.dumps(values, default=lambda o: o.tolist()))", ""), namespace)
    ours = json.loads(json.dumps(namespace["values"], default=lambda o: o.tolist()))
    assert ours["arch"].endswith("PlainConvUNet") and ours["channels"] == 1
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed")
    assert ours == _reference_value(MANAGERS)


def test_label_manager_conversions_match_2_8_1_for_numpy_and_torch():
    code = '''
import json, numpy as np, torch
from nnunetv2.utilities.label_handling.label_handling import LabelManager, convert_labelmap_to_one_hot
rng = np.random.default_rng(0)
logits = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
out = []
for labels, order in (({"background": 0, "a": 1, "b": 2}, None),
                      ({"background": 0, "whole": [1, 2], "core": 2}, [1, 2])):
    lm = LabelManager(labels, order)
    x = logits[:lm.num_segmentation_heads]
    p = lm.apply_inference_nonlin(x)
    out += [np.asarray(p).round(5).tolist(), np.asarray(lm.convert_logits_to_segmentation(x)).tolist(),
            lm.convert_logits_to_segmentation(torch.from_numpy(x)).numpy().tolist(),
            np.asarray(lm.apply_inference_nonlin(torch.from_numpy(x))).round(5).tolist(),
            np.asarray(lm.revert_cropping_on_probabilities(p, [[1, 5], [0, 5], [2, 8]], (6, 5, 8))).round(5).tolist(),
            LabelManager.filter_background([0, 1, (0,), (1, 2)])]
seg = rng.integers(0, 3, (4, 5))
out.append(convert_labelmap_to_one_hot(seg, [0, 1, 2]).tolist())
out.append(convert_labelmap_to_one_hot(torch.from_numpy(seg), [0, 1, 2]).tolist())
print(json.dumps(out, default=lambda o: o.tolist()))
'''
    namespace: dict = {}
    exec(code.replace("print(json.dumps(out, default=lambda o: o.tolist()))", ""), namespace)
    ours = json.loads(json.dumps(namespace["out"], default=lambda o: o.tolist()))
    assert ours[1] == ours[2]  # numpy and torch give the same label map
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed")
    assert ours == _reference_value(code)


def test_variant_trainers_by_their_2_8_1_module_paths():
    from nnunet.registry import TRAINERS
    from nnunetv2.training.nnUNetTrainer.variants.loss.nnUNetTrainerCELoss import nnUNetTrainerCELoss
    from nnunetv2.training.nnUNetTrainer.variants.training_length.nnUNetTrainer_Xepochs import (
        nnUNetTrainer_5epochs, nnUNetTrainer_250epochs)

    assert nnUNetTrainer_5epochs is TRAINERS.get("nnUNetTrainer_5epochs") and nnUNetTrainer_5epochs.num_epochs == 5
    assert nnUNetTrainer_250epochs.num_epochs == 250 and nnUNetTrainerCELoss is TRAINERS.get("nnUNetTrainerCELoss")
    with pytest.raises(ImportError):
        from nnunetv2.training.nnUNetTrainer.variants.loss.nnUNetTrainerCELoss import NoSuchTrainer  # noqa: F401


def test_run_training_names_as_2_8_1(tiny_dirs):
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args(str(TINY_ID), "3d_fullres", 0, "nnUNetTrainer_5epochs", "nnUNetPlans",
                                    device=torch.device("cpu"))
    assert type(trainer).__name__ == "nnUNetTrainer_5epochs" and trainer.fold == 0
    assert trainer.plans_manager.get_configuration("3d_fullres").patch_size == trainer.configuration_manager.patch_size


DATASET_CODE = '''
import json, numpy as np
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size
folder = FOLDER
cls = infer_dataset_class(folder)
ids = sorted(cls.get_identifiers(folder))  # 2.8.1 lists them in directory order
ds = cls(folder, ids[:3][::-1])
data, seg, seg_prev, properties = ds[ds.identifiers[0]]
values = dict(cls=cls.__name__, ids=ids, subset=list(ds.identifiers), shape=list(data.shape),
              data_sum=round(float(np.asarray(data[:]).sum()), 3), seg=np.unique(np.asarray(seg[:])).tolist(),
              prev=seg_prev is None, spacing=list(properties["spacing"]),
              patch=[get_patch_size((64, 80, 96), r, r, r, (0.7, 1.4)).tolist() for r in ((-0.5, 0.5), 0.3)]
              + [get_patch_size((40, 56), (-3.1, 3.1), 0, 0, (0.85, 1.25)).tolist()])
print(json.dumps(values))
'''


def test_dataset_classes_and_initial_patch_size_as_2_8_1(tiny_preprocessed):
    folder = str(tiny_preprocessed["preprocessed"] / TINY / "nnUNetPlans_3d_fullres")
    namespace: dict = {"FOLDER": folder}
    exec(DATASET_CODE.replace("print(json.dumps(values))", ""), namespace)
    ours = json.loads(json.dumps(namespace["values"]))
    assert ours["cls"] == "nnUNetDatasetBlosc2" and len(ours["ids"]) == 5
    assert ours["subset"] == sorted(ours["ids"][:3]) and ours["prev"]
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed")
    assert ours == _reference_value(f"FOLDER = {folder!r}\n" + DATASET_CODE)
