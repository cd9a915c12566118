"""Faults of training runs: a torchrun worker killed with SIGKILL (elastic restart), Ctrl-C (a real SIGINT) in
each phase of nnUNet_train, and nnUNet_results missing for --val / --c."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from nnunet.cli.train import train_main
from nnunet.training.checkpoint import load_checkpoint_file
from tests.training.helpers import make_3d_dataset
from tests.training.torchrun_helpers import (events, free_port, run_two_nodes, start_torchrun, start_train, stop, subprocess_env,
                                             train_args, wait_for)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and torchrun: Linux")


def _fold(dirs: dict[str, Path], trainer: str) -> Path:
    return dirs["results"] / "Dataset901_Tiny" / f"{trainer}__nnUNetPlans__3d_fullres" / "fold_0"


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.fixture
def tiny(nnunet_dirs, tmp_path):
    make_3d_dataset(nnunet_dirs["preprocessed"], shape=(16, 16, 16), patch=(16, 16, 16))
    record = tmp_path / "record"
    record.mkdir()
    return nnunet_dirs, record


def _kill_recorded_workers(record: Path) -> None:
    for pid in {e["pid"] for e in events(record)}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_elastic_restart_after_sigkill_resumes_from_latest(tiny, tmp_path):
    """Two torchrun launchers, --max-restarts 1, no --c: rank 1 is killed with SIGKILL inside epoch 2; the group is
    restarted, continues from checkpoint_latest.pth by itself and finishes; at most the epoch in progress is lost."""
    dirs, record = tiny
    env = subprocess_env(record)
    port = free_port()
    launchers = [start_torchrun(node, 2, port, "elastic", train_args("SlowRecordingTrainer"), env,
                                tmp_path / f"node{node}.log", max_restarts=1) for node in (0, 1)]
    fold = _fold(dirs, "SlowRecordingTrainer")
    try:
        def rank1_in_epoch_2():
            return any(e["rank"] == 1 and e["epoch"] == 2 for e in events(record, "epoch"))

        wait_for(rank1_in_epoch_2, 180, launchers, "rank 1 starting epoch 2")
        # not a wait for a process (that is wait_for above): it moves the kill into the middle of the epoch
        time.sleep(0.4)  # (4 steps of 0.25 s)
        latest_epoch = load_checkpoint_file(fold / "checkpoint_latest.pth")["current_epoch"]
        (victim,) = [e["pid"] for e in events(record, "start") if e["rank"] == 1]
        os.kill(victim, signal.SIGKILL)
        first_round = {e["pid"] for e in events(record, "start")}
        for launcher in launchers:
            launcher.wait(timeout=240)
    finally:
        stop(*launchers)
        _kill_recorded_workers(record)
    outputs = [(tmp_path / f"node{node}.log").read_text() for node in (0, 1)]
    assert [launcher.returncode for launcher in launchers] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]

    # a second round of both ranks started, restored checkpoint_latest.pth and began with the epoch in progress
    restarted = [e for e in events(record, "epoch") if e["pid"] not in first_round]
    assert sorted({e["rank"] for e in restarted}) == [0, 1]
    assert latest_epoch in (2, 3) and min(e["epoch"] for e in restarted) == latest_epoch
    assert sorted({e["epoch"] for e in restarted if e["rank"] == 0}) == list(range(latest_epoch, 4))
    # the ranks continue their own random streams: their first batches after the restart differ
    batches = {e["rank"]: e["digest"] for e in events(record, "batch") if e["pid"] not in first_round}
    assert len(batches) == 2 and batches[0] != batches[1]
    # the log of the restarted group says so; the run is complete
    logs = "".join(p.read_text() for p in sorted(fold.glob("training_log_*.txt")))
    assert "elastic restart" in logs and f"Loading {fold / 'checkpoint_latest.pth'}" in logs
    final = load_checkpoint_file(fold / "checkpoint_final.pth")
    assert final["current_epoch"] == 4 and len(final["logging"]["train_losses"]) == 4
    assert len(final["rng_state_per_rank"]) == 2
    assert not (fold / "checkpoint_latest.pth").exists() and (fold / "validation" / "summary.json").is_file()
    assert not list(fold.rglob("*partial*"))


def _interrupt(args: list[str], env: dict[str, str], log: Path, ready, what: str) -> tuple[int, str]:
    """Start nnUNet_train, send SIGINT once ``ready()``, return (exit code, output)."""
    proc = start_train(args, env, log)
    try:
        wait_for(ready, 120, [proc], what)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        stop(proc)
    return proc.returncode, log.read_text()


def _epoch_started(record: Path, epoch: int, pids: set[int]):
    return lambda: any(e["epoch"] == epoch and e["pid"] not in pids for e in events(record, "epoch"))


@pytest.mark.slow
def test_ctrl_c_during_training_names_what_can_be_continued(tiny, tmp_path):
    dirs, record = tiny
    env = subprocess_env(record, nnUNet_results=str(dirs["results"]),
                         nnUNet_preprocessed=str(dirs["preprocessed"]))
    args = train_args("SlowRecordingTrainer")
    fold = _fold(dirs, "SlowRecordingTrainer")

    # inside the first epoch: nothing to continue from, and no checkpoint is named
    code, out = _interrupt(args, env, tmp_path / "a.log", _epoch_started(record, 0, set()), "epoch 0")
    assert code == 130, out[-2000:]
    assert "nnunet: interrupted. No epoch of this training finished" in out and "Traceback" not in out
    assert "checkpoint_latest.pth" not in out and not list(fold.glob("*.pth"))

    # inside the second epoch: checkpoint_latest.pth exists and --c continues from it
    seen = {e["pid"] for e in events(record)}
    code, out = _interrupt(args, env, tmp_path / "b.log", _epoch_started(record, 1, seen), "epoch 1")
    assert code == 130 and "Traceback" not in out, out[-2000:]
    expected = f"{fold / 'checkpoint_latest.pth'} (written after every finished epoch) is kept: run the same command"
    assert f"{expected} with --c to continue from it." in out
    assert load_checkpoint_file(fold / "checkpoint_latest.pth")["current_epoch"] == 1

    # a new training (no --c) interrupted in its first epoch: the old checkpoint is named as an earlier training's
    seen = {e["pid"] for e in events(record)}
    older = (fold / "checkpoint_latest.pth").read_bytes()
    code, out = _interrupt(args, env, tmp_path / "c.log", _epoch_started(record, 0, seen), "epoch 0 again")
    assert code == 130 and "No epoch of this training finished" in out
    assert (fold / "checkpoint_latest.pth").read_bytes() == older
    assert "checkpoint_latest.pth is from an earlier training; --c would continue that one" in out


@pytest.mark.slow
def test_ctrl_c_during_final_validation_points_to_val(tiny, tmp_path):
    dirs, record = tiny
    env = subprocess_env(record, nnUNet_results=str(dirs["results"]),
                         nnUNet_preprocessed=str(dirs["preprocessed"]))
    fold = _fold(dirs, "WaitBeforeValidationTrainer")
    code, out = _interrupt(train_args("WaitBeforeValidationTrainer"), env, tmp_path / "v.log",
                           lambda: bool(events(record, "validation")), "the final validation")
    assert code == 130 and "Traceback" not in out, out[-2000:]
    assert "the final validation was cut short. Run the same command with --val" in out
    assert "with --c to continue" not in out
    assert (fold / "checkpoint_final.pth").is_file() and not (fold / "validation" / "summary.json").exists()


@pytest.mark.parametrize("flag", ["--val", "--c"])
def test_missing_nnunet_results_with_val_or_continue_is_one_line(tiny, monkeypatch, capsys, tmp_path, flag):
    dirs, _ = tiny
    monkeypatch.delenv("nnUNet_results")
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    assert train_main(["901", "3d_fullres", "0", "-device", "cpu", flag]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nnunet: error: The environment variable nnUNet_results is not set.")
    assert err.count("\n") == 1 and "Traceback" not in err and "export nnUNet_results=" in err
    assert _snapshot(tmp_path) == before  # nothing written anywhere (no "None" folder in the working directory)


def test_ctrl_c_in_the_num_gpus_launcher_names_what_is_on_disk(tiny, monkeypatch, capsys):
    """-num_gpus: the parent process has no trainer; its note is worked out from the fold folder's files."""
    import torch.multiprocessing as mp

    dirs, _ = tiny
    fold = _fold(dirs, "TinyTestTrainer")
    argv = ["901", "3d_fullres", "0", "-tr", "tests.training.helpers.TinyTestTrainer", "-num_gpus", "2",
            "-device", "cpu"]

    def interrupted_in_first_epoch(*args, **kwargs):
        raise KeyboardInterrupt

    def interrupted_after_an_epoch(*args, **kwargs):
        fold.mkdir(parents=True, exist_ok=True)
        (fold / "checkpoint_latest.pth").write_bytes(b"written by the workers")
        raise KeyboardInterrupt

    monkeypatch.setattr(mp, "spawn", interrupted_in_first_epoch)
    assert train_main(argv) == 130
    assert "No epoch of this training finished" in capsys.readouterr().err
    monkeypatch.setattr(mp, "spawn", interrupted_after_an_epoch)
    assert train_main(argv) == 130
    note = capsys.readouterr().err
    assert f"{fold / 'checkpoint_latest.pth'} (written after every finished epoch) is kept" in note and "--c" in note


