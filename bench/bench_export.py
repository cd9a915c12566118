"""Export only (logits at network resolution -> segmentation file in the original geometry), for bench_predict.py.

The same float16 logits (3 classes, smooth, cached as .npy), the same properties and plans go through
nnU-Net 2.8.1's ``export_prediction_from_logits``, ours (in memory) and our slab export (the logits read from a
memory map in slabs of 64 rows, as the slab sliding window hands them over). The network runs at the plans'
1 mm spacing; the original image has 1.25 x 0.8 x 0.8 mm, so the export resamples 750 x 410 x 410 -> 600 x 512 x
512 (for --export 600,512,512). Each variant is a fresh process; the time of the export call is measured inside
it, the peak RSS over the process.
"""
from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np

from bench_predict import REPO, run_limited

ORIGINAL_SPACING = (1.25, 0.8, 0.8)  # z, y, x (reader axis order); the plans' 3d_fullres runs at 1 mm

SCRIPTS = {
    "reference": """
import sys, time, json, pickle, numpy as np
from nnunetv2.inference.export_prediction import export_prediction_from_logits
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
logits, props = np.load(sys.argv[1]), pickle.load(open(sys.argv[2], "rb"))
plans = PlansManager(sys.argv[3])
start = time.perf_counter()
export_prediction_from_logits(logits, props, plans.get_configuration("3d_fullres"), plans, json.load(open(sys.argv[4])),
                              sys.argv[5], False)
open(sys.argv[6], "w").write(str(time.perf_counter() - start))
""",
    "ours in memory": """
import sys, time, json, pickle, numpy as np
from nnunet.inference.export import export_prediction_from_logits
from nnunet.planning.plans import Plans
logits, props = np.load(sys.argv[1]), pickle.load(open(sys.argv[2], "rb"))
plans = Plans.load(sys.argv[3])
start = time.perf_counter()
export_prediction_from_logits(logits, props, plans.configuration("3d_fullres"), plans, json.load(open(sys.argv[4])),
                              sys.argv[5], False)
open(sys.argv[6], "w").write(str(time.perf_counter() - start))
""",
    "ours slabs": """
import sys, time, json, pickle, numpy as np
from nnunet.inference.export import write_outputs
from nnunet.inference.slab_export import SlabExporter, SlabResampler
from nnunet.planning.plans import Plans
logits, props = np.load(sys.argv[1], mmap_mode="r"), pickle.load(open(sys.argv[2], "rb"))
plans, dataset_json = Plans.load(sys.argv[3]), json.load(open(sys.argv[4]))
config, labels = plans.configuration("3d_fullres"), plans.label_manager(dataset_json)
start = time.perf_counter()
resampler = SlabResampler.for_case(logits.shape[1:], props, plans, config)
exporter = SlabExporter(logits.shape[1:], props, plans, config, labels, resampler, None, 32)
for row in range(0, logits.shape[1], 64):
    exporter.push(np.array(logits[:, row:row + 64]))
write_outputs(exporter.segmentation(), None, props, plans, dataset_json, sys.argv[5])
open(sys.argv[6], "w").write(str(time.perf_counter() - start))
""",
}


def make_case(folder: Path, shape: list[int], plans: dict) -> tuple[Path, Path]:
    """Smooth 3-class float16 logits at 1 mm for an original image of ``shape`` voxels, and its properties."""
    logits_file, props_file = folder / "logits.npy", folder / "properties.pkl"
    network_shape = [int(round(s * sp)) for s, sp in zip(shape, ORIGINAL_SPACING)]
    if not logits_file.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        logits = np.lib.format.open_memmap(logits_file, mode="w+", dtype=np.float16, shape=(3, *network_shape))
        zz = np.arange(network_shape[0])[:, None, None]
        yy = np.arange(network_shape[1])[None, :, None]
        xx = np.arange(network_shape[2])[None, None, :]
        for z0 in range(0, network_shape[0], 32):
            z = zz[z0:z0 + 32]
            logits[0, z0:z0 + 32] = 2.0 * np.cos(yy / 37.0) * np.sin(xx / 23.0 + z / 51.0)
            logits[1, z0:z0 + 32] = 1.5 * np.sin(yy / 29.0 + z / 17.0) + 0.2 * np.cos(xx / 11.0)
            logits[2, z0:z0 + 32] = np.cos((yy + xx) / 41.0) - 0.5 * np.sin(z / 13.0)
        logits.flush()
        del logits
    properties = {"spacing": list(ORIGINAL_SPACING), "shape_before_cropping": list(shape),
                  "bbox_used_for_cropping": [[0, s] for s in shape],
                  "shape_after_cropping_and_before_resampling": list(shape),
                  "sitk_stuff": {"spacing": ORIGINAL_SPACING[::-1], "origin": (0.0, 0.0, 0.0),
                                 "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}}
    props_file.write_bytes(pickle.dumps(properties))
    (folder / "plans.json").write_text(json.dumps(plans))
    return logits_file, props_file


def bench_export(args, workdir: Path, shape: list[int], plans: dict, dataset_json: dict) -> None:
    folder = workdir / f"export_{'x'.join(map(str, shape))}"
    logits_file, props_file = make_case(folder, shape, plans)
    (folder / "dataset.json").write_text(json.dumps(dataset_json))
    pythons = {"reference": f"{args.ref_venv}/bin/python", "ours in memory": sys.executable,
               "ours slabs": sys.executable}
    best: dict[str, tuple[float, float, str]] = {}
    for repeat in range(args.repeats):
        for name, script in SCRIPTS.items():
            out = folder / f"out_{name.replace(' ', '_')}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            timing = folder / "seconds.txt"
            timing.unlink(missing_ok=True)
            cmd = [pythons[name], "-c", script, str(logits_file), str(props_file), str(folder / "plans.json"),
                   str(folder / "dataset.json"), str(out / "case"), str(timing)]
            env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"}
            _, _, rss, status = run_limited(cmd, env, args.rss_limit_gb)
            seconds = float(timing.read_text()) if timing.is_file() else float("nan")
            print(f"  run {repeat + 1} {name}: export {seconds:.1f} s, peak RSS {rss:.2f} GB ({status})", flush=True)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, rss, status)
    for name, (seconds, rss, status) in best.items():
        print(f"{name:>15}: export {seconds:6.1f} s, peak RSS {rss:.2f} GB ({status})")
    ref = best["reference"]
    for name in ("ours in memory", "ours slabs"):
        print(f"{name:>15}: {best[name][0] / ref[0]:.2f}x the reference's time, "
              f"{best[name][1] / ref[1]:.2f}x its peak RSS")
    import SimpleITK as sitk

    segs = {n: sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"out_{n.replace(' ', '_')}" / "case.nii.gz")))
            for n in SCRIPTS if (folder / f"out_{n.replace(' ', '_')}" / "case.nii.gz").is_file()}
    if "reference" in segs:
        for name in ("ours in memory", "ours slabs"):
            if name in segs:
                print(f"voxel agreement {name} vs reference: {(segs[name] == segs['reference']).mean():.6f}")
