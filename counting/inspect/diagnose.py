"""Every diagnostic of one model, as one flat row (the numbers of inspect.csv), and what the
experiment-wide readings need of it (its token-space maps, its embeddings and residuals)."""

from __future__ import annotations

import dataclasses

import numpy as np
from flax import nnx

from counting.config import TaskConfig
from counting.inspect import token_space
from counting.inspect.attention import signature
from counting.inspect.geometry import content_embeddings, geometry
from counting.inspect.interventions import COLUMNS as INTERVENTION_COLUMNS
from counting.inspect.interventions import interventions as intervene
from counting.inspect.label import causal_label, label
from counting.inspect.probes import probes
from counting.inspect.scale import margin, norms
from counting.inspect.seeds import sample_points
from counting.inspect.trace import PROBE_SEQUENCES, trace
from counting.tasks import Task, make_task

DIAGNOSTICS = ("coherence", "welch_bound", "coherence_over_welch", "effective_rank", "effective_rank_over_min_dm",
               "probe_accuracy", "margin", "att_bos", "att_match", "att_other", "match_lift", "other_lift", "match_K",
               "rmse_count_attend", "rmse_uniform", "att_keys", "att_head",
               "probe_count_r2", "probe_inv_count_r2", "probe_hist_r2",
               "norm_embed", "norm_qk", "norm_ov", "norm_mlp", "norm_head", "norm_total", *token_space.COLUMNS)
CAUSAL = ("causal_mechanism", *INTERVENTION_COLUMNS)  # with interventions


@dataclasses.dataclass(frozen=True)
class Reading:
    """Everything read of one model: its row of diagnostics and labels, its token-space maps, its content
    embeddings, and its residual stream at the sampled points (and which are in the first half of the
    sequences)."""

    row: dict  # DIAGNOSTICS, mechanism (and CAUSAL with interventions)
    maps: token_space.Maps
    E_MxD: np.ndarray  # content embeddings
    resid_NxD: np.ndarray  # residual at seeds.sample_points of the analysed positions
    first_half_N: np.ndarray  # whether each of those points is in the first half of the sequences


def read(task_cfg: TaskConfig, model, sequences: int = PROBE_SEQUENCES, task: Task | None = None, batch=None,
         interventions: bool = False) -> Reading:
    """Every reading of `model` (a counting.models.transformer.Transformer or counting.models.behrens.BehrensModel
    for the task: trained, untrained or hand-built; its embedding table may be padded beyond
    m) on the task's held-out sequences (`batch`, default the task's eval set)."""
    task = task or make_task(task_cfg)
    batch = task.eval_set() if batch is None else batch
    graphdef, state = nnx.split(model)
    tr = trace(graphdef, state, task, batch, sequences)
    sig = signature(tr)
    maps = token_space.token_maps(model, task, sig["att_head"])
    row = {**geometry(model, model.cfg.d, task_cfg.m), **margin(tr), **sig, **probes(tr),
           **norms(model, task_cfg.m), **token_space.summary(maps)}
    row = {k: row[k] for k in DIAGNOSTICS}
    row["mechanism"] = label(row)
    if interventions:
        row.update(intervene(graphdef, state, task, batch, sig["att_head"]))
        row["causal_mechanism"] = causal_label(row)
    B, A, D = tr.resid_BxAxD.shape
    points = sample_points(B, A)
    return Reading(row, maps, content_embeddings(model, task_cfg.m), tr.resid_BxAxD.reshape(B * A, D)[points],
                   (points // A) < B // 2)


def diagnose(task_cfg: TaskConfig, model, sequences: int = PROBE_SEQUENCES, task: Task | None = None,
             batch=None, interventions: bool = False) -> dict:
    """The diagnostics of `model` (see `read`), with its mechanism label; with
    `interventions`, the intervention rates and the causal label too."""
    return read(task_cfg, model, sequences, task, batch, interventions).row
