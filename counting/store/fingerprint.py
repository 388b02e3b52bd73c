"""Which code produced a record's numbers: a fingerprint of what the numerics compute, and the
suite's version.

The fingerprint hashes the *content* of the code that decides a trained model's numbers, not
where that code lives:

- the modules it is read from: shared by every run (`NUMERICS`: the train step and its chunk,
  the loss and metrics, the optimiser, the stopping rule, the XLA options, the cohort's
  programs and the task protocol with its samplers); the run's own task module and the module
  of its model class, found from the registries (so adding a task or a model leaves every other
  run's records current); `EXTRA` modules a run's config switches on (successive halving's
  rungs, ...); and every counting module these import, transitively, but the registries and
  the configs (`REGISTRIES`: they name the modules above, and a config value is part of a
  run's identity);
- what is hashed: the set of the top-level statements of those modules (functions, classes,
  constants, imports of other libraries), each as its normalised syntax tree (`ast`, without
  docstrings), with every import of a counting module reduced to the names it imports, and
  without the definitions marked `@host` (a task's host-side hooks: what the theory, inspection,
  debugger and LLM probe ask of it, never run in a training step). No file path, module name
  or statement order enters the hash.

So moving or renaming a numerics file, or moving a function from one numerics file to another,
keeps every record current; changing what any of them computes (a constant, an operation)
stales the records it trained. Comments, docstrings and formatting do not change it either.
Host bookkeeping is out: the driver's loop (`cohort.py`), planning (`plan.py`: which members
share a program is written in each record's `layout`), the runner, records, logging and
configs. `tests/test_golden.py` guards the rule: one short training's exact loss and accuracy
are stored with the fingerprint they were produced under; a change that moves them without
moving the fingerprint fails there. `tests/test_fingerprint.py` moves a module (not stale) and
changes a constant (stale).

Until suite version 0.2 the fingerprint also hashed each module's path; the committed records
were re-fingerprinted once, by `scripts/migrate_fingerprints.py`, where the old rule proved
their code unchanged. A refactor of numerics code that computes the same numbers (the family
registry of 2026-12) re-labels the records with `scripts/refingerprint.py --from REV`, which
refuses unless only the modules it checks changed and their outputs are equal to REV's.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from counting.tasks.registry import COMPOSED

PACKAGE = Path(__file__).resolve().parents[1]  # counting/
NUMERICS = ("training/train.py", "training/metrics.py", "training/optimizer.py", "training/stop.py",
            "training/program.py", "runtime/xla.py", "tasks/base.py")
REGISTRIES = ("models/registry.py", "tasks/__init__.py", "tasks/registry.py", "config.py", "spec.py")  # followed no further
EXTRA = {"halving": "training/halving.py", "composed": "tasks/mixture.py", "support": "training/support.py"}  # switch -> its module


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _is_host(node: ast.AST) -> bool:
    """A definition marked `@host` (counting.tasks.registry.host): a host-side hook, not numerics."""
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and any(
        (isinstance(d, ast.Name) and d.id == "host") or (isinstance(d, ast.Attribute) and d.attr == "host")
        for d in node.decorator_list)


def _without_host(tree: ast.Module) -> ast.Module:
    """The module without its `@host` definitions (at the top level and in class bodies)."""
    tree.body = [node for node in tree.body if not _is_host(node)]
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            node.body = [item for item in node.body if not _is_host(item)] or [ast.Pass()]
    return tree


def _own(node: ast.AST) -> bool:
    """An import of a counting module (absolute or relative)."""
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").split(".")[0] == "counting"
    return isinstance(node, ast.Import) and any(a.name.split(".")[0] == "counting" for a in node.names)


class _Placeless(ast.NodeTransformer):
    """Imports of counting modules inside functions reduced to the names they import."""

    def visit_Import(self, node):
        return ast.Import(names=[ast.alias("counting", a.asname) for a in node.names]) if _own(node) else node

    def visit_ImportFrom(self, node):
        if not _own(node):
            return node
        return ast.ImportFrom(module="counting", names=sorted((ast.alias(a.name, a.asname) for a in node.names),
                                                              key=lambda a: (a.name, a.asname or "")), level=0)


def statements(path: Path) -> frozenset[str]:
    """The normalised top-level statements of one module: what it computes, not where it is."""
    return _statements(path.read_text())


@functools.cache
def _statements(text: str) -> frozenset[str]:  # parsed once per distinct source text
    tree = _without_host(_without_docstrings(ast.parse(text)))
    body = [node for node in tree.body if not _own(node)]
    return frozenset(ast.dump(_Placeless().visit(node), annotate_fields=False, include_attributes=False)
                     for node in body)


def _imports(path: Path, package: Path) -> list[Path]:
    """The counting modules a file imports (anywhere in it)."""
    out = []
    for name in _imported(path.read_text()):
        base = package.joinpath(*name.split(".")[1:])
        out += [p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()]
    return out


@functools.cache
def _imported(text: str) -> tuple[str, ...]:  # parsed once per distinct source text, as _statements
    """The counting.* module names a source text imports, in the order they appear."""
    out = []
    for node in ast.walk(ast.parse(text)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        out += [name for name in names if name.startswith("counting.")]
    return tuple(out)


def closure(roots: Iterable[Path], package: Path = PACKAGE, registries: Iterable[str] = REGISTRIES) -> list[Path]:
    """The modules `roots` and everything of the package they import, the registries excepted."""
    stop = {package / name for name in registries}
    todo, seen = list(roots), []
    while todo:
        path = todo.pop(0)
        if path in seen or path in stop:
            continue
        seen.append(path)
        todo += _imports(path, package)
    return sorted(seen)


def switches(cfg) -> list[str]:
    """The config switches that bring numerics modules of their own into a run (EXTRA)."""
    on = {"halving": cfg.halving.active,  # the rungs decide where a pruned member stops
          "composed": cfg.task.sampler in COMPOSED,
          "support": cfg.train.stop.watch == "support" or cfg.halving.metric == "support"}  # counting.training.support
    return [name for name, active in on.items() if active]


def run_files(cfg) -> list[Path]:
    """The numerics modules of one run: the shared ones, its task's and its model's, the ones its
    switches bring in, and what they import (the registries and configs excepted)."""
    from counting.models.registry import model_class
    from counting.tasks.registry import class_of

    roots = [PACKAGE / name for name in NUMERICS]
    roots += [Path(inspect.getsourcefile(class_of(cfg.task.name))), Path(inspect.getsourcefile(model_class(cfg.model)))]
    roots += [PACKAGE / EXTRA[name] for name in switches(cfg)]
    return closure(roots)


def hash_files(files: tuple[Path, ...]) -> str:
    """16 hex digits over the set of the files' normalised top-level statements."""
    h = hashlib.sha256()
    for text in sorted(set().union(*(statements(path) for path in files))):
        h.update(text.encode() + b"\0")
    return h.hexdigest()[:16]


def code_fingerprint(cfg) -> str:
    """16 hex digits over what the numerics code that trains `cfg` computes."""
    return hash_files(tuple(run_files(cfg)))


def suite_version() -> str:
    """The installed version of the counting package, or unknown when it is not installed."""
    try:
        return metadata.version("counting")
    except metadata.PackageNotFoundError:
        return "unknown"
