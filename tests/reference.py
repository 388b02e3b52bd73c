"""Plain-numpy reference labellers: the slow, obviously-right definitions of the tasks."""

from collections import Counter

import numpy as np

from counting.tasks import BOS_ID, NUM_SPECIAL, SEP_ID


def parse(tokens_T: np.ndarray, name: str, n: int, bos: bool, query: str):
    """Splits one sequence into (content indices, query index or None), checking the frame."""
    t = list(tokens_T)
    if bos:
        assert t[0] == BOS_ID
        t = t[1:]
    content = [x - NUM_SPECIAL for x in t[:n]]
    rest = t[n:]
    q = None
    if name == "qc":
        if query == "sep":
            assert rest[0] == SEP_ID
            rest = rest[1:]
        assert len(rest) == 1
        q = rest[0] - NUM_SPECIAL
    else:
        assert rest == []
    return content, q


def expected(tokens_T: np.ndarray, name: str, n: int, bos: bool, query: str):
    """(labels at the answer positions, answer positions) for one sequence."""
    content, q = parse(tokens_T, name, n, bos, query)
    T = len(tokens_T)
    counts = Counter(content)
    if name == "qc":
        return [counts[q]], [T - 1]
    if name == "mfe":
        return [max(counts.values())], [T - 1]
    off = int(bos)
    return [counts[x] for x in content], list(range(off, off + n))


def train_alone(cfg):
    """The unbatched reference loop: one model, no vmap, no devices, no stopping rule, no
    bookkeeping: what "a member trains like the same model alone" is checked against.
    Returns (final params as a plain dict, held-out metrics at the end)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from counting.training.metrics import summarize
    from counting.training.train import init_state, make_chunk, make_eval

    task = make_task_of(cfg)
    graphdef, state, tx = init_state(cfg, task)
    chunk = jax.jit(make_chunk(task, graphdef, tx, cfg.train.batch, cfg.train.total_steps))
    state, _ = chunk(state, jnp.int32(cfg.task.m), jnp.int32(cfg.task.k_eff))
    stats = jax.jit(make_eval(task, graphdef))(state.params, task.eval_set())
    return nnx.to_pure_dict(jax.device_get(state.params)), summarize(stats, cfg.task.eval_size)


def make_task_of(cfg):
    from counting.tasks import make_task

    return make_task(cfg.task)
