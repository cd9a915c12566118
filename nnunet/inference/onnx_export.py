"""Exporting a network to ONNX for the CPU runtimes, without the exporter's detour through the onnx package.

torch's TorchScript exporter ends every export by importing the ``onnx`` package, parsing the finished model
back into a ModelProto, looking for onnx-script functions of custom operators and, when it finds none,
returning the bytes it was given. Our networks use standard operators only, so that step never changes a byte;
it costs about 0.75 s of import and a parse of the whole model (tens of MB), which is a large part of the first
prediction with a fast CPU backend. :func:`export_onnx` skips it, and falls back to the plain export when torch
no longer has the step where we expect it.
"""
from __future__ import annotations

import contextlib
import importlib
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import torch

from nnunet.inference.runners import ONNX_OPSET

#: where torch 2.x keeps the step (module, function); absent in other versions, which then export as they are
_ONNXSCRIPT_STEP = ("torch.onnx._internal.torchscript_exporter.onnx_proto_utils", "_add_onnxscript_fn")


def _keep_bytes(model_bytes: bytes, custom_opsets) -> bytes:
    return model_bytes


@contextlib.contextmanager
def _without_onnxscript_step() -> Iterator[bool]:
    """Replace the onnx-script function step by the identity while exporting; yields whether it was found."""
    module_name, name = _ONNXSCRIPT_STEP
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    original = getattr(module, name, None)
    if original is None:
        yield False
        return
    setattr(module, name, _keep_bytes)
    try:
        yield True
    finally:
        setattr(module, name, original)


def export_onnx(network: torch.nn.Module, input_shape: Sequence[int], target: str | Path,
                skip_onnxscript_step: bool = True) -> None:
    """Write ``network`` as ONNX: input ``tile`` (batch, *input_shape), output ``logits``, the batch axis dynamic.

    ``skip_onnxscript_step=False`` runs torch's exporter unchanged (the tests compare both files byte for byte).
    """
    example = torch.zeros((1, *input_shape))
    step = _without_onnxscript_step() if skip_onnxscript_step else contextlib.nullcontext()
    with warnings.catch_warnings(), step:  # tracer notes about shape checks that are constant for a fixed patch
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (example,), str(target), dynamo=False, input_names=["tile"],
                          output_names=["logits"], dynamic_axes={"tile": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=ONNX_OPSET)
