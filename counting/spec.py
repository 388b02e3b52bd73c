"""Typed config fields and the one path that checks them.

Every config dataclass of the suite (task, model, train, the cohort axes, analysis, the OOD
grid, the search, the LLM probe's prompts and backends) derives from `Checked` and declares
its fields with `option(default, ...)`: the type comes from the annotation, the allowed values
and bounds from the option, the rules that relate two fields from the class's `check()`.
`Checked.__post_init__` turns each value into its type and checks it, so a value is checked
the same way whether it comes from a command line, a YAML file, a Python call, a stored record
or `dataclasses.replace`; every violation is a one-line `ConfigError` that names the dotted
field (`SECTION` + the field's name) and what is allowed, raised before any compute.

Types understood: bool, int, float, str, `T | None`, `tuple[T, ...]` (a list is required: a
scalar such as `cohort.m=4` for `cohort.m=[4]` is an error everywhere), and nested `Checked`
classes (given as an instance or as a mapping of their fields).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class ConfigError(ValueError):
    """A user's mistake in a config value: one line, field name and allowed values."""


class Registry(Sequence):
    """The allowed values of a field kept by a registry elsewhere ("module:attribute", the names
    of a dict or sequence there), read each time: the config holds no second list, a name
    registered later is allowed too, and the config module does not import the stage that
    owns the registry (the registry module is looked up when a value is checked)."""

    def __init__(self, ref: str):
        self.ref = ref

    def names(self) -> tuple[str, ...]:
        """The registry's names, now."""
        import importlib

        module, _, attr = self.ref.partition(":")
        return tuple(getattr(importlib.import_module(module), attr))

    def __getitem__(self, i):
        return self.names()[i]

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, value) -> bool:
        return value in self.names()

    def __repr__(self) -> str:
        return f"Registry({self.ref!r})"


def option(default: Any = dataclasses.MISSING, *, choices: Sequence[str] | None = None, ge: float | None = None,
           gt: float | None = None, le: float | None = None, lt: float | None = None, help: str = "",
           since: str | None = None,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field. `choices`: the allowed strings; `ge`/`gt`/`le`: bounds (of every element
    of a tuple field; `lt` too); `help`: one line for the docs; `since`: the suite version that added
    the field (a run's identity leaves such a field out while it has its default, so that
    adding it changed no earlier run's hash). `choices` may be a `Registry`: read when checked."""
    if choices is not None and not isinstance(choices, Registry):
        choices = tuple(choices)
    meta = {"choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt,
            "help": help, "since": since}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def coerce(field: str, value: Any, kind: type):
    """value as a bool, int, float or str (`kind`), or a one-line ConfigError naming `field`;
    "true"/"false" strings are booleans (command lines), integral floats are integers."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{field}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{field}: expected an integer, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{field}: expected a string, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Kind:
    """A field's type, taken apart: the scalar (or Checked class), optional, tuple."""

    base: Any
    optional: bool = False
    many: bool = False


@functools.cache
def kinds(cls: type) -> dict[str, Kind]:
    """Each field's Kind, from the class's resolved annotations."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        out[f.name] = _kind(hints[f.name])
    return out


def _kind(hint) -> Kind:
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0] if len(args) == 1 else tuple(args)
    if typing.get_origin(hint) is tuple:
        return Kind(typing.get_args(hint)[0], optional, many=True)
    return Kind(hint, optional)


def _bounds_text(meta: Mapping, optional: bool) -> str:
    lo = f"({meta['gt']}" if meta["gt"] is not None else (f"[{meta['ge']}" if meta["ge"] is not None else None)
    hi = f"{meta['le']}]" if meta["le"] is not None else (f"{meta['lt']})" if meta["lt"] is not None else None)
    if lo is not None and hi is not None:
        text = f"in {lo}, {hi}"
    elif meta["gt"] is not None:
        text = f"> {meta['gt']}"
    elif meta["ge"] is not None:
        text = f">= {meta['ge']}"
    elif meta["le"] is not None:
        text = f"<= {meta['le']}"
    else:
        text = f"< {meta['lt']}"
    return text + (" or null" if optional else "")


def _check_one(name: str, value: Any, kind: Kind, meta: Mapping, every: bool) -> Any:
    base = kind.base
    if isinstance(base, type) and issubclass(base, Checked):
        if isinstance(value, base):
            return value
        return base.from_dict(value)
    if isinstance(base, tuple):  # a union of Checked classes: the field's class resolves it
        return value
    value = coerce(name, value, base)
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{name}: unknown value {value!r}; allowed: {', '.join(meta['choices'])}")
    if base in (int, float):
        bad = (meta["ge"] is not None and value < meta["ge"]) or (meta["gt"] is not None and value <= meta["gt"]) \
            or (meta["le"] is not None and value > meta["le"]) or (meta["lt"] is not None and value >= meta["lt"])
        if bad:
            what = "every value must be" if every else "must be"
            raise ConfigError(f"{name}: {what} {_bounds_text(meta, kind.optional and not every)}, got {value}")
    return value


NO_RULES = {"choices": None, "ge": None, "gt": None, "le": None, "lt": None, "help": "", "since": None}


def check_value(name: str, value: Any, kind: Kind, meta: Mapping) -> Any:
    """One field's value in its type, checked; ConfigError naming `name` otherwise."""
    meta = {**NO_RULES, **meta}
    if value is None:
        if kind.optional:
            return None
        if kind.many:
            return ()
        raise ConfigError(f"{name}: must not be null")
    if kind.many:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise ConfigError(f"{name}: expected a list like [{value}], got {value!r}")
        return tuple(_check_one(name, v, kind, meta, every=True) for v in value)
    return _check_one(name, value, kind, meta, every=False)


class Checked:
    """Base of the suite's frozen config dataclasses: checks every field on construction."""

    SECTION: ClassVar[str] = ""  # the dotted prefix of this class's fields in messages ("task", "train.stop")

    @classmethod
    def field_name(cls, name: str) -> str:
        """A field's dotted name in messages: the class's SECTION, then the field (train.stop.patience)."""
        return f"{cls.SECTION}.{name}" if cls.SECTION else name

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = check_value(self.field_name(f.name), getattr(self, f.name), kinds(type(self))[f.name], f.metadata)
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """The rules that relate two or more fields (ConfigError naming one of them)."""

    @classmethod
    def from_dict(cls, raw: Any):
        """An instance from a mapping of (some of) its fields; unknown keys are errors."""
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{cls.SECTION or 'config'}: expected a mapping of fields, got {raw!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in raw:
            if key not in names:
                raise ConfigError(f"{cls.field_name(str(key))}: unknown field; allowed: {', '.join(names)}")
        return cls(**dict(raw))


def flat_fields(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field, Kind]]:
    """(dotted name, field, kind) of every leaf field of a Checked class, nested ones expanded."""
    out = []
    for f in dataclasses.fields(cls):
        kind = kinds(cls)[f.name]
        name = f"{prefix}{f.name}"
        if isinstance(kind.base, type) and issubclass(kind.base, Checked):
            out += flat_fields(kind.base, f"{name}.")
        else:
            out.append((name, f, kind))
    return out