@pytest.mark.slow
def test_nodes_that_do_not_share_preprocessed_data_are_refused(nnunet_dirs, tmp_path):
    """Each "node" has its own nnUNet_preprocessed: rank 0 creates splits_final.json in its copy only, the ranks
    notice that they read different splits and stop with one line before training."""
    copies = [tmp_path / f"preprocessed_node{node}" for node in (0, 1)]
    for folder in copies:
        make_3d_dataset(folder, shape=(16, 16, 16), patch=(16, 16, 16))
    envs = [subprocess_env(nnUNet_preprocessed=str(copies[node]), nnUNet_results=str(nnunet_dirs["results"]))
            for node in (0, 1)]
    codes, outputs = run_two_nodes("unshared", train_args("RecordingTrainer"), envs,
                                   [tmp_path / f"node{node}.log" for node in (0, 1)], timeout=180)
    assert all(code != 0 for code in codes)
    for out in outputs:
        assert "nnunet: error: The processes of this training read different" in out, out[-2000:]
        assert "splits_final.json: rank(s) 1" in out and "[rank0]: Traceback" not in out
    assert sum((folder / "Dataset901_Tiny" / "splits_final.json").is_file() for folder in copies) == 1
    assert not list(nnunet_dirs["results"].rglob("*.pth"))


def test_interrupt_note_for_other_folders(tmp_path):
    from nnunet.training.resume import interrupt_note

    assert "nothing was written" in interrupt_note(None, "training")
    assert "Checkpointing was disabled" in interrupt_note(tmp_path, "training", ours=True, checkpointing=False)
    (tmp_path / "checkpoint_best.pth").write_bytes(b"")  # a trainer with save_every > 1: only the best one so far
    note = interrupt_note(tmp_path, "training", ours=True)
    assert f"{tmp_path / 'checkpoint_best.pth'} (the epoch with the best pseudo Dice so far) is kept" in note
    # unknown owner (the -num_gpus parent): judged by the time the file was written
    assert "is kept" in interrupt_note(tmp_path, None, started_at=0.0)
    assert "from an earlier training" in interrupt_note(tmp_path, None, started_at=time.time() + 60)
