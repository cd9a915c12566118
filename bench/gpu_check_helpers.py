"""Helper of ``bench/gpu_check.sh``: one measurement per call, written to ``$GC_OUT/parts/NAME.json``.

Usage: ``python gpu_check_helpers.py COMMAND ARGS...`` with COMMAND one of
  ``env``                               versions, GPU, compiler
  ``msd DST N SIZE``                    (tests only) a tiny Hippocampus-like MSD folder of N cases of SIZE^3 voxels
  ``train IMPL CFG COMPILE AUGDEV NAME`` ms/iteration with the real loader and with one reused batch, peak memory
  ``predict IMPL NAME``                 end to end on ``$GC_WORK/imagesTs``; sliding window on and off the device
  ``slab NAME``                         ours' slab path (``max_ram_gb`` tiny) on 5 cases, agreement with in-RAM
  ``merge``                             ``$GC_OUT/gpu_check.json``: every part, the steps' status and a "table"

IMPL is ``ours`` or ``ref`` (nnU-Net 2.8.1, ``nnunetv2``); the module imports neither at the top, so the reference
can run it from its own environment. ``GC_MOCK_CUDA=1`` runs everything on the CPU with ``torch.cuda``'s timing and
memory functions replaced (``is_available`` True, ``synchronize`` a no-op, peak memory from the process' RSS), so
that every path can be checked on a machine without a GPU (``tests/tools/test_gpu_check.py``).

Environment: GC_OUT, GC_WORK (folders), GC_ITERS (timed iterations, default 40), GC_WARM (untimed warm-up
iterations, 3), GC_PRED_NP (prediction worker processes, 3), GC_ONE_SHAPE / GC_BIG_SHAPE (sliding-window images,
"36,50,35" / "128,160,128"), GC_BIG_REPS (2), GC_ONE_REPS (20), GC_MIRROR (1: test-time mirroring, as
nnUNet_predict by default).
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(os.environ.get("GC_OUT", "/tmp/gpu_check_out"))
W = Path(os.environ.get("GC_WORK", "/tmp/gpu_check"))
ITERS = int(os.environ.get("GC_ITERS", "40"))
WARM = int(os.environ.get("GC_WARM", "3"))
MOCK = os.environ.get("GC_MOCK_CUDA", "0") == "1"
DS, MODEL = "Dataset004_Hippocampus", "nnUNetTrainer__nnUNetPlans__3d_fullres"
#: the line our trainer logs when it augments on the device (nnunet/training/trainer.py, get_dataloaders)
AUGDEV_LOG_LINE = "Augmenting training batches on"


def _shape(var: str, default: str) -> tuple[int, ...]:
    return (1, *(int(s) for s in os.environ.get(var, default).split(",")))


# ---------------------------------------------------------------------------------------------------- the GPU

def _mock_cuda(torch) -> None:
    """``torch.cuda`` as far as this helper and the trainers/predictors touch it, on a machine without CUDA."""
    state = {"peak": 0}

    def rss() -> int:  # bytes; ru_maxrss is in KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def reset_peak(*_a, **_k):
        state["peak"] = rss()

    patches = {"is_available": lambda: True, "synchronize": lambda *a, **k: None,
               "empty_cache": lambda: None, "reset_peak_memory_stats": reset_peak,
               # batchgenerators' augmenters ask for the current device when CUDA is available
               "current_device": lambda: 0, "set_device": lambda *a, **k: None,
               "max_memory_allocated": lambda *a, **k: max(state["peak"], rss()),
               "max_memory_reserved": lambda *a, **k: max(state["peak"], rss()),
               "get_device_name": lambda *a, **k: "MockGPU (CPU, GC_MOCK_CUDA=1)",
               "get_device_capability": lambda *a, **k: (0, 0)}
    for name, fn in patches.items():
        setattr(torch.cuda, name, fn)


def _torch():
    import torch

    if MOCK and not getattr(torch.cuda, "_gc_mocked", False):
        _mock_cuda(torch)
        torch.cuda._gc_mocked = True
    return torch


def device():
    torch = _torch()
    return torch.device("cpu") if MOCK else torch.device("cuda", 0)


def gpu_mb() -> dict:
    torch = _torch()
    return {"peak_alloc_mb": round(torch.cuda.max_memory_allocated() / 2**20),
            "peak_reserved_mb": round(torch.cuda.max_memory_reserved() / 2**20)}


def save(name: str, data: dict) -> None:
    (OUT / "parts").mkdir(parents=True, exist_ok=True)
    (OUT / "parts" / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))


def _median_ms(values: list[float]) -> float | None:
    return round(sorted(values)[len(values) // 2] * 1e3, 2) if values else None


# ---------------------------------------------------------------------------------------------------- shims

def _kfold_class():
    """scikit-learn's ``KFold`` as both trainers use it (the split only): the GPU image may lack scikit-learn, and
    its wheel does not fit beside the others in what a run carries. Same folds as sklearn's (checked in
    tests/tools/test_gpu_check.py)."""
    import numpy as np

    class KFold:
        def __init__(self, n_splits=5, *, shuffle=False, random_state=None):
            self.n_splits, self.shuffle, self.random_state = n_splits, shuffle, random_state

        def split(self, x, y=None, groups=None):
            n = len(x)
            if self.n_splits > n:
                raise ValueError(f"Cannot have number of splits n_splits={self.n_splits} greater than the number "
                                 f"of samples: n_samples={n}.")
            order = np.arange(n)
            if self.shuffle:
                np.random.RandomState(self.random_state).shuffle(order)
            sizes = np.full(self.n_splits, n // self.n_splits, dtype=int)
            sizes[:n % self.n_splits] += 1
            start = 0
            for size in sizes:
                is_test = np.zeros(n, dtype=bool)
                is_test[order[start:start + size]] = True
                yield np.flatnonzero(~is_test), np.flatnonzero(is_test)  # both sorted, as sklearn's masks give
                start += size

    return KFold


def install_shims() -> list[str]:
    """Stand-ins for modules that the GPU image may lack and that the measured paths do not really use:
    ``sklearn.model_selection.KFold`` (the split, imported by nnU-Net 2.8.1's trainer module) and ``seaborn``
    (progress plots at the end of an epoch, which this check never reaches). Returns the names shimmed."""
    import types

    shimmed = []
    try:
        import sklearn.model_selection  # noqa: F401
    except ImportError:
        sklearn, model_selection = types.ModuleType("sklearn"), types.ModuleType("sklearn.model_selection")
        model_selection.KFold = _kfold_class()
        sklearn.model_selection = model_selection
        sys.modules.update({"sklearn": sklearn, "sklearn.model_selection": model_selection})
        shimmed.append("sklearn")
    try:
        import seaborn  # noqa: F401
    except ImportError:
        seaborn = types.ModuleType("seaborn")
        seaborn.set = seaborn.lineplot = lambda *a, **k: None
        sys.modules["seaborn"] = seaborn
        shimmed.append("seaborn")
    return shimmed


# ---------------------------------------------------------------------------------------------------- env

def env() -> None:
    torch = _torch()
    smi = shutil.which("nvidia-smi")
    info = {"mock_cuda": MOCK, "python": sys.version, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "gpu": torch.cuda.get_device_name(0), "capability": torch.cuda.get_device_capability(0),
            "cpus": os.cpu_count(), "gcc": shutil.which("gcc"), "cc": shutil.which("cc"),
            "nvidia_smi": subprocess.run([smi, "--query-gpu=name,memory.total,clocks.max.sm,power.limit",
                                          "--format=csv"], capture_output=True, text=True).stdout if smi else None,
            "env": {k: v for k, v in os.environ.items() if k.startswith(("nnUNet_", "GC_", "OMP_"))}}
    for mod in ("triton", "SimpleITK", "nibabel", "blosc2", "sklearn", "seaborn", "pandas", "scipy", "skimage",
                "batchgenerators", "batchgeneratorsv2", "acvl_utils",
                "dynamic_network_architectures", "nnunetv2", "nnunet.training.trainer",
                "nnunet.training.data.device_augmentation"):
        try:
            m = __import__(mod, fromlist=["x"])
            info[mod] = getattr(m, "__version__", "ok")
        except Exception as e:  # noqa: BLE001 - recorded, not raised
            info[mod] = f"IMPORT FAILED: {type(e).__name__}: {e}"
    save("env", info)


# ---------------------------------------------------------------------------------------------------- data (tests)

def msd(dst: str, n: str = "6", size: str = "24") -> None:
    """A Hippocampus-like MSD task (one MRI channel, labels 0/1/2, a blob pair per case) for the mocked test."""
    import numpy as np
    import SimpleITK as sitk

    folder, n, size = Path(dst) / "Task04_Hippocampus", int(n), int(size)
    rng = np.random.default_rng(4)
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    training = []
    for i in range(n):
        shape = (size + i % 3, size, size - i % 2)
        c = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
        d = np.linalg.norm(np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1) - c, axis=-1)
        seg = np.where(d < size / 5, 1, np.where(d < size / 3.2, 2, 0)).astype(np.uint8)
        img = (rng.normal(100, 15, shape) + 60 * seg).astype(np.float32)
        for arr, sub in ((img, "imagesTr"), (seg, "labelsTr")):
            im = sitk.GetImageFromArray(arr)
            im.SetSpacing((1.0, 1.0, 1.0))
            sitk.WriteImage(im, str(folder / sub / f"hippocampus_{i:03d}.nii.gz"), True)
        training.append({"image": f"./imagesTr/hippocampus_{i:03d}.nii.gz",
                         "label": f"./labelsTr/hippocampus_{i:03d}.nii.gz"})
    (folder / "dataset.json").write_text(json.dumps({
        "name": "Hippocampus", "description": "synthetic stand-in", "tensorImageSize": "3D",
        "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
        "numTraining": n, "numTest": 0, "training": training, "test": []}, indent=1))


# ---------------------------------------------------------------------------------------------------- training

def _trainer(impl: str, cfg: str):
    if impl == "ours":
        from nnunet.training.run import get_trainer_from_args
        return get_trainer_from_args("4", cfg, 0, "nnUNetTrainer", "nnUNetPlans", device())
    from nnunetv2.run.run_training import get_trainer_from_args
    return get_trainer_from_args("4", cfg, 0, "nnUNetTrainer", "nnUNetPlans", False, device())


def _augdev_reported(tr) -> bool:
    log = getattr(tr, "log_file", None)
    try:
        return log is not None and AUGDEV_LOG_LINE in Path(log).read_text()
    except OSError:
        return False


def train(impl: str, cfg: str, compile_: str, augdev: str, name: str) -> None:
    # all of it before nnunetv2 is imported: it reads its paths and switches at import
    os.environ.update(nnUNet_results=str(W / f"results_{impl}"), nnUNet_compile=compile_,
                      nnUNet_augment_on_device=augdev, TORCHINDUCTOR_CACHE_DIR=str(W / f"inductor_{impl}"))
    torch = _torch()
    torch.set_num_threads(1)  # what both CLIs do for cuda
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    torch.backends.cudnn.benchmark = True
    shims = install_shims()
    tr = _trainer(impl, cfg)
    t0 = time.perf_counter()
    tr.on_train_start()
    tr.on_train_epoch_start()
    start_s = time.perf_counter() - t0
    nxt = getattr(tr, "_next_batch", None)  # ours checks the label values there, every step
    get = (lambda: nxt(tr.dataloader_train)) if nxt else (lambda: next(tr.dataloader_train))

    def per_step(n: int) -> tuple[list[float], list[float]]:  # warm-up: each step on its own (compile time)
        times, losses = [], []
        for _ in range(n):
            b = get()
            t = time.perf_counter()
            losses.append(float(tr.train_step(b)["loss"]))
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        return times, losses

    def throughput(n: int, batch=None) -> tuple[float, list[float], list[float]]:
        """Wall time of n steps with one synchronisation at the end (as training runs: ours leaves the loss on
        the device, the reference reads it every step), the time spent waiting for batches, the losses."""
        waits, losses = [], []
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            b = batch if batch is not None else get()
            waits.append(time.perf_counter() - t)
            losses.append(tr.train_step(b)["loss"])
        torch.cuda.synchronize()
        return time.perf_counter() - t0, waits, [float(x) for x in losses]

    warm, warm_losses = per_step(WARM)
    torch.cuda.reset_peak_memory_stats()
    loader_wall, waits, losses = throughput(ITERS)
    same_wall, _, _ = throughput(ITERS, next(tr.dataloader_train))
    res = {"impl": impl, "cfg": cfg, "compile": compile_ == "1", "augment_on_device_requested": augdev == "1",
           "network_class": type(tr.network).__name__,
           "compiled": type(tr.network).__name__ == "OptimizedModule" or hasattr(tr.network, "_orig_mod"),
           "train_loader_class": type(tr.dataloader_train).__name__,
           "augment_on_device_reported": _augdev_reported(tr) if impl == "ours" else None,
           "batch_size": tr.batch_size, "patch": list(tr.configuration_manager.patch_size),
           "iters": ITERS, "warm_iters": WARM, "device": str(tr.device), "shims": shims,
           "startup_s": round(start_s, 2), "first_iters_s": [round(x, 3) for x in warm],
           "ms_it_loader": round(loader_wall / ITERS * 1e3, 2),
           "ms_it_same_batch": round(same_wall / ITERS * 1e3, 2),
           "ms_wait_loader_median": _median_ms(waits),
           "wait_fraction_loader": round(sum(waits) / loader_wall, 3) if loader_wall > 0 else None,
           **gpu_mb(), "losses": [round(x, 4) for x in warm_losses + losses],
           "grad_scale": tr.grad_scaler.get_scale() if getattr(tr, "grad_scaler", None) is not None else None}
    if impl == "ours" and cfg == "3d_fullres" and compile_ == "0" and augdev == "0":  # the model of `predict`
        tr.save_checkpoint(str(Path(tr.output_folder) / "checkpoint_final.pth"))
        res["checkpoint"] = str(Path(tr.output_folder) / "checkpoint_final.pth")
    save(name, res)
    if hasattr(tr, "shutdown_dataloaders"):
        tr.shutdown_dataloaders()
    else:
        for dl in (tr.dataloader_train, tr.dataloader_val):
            getattr(dl, "_finish", lambda: None)()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # do not wait for the augmentation workers' teardown or the compile workers


# ---------------------------------------------------------------------------------------------------- prediction

def _predictor(impl: str, **kw):
    os.environ["nnUNet_compile"] = "0"  # both predictors would compile with it set
    torch = _torch()
    install_shims()
    if impl == "ours":
        from nnunet.inference.predictor import nnUNetPredictor
    else:
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    mirror = os.environ.get("GC_MIRROR", "1") == "1"
    p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror, perform_everything_on_device=True,
                        device=device(), verbose=False, verbose_preprocessing=False, allow_tqdm=False, **kw)
    p.initialize_from_trained_model_folder(str(W / "results_ours" / DS / MODEL), (0,), "checkpoint_final.pth")
    getattr(p.network, "_orig_mod", p.network).load_state_dict(p.list_of_parameters[0])
    if MOCK:
        p.perform_everything_on_device = True  # both set it False off CUDA; the path under test is the on-device one
    return p, torch


def predict(impl: str, name: str) -> None:
    import torch as _t
    _t.set_num_threads(1)
    p, torch = _predictor(impl)
    n_proc = int(os.environ.get("GC_PRED_NP", "3"))
    src, dst = W / "imagesTs", W / f"pred_{impl}"
    res = {"impl": impl, "cases": len(list(src.glob("*.nii.gz")))}
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    p.predict_from_files(str(src), str(dst), save_probabilities=False, overwrite=True,
                         num_processes_preprocessing=n_proc, num_processes_segmentation_export=n_proc)
    res["e2e_s"] = round(time.perf_counter() - t, 2)
    res["e2e_s_per_case"] = round(res["e2e_s"] / max(1, res["cases"]), 3)
    res["e2e_peak"] = gpu_mb()
    res["outputs"] = len(list(dst.glob("*.nii.gz")))
    one, big = _shape("GC_ONE_SHAPE", "36,50,35"), _shape("GC_BIG_SHAPE", "128,160,128")
    one_reps, big_reps = int(os.environ.get("GC_ONE_REPS", "20")), int(os.environ.get("GC_BIG_REPS", "2"))
    for label, shape, reps, on_dev in (("one_case", one, one_reps, True), ("big", big, big_reps, True),
                                       ("big_not_on_device", big, big_reps, False)):
        p.perform_everything_on_device = on_dev
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        if label != "big_not_on_device":  # warm-up per shape (cudnn.benchmark picks its algorithms)
            p.predict_sliding_window_return_logits(x)
            torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        for _ in range(reps):
            y = p.predict_sliding_window_return_logits(x)
        torch.cuda.synchronize()
        res[label] = {"shape": list(shape), "reps": reps, "ms": round((time.perf_counter() - t) / reps * 1e3, 1),
                      "dtype": str(y.dtype), "result_device": str(y.device), "finite": bool(torch.isfinite(y).all()),
                      **gpu_mb()}
    save(name, res)


def slab(name: str) -> None:
    import torch as _t
    _t.set_num_threads(1)
    src, dst = W / "imagesTs_5", W / "pred_ours_slab"
    src.mkdir(exist_ok=True)
    for f in sorted((W / "imagesTs").iterdir())[:5]:
        shutil.copy(f, src)
    import nnunet.inference.cases as cases

    calls, real = [], cases.predict_in_slabs
    cases.predict_in_slabs = lambda *a, **k: (calls.append(1), real(*a, **k))[1]  # count the cases it took
    p, _ = _predictor("ours", max_ram_gb=1e-6)  # every case is over budget: predicted and exported in slabs
    t = time.perf_counter()
    p.predict_from_files(str(src), str(dst), num_processes_preprocessing=1, num_processes_segmentation_export=1)
    save(name, {"slab_5_cases_s": round(time.perf_counter() - t, 2), "cases_in_slabs": len(calls),
                "agreement_with_in_ram": agreement(W / "pred_ours", dst)})


def agreement(a: Path, b: Path) -> dict:
    import numpy as np
    import SimpleITK as sitk

    equal = total = files = 0
    for f in sorted(Path(b).glob("*.nii.gz")):
        if not (Path(a) / f.name).is_file():
            continue
        x, y = (sitk.GetArrayFromImage(sitk.ReadImage(str(d / f.name))) for d in (Path(a), Path(b)))
        equal += int(np.sum(x == y))
        total += x.size
        files += 1
    return {"files": files, "voxel_agreement": equal / total if total else None}


# ---------------------------------------------------------------------------------------------------- merge

TRAIN_KEYS = ("ms_it_loader", "ms_it_same_batch", "ms_wait_loader_median", "wait_fraction_loader", "peak_alloc_mb",
              "startup_s", "first_iters_s", "batch_size", "compiled", "augment_on_device_reported",
              "train_loader_class")
RATIO_KEYS = ("ms_it_loader", "ms_it_same_batch", "peak_alloc_mb", "e2e_s", "one_case_ms", "big_ms",
              "big_not_on_device_ms", "e2e_peak_alloc_mb", "one_case_peak_alloc_mb", "big_peak_alloc_mb")


def _ref_key(key: str) -> str:
    """The reference's measurement that ours' ``key`` is compared with (the reference cannot augment on the
    device: ours' ``_augdev`` runs are compared with its ordinary run)."""
    return key.replace("_ours", "_ref").replace("_augdev", "")


def merge() -> None:
    parts, steps = {}, {}
    for f in sorted((OUT / "parts").glob("*.json")):
        try:
            value = json.loads(f.read_text())
        except ValueError as e:
            value = {"unreadable": str(e)}
        if f.name.endswith(".step.json"):
            steps[f.name[:-len(".step.json")]] = value
        else:
            parts[f.name[:-len(".json")]] = value
    preds = [W / "pred_ours", W / "pred_ref"]
    parts["agree_ours_vs_ref"] = agreement(*preds) if all(p.is_dir() for p in preds) else None
    table: dict = {}
    for k, v in parts.items():
        if k.startswith("train_") and isinstance(v, dict) and "ms_it_loader" in v:
            table[k] = {x: v.get(x) for x in TRAIN_KEYS}
        if k.startswith("predict_") and isinstance(v, dict) and "e2e_s" in v:
            table[k] = {"cases": v.get("cases"), "e2e_s": v["e2e_s"],
                        "e2e_peak_alloc_mb": v.get("e2e_peak", {}).get("peak_alloc_mb")}
            for s in ("one_case", "big", "big_not_on_device"):
                table[k][f"{s}_ms"] = v.get(s, {}).get("ms")
                table[k][f"{s}_peak_alloc_mb"] = v.get(s, {}).get("peak_alloc_mb")
    for k in [k for k in table if k.startswith(("train_ours", "predict_ours"))]:  # ours / ref; < 1: ours faster
        ref = table.get(_ref_key(k), {})
        table[k]["ratio_to_ref"] = {x: round(v / ref[x], 3) for x, v in table[k].items()
                                    if x in RATIO_KEYS and isinstance(v, (int, float)) and ref.get(x)}
        if "_augdev" in k:  # ours on the device against ours in the workers
            own = table.get(k.replace("_augdev", ""), {})
            table[k]["ratio_to_ours_in_workers"] = {x: round(v / own[x], 3) for x, v in table[k].items()
                                                    if x in RATIO_KEYS and isinstance(v, (int, float)) and own.get(x)}
    table["slab_ours"] = parts.get("slab_ours")
    table["agree_ours_vs_ref"] = parts["agree_ours_vs_ref"]
    table["skipped_steps"] = sorted(k for k, v in steps.items() if "skipped" in v)
    table["failed_steps"] = sorted(k for k, v in steps.items() if v.get("rc") not in (0, None))
    env_part = parts.get("env", {})
    table["device"] = {k: env_part.get(k) for k in ("gpu", "torch", "cuda", "mock_cuda")}
    (OUT / "gpu_check.json").write_text(json.dumps({"table": table, "steps": steps, **parts}, indent=1, default=str))
    print(json.dumps(table, indent=1, default=str))


COMMANDS = {"env": env, "msd": msd, "train": train, "predict": predict, "slab": slab, "merge": merge}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(COMMANDS)}}} ARGS...")
    COMMANDS[sys.argv[1]](*sys.argv[2:])
