"""The documentation site builds with warnings as errors (a broken link, a stale reference or a
config table that no longer matches the dataclasses fails here, so in CI)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once for the tests of this module."""
    if shutil.which("mkdocs") is None and subprocess.run([sys.executable, "-m", "mkdocs", "--version"],
                                                          capture_output=True).returncode:
        pytest.fail("mkdocs is not installed: pip install -e '.[test]' installs it")
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out


@pytest.mark.slow
def test_the_docs_build_strict(site):
    config = (site / "reference" / "config" / "index.html").read_text()
    assert "task.m" in config and "train.stop.patience" in config and "halving.lr" in config  # from the dataclasses
    assert "What the suite measured" in (site / "results" / "index.html").read_text()  # the report, not the README
    assert (site / "reference" / "api" / "index.html").read_text().count("run_experiment") >= 1


def _images(page: Path) -> set[Path]:
    """The files the <img> tags of a built page point at, resolved in the site."""
    import re

    return {(page.parent / src).resolve() for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', page.read_text())}


@pytest.mark.slow
def test_every_results_folder_with_figures_is_a_page_showing_them(site):
    """Every committed folder of results/ with PNGs has a page with an <img> per PNG, each image
    in the site; the report shows every figure it links to inline."""
    import re

    tracked = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout: which folders are committed is unknown")
    pngs: dict[str, set[str]] = {}
    for path in tracked:
        parts = path.split("/")
        if path.endswith(".png") and (len(parts) == 3 or (len(parts) == 4 and parts[2] == "figures")):
            pngs.setdefault(parts[1], set()).add("/".join(parts[2:]))
    assert len(pngs) >= 20
    folders = (site / "results" / "folders" / "index.html").read_text()
    for name, figures in sorted(pngs.items()):
        page = site / "results" / name / "index.html"
        assert page.exists(), f"results/{name}/ has no page"
        shown = _images(page)
        for figure in figures:
            image = (site / "results" / name / figure).resolve()
            assert image in shown, f"results/{name}/{figure}: no <img> on its page"
            assert image.is_file(), f"results/{name}/{figure}: not in the site"
        assert f'href="../{name}/"' in folders, f"results/{name}/ is not on the folders page"
    report = site / "results" / "index.html"
    cited = set(re.findall(r"\]\(([\w./-]+\.png)\)", (ROOT / "results" / "REPORT.md").read_text()))
    assert cited and {(site / "results" / c).resolve() for c in cited} <= _images(report)
    assert all((site / "results" / c).is_file() for c in cited)


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
