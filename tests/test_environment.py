"""A bad environment or a bad file is one line with the documented exit status (2 before any
compute, 1 during it), and nothing that was written is lost: a full disk, a broken experiment
file of one's own."""

import contextlib
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import tiny

from counting.config import CohortConfig
from counting.store import problem, read_record
from counting.sweep import runner
from counting.sweep.plan import disk_bytes, expand
from counting.sweep.runner import DiskError, check_disk, execute_many, folder_of


def test_too_little_disk_is_refused_before_any_compute(tmp_path, monkeypatch):
    cfgs = expand(tiny(results_dir=str(tmp_path), experiment="e"), {"seed": [0, 1, 2]})
    need = disk_bytes(cfgs)
    assert 3 * 4 * 1000 < need < 10 * 2**20
    monkeypatch.setattr(runner.shutil, "disk_usage", lambda path: type("U", (), {"free": need // 2})())
    with pytest.raises(DiskError) as err:
        execute_many(cfgs, show_progress=False)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "MiB free" in msg and "3 models" in msg
    assert not (tmp_path / "e").exists()  # nothing trained, nothing written
    monkeypatch.setattr(runner.shutil, "disk_usage", lambda path: type("U", (), {"free": 2 * need})())
    check_disk(cfgs)  # enough room: no error


@pytest.mark.slow
def test_a_disk_that_fills_during_training_fails_that_chunk_in_one_line(tmp_path, monkeypatch, capsys):
    """The disk fills while the second chunk saves its parameters: that chunk's records say
    failed (one line), the first chunk's records stay complete."""
    cfgs = expand(tiny(results_dir=str(tmp_path), experiment="e"), {"seed": [0, 1]})
    real = runner.save_params
    calls = []

    def save(folder, params):
        calls.append(folder)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(folder, params)

    monkeypatch.setattr(runner, "save_params", save)
    report = execute_many(cfgs, CohortConfig(max_models=1), show_progress=False)
    assert len(report.trained) == 1 and len(report.failed) == 1
    err = capsys.readouterr().err
    assert "no space left on device under" in err and "Traceback" not in err
    first, second = (folder_of(c) for c in cfgs)
    assert problem(first) is None and read_record(first)["status"] == "complete"
    assert read_record(second)["status"] == "failed" and "No space left" in read_record(second)["error"]


def can_mount_tmpfs(where: Path) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_real_200k_disk_is_refused_in_one_line_with_exit_2(tmp_path):
    disk = tmp_path / "disk"
    if not can_mount_tmpfs(disk):
        pytest.skip("mounting a tmpfs needs root (the in-process disk tests cover the logic)")
    try:
        run = subprocess.run([sys.executable, "-m", "counting.cli.train", "-m", "experiment=quick", "model.d=4",
                              "train.steps=20", f"results_dir={disk}", f"hydra.sweep.dir={tmp_path / 'multirun'}"],
                             capture_output=True, text=True, timeout=300)
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", str(disk)], capture_output=True)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "MiB free" in lines[0] and str(disk) in lines[0]
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_a_broken_experiment_file_of_ones_own_is_one_line(tmp_path):
    folder = tmp_path / "confs" / "experiment"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("experiment: mine\ntask:\n  m: [2, 4\n")
    run = subprocess.run([sys.executable, "-m", "counting.cli.train", "-m", "experiment=mine",
                          f"hydra.searchpath=[file://{tmp_path / 'confs'}]", f"results_dir={tmp_path / 'r'}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert "mine.yaml: not valid YAML at line" in run.stderr and "Traceback" not in run.stderr
