"""A trainer file written for nnU-Net 2.8.1 (it imports only nnunetv2.*) trains and predicts on ours, and the
same file predicts on nnU-Net 2.8.1; the managers, losses and variants answer as 2.8.1's do."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from tests.compat.signatures import our_signature, same_default
from tests.helpers import FIXTURES
from tests.reliability.helpers import TINY, TINY_ID, command_env, script
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


# ---------------------------------------------------------------------------------------------- further names
NEW_NAMES = [
    "nnunetv2.training.dataloading.data_loader:nnUNetDataLoader",
    "nnunetv2.training.lr_scheduler.warmup:Lin_incr_LRScheduler",
    "nnunetv2.training.lr_scheduler.warmup:Lin_incr_offset_LRScheduler",
    "nnunetv2.training.lr_scheduler.warmup:PolyLRScheduler_offset",
    "nnunetv2.training.lr_scheduler.warmup:CosineAnnealingLR_offset",
    "nnunetv2.training.logging.nnunet_logger:MetaLogger",
    "nnunetv2.training.logging.nnunet_logger:LocalLogger",
    "nnunetv2.training.logging.nnunet_logger:get_cluster_job_id",
    "nnunetv2.preprocessing.resampling.default_resampling:determine_do_sep_z_and_axis",
    "nnunetv2.preprocessing.resampling.default_resampling:resample_data_or_seg_to_spacing",
    "nnunetv2.preprocessing.resampling.default_resampling:resample_data_or_seg",
    "nnunetv2.preprocessing.resampling.resample_torch:resample_torch_simple",
    "nnunetv2.preprocessing.resampling.resample_torch:resample_torch_fornnunet",
    "nnunetv2.preprocessing.resampling.no_resampling:no_resampling_hack",
    "nnunetv2.preprocessing.resampling.utils:recursive_find_resampling_fn_by_name",
    "nnunetv2.run.run_training:find_free_network_port",
    "nnunetv2.run.run_training:setup_ddp",
    "nnunetv2.run.run_training:cleanup_ddp",
    "nnunetv2.utilities.ddp_allgather:print_if_rank0",
    "nnunetv2.utilities.utils:get_identifiers_from_splitted_dataset_folder",
    "nnunetv2.utilities.utils:create_paths_fn",
    "nnunetv2.utilities.utils:create_lists_from_splitted_dataset_folder",
    "nnunetv2.utilities.utils:get_filenames_of_train_images_and_targets",
]
DESCRIBE = '''
import importlib, inspect, json
out = {}
for key in KEYS:
    module_name, _, qualname = key.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    out[key] = [[p.name, p.kind.name, None if p.default is inspect.Parameter.empty else repr(p.default)]
                for p in inspect.signature(obj).parameters.values()]
print(json.dumps(out))
'''


def test_further_trainer_side_names_take_2_8_1s_parameters():
    ours = {key: our_signature(key) for key in NEW_NAMES}  # each importable here
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed: checked that the names import")
    reference = _reference_value(f"KEYS = {NEW_NAMES!r}\n" + DESCRIBE)
    for key in NEW_NAMES:
        ref, our = reference[key], ours[key]
        if key.endswith(":LocalLogger"):
            our = our[:len(ref)]
        assert [p[:2] for p in our[:len(ref)]] == [p[:2] for p in ref], f"{key}: ours {our}, 2.8.1 {ref}"
        for (name, _, ref_default), (_, _, our_default) in zip(ref, our):
            assert same_default(name, ref_default, our_default) or (ref_default == "device(type='cpu')" and
                                                                     our_default == "None"), (key, name)
        assert all(p[2] is not None or p[1].startswith("VAR") for p in our[len(ref):]), key


SCHEDULES = '''
import json, torch
from nnunetv2.training.lr_scheduler.warmup import *
out = []
for make in (lambda o: Lin_incr_LRScheduler(o, 0.01, 10), lambda o: Lin_incr_offset_LRScheduler(o, 0.01, 10, 3),
             lambda o: PolyLRScheduler_offset(o, 0.01, 20, 5)):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    s = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for i in range(8):
        opt.step()
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    opt.step()
    s.step(12)
    lrs.append(opt.param_groups[0]["lr"])
    out.append(lrs)
print(json.dumps(out))
'''


def test_warmup_schedulers_give_2_8_1s_rates():
    import math

    from nnunetv2.training.lr_scheduler.warmup import CosineAnnealingLR_offset

    namespace: dict = {}
    exec(SCHEDULES.replace("print(json.dumps(out))", ""), namespace)
    ours = namespace["out"]
    assert ours[0][:3] == pytest.approx([0.001, 0.002, 0.003])  # linear warm-up from the first step
    # 2.8.1's CosineAnnealingLR_offset cannot be built with torch >= 2.7 (it passes the removed `verbose` on):
    # ours is checked against the closed form of torch's CosineAnnealingLR shifted by the offset
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    cosine = CosineAnnealingLR_offset(opt, 20, 1e-4, offset=5)
    lrs = [opt.param_groups[0]["lr"]] + [(opt.step(), cosine.step(), opt.param_groups[0]["lr"])[2] for _ in range(8)]
    assert lrs == pytest.approx([1e-4 + (0.01 - 1e-4) * (1 + math.cos(math.pi * (s - 5) / 15)) / 2
                                 for s in range(9)])
    CosineAnnealingLR_offset(opt, 20, 0, last_epoch=7, offset=2)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * (1 + math.cos(math.pi * 6 / 18)) / 2)
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed")
    np.testing.assert_allclose(ours, _reference_value(SCHEDULES), rtol=1e-7, atol=1e-12)


RESAMPLING = '''
import json, numpy as np, torch
from nnunetv2.preprocessing.resampling.default_resampling import *
from nnunetv2.preprocessing.resampling.resample_torch import resample_torch_simple
from nnunetv2.preprocessing.resampling.utils import recursive_find_resampling_fn_by_name
rng = np.random.default_rng(0)
data = rng.normal(size=(1, 6, 7, 8)).astype(np.float32)
seg = rng.integers(0, 3, (1, 6, 7, 8)).astype(np.int16)
out = [determine_do_sep_z_and_axis(f, c, n) for f, c, n in (
    (None, (3.5, 1, 1), (1, 1, 1)), (None, (1, 1, 1), (1, 4, 1)), (None, (1, 1, 1), (1, 1, 1)),
    (True, (2, 1, 1), (1, 1, 1)), (True, (2, 2, 1), (1, 1, 1)), (False, (5, 1, 1), (1, 1, 1)))]
out.append(resample_data_or_seg_to_spacing(data, (3.5, 1, 1), (1.5, 0.8, 1.2), order=3, force_separate_z=None).round(4))
out.append(resample_data_or_seg_to_spacing(seg, (1, 1, 1), (0.6, 1.5, 1.0), is_seg=True, order=1))
out.append(resample_data_or_seg(data, (9, 5, 10), axis=0, do_separate_z=True, order=3, order_z=0).round(4))
out.append(resample_data_or_seg(seg, (4, 9, 10), is_seg=True, order=1, dtype_out=np.uint8))
out.append(resample_torch_simple(data, (9, 5, 10)).round(4))
out.append(resample_torch_simple(torch.from_numpy(seg), (4, 9, 10), is_seg=True).numpy())
out.append([recursive_find_resampling_fn_by_name(n).__name__ for n in ("resample_data_or_seg_to_shape",
                                                                        "resample_torch_fornnunet",
                                                                        "no_resampling_hack")])
print(json.dumps(out, default=lambda o: o.tolist()))
'''


def test_resampling_functions_by_their_2_8_1_paths_resample_alike():
    namespace: dict = {}
    exec(RESAMPLING.replace("print(json.dumps(out, default=lambda o: o.tolist()))", ""), namespace)
    ours = json.loads(json.dumps(namespace["out"], default=lambda o: o.tolist()))
    assert ours[:6] == [[True, 0], [True, 1], [False, None], [True, 0], [False, None], [False, None]]
    assert np.asarray(ours[6]).shape == (1, 14, 9, 7) and np.asarray(ours[7]).shape == (1, 10, 5, 8)
    assert set(np.unique(ours[7])) <= {0, 1, 2} and np.asarray(ours[8]).shape == (1, 9, 5, 10)
    with pytest.raises(RuntimeError, match="no_such_fn"):
        namespace["recursive_find_resampling_fn_by_name"]("no_such_fn")
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed")
    reference = _reference_value(RESAMPLING)
    assert ours[:6] == reference[:6] and ours[-1] == reference[-1]
    for o, r in zip(ours[6:-1], reference[6:-1]):
        o, r = np.asarray(o), np.asarray(r)
        assert o.shape == r.shape
        if o.dtype.kind == "f":
            np.testing.assert_allclose(o, r, atol=2e-3)
        else:
            assert (o == r).mean() >= 0.99


def test_raw_folder_listing_as_2_8_1(tiny_dirs):
    code = f'''
import json
from nnunetv2.utilities.utils import *
raw = {str(tiny_dirs["raw"] / TINY)!r}
ids = get_identifiers_from_splitted_dataset_folder(raw + "/imagesTr", ".nii.gz")
lists = create_lists_from_splitted_dataset_folder(raw + "/imagesTr", ".nii.gz", num_processes=1)
print(json.dumps([list(ids), lists, get_filenames_of_train_images_and_targets(raw)]))
'''
    namespace: dict = {}
    exec(code.replace("print(json.dumps(", "out = (("), namespace)
    ours = json.loads(json.dumps(namespace["out"]))
    assert len(ours[0]) == 5 and all(len(files) == 1 for files in ours[1])
    assert ours[2][ours[0][0]]["images"] == ours[1][0]
    if not REF_PYTHON.is_file():
        pytest.skip("reference nnU-Net venv not installed")
    assert ours == _reference_value(code)


def test_data_loader_and_loggers_by_their_2_8_1_names(tiny_dirs):
    from nnunet.training.data.loader import PatchLoader
    from nnunet.training.logger import MetricsLogger
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    from nnunetv2.training.logging.nnunet_logger import LocalLogger, MetaLogger

    trainer = get_trainer_from_args(str(TINY_ID), "3d_fullres", 0, device=torch.device("cpu"))
    folder = tiny_dirs["preprocessed"] / TINY / trainer.configuration_manager.data_identifier
    dataset = infer_dataset_class(str(folder))(str(folder))
    patch = list(trainer.configuration_manager.patch_size)
    loader = nnUNetDataLoader(dataset, 2, patch, patch, trainer.label_manager, oversample_foreground_percent=0.5)
    batch = next(loader)
    assert isinstance(loader, PatchLoader) and tuple(batch["data"].shape) == (2, 1, *patch)
    assert tuple(batch["target"].shape) == (2, 1, *patch) and len(batch["keys"]) == 2
    with pytest.raises(NotImplementedError, match="pad_sides"):
        nnUNetDataLoader(dataset, 2, patch, patch, trainer.label_manager, pad_sides=[2, 2, 2])

    assert isinstance(trainer.logger, LocalLogger)
    meta = MetaLogger(str(tiny_dirs["results"]), False)
    assert isinstance(meta, MetricsLogger) and meta.local_logger is meta and meta.loggers == []
    for epoch, dice in enumerate((0.5, 0.7)):
        meta.log("mean_fg_dice", dice, epoch)
    assert meta.get_value("mean_fg_dice", step=1) == 0.7 and meta.get_value("ema_fg_dice", None) == [0.5, 0.52]


def test_ddp_helpers_outside_ddp(capsys):
    from nnunetv2.utilities.ddp_allgather import AllGatherGrad, print_if_rank0

    t = torch.arange(3.0, requires_grad=True)
    gathered = AllGatherGrad.apply(t)
    assert gathered.shape == (1, 3) and gathered.requires_grad  # one process: its own tensor, gradients kept
    print_if_rank0("rank", 0)
    assert capsys.readouterr().out == "rank 0\n"
