import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from counting.config import ModelConfig
from counting.models.transformer import Transformer, prefix_stable_normal


def thin(combinations, keep: int) -> list:
    """Every `keep`-th combination in the fast tier (each value of each axis still appears),
    the others marked slow: the full suite runs them all."""
    return [c if i % keep == 0 else pytest.param(*c, marks=pytest.mark.slow) for i, c in enumerate(combinations)]


def make(T=10, V=8, C=6, **kw):
    topk = {"topk": 3} if kw.get("attention") == "topk" else {}
    cfg = ModelConfig(**{"d": 16, "L": 2, "H": 2, "w": 32, **topk, **kw})
    return Transformer(cfg, V, T, C, nnx.Rngs(params=0))


@pytest.mark.parametrize(
    "pos,causal,norm,attention",
    thin(itertools.product(("none", "learned", "sinusoidal", "rope"), (False, True), ("none", "pre_ln"), ("softmax", "linear", "topk")), 8),
)
def test_logits_shape_and_finite(pos, causal, norm, attention):
    model = make(pos=pos, causal=causal, norm=norm, attention=attention)
    tokens = jax.random.randint(jax.random.PRNGKey(1), (3, 10), 0, 8)
    logits = model(tokens)
    assert logits.shape == (3, 10, 6)
    assert np.isfinite(np.asarray(logits)).all()


@pytest.mark.parametrize("pos", ["none", "learned", "sinusoidal", "rope"])
@pytest.mark.parametrize("attention", ["softmax", "linear", "topk"])
def test_causal_mask_hides_the_future(pos, attention):
    model = make(pos=pos, causal=True, attention=attention)
    a = jax.random.randint(jax.random.PRNGKey(2), (2, 10), 0, 8)
    b = a.at[:, 6:].set((a[:, 6:] + 1) % 8)
    la, lb = np.asarray(model(a)), np.asarray(model(b))
    np.testing.assert_allclose(la[:, :6], lb[:, :6], rtol=1e-5, atol=1e-6)
    assert not np.allclose(la[:, 6:], lb[:, 6:])


def test_without_causal_mask_the_future_is_seen():
    model = make(causal=False)
    a = jax.random.randint(jax.random.PRNGKey(2), (2, 10), 0, 8)
    b = a.at[:, 9].set((a[:, 9] + 1) % 8)
    assert not np.allclose(np.asarray(model(a))[:, 0], np.asarray(model(b))[:, 0])


def test_attention_rows_sum_to_one_with_softmax():
    model = make(causal=True)
    x = model.embed_tokens(jnp.zeros((1, 10), jnp.int32))
    att = np.asarray(model.blocks[0].attn.weights(x))
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(att[0, 0], 1) == 0)


def test_learned_positions_refuse_longer_sequences():
    model = make(pos="learned", T=10)
    with pytest.raises(ValueError, match="learned positions"):
        model(jnp.zeros((1, 12), jnp.int32))


@pytest.mark.parametrize("pos", ["none", "sinusoidal", "rope"])
def test_extendable_positions_run_on_longer_sequences(pos):
    model = make(pos=pos, T=10)
    assert model(jnp.zeros((1, 17), jnp.int32)).shape == (1, 17, 6)


def test_embedding_init_is_prefix_stable():
    init = prefix_stable_normal(0.5)
    small, big = init(jax.random.PRNGKey(0), (5, 4)), init(jax.random.PRNGKey(0), (9, 4))
    np.testing.assert_array_equal(small, big[:5])


@pytest.mark.parametrize("pos", ["none", "rope", *(pytest.param(p, marks=pytest.mark.slow) for p in ("learned", "sinusoidal"))])
@pytest.mark.parametrize("causal,attention", [(False, "softmax"), (True, "softmax"), (True, "linear"), (False, "topk")])
def test_answer_positions_only_equal_the_full_forward_there(pos, causal, attention):
    """The last block computes only the answer positions; nothing else may change."""
    model = make(pos=pos, causal=causal, attention=attention)
    tokens = jax.random.randint(jax.random.PRNGKey(5), (3, 10), 0, 8)
    full = np.asarray(model(tokens))
    for at in [(9,), (2, 5, 6), tuple(range(10))]:
        np.testing.assert_allclose(np.asarray(model(tokens, at)), full[:, list(at)], rtol=1e-5, atol=1e-6)
