"""The ONNX export without torch's onnx-script step writes the same file, and does not import onnx."""
import importlib
import importlib.util
import subprocess
import sys
import textwrap

import pytest
import torch

from nnunet.inference import onnx_export

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx is not installed")


def _network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.InstanceNorm3d(4, affine=True),
                               torch.nn.LeakyReLU(), torch.nn.ConvTranspose3d(4, 2, 2, stride=2)).eval()


def test_the_shortcut_writes_the_same_bytes(tmp_path):
    network = _network()
    onnx_export.export_onnx(network, (1, 8, 8, 8), tmp_path / "plain.onnx", skip_onnxscript_step=False)
    onnx_export.export_onnx(network, (1, 8, 8, 8), tmp_path / "fast.onnx")
    assert (tmp_path / "fast.onnx").read_bytes() == (tmp_path / "plain.onnx").read_bytes()


def test_the_step_is_restored_after_the_export(tmp_path):
    module_name, name = onnx_export._ONNXSCRIPT_STEP
    module = importlib.import_module(module_name)
    before = getattr(module, name)
    onnx_export.export_onnx(_network(), (1, 8, 8, 8), tmp_path / "a.onnx")
    assert getattr(module, name) is before


def test_the_step_is_where_the_shortcut_expects_it():
    # if torch moves the step, the export still works but pays for the onnx import again: say so here
    with onnx_export._without_onnxscript_step() as found:
        assert found, f"torch no longer has {'.'.join(onnx_export._ONNXSCRIPT_STEP)}"


def test_export_does_not_import_onnx(tmp_path):
    code = textwrap.dedent(f"""
        import sys, torch
        from nnunet.inference.onnx_export import export_onnx
        export_onnx(torch.nn.Conv3d(1, 2, 3, padding=1).eval(), (1, 8, 8, 8), {str(tmp_path / 'b.onnx')!r})
        print("onnx" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
