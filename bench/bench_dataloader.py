"""Training data pipeline benchmark: how fast ours and the reference nnU-Net produce augmented batches.

    python bench/bench_dataloader.py --ref-venv /work/ref/.venv-ref \
        --preprocessed /tmp/bench_train/preprocessed [--dataset 4] [--configuration 3d_fullres] [--batches 40] \
        [--workers 0 2] [--repeat 2]

Both sides build their trainer for fold 0 of the same preprocessed dataset (``bench_train.py`` leaves one in
``/tmp/bench_train/preprocessed``), call ``get_dataloaders()`` exactly as training does and time ``next()`` on
the training loader: after 5 warm-up batches, ``--batches`` batches are drawn. With ``--workers 0`` everything
runs in one process, so the figure is the CPU cost of one batch (loading, cropping, augmentation, deep-supervision
targets). With workers it is the throughput a GPU would see. Each side runs in its own interpreter, alternating;
the best of ``--repeat`` runs is kept.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SNIPPET = """
import json, os, sys, time
import torch
torch.set_num_threads(1)
dataset, configuration, batches, stages = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[5] == "1"
if sys.argv[4] == "ref":
    from nnunetv2.run.run_training import get_trainer_from_args
else:
    from nnunet.training.run import get_trainer_from_args
trainer = get_trainer_from_args(dataset, configuration, 0, "nnUNetTrainer", "nnUNetPlans", device=torch.device("cpu"))
trainer.initialize()
import random, numpy
random.seed(0); numpy.random.seed(0); torch.manual_seed(0)  # the same draws in every run of a side
train, _ = trainer.get_dataloaders()
timings = {}


class Timed:
    # one stage of the per-sample pipeline, timed (process CPU time)
    def __init__(self, name, inner):
        self.name, self.inner = name, inner

    def __call__(self, **data):
        start = time.process_time()
        out = self.inner(**data)
        timings[self.name] = timings.get(self.name, 0.0) + time.process_time() - start
        return out


def stage_name(t):
    inner = getattr(t, "transform", t)  # RandomTransform wraps the transform it applies
    return type(inner).__name__


if stages:
    loader = getattr(train, "data_loader", None) or getattr(train, "loader")
    pipeline = loader.transforms
    # ComposeTransforms (bgv2) or our fused pipeline: both list their stages in .transforms
    seen = {}
    wrapped = []
    for t in pipeline.transforms:
        name = stage_name(t)
        seen[name] = seen.get(name, 0) + 1
        wrapped.append(Timed(name if seen[name] == 1 else f"{name}#{seen[name]}", t))
    pipeline.transforms = wrapped
    original = loader.generate_train_batch

    def timed_batch():
        start = time.process_time()
        out = original()
        timings["batch total"] = timings.get("batch total", 0.0) + time.process_time() - start
        return out
    loader.generate_train_batch = timed_batch
def workers_cpu_ms():
    # CPU of the augmentation workers (ours: .workers; batchgenerators' augmenter: ._processes), from /proc
    processes = getattr(train, "workers", None) or getattr(getattr(train, "augmenter", train), "_processes", [])
    total = 0
    for p in processes:
        fields = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return 1000 * total / os.sysconf("SC_CLK_TCK")


for _ in range(5):
    batch = next(train)
timings.clear()
start, cpu, workers_cpu = time.perf_counter(), time.process_time(), workers_cpu_ms()
for _ in range(batches):
    batch = next(train)
wall = time.perf_counter() - start
workers_cpu = workers_cpu_ms() - workers_cpu
shape = tuple(batch["data"].shape)
if stages:
    transforms_ms = sum(v for k, v in timings.items() if k != "batch total")
    timings["load, crop, collate"] = timings["batch total"] - transforms_ms
print("RESULT", json.dumps({"ms_per_batch": 1000 * wall / batches,
                            "main_cpu_ms_per_batch": 1000 * (time.process_time() - cpu) / batches,
                            "workers_cpu_ms_per_batch": workers_cpu / batches,
                            "batch_shape": shape,
                            "stages_ms": {k: 1000 * v / batches for k, v in timings.items()}}))
sys.stdout.flush()
os._exit(0)  # the caller kills the process group (augmentation workers included)
"""


def run_side(python: Path, side: str, args: argparse.Namespace, workers: int) -> dict:
    env = dict(os.environ, nnUNet_preprocessed=str(args.preprocessed), nnUNet_raw=str(args.preprocessed.parent / "raw"),
               nnUNet_results=str(args.preprocessed.parent / "results_dl"), nnUNet_n_proc_DA=str(workers),
               OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) if side == "ours" else "")
    if side == "ours":
        env.update(item.split("=", 1) for item in args.env)
    # own process group: background augmentation workers can outlive the script and would hold its stdout open
    proc = subprocess.Popen([str(python), "-c", _SNIPPET, str(args.dataset), args.configuration, str(args.batches),
                             side, "1" if args.stages else "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    raise SystemExit(f"{side} failed:\n{''.join(lines)[-2000:]}\n{proc.stderr.read()[-3000:]}")


def print_stages(best: dict[str, dict]) -> None:
    """Per-stage CPU ms per batch, side by side (stages either side lacks show as '-')."""
    names: list[str] = []
    for result in best.values():
        names += [n for n in result["stages_ms"] if n not in names]
    print(f"  {'stage':<44} {'reference':>10} {'ours':>10}")
    for name in names:
        cells = [best[side]["stages_ms"].get(name) for side in ("reference", "ours")]
        print(f"  {name:<44} " + " ".join(f"{c:10.1f}" if c is not None else f"{'-':>10}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref-venv", type=Path, default=Path("/work/ref/.venv-ref"))
    parser.add_argument("--preprocessed", type=Path, default=Path("/tmp/bench_train/preprocessed"))
    parser.add_argument("--dataset", default="4")
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--stages", action="store_true",
                        help="also time each stage of the per-sample pipeline (CPU ms per batch; workers 0 only)")
    parser.add_argument("--only", choices=["ours", "reference"], default=None)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE set for our side only (e.g. "
                        "nnUNet_augmentation_pipeline=bgv2)")
    args = parser.parse_args()
    sides = {"reference": (args.ref_venv / "bin" / "python", "ref"), "ours": (Path(sys.executable), "ours")}
    if args.only:
        sides = {args.only: sides[args.only]}
    for workers in args.workers:
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for name, (python, side) in sides.items():
                result = run_side(python, side, args, workers)
                print(f"  workers={workers} {name:>9}: {result['ms_per_batch']:7.1f} ms/batch "
                      f"(CPU: main process {result['main_cpu_ms_per_batch']:.1f} ms, workers "
                      f"{result['workers_cpu_ms_per_batch']:.1f} ms), batch {result['batch_shape']}",
                      flush=True)
                if name not in best or result["ms_per_batch"] < best[name]["ms_per_batch"]:
                    best[name] = result
        if len(best) == 2:
            ratio = best["ours"]["ms_per_batch"] / best["reference"]["ms_per_batch"]
            print(f"workers={workers}: reference {best['reference']['ms_per_batch']:.1f} ms/batch, ours "
                  f"{best['ours']['ms_per_batch']:.1f} ms/batch, ours/ref {ratio:.2f}x")
        if args.stages and workers == 0:
            print_stages({k: best.get(k, {"stages_ms": {}}) for k in ("reference", "ours")})


if __name__ == "__main__":
    main()
