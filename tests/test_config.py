import pytest

from counting.config import ConfigError, RunConfig

BASE = {
    "task": {"name": "qc", "m": 4, "n": 4, "k": None, "sampler": "balanced", "bos": True, "query": "last"},
    "model": {"d": 8, "L": 1, "H": 1, "w": 16, "pos": "learned", "causal": False, "norm": "pre_ln", "attention": "softmax", "topk": None},
    "train": {"steps": 10, "batch": 8, "lr": 1e-3, "seed": 0},
    "experiment": "x",
}

# (section, field, bad value, words the one-line message must contain)
INVALID = [
    ("task", "name", "count", ["task.name", "qc, mfe, histogram"]),
    ("task", "m", 1, ["task.m", ">= 2"]),
    ("task", "n", 0, ["task.n", ">= 1"]),
    ("task", "k", 9, ["task.k", "2..task.m"]),
    ("task", "sampler", "zipf", ["task.sampler", "uniform, balanced"]),
    ("task", "query", "first", ["task.query", "last, sep"]),
    ("task", "m", "many", ["task.m", "integer"]),
    ("model", "d", 0, ["model.d", ">= 1"]),
    ("model", "d", 9, ["model.d", "divisible by model.H"]),
    ("model", "pos", "alibi", ["model.pos", "none, learned, sinusoidal, rope"]),
    ("model", "norm", "post_ln", ["model.norm", "none, pre_ln"]),
    ("model", "causal", "maybe", ["model.causal", "true or false"]),
    ("train", "steps", -1, ["train.steps", ">= 0"]),
    ("train", "lr", 0.0, ["train.lr", "> 0"]),
    ("train", "schedule", "linear", ["train.schedule", "cosine, constant"]),
    ("train", "nope", 1, ["train.nope", "unknown field"]),
]


def with_value(section, field, value):
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    raw[section][field] = value
    if (section, field) == ("model", "d") and value == 9:
        raw["model"]["H"] = 2
    return raw


@pytest.mark.parametrize("section,field,value,words", INVALID, ids=lambda x: str(x))
def test_invalid_values_name_the_field_and_allowed_values(section, field, value, words):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(with_value(section, field, value))
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_hash_is_stable_and_ignores_key_order():
    a = RunConfig.from_dict(BASE)
    reordered = {k: dict(reversed(list(v.items()))) if isinstance(v, dict) else v for k, v in reversed(list(BASE.items()))}
    assert RunConfig.from_dict(reordered).hash() == a.hash()
    assert a.hash() == RunConfig.from_dict(BASE).hash()
    # Changed deliberately once: a run's identity left out `experiment` and `eval_every` and
    # resolved the budget (RunConfig.identity), so that a model is found under any experiment.
    assert a.hash() == "534b8ee974251371", "the hash of a fixed config must not change between releases"


def test_hash_ignores_storage_place_and_resolves_k():
    a = RunConfig.from_dict(BASE)
    b = RunConfig.from_dict({**BASE, "results_dir": "/elsewhere"})
    c = RunConfig.from_dict({**BASE, "task": {**BASE["task"], "k": 4}})
    d = RunConfig.from_dict({**BASE, "experiment": "other", "train": {**BASE["train"], "eval_every": 7}})
    assert a.hash() == b.hash() == c.hash() == d.hash()
    assert a.hash() != RunConfig.from_dict({**BASE, "train": {**BASE["train"], "seed": 1}}).hash()
