"""Evaluation of saved models: out of distribution (other lengths n' and more distinct tokens
k') and on the worst-case test families (counting.tasks.families: exact counting).

A trained run is reloaded from its folder (config.json + Orbax params) and scored on the
held-out set of the same task at a changed n or k (same sampler, eval_size and eval_seed, so
the training point itself reproduces the record's accuracy exactly). Its head has n + 1
classes; counts above n cannot be answered and count as wrong. Models whose positional
scheme cannot reach length n' (learned positions) get status "unsupported" for that point.

Results go to `runs/<hash>/ood.json` per model (written atomically; points already there are
not recomputed) and to `results/<experiment>/ood.csv`: the columns of table.csv (the
training config) plus eval_n, eval_k, eval_status and the metrics at that point.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from counting.config import OODConfig, RunConfig, TaskConfig
from counting.runtime.xla import jit
from counting.store import FAMILIES, FAMILY_TABLE, OOD, OOD_TABLE, Store, write_table
from counting.store.aggregate import LEAD, row_of
from counting.store.atomic import atomic_write_json
from counting.store.record import load_params
from counting.tasks import NUM_SPECIAL, Task, make_task
from counting.training.metrics import count_stats, summarize
from counting.training.train import build_model


@dataclasses.dataclass(frozen=True)
class EvalPoint:
    """One evaluation point: the length n and the distinct tokens k per sequence."""

    n: int
    k: int  # distinct tokens allowed per sequence (resolved: never None)


def eval_points(cfg: RunConfig, n_values: Sequence[int] = (), k_values: Sequence[int] = ()) -> list[EvalPoint]:
    """Length points (each n' at the training k) then vocabulary points (each k' at the
    training n); k' above m is dropped (no such sequences exist)."""
    t = cfg.task
    pts = [EvalPoint(int(n), t.k_eff) for n in n_values] + [EvalPoint(t.n, int(k)) for k in k_values if int(k) <= t.m]
    return list(dict.fromkeys(pts))


def task_at(cfg: TaskConfig, point: EvalPoint) -> TaskConfig:
    """The task cfg at the point's n and k (k unset when it equals m)."""
    return dataclasses.replace(cfg, n=point.n, k=None if point.k == cfg.m else point.k)


def pad_classes(logits_BxAxC: jax.Array, C: int) -> jax.Array:
    """Adds never-chosen classes up to C (the model cannot answer counts above its n)."""
    extra = C - logits_BxAxC.shape[-1]
    if extra <= 0:
        return logits_BxAxC
    fill_BxAxE = jnp.full(logits_BxAxC.shape[:-1] + (extra,), -jnp.inf, logits_BxAxC.dtype)
    return jnp.concatenate([logits_BxAxC, fill_BxAxE], axis=-1)


class Evaluator:
    """Caches compiled forwards and held-out sets across the models of a sweep.

    Every model's embedding table is padded to `vocab` rows (the largest of the sweep; padded
    rows are never looked up), so models that differ only in m share one compiled forward per
    evaluation length, and held-out sets are drawn by one compiled sampler per task shape
    (no draw depends on the table's size, as in a cohort).
    """

    def __init__(self, vocab: int | None = None):
        self.vocab = vocab
        self._tasks: dict[TaskConfig, Task] = {}
        self._batches: dict[TaskConfig, object] = {}
        self._fns: dict[tuple, Callable] = {}

    def task(self, cfg: TaskConfig) -> Task:
        """The Task of cfg, made once."""
        if cfg not in self._tasks:
            self._tasks[cfg] = make_task(cfg)
        return self._tasks[cfg]

    @staticmethod
    def shape_of(cfg: TaskConfig) -> TaskConfig:
        """The task with the values of m and k taken out (they are traced arguments of its
        sampler); whether k limits the tokens of a sequence stays (it picks the sampler)."""
        return dataclasses.replace(cfg, m=2, k=None if cfg.k is None else 2)

    def batch(self, cfg: TaskConfig):
        """The held-out set of cfg: identical to make_task(cfg).eval_set()."""
        if cfg not in self._batches:
            shape = self.shape_of(cfg)
            key = jax.random.PRNGKey(cfg.eval_seed)
            self._batches[cfg] = self.task(shape).sample_jit(key, cfg.eval_size, cfg.m, cfg.k_eff)
        return self._batches[cfg]

    def stats_fn(self, run: RunConfig, graphdef, task: Task) -> Callable:
        """The compiled count statistics of a model of `run` on batches of `task` (logits padded to the larger
        of the two class counts), one per model config, training n and task shapes."""
        at_A = task.answer_positions
        C = max(task.num_classes, run.task.n + 1)
        key = (run.model, run.task.n, self.shape_of(run.task), self.shape_of(task.cfg))
        if key not in self._fns:
            def stats(params, batch):
                logits_BxAxC = nnx.merge(graphdef, params)(batch.tokens_BxT, at_A)
                return count_stats(pad_classes(logits_BxAxC, C), batch, at_A)

            self._fns[key] = jit(stats)
        return self._fns[key]

    def load(self, folder: Path, cfg: RunConfig) -> tuple[object, object]:
        """(graphdef, params) of the finished run of cfg, the embedding padded to `vocab` rows."""
        task = self.task(cfg.task)
        build = lambda M: nnx.split(nnx.eval_shape(lambda: build_model(cfg, task, jax.random.PRNGKey(0), M)), nnx.Param)
        pure = nnx.to_pure_dict(load_params(folder, build(None)[1]))
        V = max(self.vocab or 0, task.vocab_size())
        emb_VxD = pure["embed"]["embedding"]
        pure["embed"]["embedding"] = jnp.pad(emb_VxD, ((0, V - emb_VxD.shape[0]), (0, 0)))
        graphdef, params = build(V - NUM_SPECIAL)
        nnx.replace_by_pure_dict(params, pure)
        return graphdef, params

    def point(self, cfg: RunConfig, graphdef, params, point: EvalPoint) -> dict:
        """One evaluation record: status, and metrics when the model can be run there."""
        out = {"n": point.n, "k": point.k}
        t_cfg = task_at(cfg.task, point)
        if cfg.model.pos == "learned" and point.n > cfg.task.n:
            return {**out, "status": "unsupported",
                    "error": f"model.pos=learned covers n <= {cfg.task.n}; n'={point.n} needs none, sinusoidal or rope"}
        task = self.task(t_cfg)
        batch = self.batch(t_cfg)
        metrics = summarize(self.stats_fn(cfg, graphdef, task)(params, batch), t_cfg.eval_size)
        right, total = np.array(metrics["accuracy_per_count"], dtype=float), np.array(metrics["count_support"])
        seen = total[: cfg.task.n + 1]
        with np.errstate(invalid="ignore"):
            metrics["accuracy_seen_counts"] = float(np.nansum(right[: cfg.task.n + 1] * seen) / max(seen.sum(), 1))
        return {**out, "status": "complete", "metrics": metrics}


