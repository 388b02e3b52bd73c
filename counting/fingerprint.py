"""Which code produced a record: the suite's version and a fingerprint of the code that
defines training.

The fingerprint hashes the syntax trees (`ast`, without docstrings) of the modules whose
code decides a trained model's numbers: the tasks and their samplers, the model, the
optimiser, the loss and metrics, the train step, the driver and its planning (which decide
how members are batched, and so the arithmetic), the stopping rule and the XLA options.
Comments, docstrings and formatting do not change it; any change of code does, even one that
happens to leave the numbers alone: a conservative choice, since a record from other code
is retrained (`rerun=stale`) unless the user keeps it (`rerun=never`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
TRAINING_CODE = ("tasks", "model.py", "train.py", "optimizer.py", "metrics.py", "cohort.py", "plan.py",
                 "stop.py", "xla.py")


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_files(root: Path = PACKAGE) -> list[Path]:
    files = []
    for name in TRAINING_CODE:
        path = root / name
        files += sorted(path.glob("*.py")) if path.is_dir() else [path]
    return files


@functools.cache
def code_fingerprint(root: Path = PACKAGE) -> str:
    """16 hex digits over the normalised syntax of the training code."""
    h = hashlib.sha256()
    for path in source_files(root):
        tree = _without_docstrings(ast.parse(path.read_text(), filename=str(path)))
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(ast.dump(tree, annotate_fields=False, include_attributes=False).encode() + b"\0")
    return h.hexdigest()[:16]


def suite_version() -> str:
    try:
        return metadata.version("counting")
    except metadata.PackageNotFoundError:
        return "unknown"
