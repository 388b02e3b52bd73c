"""Re-fingerprint the committed records after a change of numerics code that provably computes
the same numbers (a refactor inside the fingerprint's closure, counting.store.fingerprint).

The content fingerprint stales every record whose code changed, and a refactor changes code.
Where the change is proven not to move a number, this script re-labels the records once, so
that no reference result is retrained for it:

1. Today's code and the code at REV are compared file by file over every configuration class a
   fingerprint depends on (task, model class, successive halving, a composed sampler, watching
   the validation families): the files that differ must all be in CHECKED, the modules whose
   behaviour step 2 compares (anything else changed: refused).
2. Behaviour: for every task, 25 values of m from 2 to 64 (`M`), n = 8, 16, 32, pairs held out
   or not and three training distributions, CHECKED's outputs (every test family's content, with and without a
   model's embeddings, and every validation family's content) are computed by REV's code (in a
   subprocess on an export of REV) and by today's, and must be equal array for array.
3. Then fingerprint(REV's code) -> fingerprint(today's code), per configuration class, must be
   a function; a record's fingerprint is rewritten only where it equals a key (trained by REV's
   code); others are listed and left. Rewritten: results/**/*.csv, tests/golden.json and, with
   --runs, the record.json of every run folder under the named results folders.

    python scripts/refingerprint.py --from 7fe908f              # report only
    python scripts/refingerprint.py --from 7fe908f --write      # rewrite

CHECKED names the modules of the change at hand (2026-12: the family registry of
counting/tasks/families.py, read by counting/training/support.py); a later refactor extends
`probe` with the outputs of the modules it touches.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from counting.store import COUNTS, RECORD, RUNS

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("tasks/families.py", "training/support.py")
M = (*range(2, 17), 18, 19, 20, 21, 24, 28, 32, 40, 48, 64)  # every m of a committed support experiment


def configs() -> list[dict]:
    """One raw config per class a fingerprint depends on (counting.store.fingerprint.run_files)."""
    from counting.config import ARCHS, PEER_ARCHS, TASKS

    out = []
    for task, arch, halving, sampler, watch in itertools.product(
            TASKS, ARCHS, (False, True), ("balanced", "mixture"), ("heldout", "support")):
        peer = arch in PEER_ARCHS
        raw = {"task": {"name": task, "bos": (not peer) or arch.startswith("dotBOS"), "sampler": sampler},
               "model": {"arch": arch, **({"pos": "none", "norm": "none"} if peer else {})},
               "train": {"stop": {"watch": watch}}}
        if sampler == "mixture":
            raw["task"] |= {"mixture": ["balanced", "pairs"], "weights": [0.5, 0.5]}
        if halving:
            raw["halving"] = {"lr": [1e-3, 3e-3], "metric": "support" if watch == "support" else "loss"}
        out.append(raw)
    return out


def tasks() -> list[dict]:
    """The task configs whose families step 2 compares."""
    from counting.config import TASKS

    out = []
    for name, m, n, holdout, mix in itertools.product(TASKS, M, (8, 16, 32), (0.0, 0.2),
                                                       (None, ["balanced", "pairs"], ["balanced", "uniform"])):
        raw = {"name": name, "m": m, "n": n, "holdout_pairs": holdout}
        if mix:
            raw |= {"sampler": "mixture", "mixture": mix, "weights": [0.5, 0.5]}
        out.append(raw)
    return out


def probe(out: str) -> None:
    """In the code on sys.path: every config class's fingerprint and closure, and a digest of
    every family array of every task (one JSON file)."""
    import hashlib

    from counting.config import RunConfig
    from counting.store.fingerprint import PACKAGE, code_fingerprint, run_files
    from counting.tasks.families import family_content
    from counting.training.support import validation_content

    classes = []
    for raw in configs():
        cfg = RunConfig.from_dict(raw)
        classes.append({"raw": raw, "fingerprint": code_fingerprint(cfg),
                        "files": {p.relative_to(PACKAGE).as_posix(): p.read_text() for p in run_files(cfg)}})
    arrays = {}
    for j, raw in enumerate(tasks()):
        task = RunConfig.from_dict({"task": raw}).task
        embed_MxD = np.random.default_rng(j).normal(size=(task.m, 8))
        for label, content in (("test", family_content(task, None, 64, 0)),
                               ("model", family_content(task, embed_MxD, 64, 3)),
                               ("validation", validation_content(task))):
            for name, c in content.items():
                for part, a in (("x", c.x_BxN), ("q", c.q_B)):
                    a = np.ascontiguousarray(a, dtype=np.int64)
                    arrays[f"{j}/{label}/{name}/{part}"] = f"{a.shape}:" + hashlib.sha256(a.tobytes()).hexdigest()
    Path(out).write_text(json.dumps({"classes": classes, "arrays": arrays}))


def run_probe(pythonpath: Path | None, out: Path) -> tuple[list[dict], dict]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    subprocess.run([sys.executable, __file__, "--probe", str(out)], env=env, check=True, cwd=pythonpath or ROOT)
    data = json.loads(Path(out).read_text())
    return data["classes"], data["arrays"]


def mapping(rev: str) -> dict[str, str]:
    """fingerprint at REV -> fingerprint today (unchanged ones too), after steps 1 and 2 (SystemExit
    where either fails)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "counting"], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp / "old", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        old, old_arrays = run_probe(tmp / "old", tmp / "old_probe")
        new, new_arrays = run_probe(None, tmp / "new_probe")
    table: dict[str, str] = {}
    for a, b in zip(old, new, strict=True):
        changed = sorted(f for f in set(a["files"]) | set(b["files"]) if a["files"].get(f) != b["files"].get(f))
        if set(changed) - set(CHECKED):
            raise SystemExit(f"refused: {sorted(set(changed) - set(CHECKED))} changed since {rev} "
                             f"(only {', '.join(CHECKED)} are checked), for {a['raw']}")
        if table.setdefault(a["fingerprint"], b["fingerprint"]) != b["fingerprint"]:
            raise SystemExit(f"ambiguous: {a['fingerprint']} maps to {table[a['fingerprint']]} and {b['fingerprint']}")
    if set(old_arrays) != set(new_arrays):
        raise SystemExit(f"refused: the families differ in which exist ({sorted(set(old_arrays) ^ set(new_arrays))[:5]})")
    bad = [k for k in old_arrays if old_arrays[k] != new_arrays[k]]
    if bad:
        raise SystemExit(f"refused: {len(bad)} family arrays differ, first {bad[:3]}")
    print(f"checked: {len(old)} config classes, {len(tasks())} task configs, {len(old_arrays)} family arrays "
          f"equal; {sum(a != b for a, b in table.items())} fingerprints move")
    return table


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def rewrite_csv(path: Path, table: dict[str, str], write: bool) -> None:
    """A table's `fingerprint` column re-labelled where REV's code trained the row; other rows listed."""
    text = path.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "fingerprint" not in rows[0]:
        return
    seen = {r["fingerprint"] for r in rows}
    moved = {f: table[f] for f in seen if f in table and table[f] != f}
    left = sorted(f for f in seen if f not in table and f not in table.values() and f)  # older code: stale already
    if moved or left:
        print(f"{_shown(path)}: {len(rows)} rows; " + ", ".join(f"{a} -> {b}" for a, b in moved.items())
              + (f"; left (not REV's code): {', '.join(left)}" if left else ""))
    if write and moved:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n" if "\r\n" in text else "\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "fingerprint": moved.get(r["fingerprint"], r["fingerprint"])})
        path.write_text(out.getvalue())


