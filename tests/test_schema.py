"""One home for defaults: the typed dataclasses are Hydra's schema (counting.experiment.schema), and
no YAML file restates one of their defaults."""

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from counting.config import TASKS, JobConfig, TaskConfig
from counting.experiment import compose, experiment_dir, experiment_names
from counting.experiment.schema import node
from counting.llm.config import BACKEND_CONFIGS, PromptConfig

CONF = Path(__file__).parents[1] / "conf"


def plain(cfg):
    return OmegaConf.to_container(cfg, resolve=True)


def test_the_composed_defaults_are_the_dataclass_defaults():
    raw = plain(compose([]))
    assert JobConfig.from_dict(raw) == JobConfig()
    for name in TASKS:
        assert JobConfig.from_dict(plain(compose([f"task={name}"]))).run.task == TaskConfig(name=name)


def test_the_llm_defaults_are_the_dataclass_defaults():
    for name, cls in BACKEND_CONFIGS.items():
        raw = plain(compose([f"backend={name}"], config_name="llm"))
        assert raw["backend"] == node(cls())
        assert raw["prompts"] == node(PromptConfig())


def test_a_changed_dataclass_default_reaches_the_command_line(monkeypatch):
    """The schema is read from the dataclasses when a config is composed, not copied."""
    from counting import config

    monkeypatch.setattr(config, "ModelConfig", dataclasses.make_dataclass(
        "ModelConfig", [("d", int, 48)], bases=(config.ModelConfig,), frozen=True))
    assert plain(compose([]))["model"]["d"] == 48


def test_the_package_holds_no_yaml_copy_of_a_schema_group():
    for group in ("task", "model", "train", "backend"):
        assert not list((CONF / group).glob("*.yaml")), f"conf/{group}/ duplicates the schema"


def leaves(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict) and key != "params":
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def schema_value(dotted, run, llm):
    section = dotted.split(".")[0]
    tree = llm if section == "prompts" else run
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return KeyError
        tree = tree[part]
    return tree


def base_file(base: str, folder: Path) -> Path:
    """A defaults-list entry: /group/option of conf/, or a file beside the including one."""
    if base.startswith("/"):
        return CONF / f"{base.lstrip('/')}.yaml"
    return folder / f"{base}.yaml"


def inherited_leaves(path: Path) -> dict:
    """Every value an experiment file's bases set (recursively, later bases winning)."""
    raw = OmegaConf.to_container(OmegaConf.load(path)) or {}
    out = {}
    for base in (b for b in raw.get("defaults", []) if isinstance(b, str) and b != "_self_"):
        target = base_file(base, path.parent)
        out.update(inherited_leaves(target))
        out.update(leaves({k: v for k, v in (OmegaConf.to_container(OmegaConf.load(target)) or {}).items()
                           if k not in ("defaults", "hydra", "experiment")}))
    return out


@pytest.fixture(scope="module")
def defaults():
    """The composed defaults of both apps, composed once for every experiment file."""
    return plain(compose([])), plain(compose([], config_name="llm"))


@pytest.mark.parametrize("name", experiment_names())
def test_no_experiment_restates_a_default(name, defaults):
    """An experiment file sets only what differs from the dataclasses and from the bases it
    includes (a default may be set to undo a base's value): a restated value would hide which
    values the experiment chose."""
    path = experiment_dir() / f"{name}.yaml"
    raw = OmegaConf.to_container(OmegaConf.load(path))
    run, llm = defaults
    inherited = inherited_leaves(path)
    for dotted, value in leaves({k: v for k, v in raw.items() if k not in ("defaults", "hydra", "experiment")}):
        base = inherited.get(dotted, KeyError)
        assert base != value, f"{name}.yaml: {dotted} = {value!r} restates its base"
        if base is KeyError:
            assert value != schema_value(dotted, run, llm), f"{name}.yaml: {dotted} = {value!r} is the default"
