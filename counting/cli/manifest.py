"""The sweep's manifest: which run ids each job of a Hydra multirun was asked for.

Each job appends its run ids (hashes) to `<hydra.sweep.dir>/manifest.jsonl` before it trains;
when the sweep ends, it is judged on its own cells only: a failed record from an earlier sweep
that this one did not ask for is not reported, and one of this sweep's cells that has no
finished record is. A new invocation starts a new manifest (`start_manifest`), also when it
reuses an earlier one's `hydra.sweep.dir`, so the cells an abandoned invocation asked for are
not reported as this one's failures.
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "manifest.jsonl"


def start_manifest(sweep_dir: str) -> None:
    """Called once before a multirun's first job: the manifest of an earlier invocation in the
    same sweep folder is set aside (renamed `manifest.jsonl.previous`), not read as this one's."""
    path = Path(sweep_dir) / MANIFEST
    if path.exists():
        path.replace(path.with_name(MANIFEST + ".previous"))


def record_cells(hashes: list[str]) -> None:
    """Called by a multirun job: appends its run ids to the sweep's manifest."""
    from hydra.core.hydra_config import HydraConfig

    try:
        hc = HydraConfig.get()
    except ValueError:
        return
    if hc.mode.name != "MULTIRUN":
        return
    path = Path(hc.sweep.dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:  # one short line per job, appended
        f.write(json.dumps({"job": hc.job.num, "hashes": hashes}) + "\n")


def sweep_cells(sweep_dir: str) -> set[str] | None:
    """The run ids of this sweep, or None when no job wrote the manifest."""
    path = Path(sweep_dir) / MANIFEST
    if not path.exists():
        return None
    out = set()
    for line in path.read_text().splitlines():
        try:
            out.update(json.loads(line)["hashes"])
        except (json.JSONDecodeError, KeyError):
            continue
    return out