def rewrite_json(path: Path, table: dict[str, str], write: bool) -> bool:
    """A run record (top-level `fingerprint`) or tests/golden.json (one per run) re-labelled; True when it moved."""
    text = path.read_text()
    data = json.loads(text)
    old = {f for item in data.get("runs", [data]) if (f := item.get("fingerprint")) in table and table[f] != f}
    for f in old:  # in place, so that the file keeps its layout
        text = text.replace(f'"fingerprint": "{f}"', f'"fingerprint": "{table[f]}"')
    if write and old:
        path.write_text(text)
    return bool(old)


def migrate(rev: str, runs: list[Path], write: bool) -> None:
    table = mapping(rev)
    for path in sorted((ROOT / "results").rglob("*.csv")):
        rewrite_csv(path, table, write)
    if rewrite_json(ROOT / "tests" / "golden.json", table, write):
        print("tests/golden.json: moved")
    for folder in runs:
        records = sorted(Path(folder).glob(f"*/{RUNS}/*/{RECORD}"))
        moved = sum(rewrite_json(p, table, write) for p in records)
        print(f"{folder}: {moved} of {len(records)} records moved")
        for path in sorted(Path(folder).glob("*/*.csv")):
            if path.name != COUNTS:
                rewrite_csv(path, table, write)
    if not write:
        print("(report only: --write rewrites)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="rev", help="the revision whose code trained the records")
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="results folders whose run records to re-label")
    parser.add_argument("--write", action="store_true", help="rewrite (default: report only)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe)
    elif not args.rev:
        parser.error("--from REV is required")
    else:
        migrate(args.rev, args.runs, args.write)
