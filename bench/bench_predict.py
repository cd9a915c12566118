"""Seconds per case and peak RSS of prediction: ours vs the reference nnU-Net, same model, same inputs, one run.

    python bench/bench_predict.py --ref-venv /work/ref/.venv-ref [--hippocampus /path/Task04_Hippocampus] \
        [--cases 20] [--large 160,192,192] [--device cpu] [-npp 2 -nps 2] [--disable_tta] [--workdir DIR]

Set-up (cached in the work folder): the MSD Hippocampus dataset is converted and planned with the reference
(3d_fullres), and a model folder in nnU-Net's format is written with seeded random weights for that plan (the
time of a forward pass does not depend on the weights; the comparison of the outputs is still meaningful because
both implementations get the same weights). Both ``nnUNetv2_predict_from_modelfolder`` (reference) and
``nnUNet_predict_from_modelfolder`` (ours) then predict the first N training images. ``--large`` adds one
generated CT-like volume of the given shape (z,y,x). Peak RSS is summed over the process tree (sampled every
50 ms). The script prints wall time per case, peak RSS, both ratios and the voxel agreement of the outputs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_preprocess import run_measured  # noqa: E402  (process-tree RSS sampling shared with that benchmark)

DATASET_ID = 4


def prepare_model(workdir: Path, ref_venv: Path, hippocampus: Path, env: dict) -> Path:
    """Convert + plan Hippocampus with the reference; write a random-weight model folder. Cached."""
    model = workdir / "model"
    if (model / "fold_0" / "checkpoint_final.pth").is_file():
        return model
    raw = Path(env["nnUNet_raw"])
    if not any(raw.glob(f"Dataset{DATASET_ID:03d}_*")):
        src = workdir / "Task04_Hippocampus"  # the reference's converter insists on an imagesTs folder
        src.mkdir(exist_ok=True)
        for item in ("imagesTr", "labelsTr", "dataset.json"):
            if not (src / item).exists():
                (src / item).symlink_to(hippocampus.resolve() / item)
        (src / "imagesTs").mkdir(exist_ok=True)
        subprocess.run([f"{ref_venv}/bin/nnUNetv2_convert_MSD_dataset", "-i", str(src),
                        "-overwrite_id", str(DATASET_ID)], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([f"{ref_venv}/bin/nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres",
                    "-npfp", "2", "--no_pp"], env=env, check=True, stdout=subprocess.DEVNULL)
    import torch

    from nnunet.inference.predictor import build_network_from_architecture
    from nnunet.planning.plans import Plans

    pre = next(Path(env["nnUNet_preprocessed"]).glob(f"Dataset{DATASET_ID:03d}_*"))
    plans = Plans.load(pre / "nnUNetPlans.json")
    dataset_json = json.loads((pre / "dataset.json").read_text())
    config = plans.configuration("3d_fullres")
    torch.manual_seed(0)
    network = build_network_from_architecture(config.architecture, len(dataset_json["channel_names"]),
                                              plans.label_manager(dataset_json).num_segmentation_heads)
    (model / "fold_0").mkdir(parents=True, exist_ok=True)
    shutil.copy(pre / "nnUNetPlans.json", model / "plans.json")
    shutil.copy(pre / "dataset.json", model / "dataset.json")
    torch.save({"network_weights": network.state_dict(), "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": "3d_fullres"}, "inference_allowed_mirroring_axes": (0, 1, 2)},
               model / "fold_0" / "checkpoint_final.pth")
    return model


def prepare_inputs(workdir: Path, raw: Path, cases: int, large: list[int] | None) -> Path:
    images = workdir / f"inputs_{cases}{'_large' if large else ''}"
    if images.is_dir():
        return images
    images.mkdir(parents=True)
    source = next(raw.glob(f"Dataset{DATASET_ID:03d}_*")) / "imagesTr"
    for f in sorted(source.glob("*_0000.nii.gz"))[:cases]:
        shutil.copy(f, images / f.name)
    if large:
        import SimpleITK as sitk

        rng = np.random.default_rng(0)
        z, y, x = large
        volume = rng.normal(60, 15, (z, y, x)).astype(np.float32)
        zz, yy, xx = np.ogrid[:z, :y, :x]
        body = ((yy - y / 2) ** 2 / (0.4 * y) ** 2 + (xx - x / 2) ** 2 / (0.45 * x) ** 2) < 1
        volume[:, ~body[0]] = 0
        img = sitk.GetImageFromArray(volume)
        img.SetSpacing((0.8, 0.8, 1.2))
        sitk.WriteImage(img, str(images / "large_ct_0000.nii.gz"), True)
    return images


def agreement(folder_a: Path, folder_b: Path) -> str:
    import SimpleITK as sitk

    rows = []
    for a in sorted(folder_a.glob("*.nii.gz")):
        seg_a = sitk.GetArrayFromImage(sitk.ReadImage(str(a)))
        seg_b = sitk.GetArrayFromImage(sitk.ReadImage(str(folder_b / a.name)))
        rows.append((seg_a == seg_b).mean())
    return f"voxel agreement over {len(rows)} cases: mean {np.mean(rows):.5f}, min {np.min(rows):.5f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref-venv", default="/work/ref/.venv-ref")
    parser.add_argument("--hippocampus", default="/work/shared/datasets/Task04_Hippocampus")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--large", default=None, help="also predict a generated volume of this shape, e.g. 160,192,192")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-npp", type=int, default=2)
    parser.add_argument("-nps", type=int, default=2)
    parser.add_argument("--disable_tta", action="store_true")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs per implementation, alternating; the fastest counts (the machine may be shared)")
    parser.add_argument("--workdir", default="/tmp/bench_predict")
    args = parser.parse_args()

    workdir = Path(args.workdir)
    env = dict(os.environ, nnUNet_raw=str(workdir / "raw"), nnUNet_preprocessed=str(workdir / "pre"),
               nnUNet_results=str(workdir / "res"))
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    model = prepare_model(workdir, Path(args.ref_venv), Path(args.hippocampus), env)
    large = [int(s) for s in args.large.split(",")] if args.large else None
    images = prepare_inputs(workdir, Path(env["nnUNet_raw"]), args.cases, large)
    n = len(list(images.glob("*_0000.nii.gz")))
    common = ["-i", str(images), "-m", str(model), "-f", "0", "-device", args.device, "-npp", str(args.npp),
              "-nps", str(args.nps), "--disable_progress_bar"] + (["--disable_tta"] if args.disable_tta else [])
    commands = {
        "reference": [f"{args.ref_venv}/bin/nnUNetv2_predict_from_modelfolder"],
        "ours": [sys.executable, "-c", "import sys; from nnunet.cli.predict import predict_from_modelfolder_main as m; "
                                       "sys.exit(m(sys.argv[1:]))"],
    }
    results: dict[str, tuple[float, float, float]] = {}
    for repeat in range(args.repeats):
        for name, cmd in commands.items():
            out = workdir / f"out_{name}"
            shutil.rmtree(out, ignore_errors=True)
            run_env = dict(env, PYTHONPATH=str(REPO)) if name == "ours" else env
            wall, cpu, rss = run_measured(cmd + common + ["-o", str(out)], run_env)
            print(f"  run {repeat + 1} {name}: {wall:.1f} s, {cpu:.1f} s CPU, peak RSS {rss:.2f} GB", flush=True)
            best = results.get(name, (float("inf"), float("inf"), 0.0))
            results[name] = (min(best[0], wall), min(best[1], cpu), max(best[2], rss))
    for name, (wall, cpu, rss) in results.items():
        print(f"{name:>10}: {wall:7.1f} s wall ({wall / n:.2f} s/case), {cpu:.1f} s CPU for {n} cases, "
              f"peak RSS {rss:.2f} GB")
    (rw, rc, rr), (ow, oc, orr) = results["reference"], results["ours"]
    print(f"{'ratio':>10}: wall ours/ref {ow / rw:.2f}x, CPU ours/ref {oc / rc:.2f}x, peak RSS ours/ref {orr / rr:.2f}x")
    print(agreement(workdir / "out_reference", workdir / "out_ours"))


if __name__ == "__main__":
    main()
