"""Prediction speed and memory: ours vs the reference nnU-Net 2.8.1, same model, same inputs, one run.

    # (a) Hippocampus cases, seconds and peak RSS (add --backend openvino for the fast CPU backend); several
    #     job sizes in one run (--cases 3,10) end with a table of the ratios; --cold deletes our cached ONNX
    #     export before each of our runs, so they pay for the export as a first run does
    python bench/bench_predict.py --cases 3,10 [--backend openvino] [--cold] [--disable_tta] [-npp 2 -nps 2]
    # (b) one generated CT-like volume of Z,Y,X voxels with a small network: peak RSS of the process tree
    python bench/bench_predict.py --large 768,768,768 [--rss-limit-gb 14]
    # (c) export only: 3-class logits -> a Z,Y,X segmentation (with resampling)
    python bench/bench_predict.py --export 600,512,512

Set-up (cached in the work folder, default /tmp/inference_bench): the MSD Hippocampus dataset is converted and
planned with the reference (3d_fullres), and a model folder in nnU-Net's format is written with seeded random
weights for that plan (a forward pass costs the same whatever the weights; both implementations get the same
weights, so the outputs can be compared). ``--large`` uses a small network of the same family (3 stages, 4-16
features, patch 128^3, 1 mm spacing, the volume's own spacing, so preprocessing does not resample). Runs
alternate ours / reference, ``--repeats`` times; the fastest counts. Peak RSS is summed over the process tree
(sampled every 20 ms). A run whose tree exceeds ``--rss-limit-gb`` is killed and reported as such (this
machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_preprocess import _tree_rss_kb  # noqa: E402  (process-tree RSS, shared with that benchmark)

DATASET_ID = 4
# the console command's own entry point (as nnUNetv2_predict_from_modelfolder runs it), from this checkout
OURS = [sys.executable, "-c", "from nnunet.cli.predict import predict_from_modelfolder_console as m; m()"]


def run_limited(cmd: list[str], env: dict, rss_limit_gb: float) -> tuple[float, float, float, str]:
    """Run ``cmd``: (wall s, CPU s of the tree, peak tree RSS GiB, status); killed above ``rss_limit_gb``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    peak, status_text = 0, "ok"
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _tree_rss_kb(proc.pid))
        if peak > rss_limit_gb * 1024 ** 2 and status_text == "ok":
            status_text = f"killed: process tree above {rss_limit_gb:.0f} GB after {time.perf_counter() - start:.0f} s"
            os.killpg(proc.pid, 9)
        time.sleep(0.02)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    if code and status_text == "ok":
        last = [line for line in err.splitlines() if line.strip()][-1:] or ["?"]
        status_text = f"failed (exit {code}): {last[0][:200]}"
    return wall, usage.ru_utime + usage.ru_stime, peak / 1024 ** 2, status_text


# ----------------------------------------------------------------------------------------------- models

def hippocampus_plans(workdir: Path, ref_venv: Path, hippocampus: Path, env: dict) -> Path:
    """Convert + plan Hippocampus with the reference (cached); return the preprocessed dataset folder."""
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
    pre = list(Path(env["nnUNet_preprocessed"]).glob(f"Dataset{DATASET_ID:03d}_*"))
    if not pre or not (pre[0] / "nnUNetPlans.json").is_file():
        subprocess.run([f"{ref_venv}/bin/nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres",
                        "-npfp", "2", "--no_pp"], env=env, check=True, stdout=subprocess.DEVNULL)
        pre = list(Path(env["nnUNet_preprocessed"]).glob(f"Dataset{DATASET_ID:03d}_*"))
    return pre[0]


def small_network_plans(plans: dict) -> dict:
    """The Hippocampus plan with a small 3-stage network, patch 128^3, 1 mm spacing (for --large)."""
    plans = json.loads(json.dumps(plans))
    config = plans["configurations"]["3d_fullres"]
    config.update(patch_size=[128, 128, 128], spacing=[1.0, 1.0, 1.0], batch_size=2)
    arch = config["architecture"]["arch_kwargs"]
    arch.update(n_stages=3, features_per_stage=[4, 8, 16], kernel_sizes=[[3, 3, 3]] * 3,
                strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], n_conv_per_stage=[2, 2, 2],
                n_conv_per_stage_decoder=[2, 2])
    return plans


