"""The store owns its layout: no module but counting/store/__init__.py spells a file name of a
run folder or of an experiment's folder, and the finished statuses are listed once."""

import ast
from pathlib import Path

from counting import store
from counting.store import columns

PACKAGE = Path(store.__file__).parents[1]
# Known exceptions, each with its reason:
KEPT = {
    # a numerics module (fingerprinted by content): its own copy goes with the next deliberate
    # change of the numbers, so that no committed record turns stale for a rename
    "tasks/families.py": {"families.json", "families.csv"},
    "llm/table.py": {"table.csv"},  # the LLM probe's own folders (counting.llm)
    "llm/backends/__init__.py": {"config.json"},  # a Hugging Face checkpoint's file, not ours
}


def layout_names() -> set[str]:
    return {v for k, v in vars(store).items() if k.isupper() and isinstance(v, str) and "." in v}


def spelled(path: Path, names: set[str]) -> set[str]:
    """The layout names a module spells: as a string, or as a piece of an f-string."""
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names}


def test_only_the_store_names_the_layout_files():
    names = layout_names()
    assert {"record.json", "table.csv", "families.json", "support.csv", "inspect_maps.npz"} <= names
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "store/__init__.py":
            continue
        extra = spelled(path, names) - KEPT.get(rel, set())
        if extra:
            found[rel] = sorted(extra)
    assert found == {}


def test_the_kept_copies_agree_with_the_store():
    from counting.tasks import families

    assert (families.FILE, families.TABLE) == (store.FAMILIES, store.FAMILY_TABLE)


def test_the_finished_statuses_are_the_stores():
    assert columns.USABLE is store.FINISHED == ("complete", "diverged")


def test_records_reads_every_run_folder(tmp_path):
    s = store.Store(tmp_path, "e")
    good, bad = s.run("a"), s.run("b")
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    (good / store.RECORD).write_text('{"hash": "a", "config": {}, "status": "complete"}')
    (bad / store.RECORD).write_text("{truncated")
    assert s.records() == {good: {"hash": "a", "config": {}, "status": "complete"}, bad: None}
    assert s.finished() == {good: {"hash": "a", "config": {}, "status": "complete"}}
