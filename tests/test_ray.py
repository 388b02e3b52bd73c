"""Integration: a tiny sweep submitted through the ray launcher preset to a running Ray head
(`scripts/local-ray start`; .ci/run starts one): a job whose worker is killed mid-run fails
the sweep, the rerun trains only that job's models, and the records equal a local run's.
Skipped where ray or the launcher is not installed or no head runs, except under CI, where
either is a failure."""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = ["experiment=quick", "task.n=4", "task.eval_size=64", "train.steps=20", "train.eval_every=10",
        "train.batch=16", "model.w=16", "cohort.m=[2,4]", "cohort.seed=[0]", "model.d=4,8",
        "after=[aggregate]"]  # the records and the table: the steps after a sweep are tested elsewhere
TIMING = ("compile_s", "train_s", "wall_s")  # the only fields of a record that may differ between runs


def head_address() -> str | None:
    """Where the preset connects (RAY_ADDRESS, else the head this machine started), when a head
    listens there."""
    address = os.environ.get("RAY_ADDRESS")
    if not address:
        try:
            address = Path("/tmp/ray/ray_current_cluster").read_text().strip()
        except OSError:
            return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except (OSError, ValueError):
        return None
    return address


def skip_or_fail(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: .ci/run installs the test extra and starts scripts/local-ray")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def head():
    for module in ("ray", "hydra_plugins.hydra_ray_launcher"):
        if importlib.util.find_spec(module) is None:
            skip_or_fail(f"{module} is not installed (pip install -e '.[ray]')")
    if head_address() is None:
        skip_or_fail("no Ray head running (scripts/local-ray start)")


def sweep(tmp_path, where, *args, devices=None):
    """counting-train -m over TINY into tmp_path/<where>; `devices` sets COUNTING_CPU_DEVICES
    (else it is unset: a Ray job then gets one device per CPU it holds, the preset's rule)."""
    cmd = [sys.executable, "-m", "counting.cli.train", "-m", *TINY, f"results_dir={tmp_path / where}",
           f"hydra.sweep.dir={tmp_path / ('multirun-' + where)}", *args]
    env = {k: v for k, v in os.environ.items() if k != "COUNTING_CPU_DEVICES"}
    # The Ray head's jobs compile at the head's level (XLA's default, as scripts/local-ray
    # starts it), not at the tests' level 0 (tests/conftest.py): a local run compared with them
    # runs at that level too.
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace("--xla_backend_optimization_level=0", "").strip()
    if devices:
        env["COUNTING_CPU_DEVICES"] = str(devices)
    path = tmp_path / f"sweep-{len(list(tmp_path.glob('sweep-*.log')))}.log"
    with path.open("w") as log:  # a file, not a pipe: a sweep left running beside another never blocks
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    proc.log_path = path
    return proc


def output(proc) -> str:
    """Waits for a sweep and returns what it printed."""
    proc.wait(timeout=600)
    return proc.log_path.read_text()


def records(root: Path) -> dict[str, dict]:
    out = {}
    for path in root.glob("quick/runs/*/record.json"):
        record = json.loads(path.read_text())
        if record.get("status") == "complete":
            out[path.parent.name] = {k: v for k, v in record.items() if k not in TIMING}
            out[path.parent.name]["config"].pop("results_dir")
    return out


def job_hashes(sweep_dir: Path) -> dict[int, list[str]]:
    path = sweep_dir / "manifest.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return {entry["job"]: entry["hashes"] for entry in map(json.loads, lines)}


def worker_of(job_dir: Path) -> int | None:
    """The Ray worker process running a sweep's job: the one holding the job's log open."""
    log = str(job_dir / "train.log")
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and any(os.readlink(fd) == log for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


@pytest.mark.slow
def test_a_sweep_through_the_ray_preset_resumes_a_killed_job_and_equals_a_local_run(head, tmp_path):
    # The local run (beside the first Ray one) on one XLA device, as the preset gives each
    # one-CPU Ray job (a cohort's rounding depends on how its members are spread over devices).
    local = sweep(tmp_path, "local", devices=1)
    # Job 1's worker is killed once that job has started training; without retries the sweep fails.
    killed = sweep(tmp_path, "ray", "hydra/launcher=ray", "hydra.launcher.ray.remote.max_retries=0")
    deadline, victim = time.time() + 300, None
    while time.time() < deadline and killed.poll() is None and victim is None:
        if 1 in job_hashes(tmp_path / "multirun-ray"):
            victim = worker_of(tmp_path / "multirun-ray" / "1")
        time.sleep(0.1)
    assert victim, "job 1 never started on a Ray worker"
    os.kill(victim, signal.SIGKILL)
    out = output(killed)
    assert killed.returncode != 0, out[-3000:]
    assert "Connecting to existing Ray cluster" in out and "Ray Launcher is launching 2 jobs" in out, out[-3000:]
    jobs = job_hashes(tmp_path / "multirun-ray")
    first = records(tmp_path / "ray")
    assert set(first) == set(jobs[0]), "job 0 finished, job 1 was killed before its records"
    out = output(local)
    assert local.returncode == 0, out[-3000:]
    want = records(tmp_path / "local")
    assert len(want) == 4
    stamps = {h: (tmp_path / "ray" / "quick" / "runs" / h / "record.json").stat().st_mtime_ns for h in first}

    # The same command again (the preset's own retries): only the killed job's models train.
    again = sweep(tmp_path, "ray", "hydra/launcher=ray")
    out = output(again)
    assert again.returncode == 0, out[-3000:]
    assert "sweep quick: 4 models of this sweep, 0 failed" in out, out[-3000:]
    for h, stamp in stamps.items():  # the finished job's models were not retrained
        assert (tmp_path / "ray" / "quick" / "runs" / h / "record.json").stat().st_mtime_ns == stamp
    got = records(tmp_path / "ray")
    assert set(got) == set(want)
    for h in want:
        assert got[h] == want[h], h
