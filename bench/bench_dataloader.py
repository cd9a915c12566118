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
dataset, configuration, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
if sys.argv[4] == "ref":
    from nnunetv2.run.run_training import get_trainer_from_args
else:
    from nnunet.training.run import get_trainer_from_args
trainer = get_trainer_from_args(dataset, configuration, 0, "nnUNetTrainer", "nnUNetPlans", device=torch.device("cpu"))
trainer.initialize()
train, _ = trainer.get_dataloaders()
for _ in range(5):
    batch = next(train)
start, cpu = time.perf_counter(), time.process_time()
for _ in range(batches):
    batch = next(train)
wall = time.perf_counter() - start
shape = tuple(batch["data"].shape)
print("RESULT", json.dumps({"ms_per_batch": 1000 * wall / batches,
                            "main_cpu_ms_per_batch": 1000 * (time.process_time() - cpu) / batches,
                            "batch_shape": shape}))
sys.stdout.flush()
os._exit(0)  # the caller kills the process group (augmentation workers included)
"""


def run_side(python: Path, side: str, args: argparse.Namespace, workers: int) -> dict:
    env = dict(os.environ, nnUNet_preprocessed=str(args.preprocessed), nnUNet_raw=str(args.preprocessed.parent / "raw"),
               nnUNet_results=str(args.preprocessed.parent / "results_dl"), nnUNet_n_proc_DA=str(workers),
               OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) if side == "ours" else "")
    # own process group: background augmentation workers can outlive the script and would hold its stdout open
    proc = subprocess.Popen([str(python), "-c", _SNIPPET, str(args.dataset), args.configuration, str(args.batches),
                             side], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref-venv", type=Path, default=Path("/work/ref/.venv-ref"))
    parser.add_argument("--preprocessed", type=Path, default=Path("/tmp/bench_train/preprocessed"))
    parser.add_argument("--dataset", default="4")
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sides = {"reference": (args.ref_venv / "bin" / "python", "ref"), "ours": (Path(sys.executable), "ours")}
    for workers in args.workers:
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for name, (python, side) in sides.items():
                result = run_side(python, side, args, workers)
                print(f"  workers={workers} {name:>9}: {result['ms_per_batch']:7.1f} ms/batch "
                      f"(main process CPU {result['main_cpu_ms_per_batch']:.1f} ms), batch {result['batch_shape']}",
                      flush=True)
                if name not in best or result["ms_per_batch"] < best[name]["ms_per_batch"]:
                    best[name] = result
        ratio = best["ours"]["ms_per_batch"] / best["reference"]["ms_per_batch"]
        print(f"workers={workers}: reference {best['reference']['ms_per_batch']:.1f} ms/batch, ours "
              f"{best['ours']['ms_per_batch']:.1f} ms/batch, ours/ref {ratio:.2f}x")


if __name__ == "__main__":
    main()
