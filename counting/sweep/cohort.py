"""The one training driver's host loop: a cohort of models trained as one XLA program.

A single model is a cohort of one. The numerics (initial state, the compiled chunk and
evaluation programs) are `counting.training.program`; this module is the host's side: after each
evaluation it books every member's metrics, checks its stopping rule (`counting.training.stop`),
checkpoints, and ends when every member has stopped. Nothing here changes a number of a
member: what decides its arithmetic (the program it ran in) is written in its `layout`.

    prepare_cohort  -> Cohort (task, model graph, inputs) and the initial state
    compile_program -> Program (compiled train chunks and evaluation, for N members)
    Members         -> the host's per-member bookkeeping (metrics, logs, stopping rules)
    train_cohort    -> the loop: chunk, evaluate, book, checkpoint
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from counting.config import CohortConfig, RunConfig
from counting.store.checkpoint import CohortCheckpoint
from counting.sweep.plan import shape_key
from counting.sweep.progress import Progress
from counting.sweep.sizes import ahead_sizes, bucket
from counting.tasks import NUM_SPECIAL
from counting.training.halving import Halving
from counting.training.metrics import param_norms, summarize
from counting.training.program import cohort_mesh, compile_program, prepare_cohort, spread
from counting.training.support import Validation, halving_of, make_rule
from counting.training.train import chunk_lengths


@dataclasses.dataclass
class TrainResult:
    """What training one cohort member ended with: its status, steps, final metrics and parameters, timings, why
    it stopped, and the layout of the programs it ran in."""

    status: str  # "complete" | "diverged"
    steps: int  # steps taken (up to and including the first non-finite loss if diverged)
    metrics: dict  # final held-out metrics (the last finite evaluation if diverged)
    params: dict  # final parameters as a plain nested dict (nnx.to_pure_dict)
    compile_s: float
    train_s: float
    diverged_at: int | None = None
    stop_reason: str = "budget"  # target | plateau | budget | diverged | pruned (counting.training.stop)
    layout: dict = dataclasses.field(default_factory=dict)  # the program(s) that produced its arithmetic
    halving: dict | None = None  # under a successive-halving search: its rung and whether it was promoted


def unpad(params, m: int):
    """A member's parameters with the embedding table cut back to its own vocabulary."""
    pure = nnx.to_pure_dict(params)
    pure["embed"]["embedding"] = pure["embed"]["embedding"][: m + NUM_SPECIAL]
    return pure


def member(tree, i: int):
    """Member i's slice of a tree of stacked (cohort) arrays."""
    return jax.tree.map(lambda x: x[i], tree)


class Members:
    """Per member: the last held-out metrics, its metrics log and its stopping rule."""

    def __init__(self, cfgs: list[RunConfig], logs: Sequence[Callable[[dict], None]], validation=None):
        self.cfgs, self.logs, self.validation = cfgs, list(logs), validation
        self.rules = [make_rule(c.train.stop) for c in cfgs]
        self.last: list[dict] = [{} for _ in cfgs]
        self.n_eval = cfgs[0].task.eval_size

    @property
    def active_N(self) -> np.ndarray:
        """Per member, whether it still trains."""
        return np.array([r.active for r in self.rules])

    def summary(self, stats, support, i: int) -> dict:
        """Member i's held-out metrics and, where the cohort watches them, its validation families."""
        out = summarize(member(stats, i), self.n_eval)
        if support is not None:
            out.update(self.validation.summary(member(support, i), i))
        return out

    def first(self, stats, support=None) -> None:
        """The untrained models' metrics (what a member reports if it never finishes a chunk)."""
        self.last = [self.summary(stats, support, i) for i in range(len(self.cfgs))]

    def take(self, done: int, length: int, losses_NxS, stats, params_host, wall_s: float, support=None) -> None:
        """One evaluation after steps done + 1 .. done + length: log and check each active member."""
        step = done + length
        for i, rule in enumerate(self.rules):
            if not rule.active:
                continue
            finite_S = np.isfinite(losses_NxS[i])
            if not finite_S.all():
                at = done + int(np.argmin(finite_S))
                rule.stop("diverged", at + 1)
                self.logs[i]({"step": at + 1, "train_loss": None, "status": "diverged", "diverged_at": at})
                continue
            self.last[i] = self.summary(stats, support, i)
            rule.update(step, self.last[i])
            row = {"step": step, "train_loss": float(losses_NxS[i].mean()), **self.last[i],
                   "param_norms": param_norms(member(params_host, i)), "wall_s": wall_s}
            self.logs[i](row if rule.active else {**row, "stop_reason": rule.reason})

    def meta(self, done: int) -> dict:
        """The host's bookkeeping after `done` steps, JSON-able (for checkpoints)."""
        return {"done": done, "last": self.last, "rules": [r.state() for r in self.rules]}

    def pruned(self, members: list[int], step: int, rung: int) -> None:
        """Logs the stop of members a halving rung pruned."""
        for i in members:
            self.logs[i]({"step": step, "stop_reason": "pruned", "rung": rung})

    def load(self, meta: dict) -> int:
        """Restores the bookkeeping from `meta` and returns the steps done."""
        self.last = meta["last"]
        self.rules = [make_rule(c.train.stop, s) for c, s in zip(self.cfgs, meta["rules"])]
        return meta["done"]

    def results(self, params_host, done: int, compile_s: float, train_s: float,
                layout_of: Callable[[int, int | None], dict], halving: Halving | None = None) -> list[TrainResult]:
        """One TrainResult per member; `layout_of(i, stopped_at)` is member i's layout."""
        out = []
        for i, (cfg, rule) in enumerate(zip(self.cfgs, self.rules)):
            if rule.active:
                rule.stop("budget", done)
            params = unpad(member(params_host, i), cfg.task.m)
            diverged = rule.reason == "diverged"
            out.append(TrainResult(
                "diverged" if diverged else "complete", rule.stopped_at,
                {**self.last[i], "param_norms": param_norms(params)}, params, compile_s, train_s,
                rule.stopped_at - 1 if diverged else None, rule.reason, layout_of(i, rule.stopped_at),
                None if halving is None else halving.record(i)))
        return out


