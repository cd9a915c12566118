"""Networks from plans: same classes, keys, shapes and initialisation as nnU-Net's get_network_from_plans."""
from __future__ import annotations

import json

import pytest
import torch

from nnunet.errors import ConfigurationError
from nnunet.networks.from_plans import get_network_from_plans, set_deep_supervision
from tests.helpers import FIXTURES

torch.set_num_threads(1)
REF = json.loads((FIXTURES / "training" / "network_state_dicts.json").read_text())


@pytest.mark.parametrize("name", sorted(REF["cases"]))
def test_state_dict_matches_reference(name):
    case = REF["cases"][name]
    arch = case["arch"]
    torch.manual_seed(0)
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                 case["in"], case["out"], deep_supervision=True)
    ours = net.state_dict()
    ref = REF["state_dicts"][name]
    assert list(ours) == list(ref)
    for key, tensor in ours.items():
        assert list(tensor.shape) == ref[key]["shape"], key
        # same seed + same init scheme -> the same numbers (He init, zeroed residual norms)
        assert float(tensor.double().sum()) == pytest.approx(ref[key]["sum"], rel=1e-6, abs=1e-6), key
        assert float(tensor.double().abs().sum()) == pytest.approx(ref[key]["abs"], rel=1e-6, abs=1e-6), key


def test_residual_last_norm_zeroed_and_bias_zero():
    arch = REF["cases"]["resenc_3d"]["arch"]
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"], 1, 3)
    zeroed = [k for k, v in net.state_dict().items() if k.endswith("conv2.norm.weight") and float(v.abs().sum()) == 0]
    assert zeroed, "the last norm of each residual block starts at zero"
    conv_biases = [v for k, v in net.state_dict().items() if k.endswith("conv.bias")]
    assert conv_biases and all(float(b.abs().sum()) == 0 for b in conv_biases)


def test_deep_supervision_outputs_and_toggle():
    arch = REF["cases"]["plain_3d"]["arch"]
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"], 2, 3,
                                 deep_supervision=True)
    x = torch.zeros(1, 2, 16, 16, 16)
    with torch.no_grad():
        out = net(x)
        assert [tuple(o.shape) for o in out] == [(1, 3, 16, 16, 16), (1, 3, 8, 8, 8)]  # highest resolution first
        set_deep_supervision(net, False)
        assert tuple(net(x).shape) == (1, 3, 16, 16, 16)


def test_moved_class_found_by_short_name():
    arch = dict(REF["cases"]["plain_2d"]["arch"])
    net = get_network_from_plans("some.old.module.PlainConvUNet", arch["arch_kwargs"], arch["_kw_requires_import"],
                                 1, 2)
    assert type(net).__name__ == "PlainConvUNet"


def test_unknown_class_and_import_errors():
    arch = REF["cases"]["plain_2d"]["arch"]
    with pytest.raises(ConfigurationError, match="NoSuchNet"):
        get_network_from_plans("x.y.NoSuchNet", arch["arch_kwargs"], arch["_kw_requires_import"], 1, 2)
    kwargs = dict(arch["arch_kwargs"], conv_op="torch.nn.NoSuchConv")
    with pytest.raises(ConfigurationError, match="NoSuchConv"):
        get_network_from_plans(arch["network_class_name"], kwargs, arch["_kw_requires_import"], 1, 2)


def test_primus_builds_on_a_cpu_only_torch():
    """A fresh process imports Primus (timm -> torchvision) and runs it, also where PyPI's CUDA-built torchvision
    cannot load its operators beside the CPU torch (then nnunet declares the two operator schemas that
    torchvision's import registers fake kernels for)."""
    import subprocess
    import sys

    plain = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, text=True)
    code = ("import torch; from nnunet.networks.primus import build_primus; "
            "net = build_primus('PrimusV2S', {}, 1, 2, (16, 16, 16)); "
            "print(type(net).__name__, tuple(net(torch.zeros(1, 1, 16, 16, 16)).shape))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "PrimusV2S (1, 2, 16, 16, 16)" in res.stdout
    if plain.returncode != 0:  # the situation the guard is for
        assert "torchvision::nms" in plain.stderr


def test_primus_refuses_2d_and_odd_patch_sizes():
    from nnunet.networks.primus import check_primus_patch_size

    with pytest.raises(ConfigurationError, match="3-D configuration"):
        check_primus_patch_size([64, 64], "2d")
    with pytest.raises(ConfigurationError, match="divisible by 8"):
        check_primus_patch_size([20, 64, 64], "3d_fullres")
    check_primus_patch_size([64, 64, 64])


def test_batchnorm_architecture_leaves_the_plans_alone():
    from nnunet.networks.from_plans import architecture_with_norm

    arch = REF["cases"]["plain_3d"]["arch"]
    before = json.dumps(arch, sort_keys=True)
    bn = architecture_with_norm(arch, "batch")
    assert bn["arch_kwargs"]["norm_op"] == "torch.nn.modules.batchnorm.BatchNorm3d"
    assert bn["arch_kwargs"]["norm_op_kwargs"] == {"eps": 1e-5, "affine": True}
    assert json.dumps(arch, sort_keys=True) == before
    with pytest.raises(ConfigurationError, match="norm_op"):
        architecture_with_norm({"network_class_name": "x.Primus", "arch_kwargs": {}}, "batch")