def write_model(model: Path, plans: dict, dataset_json: dict) -> Path:
    """A model folder (fold 0) in nnU-Net's format with seeded random weights for ``plans`` (cached)."""
    if (model / "fold_0" / "checkpoint_final.pth").is_file():
        return model
    import torch

    from nnunet.networks.from_plans import build_network_for_configuration
    from nnunet.planning.plans import Plans

    config = Plans(plans).configuration("3d_fullres")
    torch.manual_seed(0)
    network = build_network_for_configuration(config, len(dataset_json["channel_names"]),
                                              Plans(plans).label_manager(dataset_json).num_segmentation_heads,
                                              enable_deep_supervision=False)
    (model / "fold_0").mkdir(parents=True, exist_ok=True)
    (model / "plans.json").write_text(json.dumps(plans, indent=2))
    (model / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    torch.save({"network_weights": network.state_dict(), "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": "3d_fullres"}, "inference_allowed_mirroring_axes": (0, 1, 2)},
               model / "fold_0" / "checkpoint_final.pth")
    return model


# ----------------------------------------------------------------------------------------------- inputs

def hippocampus_inputs(workdir: Path, raw: Path, cases: int) -> Path:
    images = workdir / f"inputs_{cases}"
    if not images.is_dir():
        images.mkdir(parents=True)
        source = next(raw.glob(f"Dataset{DATASET_ID:03d}_*")) / "imagesTr"
        for f in sorted(source.glob("*_0000.nii.gz"))[:cases]:
            shutil.copy(f, images / f.name)
    return images


def ct_like_volume(shape: list[int], seed: int = 0) -> np.ndarray:
    """float32 (z, y, x): an elliptic body with a few 'organs' in noise, air (-1000) around it."""
    rng = np.random.default_rng(seed)
    z, y, x = shape
    volume = np.full(shape, -1000.0, dtype=np.float32)
    yy, xx = np.ogrid[:y, :x]
    body = ((yy - y / 2) ** 2 / (0.4 * y) ** 2 + (xx - x / 2) ** 2 / (0.45 * x) ** 2) < 1
    for k in range(z):  # slice by slice: no full-size temporaries
        plane = rng.normal(40, 20, (y, x)).astype(np.float32)
        organ = ((yy - y * 0.45) ** 2 + (xx - x * (0.35 + 0.3 * k / z)) ** 2) < (0.08 * min(x, y)) ** 2
        plane[organ] += 150
        volume[k][body] = plane[body]
    return volume


def large_inputs(workdir: Path, shape: list[int]) -> Path:
    images = workdir / f"inputs_large_{'x'.join(map(str, shape))}"
    if not images.is_dir():
        import SimpleITK as sitk

        images.mkdir(parents=True)
        image = sitk.GetImageFromArray(ct_like_volume(shape))
        image.SetSpacing((1.0, 1.0, 1.0))
        sitk.WriteImage(image, str(images / "large_ct_0000.nii.gz"), True)
    return images


def agreement(folder_a: Path, folder_b: Path) -> str:
    import SimpleITK as sitk

    rows = []
    for a in sorted(folder_a.glob("*.nii.gz")):
        if (folder_b / a.name).is_file():
            rows.append((sitk.GetArrayFromImage(sitk.ReadImage(str(a))) ==
                         sitk.GetArrayFromImage(sitk.ReadImage(str(folder_b / a.name)))).mean())
    if not rows:
        return "voxel agreement: no common outputs"
    return f"voxel agreement over {len(rows)} cases: mean {np.mean(rows):.5f}, min {np.min(rows):.5f}"


# ----------------------------------------------------------------------------------------------- runs

def drop_cached_exports(model: Path) -> None:
    """Delete our cached ONNX exports, so that the next run of ours exports the network again (a first run)."""
    for cache in model.glob("fold_*/.nnunet_cache"):
        shutil.rmtree(cache)


