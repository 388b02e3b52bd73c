"""Merge the tables of cells trained in another results folder (a fresh machine, a cluster) into a
committed experiment folder: rows keyed by hash (budget.csv: by hash and budget), the newer header
(a superset); a column the old rows lack takes the value every new row shares (a field added since,
at its default), and the script stops when the new rows disagree on it.

    python scripts/merge_tables.py /tmp/peer_full/peer_behrens_t64_full results/peer_behrens_t64_full

then `counting-analyze NAME --results-dir results` rewrites the folder's other tables from table.csv.
A table missing from either folder is left as it is (a folder of tables across experiments, such
as results/support_qc_scaling, holds table.csv only).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

KEYS = {"table.csv": ("hash",), "budget.csv": ("hash", "budget")}


def merge(source: Path, folder: Path, name: str, key: tuple[str, ...]) -> None:
    with (folder / name).open() as f:
        old = list(csv.DictReader(f))
    with (source / name).open() as f:
        new = list(csv.DictReader(f))
    header = list(new[0])
    for col in header:
        if old and col not in old[0]:
            values = {r[col] for r in new}
            if len(values) != 1:
                sys.exit(f"{name}: column {col} differs among the new rows ({sorted(values)}); merge by hand")
            for r in old:
                r[col] = next(iter(values))
    merged = {tuple(r[k] for k in key): r for r in old}
    for r in new:
        merged.setdefault(tuple(r[k] for k in key), r)
    rows = sorted(merged.values(), key=lambda r: (int(r["d"]), int(r["seed"]), int(r.get("budget") or 0)))
    with (folder / name).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in header} for r in rows)
    print(f"{name}: {len(old)} + {len(new)} -> {len(rows)} rows")


def main() -> None:
    source, folder = Path(sys.argv[1]), Path(sys.argv[2])
    for name, key in KEYS.items():
        if (source / name).exists() and (folder / name).exists():
            merge(source, folder, name, key)
        else:
            print(f"{name}: not in both folders, left as it is")


if __name__ == "__main__":
    main()
