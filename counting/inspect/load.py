"""Finding an experiment's saved models and loading them back, one clear line per failure.

A model folder results/<experiment>/runs/<hash>/ holds record.json (config and status) and
the Orbax parameters. Folders without a record (a model still training) are skipped; a
finished record whose parameters are missing or unreadable, or a record that is not JSON,
is reported as one line and the other models are still inspected.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

from counting.config import ConfigError, RunConfig
from counting.store import FINISHED, RECORD, RUNS, Store


class InspectError(ValueError):
    """An experiment or model that cannot be inspected: one line naming it and why."""


@dataclasses.dataclass(frozen=True)
class SavedModel:
    """A finished model of the store: its run folder, its record and its config."""

    folder: Path
    record: dict
    cfg: RunConfig


def saved_models(results_dir: str | Path, experiment: str) -> Iterator[SavedModel | InspectError]:
    """Every finished model of the experiment, in folder order; an InspectError in place of
    a model whose record cannot be read. Raises InspectError when there is none at all."""
    runs = Store(results_dir, experiment).root / RUNS
    folders = sorted(p for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []
    found = 0
    for folder in folders:
        path = folder / RECORD
        if not path.exists():
            continue  # still training, or never started
        try:
            record = json.loads(path.read_text())
            if record.get("status") not in FINISHED:
                continue
            cfg = RunConfig.from_record(record["config"])
        except (json.JSONDecodeError, ConfigError, KeyError, TypeError) as err:
            found += 1
            yield InspectError(f"{folder.name}: unreadable record.json ({type(err).__name__}: {err})")
            continue
        found += 1
        yield SavedModel(folder, record, cfg)
    if not found:
        raise InspectError(f"experiment: {runs} holds no finished models (train them first: "
                           f"counting-train -m experiment={experiment})")


def load_model(evaluator, model: SavedModel):
    """(graphdef, params) through the OOD evaluator's loader (embedding padded to the sweep's
    vocabulary, so models that differ only in m share one compiled forward)."""
    try:
        return evaluator.load(model.folder, model.cfg)
    except Exception as err:  # Orbax raises many kinds; each becomes one line
        msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
        why = f"{type(err).__name__}: {msg[:200]}"
        raise InspectError(f"{model.folder.name}: missing or corrupt checkpoint ({why})") from err
