"""Training benchmark: ours vs the reference nnU-Net on MSD Task04_Hippocampus, side by side.

    python bench/bench_train.py --ref-venv /work/ref/.venv-ref --hippocampus /path/Task04_Hippocampus \
        [--configuration 3d_fullres] [--epochs 3] [--iterations 30] [--val-iterations 10] [--device cpu] \
        [--n-proc-da 2] [--workdir /tmp/bench_train] [--only ours|ref]

The dataset is converted with the reference's MSD converter and planned + preprocessed once by the reference;
both implementations then train fold 0 of the same preprocessed data (same splits_final.json) with a short
schedule (a trainer class with ``num_epochs``/``num_iterations_per_epoch``/``num_val_iterations_per_epoch``
set, given to each side through ``nnUNet_extTrainer``), one after the other. Reported per epoch: train loss,
validation loss, pseudo Dice and epoch time of both, parsed from their training logs; then the fastest epoch
and the final validation Dice (``validation/summary.json``) of both.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
    logs = sorted(fold.glob("training_log_*.txt"))
    epochs: list[dict] = []
    for log in logs:
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
    return {"wall": wall, "epochs": parse_log(fold), "val_dice": dice}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref-venv", type=Path, default=Path("/work/ref/.venv-ref"))
    parser.add_argument("--hippocampus", type=Path, default=Path("/work/shared/datasets/Task04_Hippocampus"))
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--val-iterations", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-proc-da", default="2")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_train"))
    parser.add_argument("--only", choices=["ours", "ref"], default=None)
    args = parser.parse_args()

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    raw = hippocampus_raw(work, args.hippocampus, args.ref_venv)
    pre = work / "preprocessed"
    if not (pre / "Dataset004_Hippocampus" / "nnUNetPlans.json").is_file():
        subprocess.run([str(args.ref_venv / "bin" / "nnUNetv2_plan_and_preprocess"), "-d", "4", "-c",
                        args.configuration, "-np", "2"],
                       env=dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre)), check=True,
                       stdout=subprocess.DEVNULL)
    fmt = {"epochs": args.epochs, "iterations": args.iterations, "val_iterations": args.val_iterations}
    results = {}
    for side in ("ref", "ours"):
        if args.only and side != args.only:
            continue
        ext = work / f"ext_{side}"
        ext.mkdir(exist_ok=True)
        (ext / "bench_short_trainer.py").write_text((_REF_TRAINER if side == "ref" else _OURS_TRAINER).format(**fmt))
        res_root = work / f"results_{side}"
        shutil.rmtree(res_root, ignore_errors=True)
        res_root.mkdir()
        env = dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre), nnUNet_results=str(res_root),
                   nnUNet_extTrainer=str(ext), nnUNet_n_proc_DA=args.n_proc_da, nnUNet_def_n_proc="2",
                   PYTHONPATH=str(REPO))
        if side == "ref":
            cmd = [str(args.ref_venv / "bin" / "nnUNetv2_train")]
        else:
            cmd = [str(OURS_BIN / "python"), "-c", "import sys; from nnunet.cli.train import train_main; "
                   "sys.exit(train_main(sys.argv[1:]))"]
        cmd += ["4", args.configuration, "0", "-tr", "BenchShortTrainer", "-device", args.device]
        fold = res_root / "Dataset004_Hippocampus" / f"BenchShortTrainer__nnUNetPlans__{args.configuration}" / "fold_0"
        results[side] = run_side(side, cmd, env, fold)

    print(f"\nTask04_Hippocampus {args.configuration} fold 0, {args.epochs} epochs x {args.iterations} iterations "
          f"(+{args.val_iterations} val), device {args.device}, nnUNet_n_proc_DA={args.n_proc_da}")
    header = f"{'epoch':>5} | " + " | ".join(f"{s + ' loss tr/val':>20} {s + ' pseudo dice':>22} {s + ' s':>8}"
                                              for s in results)
    print(header)
    for e in range(args.epochs):
        row = f"{e:>5} | "
        cells = []
        for side, r in results.items():
            ep = next((x for x in r["epochs"] if x["epoch"] == e), {})
            dice = ",".join(f"{d:.3f}" for d in ep.get("pseudo_dice", []))
            cells.append(f"{ep.get('train_loss', float('nan')):>9.4f}/{ep.get('val_loss', float('nan')):<10.4f} "
                         f"{dice:>22} {ep.get('time', float('nan')):>8.1f}")
        print(row + " | ".join(cells))
    for side, r in results.items():
        times = [x["time"] for x in r["epochs"] if "time" in x]
        print(f"{side}: fastest epoch {min(times):.1f} s, total wall {r['wall']:.0f} s, "
              f"final validation mean Dice {r['val_dice']}")


if __name__ == "__main__":
    main()
