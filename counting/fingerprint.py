"""Which code produced a record's numbers: a fingerprint of the numerics, and the suite's version.

The fingerprint hashes the syntax trees (`ast`, without docstrings) of the modules whose code
decides a trained model's numbers, and nothing else:

- shared by every run (`NUMERICS`): the train step and its chunk (`train.py`), the loss and
  metrics, the optimiser, the stopping rule (it decides where a model stops), the XLA options,
  the cohort's programs (`program.py`) and the task protocol with its samplers (`tasks/base.py`);
- the run's own task module (`tasks/qc.py`, ...) and the module of its model class, found from
  the registries, so that adding a task or a model leaves every other run's records current,
  and `halving.py` for a run trained under successive halving (its rungs decide where a
  pruned member stops);
- and every counting module these import, transitively, but the registries and the configs
  (`REGISTRIES`: they name the modules above, and a config value is part of a run's identity).

Host bookkeeping is out: the driver's loop (`cohort.py`), planning (`plan.py`: which members
share a program is written in each record's `layout`), the runner, records, logging and
configs. Comments, docstrings and formatting do not change it. `tests/test_golden.py` guards
the rule: one short training's exact loss and accuracy are stored with the fingerprint they
were produced under; a change that moves them without moving the fingerprint fails there.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
NUMERICS = ("train.py", "metrics.py", "optimizer.py", "stop.py", "xla.py", "program.py", "tasks/base.py")
REGISTRIES = ("architectures.py", "tasks/__init__.py", "config.py", "spec.py")  # followed no further


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _imports(path: Path) -> list[Path]:
    """The counting modules a file imports (anywhere in it)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        for name in names:
            if name.startswith("counting."):
                base = PACKAGE.joinpath(*name.split(".")[1:])
                out += [p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()]
    return out


def run_files(cfg) -> list[Path]:
    """The numerics modules of one run: the shared ones, its task's and its model's, and what
    they import (the registries and configs excepted)."""
    from counting.architectures import model_class
    from counting.tasks import REGISTRY

    stop = {PACKAGE / name for name in REGISTRIES}
    todo = [PACKAGE / name for name in NUMERICS]
    todo += [Path(inspect.getsourcefile(REGISTRY[cfg.task.name])), Path(inspect.getsourcefile(model_class(cfg.model)))]
    if cfg.halving.active:  # the rungs decide where a pruned member stops
        todo.append(PACKAGE / "halving.py")
    seen: list[Path] = []
    while todo:
        path = todo.pop(0)
        if path in seen or path in stop:
            continue
        seen.append(path)
        todo += _imports(path)
    return sorted(seen)


@functools.cache
def _hash_files(files: tuple[Path, ...]) -> str:
    h = hashlib.sha256()
    for path in files:
        tree = _without_docstrings(ast.parse(path.read_text(), filename=str(path)))
        h.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        h.update(ast.dump(tree, annotate_fields=False, include_attributes=False).encode() + b"\0")
    return h.hexdigest()[:16]


def code_fingerprint(cfg) -> str:
    """16 hex digits over the normalised syntax of the numerics code that trains `cfg`."""
    return _hash_files(tuple(run_files(cfg)))


def suite_version() -> str:
    try:
        return metadata.version("counting")
    except metadata.PackageNotFoundError:
        return "unknown"