SETTINGS = CohortConfig()  # the defaults of the cohort settings: written once, in counting.config


def first_rows(N: int, devices: int) -> list[int]:
    """The first program's rows: every member once and, when N > 1 members do not divide over
    the devices, pad rows (member 0 again, inactive) up to the next multiple, so that the
    cohort runs on every device: 33 members on a 2-core CPU would otherwise all stay on one
    device (counting.training.program.cohort_mesh) and leave the other core idle."""
    pad = -N % devices if N > 1 else 0
    return list(range(N)) + [0] * pad


def writable(tree):
    """A host copy of a tree of arrays whose leaves can be written in place."""
    return jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(tree))


class Packing:
    """Which members the program runs now (`rows`: a member index per program row; a pad row
    repeats a stopped member, which stays inactive), the programs compiled so far by size, and
    every member's latest state on the host (`full`), where members that left keep theirs.
    `segments` says which program each stretch of steps ran in: what decides a member's
    arithmetic after compaction (written in its layout)."""

    def __init__(self, cohort, state, settings: CohortConfig = SETTINGS):
        self.cohort, self.per_call, self.compact, self.sizes = (cohort, settings.per_call, settings.compact,
                                                                settings.compact_sizes)
        self.N = len(cohort.cfgs)
        self.full = writable(state)
        self.programs: dict[int, tuple] = {}
        self.compile_s = 0.0  # what training waited for compiles (a program compiled ahead: only the wait)
        self.ahead_s = 0.0  # compile time spent in the background, beside training
        self.segments: list[dict] = []
        self.rows = list(range(self.N))
        ahead = settings.compile_ahead  # null: only where the host's cores are free while the devices train
        self.ahead = settings.compact and (jax.default_backend() != "cpu" if ahead is None else ahead)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future] = {}

    def place(self, rows: list[int], step: int, record: bool = True):
        """(state, program, inputs, mesh) for the members at `rows`, from the host's latest
        states; `record`: a new segment starts at `step` (not when resuming inside one)."""
        self.rows = rows
        mesh = cohort_mesh(len(rows))
        state = spread(jax.tree.map(lambda x: np.asarray(x)[np.asarray(rows)], self.full), mesh)
        inputs = self.cohort.inputs(rows, mesh)
        if len(rows) not in self.programs and len(rows) in self._pending:  # compiled ahead (or compiling now)
            t0 = time.perf_counter()
            self.programs[len(rows)] = self._pending.pop(len(rows)).result()
            self.compile_s += time.perf_counter() - t0
            self.ahead_s += self.programs[len(rows)][0].compile_s
        if len(rows) not in self.programs:
            program = compile_program(self.cohort, state, inputs, mesh, self.per_call)
            self.compile_s += program.compile_s
            self.programs[len(rows)] = (program, mesh)
        program, mesh = self.programs[len(rows)]
        if record:
            self.segments.append({"from_step": step, **program.layout})
        return state, program, inputs, mesh

    def _compile(self, size: int) -> tuple:
        """(program, mesh) for `size` rows, compiled from placeholder states and inputs of the
        program's shapes and placement: the same program `place` would compile for them."""
        mesh = cohort_mesh(size)
        state = spread(jax.tree.map(lambda x: np.zeros((size,) + x.shape[1:], x.dtype), self.full), mesh)
        return compile_program(self.cohort, state, self.cohort.inputs([0] * size, mesh), mesh, self.per_call), mesh

    def look_ahead(self, active: int, devices: int) -> None:
        """Compiles, in a background thread, the AHEAD (counting.sweep.sizes) largest program sizes
        that a compaction of `active` members can still reach (smaller than the program now, not
        compiled yet), so that a compaction does not wait for its compile; sizes no longer
        reachable are dropped. It changes no number: which program runs is decided by the
        members' stops alone, never by when a compile finishes."""
        if not self.ahead or self.programs[len(self.rows)][0].layout["members_per_call"] < 2:
            return
        reach = ahead_sizes(active, len(self.rows), set(self.programs), devices, self.sizes)
        for size in [s for s in self._pending if s not in reach]:
            if self._pending[size].cancel():  # not started: dropped (one running finishes, unused)
                del self._pending[size]
        if self._pool is None and reach:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="compile-ahead")
        for size in reach:
            if size not in self._pending:
                self._pending[size] = self._pool.submit(self._compile, size)

    def close(self) -> None:
        """Drops the compiles not started (a running one finishes in its thread, unused)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool, self._pending = None, {}

    def keep(self, state) -> None:
        """Copies the program's states back into `full` (pad rows skipped)."""
        host = jax.device_get(state)
        seen = set()
        for r, i in enumerate(self.rows):
            if i in seen:
                continue
            seen.add(i)
            for leaf_full, leaf in zip(jax.tree.leaves(self.full), jax.tree.leaves(host)):
                leaf_full[i] = leaf[r]

    def wanted(self, active_N: np.ndarray, devices: int) -> list[int] | None:
        """The rows of a smaller program when compaction pays (something runs vmapped and
        fewer rows would hold the active members), else None."""
        active = [i for i in range(self.N) if active_N[i]]
        program = self.programs[len(self.rows)][0]
        if not self.compact or not active or program.layout["members_per_call"] < 2:
            return None
        size = bucket(len(active), devices, self.sizes)
        if size >= len(self.rows):
            return None
        pad = next(i for i in range(self.N) if not active_N[i])
        return active + [pad] * (size - len(active))

    def scatter(self, tree_R, fill=0):
        """A per-row tree (losses, stats, parameters) as a per-member one (members not in the
        program get `fill`: they are inactive, and nothing reads them)."""
        def one(x_R):
            x_R = np.asarray(x_R)
            out = np.full((self.N,) + x_R.shape[1:], fill, x_R.dtype)
            for r, i in reversed(list(enumerate(self.rows))):  # a member's own row wins over its pads
                out[i] = x_R[r]
            return out
        return jax.tree.map(one, tree_R)

    def layout_of(self, i: int, stopped_at: int | None) -> dict:
        """The program(s) member i ran in: the first one's layout and, after a compaction, every
        segment it trained in."""
        first = {k: v for k, v in self.segments[0].items() if k != "from_step"}
        mine = [seg for seg in self.segments if stopped_at is None or seg["from_step"] < stopped_at]
        return first if len(mine) <= 1 else {**first, "segments": mine}