def evaluate_run(folder: Path, cfg: RunConfig, n_values: Sequence[int], k_values: Sequence[int],
                 evaluator: Evaluator) -> dict:
    """Evaluates the run of cfg in folder at every point not yet in its ood.json; returns the
    file's content."""
    path = Path(folder) / OOD
    done = read_ood(path)
    have = {(p["n"], p["k"]) for p in done["points"]}
    todo = [p for p in eval_points(cfg, n_values, k_values) if (p.n, p.k) not in have]
    if todo:
        graphdef, params = evaluator.load(folder, cfg)
        done["points"] += [evaluator.point(cfg, graphdef, params, p) for p in todo]
        done["points"].sort(key=lambda p: (p["n"], p["k"]))
        atomic_write_json(path, done)
    return done


def read_ood(path: Path) -> dict:
    """The content of an ood.json, or an empty one (the folder's hash, no points) when it is missing or not
    JSON."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"hash": path.parent.name, "points": []}


def finished_runs(results_dir: str | Path, experiment: str) -> tuple[dict[Path, dict], Evaluator]:
    """folder -> record of every finished run of the experiment (the store's run folders), and
    an Evaluator whose padded vocabulary holds the largest m among them."""
    records = Store(results_dir, experiment).finished()
    vocab = max((r["config"]["task"]["m"] for r in records.values()), default=0) + NUM_SPECIAL
    return records, Evaluator(vocab)


def evaluate_experiment(results_dir: str | Path, experiment: str, grid: OODConfig,
                        log: Callable[[str], None] = print) -> tuple[Path, list[dict]]:
    """Every finished run of the experiment at the grid; writes results/<experiment>/ood.csv."""
    n_values, k_values = grid.n, grid.k
    root = Path(results_dir) / experiment
    rows = []
    records, evaluator = finished_runs(results_dir, experiment)
    for i, (folder, record) in enumerate(records.items()):
        base = row_of(record, folder)
        try:
            ood = evaluate_run(folder, RunConfig.from_record(record["config"]), n_values, k_values, evaluator)
        except Exception as err:  # one broken run does not stop the others
            log(f"ood {experiment}: {folder.name} failed: {type(err).__name__}: {err}")
            rows.append({**base, "eval_status": "failed", "error": f"{type(err).__name__}: {err}"})
            continue
        for p in ood["points"]:
            m = p.get("metrics", {})
            rows.append({**base, "eval_n": p["n"], "eval_k": p["k"], "eval_status": p["status"],
                         "accuracy": m.get("accuracy"), "baseline_accuracy": m.get("baseline_accuracy"),
                         "seq_accuracy": m.get("seq_accuracy"), "loss": m.get("loss"),
                         "accuracy_seen_counts": m.get("accuracy_seen_counts"), "error": p.get("error", "")})
        if (i + 1) % 10 == 0 or i + 1 == len(records):
            log(f"ood {experiment}: {i + 1}/{len(records)} models evaluated")
    path = root / OOD_TABLE
    write_table(path, rows, LEAD + ["eval_n", "eval_k", "eval_status", "accuracy_seen_counts"])
    return path, rows


def family_batch(task: Task, content, size: int, start: int = 0):
    """Rows start..start+size of a family's sequences, framed and labelled by the task, padded to
    `size` rows (padding masked out), so that every family of a model shape runs one compiled
    forward; (batch, real rows)."""
    from counting.tasks import Batch

    x_BxN, q_B = content.x_BxN[start:start + size], content.q_B[start:start + size]
    B = len(x_BxN)
    pad = size - B
    x_BxN = np.concatenate([x_BxN, np.repeat(x_BxN[:1], pad, axis=0)]) if pad else x_BxN
    q_B = np.concatenate([q_B, np.repeat(q_B[:1], pad)]) if pad else q_B
    batch = task.batch_of(jnp.asarray(x_BxN, jnp.int32), jnp.asarray(q_B, jnp.int32))
    real_Bx1 = jnp.asarray(np.arange(size) < B)[:, None]
    return Batch(batch.tokens_BxT, batch.labels_BxT, batch.mask_BxT & real_Bx1), B


def family_stats(stats: Callable, params, task: Task, content, size: int) -> dict:
    """A family's summary over all its sequences, `size` rows per forward (an enumerated family
    can hold more than one batch)."""
    total = None
    rows = len(content.q_B)
    for start in range(0, rows, size):
        batch, real = family_batch(task, content, size, start)
        part = {k: np.asarray(v, np.float64 if k == "loss" else np.int64) for k, v in jax.device_get(stats(params, batch)).items()}
        part["loss"] = part["loss"] * real
        total = part if total is None else {k: total[k] + part[k] for k in total}
    total["loss"] = total["loss"] / max(rows, 1)
    return summarize(total, rows)


def evaluate_families(folder: Path, cfg: RunConfig, evaluator: Evaluator, size: int, seed: int) -> dict:
    """The run's accuracy on every family (runs/<hash>/families.json; reused when it was
    evaluated at the same size and seed by this version of the families), each with its
    support label; `worst` is the worst in-support family, `worst_off` the worst off-support one."""
    from counting.tasks.families import VERSION, family_content, support_of, worst_of, worst_split

    path = Path(folder) / FAMILIES
    try:
        done = json.loads(path.read_text())
        if (done.get("size"), done.get("seed"), done.get("version", 1)) == (size, seed, VERSION):
            return done
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    graphdef, params = evaluator.load(folder, cfg)
    embed = np.asarray(nnx.to_pure_dict(params)["embed"]["embedding"])[NUM_SPECIAL: NUM_SPECIAL + cfg.task.m]
    task = evaluator.task(cfg.task)
    stats = evaluator.stats_fn(cfg, graphdef, task)
    out = {}
    for name, content in family_content(cfg.task, embed, size, seed).items():
        m = family_stats(stats, params, task, content, size)
        rows = len(content.q_B)
        out[name] = {"accuracy": m["accuracy"], "sequences": rows, "wrong": rows - round(m["accuracy"] * rows)
                     if task.answer_positions == (task.length - 1,) else None,
                     "in_support": support_of(cfg.task, name), "accuracy_per_count": m["accuracy_per_count"],
                     "count_support": m["count_support"]}
    accuracy = {k: v["accuracy"] for k, v in out.items()}
    done = {"hash": path.parent.name, "size": size, "seed": seed, "version": VERSION, "families": out,
            **worst_split(cfg.task, accuracy), "worst_all": worst_of(accuracy)}
    atomic_write_json(path, done)
    return done


def families_experiment(results_dir: str | Path, experiment: str, size: int, seed: int,
                        log: Callable[[str], None] = print) -> tuple[Path, list[dict]]:
    """Every finished run of the experiment on the families; writes <experiment>/families.csv
    (one row per model and family). table.csv gets `worst` and `family.<name>` from the
    runs' families.json at its next aggregation."""
    root = Path(results_dir) / experiment
    records, evaluator = finished_runs(results_dir, experiment)
    rows = []
    for i, (folder, record) in enumerate(records.items()):
        base = row_of(record, folder)
        try:
            done = evaluate_families(folder, RunConfig.from_record(record["config"]), evaluator, size, seed)
        except Exception as err:  # one broken run does not stop the others
            log(f"families {experiment}: {folder.name} failed: {type(err).__name__}: {err}")
            continue
        for name, f in done["families"].items():
            rows.append({**base, "family": name, "accuracy": f["accuracy"], "sequences": f["sequences"],
                         "wrong": f.get("wrong"), "in_support": f.get("in_support"), "worst": done["worst"],
                         "worst_off": done.get("worst_off")})
        if (i + 1) % 20 == 0 or i + 1 == len(records):
            log(f"families {experiment}: {i + 1}/{len(records)} models evaluated")
    path = root / FAMILY_TABLE
    write_table(path, rows, LEAD + ["family", "in_support", "sequences", "wrong", "worst", "worst_off"])
    return path, rows
