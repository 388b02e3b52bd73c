"""The documentation site builds with warnings as errors (a broken link, a stale reference or a
config table that no longer matches the dataclasses fails here, so in CI)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_the_docs_build_strict(tmp_path):
    if shutil.which("mkdocs") is None and subprocess.run([sys.executable, "-m", "mkdocs", "--version"],
                                                          capture_output=True).returncode:
        pytest.fail("mkdocs is not installed: pip install -e '.[test]' installs it")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    site = tmp_path / "site"
    config = (site / "reference" / "config" / "index.html").read_text()
    assert "task.m" in config and "train.stop.patience" in config and "halving.lr" in config  # from the dataclasses
    assert (site / "results" / "index.html").exists()
    assert (site / "reference" / "api" / "index.html").read_text().count("run_experiment") >= 1
