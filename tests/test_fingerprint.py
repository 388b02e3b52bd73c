"""The numerics fingerprint hashes what the code computes, not where it lives
(counting.store.fingerprint): moving a module or a function keeps records current; changing a
number stales them; the committed records were migrated to this rule once."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from counting.config import RunConfig
from counting.store.fingerprint import NUMERICS, PACKAGE, closure, code_fingerprint, hash_files, run_files

ROOTS = (*NUMERICS, "tasks/qc.py", "models/transformer.py")


def fingerprint_of(package: Path, roots=ROOTS) -> str:
    return hash_files(tuple(closure([package / r for r in roots], package)))


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dest = tmp_path / "counting"
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.yaml"))
    return dest


def rewrite(package: Path, old: str, new: str) -> None:
    """Every import of module `old` (dotted) now names `new`."""
    for path in package.rglob("*.py"):
        text = path.read_text()
        changed = re.sub(rf"\b{re.escape(old)}\b", new, text)
        if changed != text:
            path.write_text(changed)


def test_the_run_files_of_qc_are_the_roots_closure():
    cfg = RunConfig.from_dict({"task": {"name": "qc"}, "model": {"arch": "transformer"}})
    assert run_files(cfg) == closure([PACKAGE / r for r in ROOTS])
    assert code_fingerprint(cfg) == fingerprint_of(PACKAGE)


def test_moving_a_numerics_module_keeps_the_fingerprint(copy):
    before = fingerprint_of(copy)
    (copy / "objectives").mkdir()
    (copy / "objectives" / "__init__.py").write_text('"""A stage of its own."""\n')
    shutil.move(copy / "training" / "metrics.py", copy / "objectives" / "losses.py")
    rewrite(copy, "counting.training.metrics", "counting.objectives.losses")
    roots = [("objectives/losses.py" if r == "training/metrics.py" else r) for r in ROOTS]
    assert fingerprint_of(copy, roots) == before


def test_moving_a_function_between_modules_keeps_the_fingerprint(copy):
    before = fingerprint_of(copy)
    train = (copy / "training" / "train.py").read_text()
    source = re.search(r"\ndef chunk_lengths\(.*?(?=\n\n|\Z)", train, re.DOTALL).group(0)
    (copy / "training" / "train.py").write_text(train.replace(source, "") + "\n")
    (copy / "runtime" / "xla.py").write_text((copy / "runtime" / "xla.py").read_text() + "\n" + source + "\n")
    assert "chunk_lengths" in (copy / "runtime" / "xla.py").read_text()
    assert fingerprint_of(copy) == before


def test_docstrings_and_comments_do_not_count(copy):
    before = fingerprint_of(copy)
    path = copy / "training" / "stop.py"
    path.write_text(path.read_text().replace('"""The stopping rule', '"""Reworded: the stopping rule', 1)
                    + "\n# a comment\n")
    assert fingerprint_of(copy) == before


def test_a_host_hook_of_a_task_does_not_count_but_its_numerics_do(copy):
    """A task's `@host` hooks (counting.tasks.registry.host) are outside training: adding or
    changing one keeps the records current; the same method unmarked is numerics."""
    before = fingerprint_of(copy)
    path = copy / "tasks" / "qc.py"
    text = path.read_text()
    hook = ("\n    @host\n    @classmethod\n    def llm_question(cls) -> str:\n        return 'Reworded?'\n")
    assert "    @host\n    @classmethod\n    def llm_question" in text
    path.write_text(text + hook)
    assert fingerprint_of(copy) == before
    path.write_text(text + hook.replace("    @host\n", ""))
    assert fingerprint_of(copy) != before


def test_an_import_added_after_a_fingerprint_reaches_the_closure(copy):
    """A file's imports are parsed once per source text: a module edited after a fingerprint was
    taken, in the same process, is read again."""
    roots = [copy / r for r in ROOTS]
    before = closure(roots, copy)
    extra = copy / "extra_numerics.py"
    extra.write_text("SCALE = 2.0\n")
    path = copy / "tasks" / "qc.py"
    path.write_text(path.read_text() + "\nimport counting.extra_numerics  # noqa: E402, F401\n")
    after = closure(roots, copy)
    assert extra not in before and extra in after and fingerprint_of(copy) != hash_files(tuple(before))


def test_changing_a_numeric_constant_stales(copy):
    before = fingerprint_of(copy)
    path = copy / "tasks" / "base.py"
    text = path.read_text()
    assert "SORT_ABOVE = 256" in text
    path.write_text(text.replace("SORT_ABOVE = 256", "SORT_ABOVE = 255"))
    assert fingerprint_of(copy) != before


def test_changing_an_operation_stales(copy):
    before = fingerprint_of(copy)
    path = copy / "training" / "metrics.py"
    text = path.read_text()
    path.write_text(text.replace("jnp.maximum(m_BxA.sum(), 1.0)", "jnp.maximum(m_BxA.sum(), 2.0)"))
    assert fingerprint_of(copy) != before


def test_the_committed_records_were_migrated():
    """A committed table trained by today's code carries today's fingerprint (the migration
    ran; scripts/migrate_fingerprints.py proves which rows it re-labelled): E1, the theory's
    model under successive halving on balanced sequences."""
    import csv

    e1 = list(csv.DictReader((PACKAGE.parent / "results" / "exact_qc" / "table.csv").open()))
    cfg = RunConfig.from_dict({"task": {"name": "qc"}, "model": {"arch": "transformer"}, "halving": {"lr": [1e-3]}})
    assert {r["fingerprint"] for r in e1} == {code_fingerprint(cfg)}
