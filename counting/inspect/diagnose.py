"""Every diagnostic of one model, as one flat row (the numbers of inspect.csv)."""

from __future__ import annotations

from flax import nnx

from counting.config import TaskConfig
from counting.inspect.attention import signature
from counting.inspect.geometry import geometry
from counting.inspect.label import label
from counting.inspect.probes import probes
from counting.inspect.scale import margin, norms
from counting.inspect.trace import PROBE_SEQUENCES, trace
from counting.tasks import Task, make_task

DIAGNOSTICS = ("coherence", "welch_bound", "coherence_over_welch", "effective_rank", "effective_rank_over_min_dm",
               "probe_accuracy", "margin", "att_bos", "att_match", "att_other", "match_lift", "other_lift", "match_K",
               "rmse_count_attend", "rmse_uniform", "att_keys", "att_head",
               "probe_count_r2", "probe_inv_count_r2", "probe_hist_r2",
               "norm_embed", "norm_qk", "norm_ov", "norm_mlp", "norm_head", "norm_total")


def diagnose(task_cfg: TaskConfig, model, sequences: int = PROBE_SEQUENCES, task: Task | None = None,
             batch=None) -> dict:
    """The diagnostics of `model` (any counting.model.Transformer for the task: trained,
    untrained or hand-built; its embedding table may be padded beyond m) on the task's
    held-out sequences (`batch`, default the task's eval set), with its mechanism label."""
    task = task or make_task(task_cfg)
    batch = task.eval_set() if batch is None else batch
    graphdef, state = nnx.split(model)
    tr = trace(graphdef, state, task, batch, sequences)
    row = {**geometry(model, model.cfg.d, task_cfg.m), **margin(tr), **signature(tr), **probes(tr),
           **norms(model, task_cfg.m)}
    row = {k: row[k] for k in DIAGNOSTICS}
    row["mechanism"] = label(row)
    return row
