"""What people check before they depend on research code: a licence, a way to cite it, a clean
linter run with the configuration in pyproject.toml, and the exact versions of the results."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]


def test_licence_citation_and_version_agree():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (ROOT / "LICENSE").read_text().startswith("MIT License") and citation["license"] == "MIT"
    assert str(citation["version"]) == meta["version"]
    assert f"## {meta['version']}" in (ROOT / "CHANGELOG.md").read_text()
    assert any("2407.15160" in str(r) for r in citation["references"])


def test_constraints_pin_what_the_committed_results_were_made_with():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["jax"] == pins["jaxlib"] == "0.10.2"  # the jaxlib column of every committed 0.2 table


def test_ruff_is_clean_on_the_tree():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    run = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:]


def docstring_coverage() -> tuple[int, int]:
    """(documented, public): functions, classes and methods of counting/ not named _*."""
    import ast

    have = total = 0

    def visit(body):
        nonlocal have, total
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                total += 1
                have += ast.get_docstring(node) is not None
                if isinstance(node, ast.ClassDef):
                    visit(node.body)

    for path in (ROOT / "counting").rglob("*.py"):
        visit(ast.parse(path.read_text()).body)
    return have, total


def test_the_library_is_documented():
    have, total = docstring_coverage()
    assert total > 800 and have / total >= 0.85, f"{have} of {total} public names have a docstring"
