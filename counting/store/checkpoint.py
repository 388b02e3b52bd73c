"""Mid-training checkpoints of a cohort, through Orbax's CheckpointManager.

Saved at every evaluation (chunk boundary): the stacked TrainState (parameters, optimiser
states, data keys, step) and a small JSON of loop state. A requeued or restarted job
restores the latest and continues on the same trajectory (the data keys are in the state).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import jax
import orbax.checkpoint as ocp


@contextlib.contextmanager
def quiet_orbax():
    """Orbax writes from threads of its own: when a write fails (a full disk) they log and
    print tracebacks of their own beside the exception the caller gets. Inside this block
    their output is held back (absl's log, and the process's stderr), shown afterwards when
    the block succeeded and dropped when it raised: the caller reports the failure once."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.CRITICAL)
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    held: list[bytes] = []
    reader = threading.Thread(target=lambda: held.extend(iter(lambda: os.read(read_fd, 65536), b"")), daemon=True)
    reader.start()
    os.dup2(write_fd, 2)
    ok = False
    try:
        yield
        ok = True
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write_fd)
        reader.join(timeout=5)
        os.close(read_fd)
        absl.setLevel(level)
        if ok and held:
            sys.stderr.write(b"".join(held).decode(errors="replace"))


class CohortCheckpoint:
    """A cohort chunk's checkpoint folder: the latest stacked TrainState and loop state (one kept), saved
    synchronously through Orbax."""

    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()

    def _manager(self) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
        return ocp.CheckpointManager(self.path, options=options)

    def latest_step(self) -> int | None:
        """The step of the latest checkpoint, or None when there is none."""
        if not self.path.exists():
            return None
        with self._manager() as mngr:
            return mngr.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        """Saves the state and the loop state `meta` at `step`, waiting until they are written (Orbax's own
        output held back, see `quiet_orbax`)."""
        with quiet_orbax(), self._manager() as mngr:
            mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
            mngr.wait_until_finished()

    def restore(self, like_state) -> tuple[object, dict] | None:
        """(state, meta) from the latest checkpoint, shaped and placed like `like_state`."""
        step = self.latest_step()
        if step is None:
            return None
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        with self._manager() as mngr:
            out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return out["state"], out["meta"]

    def clear(self) -> None:
        """Deletes the checkpoint folder."""
        shutil.rmtree(self.path, ignore_errors=True)
