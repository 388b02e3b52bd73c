"""One-time migration of the committed records to the content fingerprint (counting.store.fingerprint).

Until suite version 0.2 the numerics fingerprint hashed each module's path with its syntax
tree, so moving a file staled every record. The rule now hashes content only. Changing the rule
changes every fingerprint, although no number changed; this script re-labels the committed
tables once, and only where it can prove the numerics unchanged:

    a row's recorded fingerprint equals the OLD rule applied to TODAY's code for the row's task,
    model class and switches  =>  the code that trained it is today's code  =>  its fingerprint
    under the new rule is the new rule applied to today's code.

Rows whose recorded fingerprint is not the old rule's value for today's code (trained by older
code) are left as they are and listed. Idempotent: a row already under the new rule is left.
Run from the checkout's root, before any numerics file changes:

    python scripts/migrate_fingerprints.py            # report only
    python scripts/migrate_fingerprints.py --write    # rewrite results/**/*.csv and tests/golden.json
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import io
import itertools
import json
from pathlib import Path

from counting.config import ARCHS, PEER_ARCHS, TASKS, RunConfig
from counting.store.fingerprint import PACKAGE, _without_docstrings, code_fingerprint, run_files

ROOT = Path(__file__).resolve().parent.parent


def old_rule(cfg) -> str:
    """The rule of suite version <= 0.2 (a verbatim copy): module path and syntax tree, in path order."""
    h = hashlib.sha256()
    for path in run_files(cfg):
        tree = _without_docstrings(ast.parse(path.read_text(), filename=str(path)))
        h.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        h.update(ast.dump(tree, annotate_fields=False, include_attributes=False).encode() + b"\0")
    return h.hexdigest()[:16]


def configs():
    """One config per (task, model class, halving on/off): what a fingerprint depends on."""
    for task, arch, halving in itertools.product(TASKS, ARCHS, (False, True)):
        peer = arch in PEER_ARCHS
        raw = {"task": {"name": task, "bos": (not peer) or arch.startswith("dotBOS")},
               "model": {"arch": arch, **({"pos": "none", "norm": "none"} if peer else {})}}
        if halving:
            raw["halving"] = {"lr": [1e-3, 3e-3]}
        yield RunConfig.from_dict(raw)


def mapping() -> dict[str, str]:
    """old-rule fingerprint of today's code -> new-rule fingerprint, checked to be a function."""
    out: dict[str, str] = {}
    for cfg in configs():
        old, new = old_rule(cfg), code_fingerprint(cfg)
        if out.setdefault(old, new) != new:
            raise SystemExit(f"ambiguous: old fingerprint {old} maps to {out[old]} and {new}")
    return out


def migrate(write: bool) -> None:
    table = mapping()
    current = set(table.values())
    for path in sorted((ROOT / "results").rglob("*.csv")):
        text = path.read_text()
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or "fingerprint" not in rows[0]:
            continue
        seen = {r["fingerprint"] for r in rows}
        moved = {f: table[f] for f in seen if f in table}
        kept = sorted(f for f in seen if f not in table and f not in current and f)
        print(f"{path.relative_to(ROOT)}: {len(rows)} rows; " + ", ".join(f"{a} -> {b}" for a, b in moved.items())
              + (f"; left (older code): {', '.join(kept)}" if kept else ""))
        if write and moved:
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n" if "\r\n" not in text else "\r\n")
            writer.writeheader()
            for r in rows:
                writer.writerow({**r, "fingerprint": moved.get(r["fingerprint"], r["fingerprint"])})
            path.write_text(out.getvalue())
    golden = ROOT / "tests" / "golden.json"
    data = json.loads(golden.read_text())
    for run in data["runs"]:
        if run["fingerprint"] in table:
            print(f"tests/golden.json: {run['fingerprint']} -> {table[run['fingerprint']]}")
            run["fingerprint"] = table[run["fingerprint"]]
    if write:
        golden.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the tables (default: report only)")
    migrate(parser.parse_args().write)
