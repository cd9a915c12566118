"""End-to-end demo on a small generated dataset: ``python -m nnunet.demo.run`` (CPU is fine, a few minutes).

It runs nnU-Net's whole recipe, each step through the function behind its console command:

1. generate ``Dataset999_DemoSpheres`` (8 training cases of ~24^3 voxels) and 3 labelled test cases;
2. ``nnUNet_plan_and_preprocess -d 999 -c 2d 3d_fullres --verify_dataset_integrity``;
3. ``nnUNet_train 999 CONFIGURATION FOLD -tr nnUNetTrainerDemo --npz`` for 2d and 3d_fullres, folds 0-4
   (``nnUNetTrainerDemo``: 3 epochs of 25 iterations instead of 1000 of 250);
4. ``nnUNet_find_best_configuration 999 -c 2d 3d_fullres -tr nnUNetTrainerDemo``: cross-validation results of
   both configurations and of their ensemble, the best one, its postprocessing, inference_instructions.txt;
5. the commands of inference_instructions.txt as written, on the test images (``-device cpu`` added to the
   predictions unless ``--device`` says otherwise);
6. ``nnUNet_evaluate_folder`` on the postprocessed predictions, printing Dice.

Everything is written below ``--workdir`` (default ``./demo_run``), which gets its own nnUNet_raw,
nnUNet_preprocessed and nnUNet_results folders; your environment's folders are never touched. The cases are
tiny, so the demo sets ``nnUNet_def_n_proc=1``, ``nnUNet_npp=0`` and ``nnUNet_nps=0`` (no worker processes for
exporting and prediction I/O) and trains with half the CPU cores as torch threads. ``--folds 0 1`` trains and
selects with two folds only (faster, a less reliable choice).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

from nnunet.demo.synthetic import make_dataset
from nnunet.errors import NnunetError

DATASET_ID = 999
DATASET_NAME = "DemoSpheres"
DATASET = f"Dataset{DATASET_ID:03d}_{DATASET_NAME}"
TRAINER = "nnUNetTrainerDemo"  # nnunet/training/variants/demo.py
CONFIGURATIONS = ("2d", "3d_fullres")
NUM_TRAINING_CASES = 8
NUM_TEST_CASES = 3
SHAPE = (24, 24, 24)  # small enough for five folds of two configurations in a few CPU minutes


MARKER = ".nnunet_demo"  # marks a folder made by the demo, which a later run may delete
# what earlier versions of the demo (without the marker) left in their folder
OLD_DEMO_ENTRIES = {"nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "test_data", "predictions"}


def _fresh_workdir(workdir: Path) -> None:
    """Delete the previous demo's folder; never a folder the demo did not make."""
    if workdir.exists():
        entries = {p.name for p in workdir.iterdir()}
        if MARKER not in entries and not entries <= OLD_DEMO_ENTRIES:
            raise NnunetError(f"{workdir} exists and was not made by the demo; choose another --workdir (the demo "
                              f"deletes its folder before each run).")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by python -m nnunet.demo.run; deleted by its next run\n")


def _set_environment(workdir: Path) -> dict[str, Path]:
    folders = {v: workdir / v for v in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for var, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(folder)
    # The cases are tiny: starting worker processes costs more than they save. One process exports the
    # validation cases after each training (and is the -np printed in the instructions), and nnUNet_predict reads
    # and writes in its own process (-npp 0 -nps 0 by default).
    os.environ.update({"nnUNet_def_n_proc": "1", "nnUNet_npp": "0", "nnUNet_nps": "0"})
    return folders


def _step(title: str) -> float:
    print(f"\n=== {title}", flush=True)
    return time.perf_counter()


def _done(start: float) -> None:
    print(f"done in {time.perf_counter() - start:.1f}s", flush=True)


def _check(rc: int, what: str) -> None:
    if rc:
        raise SystemExit(f"demo: {what} failed (exit status {rc}); see the messages above.")


def run_demo(workdir: Path, num_processes: int = 2, folds: Sequence[int] = (0, 1, 2, 3, 4),
             device: str = "cpu") -> dict:
    """Run the whole demo below ``workdir`` (deleted first) and return the test-set summary.json contents."""
    from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main

    start = time.perf_counter()
    _fresh_workdir(workdir)
    folders = _set_environment(workdir)
    t = _step(f"Generating {DATASET} ({NUM_TRAINING_CASES} cases of ~{SHAPE[0]}^3 voxels) in "
              f"{folders['nnUNet_raw']}")
    raw = make_dataset(folders["nnUNet_raw"], DATASET_ID, DATASET_NAME, "3d_iso", num_cases=NUM_TRAINING_CASES,
                       shape=SHAPE)
    test = make_dataset(workdir / "test_data", DATASET_ID, DATASET_NAME, "3d_iso", num_cases=NUM_TEST_CASES,
                        shape=SHAPE, seed=123)
    print(f"training data: {raw}\ntest data (images and labels): {test}")
    _done(t)

    t = _step(f"nnUNet_plan_and_preprocess -d {DATASET_ID} -c {' '.join(CONFIGURATIONS)} "
              f"--verify_dataset_integrity -np {num_processes}")
    _check(plan_and_preprocess_main(["-d", str(DATASET_ID), "--verify_dataset_integrity", "-npfp",
                                     str(num_processes), "-np", str(num_processes), "-c", *CONFIGURATIONS]),
           "nnUNet_plan_and_preprocess")
    pre = folders["nnUNet_preprocessed"] / DATASET
    plans = json.loads((pre / "nnUNetPlans.json").read_text())
    for name, cfg in plans["configurations"].items():
        print(f"  {name:>20}: patch {cfg.get('patch_size')}, batch {cfg.get('batch_size')}, "
              f"spacing {cfg.get('spacing')}")
    _done(t)

    _train(folds, device)
    instructions = _find_best(folders["nnUNet_results"] / DATASET, folds, num_processes)
    output_pp = _run_instructions(instructions, test / "imagesTr", workdir / "inference", device)
    summary = _evaluate(test / "labelsTr", output_pp, pre, num_processes)
    print(f"\nDemo finished in {(time.perf_counter() - start) / 60:.1f} min. Everything is in {workdir}.")
    return summary


def _train(folds: Sequence[int], device: str) -> None:
    import torch

    from nnunet.training.run import run_training

    # nnUNet_train -device cpu gives torch every core, but the augmentation workers need CPU time too, and an
    # oversubscribed machine slows small networks down many times over; half the cores is safe
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2) if device == "cpu" else 1)
    for configuration in CONFIGURATIONS:
        for fold in folds:
            t = _step(f"nnUNet_train {DATASET_ID} {configuration} {fold} -tr {TRAINER} --npz -device {device}")
            run_training(str(DATASET_ID), configuration, fold, TRAINER, export_validation_probabilities=True,
                         device=device)
            _done(t)


