"""Writing and reading the files of a run's folder (their names and layout: counting.store).

Every file is written atomically (temporary file in the same folder, then `os.replace`), and
`record.json` is written last: a folder without it, or with a status other than complete or
diverged, is an unfinished run that will be trained again. Parameters go through Orbax
(imported only by the functions that need it, as is JAX: readers of tables stay light).
"""

from __future__ import annotations

import json
import platform
import shutil
from importlib import metadata
from pathlib import Path

from counting.store import METRICS, PARAMS
from counting.store.atomic import atomic_write_text


class MetricsLog:
    """Appends one JSON line per evaluation. A fresh attempt starts a fresh log; one that
    resumes from a checkpoint at step `resume_at` keeps the rows up to that step."""

    def __init__(self, folder: Path, resume_at: int | None = None):
        self.path = Path(folder) / METRICS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_at is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= resume_at:
                        kept.append(line + "\n")
                except (json.JSONDecodeError, KeyError):
                    pass  # a line cut short by a kill
        atomic_write_text(self.path, "".join(kept))

    def __call__(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")


def save_params(folder: Path, params: dict) -> None:
    """Final parameters (a plain nested dict) through Orbax, which writes atomically."""
    import orbax.checkpoint as ocp

    from counting.store.checkpoint import quiet_orbax

    target = Path(folder).resolve() / PARAMS
    if target.exists():
        shutil.rmtree(target)
    with quiet_orbax(), ocp.StandardCheckpointer() as ckptr:
        ckptr.save(target, params)
        ckptr.wait_until_finished()


def load_params(folder: Path, abstract_params):
    """Restores parameters saved by `save_params` into the structure of `abstract_params`."""
    import orbax.checkpoint as ocp
    from flax import nnx

    with ocp.StandardCheckpointer() as ckptr:
        pure = ckptr.restore(Path(folder).resolve() / PARAMS, nnx.to_pure_dict(abstract_params))
    nnx.replace_by_pure_dict(abstract_params, pure)
    return abstract_params


def versions() -> dict[str, str]:
    """The versions of Python and the numerics packages (jax, jaxlib, flax, optax, orbax-checkpoint, numpy,
    hydra-core, those installed), and JAX's backend and first device kind."""
    import jax

    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "hydra-core"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    out["backend"] = jax.default_backend()
    out["device"] = str(jax.devices()[0].device_kind)
    return out