def compare_commands(args, workdir: Path, env: dict, images: Path, model: Path,
                     extra: list[str]) -> dict[str, tuple[float, float, float, str]]:
    """Run both implementations ``args.repeats`` times, alternating; print and return the best of each."""
    n = len(list(images.glob("*_0000.nii.gz")))
    common = ["-i", str(images), "-m", str(model), "-f", "0", "-device", args.device, "-npp", str(args.npp),
              "-nps", str(args.nps), "--disable_progress_bar"] + (["--disable_tta"] if args.disable_tta else [])
    commands = {"reference": [f"{args.ref_venv}/bin/nnUNetv2_predict_from_modelfolder"],
                "ours": OURS + ["-backend", args.backend] + extra}
    if args.only:
        commands = {args.only: commands[args.only]}
    results: dict[str, tuple[float, float, float, str]] = {}
    for repeat in range(args.repeats):
        for name, cmd in commands.items():
            out = workdir / f"out_{name}"
            shutil.rmtree(out, ignore_errors=True)
            run_env = dict(env, PYTHONPATH=str(REPO)) if name == "ours" else env
            if name == "ours" and args.cold:
                drop_cached_exports(model)
            wall, cpu, rss, status = run_limited(cmd + common + ["-o", str(out)], run_env, args.rss_limit_gb)
            print(f"  run {repeat + 1} {name}: {wall:.1f} s, {cpu:.1f} s CPU, peak RSS {rss:.2f} GB ({status})",
                  flush=True)
            best = results.get(name)
            if best is None or (status == "ok" and (best[3] != "ok" or wall < best[0])):
                results[name] = (wall, cpu, rss, status)
    for name, (wall, cpu, rss, status) in results.items():
        print(f"{name:>10}: {wall:7.1f} s wall ({wall / n:.2f} s/case), {cpu:.1f} s CPU for {n} case(s), peak RSS "
              f"{rss:.2f} GB ({status})")
    if len(results) < 2:
        return results
    (rw, rc, rr, rs), (ow, oc, orr, os_) = results["reference"], results["ours"]
    print(f"{'ratio':>10}: wall ours/ref {ow / rw:.2f}x, CPU ours/ref {oc / rc:.2f}x, peak RSS ours/ref "
          f"{orr / rr:.2f}x" + ("" if rs == "ok" else "  (the reference did not finish: see its status)"))
    print(agreement(workdir / "out_reference", workdir / "out_ours"))
    return results


def print_summary(rows: list[tuple[int, dict[str, tuple[float, float, float, str]]]], args) -> None:
    """One line per job size: wall seconds of both and their ratio (the report's rows)."""
    print(f"\nsummary (backend {args.backend}{', cold: export included' if args.cold else ''}, "
          f"{'no TTA' if args.disable_tta else 'TTA'}, -npp {args.npp} -nps {args.nps}, best of {args.repeats}):")
    print(f"{'cases':>6} {'reference s':>12} {'ours s':>8} {'wall ratio':>11}")
    for cases, results in rows:
        if len(results) == 2:
            ref, ours = results["reference"][0], results["ours"][0]
            print(f"{cases:>6} {ref:>12.1f} {ours:>8.1f} {ours / ref:>10.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref-venv", default="/work/ref/.venv-ref")
    parser.add_argument("--hippocampus", default="/work/shared/datasets/Task04_Hippocampus")
    parser.add_argument("--cases", default="10", help="number of cases, or several: 3,10")
    parser.add_argument("--cold", action="store_true",
                        help="delete our cached ONNX export before each of our runs (measures a first run)")
    parser.add_argument("--large", default=None, help="Z,Y,X of a generated CT-like volume, e.g. 768,768,768")
    parser.add_argument("--export", default=None, help="Z,Y,X of an export-only benchmark, e.g. 600,512,512")
    parser.add_argument("--backend", default="torch", help="our backend: torch, openvino or onnxruntime")
    parser.add_argument("--max_ram_gb", default=None, help="passed to our command")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-npp", type=int, default=2)
    parser.add_argument("-nps", type=int, default=2)
    parser.add_argument("--disable_tta", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", choices=("ours", "reference"), default=None,
                        help="run one implementation only (e.g. when the other one takes too long)")
    parser.add_argument("--rss-limit-gb", type=float, default=14.0)
    parser.add_argument("--workdir", default="/tmp/inference_bench")
    args = parser.parse_args()

    workdir = Path(args.workdir)
    env = dict(os.environ, nnUNet_raw=str(workdir / "raw"), nnUNet_preprocessed=str(workdir / "pre"),
               nnUNet_results=str(workdir / "res"))
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    pre = hippocampus_plans(workdir, Path(args.ref_venv), Path(args.hippocampus), env)
    plans = json.loads((pre / "nnUNetPlans.json").read_text())
    dataset_json = json.loads((pre / "dataset.json").read_text())
    extra = ["--max_ram_gb", args.max_ram_gb] if args.max_ram_gb else []
    if args.export:
        from bench_export import bench_export

        bench_export(args, workdir, [int(s) for s in args.export.split(",")], plans, dataset_json)
    elif args.large:
        model = write_model(workdir / "model_small_net", small_network_plans(plans), dataset_json)
        compare_commands(args, workdir, env, large_inputs(workdir, [int(s) for s in args.large.split(",")]), model,
                         extra)
    else:
        model = write_model(workdir / "model", plans, dataset_json)
        rows = []
        for cases in [int(c) for c in args.cases.split(",")]:
            print(f"{cases} case(s):", flush=True)
            images = hippocampus_inputs(workdir, Path(env["nnUNet_raw"]), cases)
            rows.append((cases, compare_commands(args, workdir, env, images, model, extra)))
        print_summary(rows, args)


if __name__ == "__main__":
    main()