def _find_best(results: Path, folds: Sequence[int], num_processes: int) -> str:
    from nnunet.cli.ensemble import find_best_configuration_main

    fold_args = ["-f", *map(str, folds)] if tuple(folds) != (0, 1, 2, 3, 4) else []
    t = _step(f"nnUNet_find_best_configuration {DATASET_ID} -c {' '.join(CONFIGURATIONS)} -tr {TRAINER} "
              f"{' '.join(fold_args)} -np {num_processes}".replace("  ", " "))
    _check(find_best_configuration_main([str(DATASET_ID), "-c", *CONFIGURATIONS, "-tr", TRAINER, *fold_args, "-np",
                                         str(num_processes), "--no_pbar"]), "nnUNet_find_best_configuration")
    _done(t)
    return (results / "inference_instructions.txt").read_text()


def _commands() -> dict[str, Callable[[Sequence[str]], int]]:
    from nnunet.cli.ensemble import ensemble_main
    from nnunet.cli.postprocess import apply_postprocessing_main
    from nnunet.cli.predict import predict_main

    mains = {"predict": predict_main, "ensemble": ensemble_main, "apply_postprocessing": apply_postprocessing_main}
    return {f"{prefix}{name}": main for prefix in ("nnUNetv2_", "nnUNet_") for name, main in mains.items()}


def _run_instructions(text: str, input_folder: Path, output_root: Path, device: str) -> Path:
    """Run the command lines of inference_instructions.txt (placeholders filled in) and return OUTPUT_FOLDER_PP."""
    from nnunet.demo.instructions import instruction_commands, placeholder_folder

    mains = _commands()
    print(f"\nINPUT_FOLDER = {input_folder}; OUTPUT_FOLDER* = {output_root}/output_folder*")
    for argv in instruction_commands(text, input_folder, output_root, device=device):
        t = _step(" ".join(argv))
        if argv[0] not in mains:
            raise SystemExit(f"demo: unexpected command {argv[0]!r} in the inference instructions.")
        _check(mains[argv[0]](argv[1:]), argv[0])
        _done(t)
    return placeholder_folder("OUTPUT_FOLDER_PP", input_folder, output_root)


def _evaluate(labels: Path, predictions: Path, pre: Path, num_processes: int) -> dict:
    from nnunet.cli.evaluate import evaluate_folder_main

    summary_file = predictions / "summary.json"
    t = _step(f"nnUNet_evaluate_folder {labels} {predictions} -djfile {pre / 'dataset.json'} "
              f"-pfile {pre / 'nnUNetPlans.json'} -np {num_processes}")
    _check(evaluate_folder_main([str(labels), str(predictions), "-djfile", str(pre / "dataset.json"), "-pfile",
                                 str(pre / "nnUNetPlans.json"), "-o", str(summary_file), "-np", str(num_processes),
                                 "--no_pbar"]), "nnUNet_evaluate_folder")
    _done(t)
    summary = json.loads(summary_file.read_text())
    print(f"\nDice on the {NUM_TEST_CASES} test cases (postprocessed predictions, {summary_file}):")
    for label, metrics in summary["mean"].items():
        print(f"  label {label}: Dice {metrics['Dice']:.3f}")
    print(f"  foreground mean Dice {summary['foreground_mean']['Dice']:.3f} "
          f"(a short CPU demo schedule; real training runs 1000 epochs)")
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("demo_run"),
                        help="output folder (default: %(default)s); a previous demo run's folder is deleted first")
    parser.add_argument("-np", type=int, default=2, help="worker processes (default: %(default)s)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="folds to train and select with (default: all five)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"],
                        help="device for training and prediction (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        run_demo(args.workdir.resolve(), args.np, args.folds, args.device)
    except NnunetError as e:
        raise SystemExit(f"demo: {e}") from None


if __name__ == "__main__":
    main()
