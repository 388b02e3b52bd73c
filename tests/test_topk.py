"""Top-k attention (model.attention=topk) against a dense numpy reference loop."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from counting.config import ConfigError, ModelConfig, RunConfig
from counting.models.transformer import Attention


def reference_topk(q_AxK: np.ndarray, k_TxK: np.ndarray, allowed_AxT: np.ndarray, topk: int) -> np.ndarray:
    """att_AxT by a plain loop: per query, the allowed scores at least its topk-th largest
    allowed score (ties at it all kept), softmax over those, 0 elsewhere."""
    A, T = allowed_AxT.shape
    att = np.zeros((A, T))
    for a in range(A):
        idx = [t for t in range(T) if allowed_AxT[a, t]]
        s = {t: float(q_AxK[a] @ k_TxK[t]) / math.sqrt(q_AxK.shape[1]) for t in idx}
        kth = sorted(s.values(), reverse=True)[min(topk, len(idx)) - 1]
        keep = [t for t in idx if s[t] >= kth]
        z = max(s[t] for t in keep)
        total = sum(math.exp(s[t] - z) for t in keep)
        for t in keep:
            att[a, t] = math.exp(s[t] - z) / total
    return att


def attention(d=8, H=1, causal=False, topk=3, seed=0):
    cfg = ModelConfig(d=d, H=H, causal=causal, attention="topk", topk=topk, pos="none")
    return Attention(cfg, nnx.Rngs(params=seed))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("topk", [1, 2, 5, 9, 20])
def test_topk_matches_the_dense_reference(causal, topk):
    T, d = 9, 8
    attn = attention(d=d, causal=causal, topk=topk)
    x_BxTxD = jax.random.normal(jax.random.PRNGKey(1), (3, T, d))
    att_BxHxAxT = np.asarray(attn.weights(x_BxTxD))
    q_BxTxD, k_BxTxD = np.asarray(attn.query(x_BxTxD), np.float64), np.asarray(attn.key(x_BxTxD), np.float64)
    allowed_AxT = np.tril(np.ones((T, T), bool)) if causal else np.ones((T, T), bool)
    for b in range(3):
        np.testing.assert_allclose(att_BxHxAxT[b, 0], reference_topk(q_BxTxD[b], k_BxTxD[b], allowed_AxT, topk),
                                   rtol=1e-5, atol=1e-6)
    kept_BxA = (att_BxHxAxT[:, 0] > 0).sum(-1)
    assert (kept_BxA == np.minimum(topk, allowed_AxT.sum(-1))[None]).all(), "random scores never tie"


def test_topk_keeps_every_tie_at_the_kth_score():
    """Equal keys tie: with topk = 2 and four equal top scores, all four are kept, equally."""
    attn = attention(d=4, topk=2)
    x_1xTxD = jnp.asarray(np.array([[[1.0, 0, 0, 0]] * 4 + [[0, 1.0, 0, 0]] * 3]))
    att_AxT = np.asarray(attn.weights(x_1xTxD))[0, 0]
    q, k = np.asarray(attn.query(x_1xTxD))[0], np.asarray(attn.key(x_1xTxD))[0]
    np.testing.assert_allclose(att_AxT, reference_topk(q, k, np.ones((7, 7), bool), 2), rtol=1e-5, atol=1e-6)
    assert ((att_AxT > 0).sum(-1) >= 2).all()


def test_topk_at_full_length_is_dense_softmax():
    d, T = 8, 6
    x_BxTxD = jax.random.normal(jax.random.PRNGKey(2), (2, T, d))
    top = Attention(ModelConfig(d=d, attention="topk", topk=T), nnx.Rngs(params=0))
    dense = Attention(ModelConfig(d=d, attention="softmax"), nnx.Rngs(params=0))
    np.testing.assert_allclose(np.asarray(top.weights(x_BxTxD)), np.asarray(dense.weights(x_BxTxD)), rtol=1e-6)


def test_topk_at_answer_positions_with_heads():
    attn = attention(d=8, H=2, topk=3)
    x_BxTxD = jax.random.normal(jax.random.PRNGKey(3), (2, 7, 8))
    full = np.asarray(attn.weights(x_BxTxD))
    np.testing.assert_allclose(np.asarray(attn.weights(x_BxTxD, (6,))), full[:, :, [6]], rtol=1e-6)
    assert ((full > 0).sum(-1) == 3).all()


def test_topk_has_finite_gradients():
    attn = attention(d=8, topk=2)
    x_BxTxD = jax.random.normal(jax.random.PRNGKey(4), (2, 7, 8))
    g = jax.grad(lambda x: attn(x).sum())(x_BxTxD)
    assert np.isfinite(np.asarray(g)).all()


@pytest.mark.parametrize("model,words", [
    ({"attention": "topk"}, ["model.topk", "attention=topk"]),
    ({"attention": "softmax", "topk": 4}, ["model.topk", "null otherwise"]),
    ({"attention": "topk", "topk": 0}, ["model.topk", ">= 1"]),
    ({"attention": "sparse"}, ["model.attention", "softmax, linear, topk"]),
])
def test_bad_attention_values_are_one_line_errors(model, words):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"model": model})
    assert "\n" not in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_legacy_softmax_flag_is_read_as_attention():
    """Records written with model.softmax read back as attention softmax / linear."""
    from counting.config import ModelConfig as M
    from counting.config import RunConfig

    assert M.upgrade({"softmax": False}) == {"attention": "linear"}
    assert RunConfig.from_record({"model": {"softmax": True}}).model.attention == "softmax"
    assert RunConfig.from_record({"model": {"softmax": "false"}}).model.attention == "linear"
    with pytest.raises(ConfigError, match="model.softmax: unknown field"):  # the command line takes today's fields only
        RunConfig.from_dict({"model": {"softmax": True}})
