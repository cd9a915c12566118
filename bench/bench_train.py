"""Training benchmark: does ours learn like nnU-Net 2.8.1? Both train MSD Task04_Hippocampus fold 0, alternating.

    flock /tmp/bench.lock python bench/bench_train.py [--configuration 2d] [--epochs 5] [--iterations 25] \
        [--val-iterations 5] [--batch-size 32] [--runs 2] [--device cpu] [--n-proc-da 2] \
        [--workdir /tmp/bench_train] [--only ours|ref]

The dataset is converted with the reference's MSD converter and planned + preprocessed once by the reference;
both implementations then train fold 0 of the same preprocessed data (same splits_final.json, same batch and
patch size from the plans unless ``--batch-size`` replaces the batch size on both sides) with a short schedule: a
trainer class with ``num_epochs`` / ``num_iterations_per_epoch`` / ``num_val_iterations_per_epoch`` set, given to
each side through ``nnUNet_extTrainer``. Runs alternate (ref, ours, ref, ours, ...) so that both see the same machine load.

Short runs differ by several Dice points from randomness alone (patches, augmentation, initialisation), so
compare the spread of the runs, not one curve. Reported: per run the per-epoch train/validation loss, pseudo
Dice and epoch time (parsed from the training logs), the final validation Dice (``validation/summary.json``) and
the wall time; then per side the mean, min and max of the final validation Dice.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS_BIN = Path(sys.executable).parent

_OURS_TRAINER = """
from nnunet.registry import TRAINERS
from nnunet.training.trainer import nnUNetTrainer


@TRAINERS.register
class BenchShortTrainer(nnUNetTrainer):
    num_epochs = {epochs}
    num_iterations_per_epoch = {iterations}
    num_val_iterations_per_epoch = {val_iterations}
    configuration_batch_size = {batch_size}
    save_every = 50  # as nnU-Net: no per-epoch checkpoint cost in the timings
"""

# the reference sets hyper-parameters in __init__, so the subclass has to as well
_REF_TRAINER = """
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class BenchShortTrainer(nnUNetTrainer):
    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = {epochs}
        self.num_iterations_per_epoch = {iterations}
        self.num_val_iterations_per_epoch = {val_iterations}
        if {batch_size} is not None:  # as nnU-Net's own nnUNet_Trainer_BS8 does it
            self.configuration_manager.configuration["batch_size"] = {batch_size}
