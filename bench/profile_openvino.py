"""Where an OpenVINO forward pass spends its time: the layer types, and each convolution's GFLOP/s.

    python bench/profile_openvino.py MODEL_FOLDER [--fold 0] [--batch 8] [--threads 2] [--repeats 5]

It compiles the fold's cached ONNX export (``fold_X/.nnunet_cache/*.onnx``, written by the first prediction with
``-backend openvino``) with our runner's settings (``openvino_config``), runs a batch of random tiles of the export's
patch size (8 = one tile with all 3-D mirrors), and prints the median time per batch, OpenVINO's per-layer
counters summed by type, and the arithmetic rate of every convolution. Convolutions near the machine's float32
peak mean the forward pass cannot get faster without another algorithm or precision: the floor of a job is then
its number of tile batches times the median.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nnunet.inference.runners import cached_exports, openvino_config  # noqa: E402


def cached_export(model_folder: Path, fold: str, checkpoint: str) -> Path:
    found = cached_exports(model_folder / f"fold_{fold}" / checkpoint)
    if not found:
        raise SystemExit(f"{model_folder}/fold_{fold}: no cached export of {checkpoint}; predict once with "
                         f"-backend openvino")
    return found[-1]


def conv_flops(node, kind: str) -> float:
    """Multiply-adds x 2 of a (transposed) convolution, from its input, weight and output shapes."""
    data, weight = (node.input(i).get_partial_shape().to_shape() for i in range(2))
    kernel = int(np.prod(weight[2:]))
    if kind == "ConvolutionBackpropData":  # every input voxel scatters one kernel
        return 2.0 * data[0] * weight[0] * weight[1] * kernel * int(np.prod(data[2:]))
    out = node.get_output_partial_shape(0).to_shape()
    return 2.0 * out[0] * weight[0] * weight[1] * kernel * int(np.prod(out[2:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_folder", type=Path)
    parser.add_argument("--fold", default="0")
    parser.add_argument("--checkpoint", default="checkpoint_final.pth")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(cached_export(args.model_folder, args.fold, args.checkpoint)))
    tile = [d.get_length() for d in list(model.inputs[0].get_partial_shape())[1:]]
    compiled = core.compile_model(model, "CPU", dict(openvino_config(args.threads), PERF_COUNT=True))
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).random((args.batch, *tile), dtype=np.float32)
    request.infer({0: x})  # the first call allocates
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        request.infer({0: x})
        times.append(time.perf_counter() - start)
    print(f"batch {args.batch} x {tile}, {args.threads} threads: median {statistics.median(times):.3f} s "
          f"(runs {', '.join(f'{t:.3f}' for t in times)})")

    counters = request.profiling_info  # of the last run
    by_type: collections.Counter = collections.Counter()
    for entry in counters:
        by_type[entry.node_type] += entry.real_time.total_seconds()
    total = sum(by_type.values())
    for kind, seconds in by_type.most_common(8):
        print(f"  {kind:<26} {seconds * 1000:8.1f} ms  {100 * seconds / total:5.1f} %")

    nodes = {op.get_friendly_name(): op for op in compiled.get_runtime_model().get_ops()}
    flops = seconds_conv = 0.0
    print("convolutions (output shape, GFLOP, GFLOP/s):")
    for entry in counters:
        node = nodes.get(entry.node_name)
        seconds = entry.real_time.total_seconds()
        if node is None or not entry.node_type.startswith("Convolution") or seconds == 0:
            continue
        work = conv_flops(node, entry.node_type)
        flops, seconds_conv = flops + work, seconds_conv + seconds
        print(f"  {str(node.get_output_partial_shape(0)):<22} {work / 1e9:7.1f} {work / seconds / 1e9:7.0f}")
    print(f"all convolutions: {flops / 1e9:.0f} GFLOP in {seconds_conv * 1000:.0f} ms, "
          f"{flops / seconds_conv / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
