"""plan_and_preprocess / plan_experiment print each configuration's patch and batch size (issue 16)."""
from __future__ import annotations

import json

from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main
from nnunet.demo.synthetic import make_dataset


def test_plan_and_preprocess_prints_patch_and_batch_size_of_each_configuration(nnunet_dirs, capsys):
    make_dataset(nnunet_dirs["raw"], 401, "Summary", "3d_iso", num_cases=3, shape=(20, 20, 20))
    assert plan_and_preprocess_main(["-d", "401", "--no_pp", "-npfp", "1", "--no_pbar"]) == 0
    out = capsys.readouterr().out
    plans = json.loads((nnunet_dirs["preprocessed"] / "Dataset401_Summary" / "nnUNetPlans.json").read_text())
    for name, config in plans["configurations"].items():
        assert f"  {name}: patch size {config['patch_size']}, batch size {config['batch_size']}," in out
