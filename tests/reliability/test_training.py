"""Training faults a user can cause give one clear line, a non-zero exit and no checkpoint (nnUNet_train run
as a real command): an empty validation split, and label values that dataset.json does not declare."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.training.helpers import make_3d_dataset

ROOT = Path(__file__).resolve().parents[2]
TRAIN = str(Path(sys.executable).parent / "nnUNet_train")

def _train(dirs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_raw=str(dirs["raw"]), nnUNet_preprocessed=str(dirs["preprocessed"]),
               nnUNet_results=str(dirs["results"]), nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1",
               OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([TRAIN, "901", "3d_fullres", "0", "-tr", "tests.training.helpers.TinyTestTrainer",
                           "-device", "cpu"], env=env, capture_output=True, text=True, timeout=300)

def _split(dirs, train: list[str], val: list[str]) -> Path:
    path = dirs["preprocessed"] / "Dataset901_Tiny" / "splits_final.json"
    path.write_text(json.dumps([{"train": train, "val": val}]))
    return path

def _fold(dirs) -> Path:
    return dirs["results"] / "Dataset901_Tiny" / "TinyTestTrainer__nnUNetPlans__3d_fullres" / "fold_0"

def _one_error_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("nnunet: error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]

def test_empty_validation_split(nnunet_dirs):
    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    splits = _split(nnunet_dirs, [f"case_{i:03d}" for i in range(5)], [])
    line = _one_error_line(_train(nnunet_dirs))
    assert f"Fold 0 has no validation cases ({splits}, 5 preprocessed cases). Put cases in its 'val' list" in line
    assert line.endswith("or train fold 'all'."), line
    assert not list(_fold(nnunet_dirs).glob("*.pth")) and not (_fold(nnunet_dirs) / "validation").exists()

def test_undeclared_label_names_the_case(nnunet_dirs):
    counter = iter(range(5))

    def label_5_in_case_3(seg, rng):
        if next(counter) == 3:
            seg = seg.copy()
            seg[0, :3, :3, :3] = 5  # dataset.json declares 0, 1, 2
        return seg

    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16),
                    seg_transform=label_5_in_case_3)
    _split(nnunet_dirs, ["case_003"], ["case_004"])
    line = _one_error_line(_train(nnunet_dirs))
    assert "case_003: 5" in line and "dataset.json" in line and "[0, 1, 2]" in line
    fold = _fold(nnunet_dirs)
    assert not list(fold.glob("checkpoint_*.pth"))  # stopped at the first batch, before any epoch ended
