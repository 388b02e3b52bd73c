"""counting.runtime.devices: one XLA CPU device per core unless told otherwise, set by the entry points."""

import os
import subprocess
import sys
import warnings

import jax
import pytest

from counting.runtime import devices


def test_the_environment_chooses_the_count(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv(devices.ENV, raising=False)
    assert devices.requested() is None
    monkeypatch.setenv(devices.ENV, "3")
    assert devices.requested() == 3
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1 --xla_force_host_platform_device_count=5")
    assert devices.requested() == 5  # the user's own XLA flag comes first
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setenv(devices.ENV, "many")
    with pytest.raises(ValueError, match=devices.ENV):
        devices.requested()


def test_after_the_backend_started_it_reports_and_warns():
    have = len(jax.devices("cpu"))  # started by now, with what conftest asked for
    assert have == (devices.requested() or devices.cores()) == devices.use_cpu_devices()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert devices.use_cpu_devices(have + 1) == have
    assert caught and "already started" in str(caught[0].message)


def test_a_fresh_process_gets_the_requested_devices():
    code = ("import jax; from counting.runtime.devices import use_cpu_devices; "
            "print(use_cpu_devices(), len(jax.devices('cpu')))")
    env = {**{k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}, devices.ENV: "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "3"]
