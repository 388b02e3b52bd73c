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


def test_the_readme_fits_on_two_screens_and_ci_runs_its_test_command():
    """The README holds the two commands; .ci/run ends with exactly its test command; every
    local file it links exists."""
    import re

    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.DOTALL)
    install_run, install_test = blocks[0], blocks[1]
    assert install_run.endswith("counting-train -m experiment=quick")
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == install_test
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