def train_cohort(
    cfgs: Sequence[RunConfig],
    logs: Sequence[Callable[[dict], None]] | None = None,
    progress: Progress | None = None,
    checkpoint: CohortCheckpoint | None = None,
    settings: CohortConfig = SETTINGS,
) -> list[TrainResult]:
    """Trains members that share a shape key as one program; one TrainResult per member,
    with parameters in the member's own (unpadded) shapes. With a checkpoint, the loop saves
    at every evaluation and starts from the latest one if there is one. `settings` (the
    job's `cohort` section; its axes are not read here): `per_call` members vmapped together
    on a device (default: `program.members_per_call`); with `compact`, when members have
    stopped, the others continue in a smaller program (sizes: `bucket` with the rule
    `compact_sizes`, a key of counting.sweep.sizes.SIZES), so that stopped members no longer cost compute under vmap; each record's layout says which
    programs its member ran in. With `compile_ahead`, the sizes a compaction can reach next
    compile in a background thread while the cohort trains (Packing.look_ahead)."""
    cfgs = list(cfgs)
    if len({shape_key(c) for c in cfgs}) != 1:
        raise ValueError("a cohort's members must share every value but m, k, seed, lr and weight_decay")
    shared, N = cfgs[0], len(cfgs)
    t0 = time.perf_counter()
    cohort, state = prepare_cohort(cfgs)
    pack = Packing(cohort, state, settings)
    validation = Validation.of(cohort)  # the in-support validation families, where a member watches them
    book = Members(cfgs, logs if logs is not None else [lambda row: None] * N, validation)
    halving = halving_of(cfgs)
    total = shared.train.total_steps
    devices = len(jax.local_devices())
    done, rows = 0, first_rows(N, devices)
    restored = checkpoint.restore(pack.full) if checkpoint is not None else None
    if restored is not None:  # every member's state, the program's rows and its segments so far
        full, meta = restored
        pack.full = writable(full)
        done = book.load(meta)
        rows, pack.segments = meta.get("rows", rows), meta.get("segments", [])
        if halving is not None:
            halving.load(meta["halving"])
    state, program, inputs, mesh = pack.place(rows, done, record=restored is None or not pack.segments)
    prepare_s = time.perf_counter() - t0 - pack.compile_s
    first_compile_s = pack.compile_s

    t0 = time.perf_counter()
    if progress is not None:
        progress.start()
        if restored is not None:
            progress.update(N * done)
    if restored is None:
        support = None if validation is None else validation.evaluate(state.params, pack.rows, mesh)
        stats, support = jax.device_get((program.evaluate(state.params, inputs.eval_N), support))
        book.first(pack.scatter(stats), None if support is None else pack.scatter(support))
    try:
        for length in chunk_lengths(total - done, shared.train.eval_every):
            active_N = book.active_N
            if not active_N.any():
                break
            rows = pack.wanted(active_N, devices)
            if rows is not None:  # compaction: the active members continue in a smaller program
                pack.keep(state)
                state, program, inputs, mesh = pack.place(rows, done)
            pack.look_ahead(int(active_N.sum()), devices)
            active_R = spread(jnp.asarray(active_N[np.asarray(pack.rows)] & _first_rows(pack.rows)), mesh)
            state, losses_RxS = program.chunks[length](state, inputs.m_N, inputs.k_N, active_R)
            stats = program.evaluate(state.params, inputs.eval_N)  # dispatched before the host reads anything
            support = None if validation is None else validation.evaluate(state.params, pack.rows, mesh)
            losses_RxS, stats, params_host, support = jax.device_get((losses_RxS, stats, state.params, support))  # one transfer
            book.take(done, length, pack.scatter(losses_RxS), pack.scatter(stats), pack.scatter(params_host),
                      time.perf_counter() - t0, None if support is None else pack.scatter(support))
            done += length
            if halving is not None:  # a rung reached: the losing settings of each cell stop (pruned)
                book.pruned(halving.after(done, book), done, halving.applied)
            if checkpoint is not None and done < total and book.active_N.any():
                pack.keep(state)
                extra = {"rows": pack.rows, "segments": pack.segments}
                if halving is not None:
                    extra["halving"] = halving.state()
                checkpoint.save(done, pack.full, {**book.meta(done), **extra})
            if progress is not None:
                progress.update(int(active_N.sum()) * length)
    finally:
        pack.close()  # no compile left running for a cohort that ended (or failed)
    if progress is not None:
        progress.finish()
    pack.keep(state)
    train_s = time.perf_counter() - t0 - (pack.compile_s - first_compile_s)  # recompiles after compaction are compile time
    return book.results(pack.full.params, done, prepare_s + pack.compile_s, train_s, pack.layout_of, halving)


def _first_rows(rows: list[int]) -> np.ndarray:
    """True at each member's first row (its pads, later rows of the same member, stay inactive)."""
    seen, out = set(), []
    for i in rows:
        out.append(i not in seen)
        seen.add(i)
    return np.array(out)