"""


def hippocampus_raw(workdir: Path, source: Path, ref_venv: Path) -> Path:
    raw = workdir / "raw"
    if not (raw / "Dataset004_Hippocampus").is_dir():
        src = workdir / "Task04_Hippocampus"  # the reference's converter insists on imagesTs
        src.mkdir(parents=True, exist_ok=True)
        for item in ("imagesTr", "labelsTr", "dataset.json"):
            if not (src / item).exists():
                (src / item).symlink_to(source.resolve() / item)
        (src / "imagesTs").mkdir(exist_ok=True)
        raw.mkdir(exist_ok=True)
        subprocess.run([str(ref_venv / "bin" / "nnUNetv2_convert_MSD_dataset"), "-i", str(src)],
                       env=dict(os.environ, nnUNet_raw=str(raw)), check=True, stdout=subprocess.DEVNULL)
    return raw


def parse_log(fold: Path) -> list[dict]:
    """Per-epoch values from a training_log_*.txt (same line format on both sides)."""
    epochs: list[dict] = []
    for log in sorted(fold.glob("training_log_*.txt")):
        for line in log.read_text().splitlines():
            msg = line.split(": ", 1)[-1].strip()
            if m := re.match(r"Epoch (\d+)$", msg):
                epochs.append({"epoch": int(m.group(1))})
            elif epochs and (m := re.match(r"(train_loss|val_loss) (\S+)", msg)):
                epochs[-1][m.group(1)] = float(m.group(2))
            elif epochs and msg.startswith("Pseudo dice"):
                text = msg.split("dice", 1)[1].replace("np.float32(", "(")  # the reference logs numpy scalars
                values = [float(v) for v in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|nan", text)]
                epochs[-1]["pseudo_dice"] = values
            elif epochs and (m := re.match(r"Epoch time: (\S+) s", msg)):
                epochs[-1]["time"] = float(m.group(1))
    return epochs


def run_side(name: str, cmd: list[str], env: dict, fold: Path) -> dict:
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        print(res.stdout[-3000:], res.stderr[-3000:])
        raise SystemExit(f"{name} training failed")
    summary = fold / "validation" / "summary.json"
    dice = json.loads(summary.read_text())["foreground_mean"]["Dice"] if summary.is_file() else None
    per_class = ({k: v["Dice"] for k, v in json.loads(summary.read_text())["mean"].items()}
                 if summary.is_file() else {})
    return {"wall": wall, "epochs": parse_log(fold), "val_dice": dice, "val_dice_per_class": per_class}


def prepare(args) -> tuple[Path, Path]:
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    raw = hippocampus_raw(work, args.hippocampus, args.ref_venv)
    pre = work / "preprocessed"
    if not (pre / "Dataset004_Hippocampus" / "nnUNetPlans.json").is_file():
        subprocess.run([str(args.ref_venv / "bin" / "nnUNetv2_plan_and_preprocess"), "-d", "4", "-c",
                        args.configuration, "-np", "2"],
                       env=dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre)), check=True,
                       stdout=subprocess.DEVNULL)
    return raw, pre


def train_once(side: str, run: int, args, raw: Path, pre: Path) -> dict:
    fmt = {"epochs": args.epochs, "iterations": args.iterations, "val_iterations": args.val_iterations,
           "batch_size": args.batch_size}
    ext = args.workdir / f"ext_{side}"
    ext.mkdir(exist_ok=True)
    (ext / "bench_short_trainer.py").write_text((_REF_TRAINER if side == "ref" else _OURS_TRAINER).format(**fmt))
    pipeline = {"ours-bgv2": "bgv2", "ours": "fused"}.get(side)
    res_root = args.workdir / f"results_{side}_{run}"
    shutil.rmtree(res_root, ignore_errors=True)
    res_root.mkdir()
    env = dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre), nnUNet_results=str(res_root),
               nnUNet_extTrainer=str(ext), nnUNet_n_proc_DA=args.n_proc_da, nnUNet_def_n_proc="2",
               PYTHONPATH=str(REPO))
    if pipeline is not None:
        env["nnUNet_augmentation_pipeline"] = pipeline
    if side == "ref":
        cmd = [str(args.ref_venv / "bin" / "nnUNetv2_train")]
    else:
        cmd = [str(OURS_BIN / "python"), "-c", "import sys; from nnunet.cli.train import train_main; "
               "sys.exit(train_main(sys.argv[1:]))"]
    cmd += ["4", args.configuration, "0", "-tr", "BenchShortTrainer", "-device", args.device]
    fold = res_root / "Dataset004_Hippocampus" / f"BenchShortTrainer__nnUNetPlans__{args.configuration}" / "fold_0"
    result = run_side(f"{side} run {run}", cmd, env, fold)
    print(f"[{side} run {run}] final validation Dice {result['val_dice']} {result['val_dice_per_class']}, "
          f"wall {result['wall']:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    return result


def report(results: dict[str, list[dict]], args) -> None:
    print(f"\nTask04_Hippocampus {args.configuration} fold 0, {args.epochs} epochs x {args.iterations} iterations "
          f"(+{args.val_iterations} val), batch size {args.batch_size or 'from the plans'}, device {args.device}, "
          f"nnUNet_n_proc_DA={args.n_proc_da}, "
          f"{args.runs} run(s) per side")
    for side, runs in results.items():
        for i, r in enumerate(runs):
            print(f"\n{side} run {i}: final validation Dice {r['val_dice']} {r['val_dice_per_class']}, "
                  f"wall {r['wall']:.0f} s")
            for ep in r["epochs"]:
                dice = ",".join(f"{d:.3f}" for d in ep.get("pseudo_dice", []))
                print(f"  epoch {ep['epoch']}: loss tr {ep.get('train_loss', float('nan')):.4f} val "
                      f"{ep.get('val_loss', float('nan')):.4f}, pseudo dice {dice}, {ep.get('time', float('nan')):.1f} s")
    print()
    for side, runs in results.items():
        dice = [r["val_dice"] for r in runs if r["val_dice"] is not None]
        if dice:
            print(f"{side}: final validation Dice mean {statistics.mean(dice):.4f}, min {min(dice):.4f}, "
                  f"max {max(dice):.4f} over {len(dice)} run(s): {', '.join(f'{d:.4f}' for d in dice)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref-venv", type=Path, default=Path("/work/ref/.venv-ref"))
    parser.add_argument("--hippocampus", type=Path, default=Path("/work/shared/datasets/Task04_Hippocampus"))
    parser.add_argument("--configuration", default="2d")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--val-iterations", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2, help="runs per side, alternating ref/ours")
    parser.add_argument("--batch-size", type=int, default=None, help="replaces the plans' batch size on both sides")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-proc-da", default="2")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_train"))
    parser.add_argument("--only", choices=["ours", "ref"], default=None)
    parser.add_argument("--sides", nargs="+", choices=["ref", "ours", "ours-bgv2"], default=None,
                        help="what to train, alternating (ours-bgv2: ours with nnU-Net 2.8.1's augmentation "
                             "pipeline); default ref and ours")
    args = parser.parse_args()
    raw, pre = prepare(args)
    sides = args.sides or [s for s in ("ref", "ours") if args.only in (None, s)]
    results: dict[str, list[dict]] = {s: [] for s in sides}
    for run in range(args.runs):
        for side in sides:
            results[side].append(train_once(side, run, args, raw, pre))
    report(results, args)


if __name__ == "__main__":
    main()
