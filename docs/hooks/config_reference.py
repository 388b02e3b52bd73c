"""MkDocs hook: the config reference, generated from the dataclasses (counting.config,
counting.llm.config) at build time, so that no field table is kept by hand.

A page containing `<!-- config: counting.config:TaskConfig -->` gets, in its place, a table of
that class's fields: the dotted name, type, default, allowed values or bounds, and help.
"""

from __future__ import annotations

import dataclasses
import importlib
import re

MARKER = re.compile(r"<!-- config: ([\w.]+):(\w+) -->")


def _type(kind) -> str:
    base = kind.base.__name__ if isinstance(kind.base, type) else str(kind.base)
    text = f"list of {base}" if kind.many else base
    return text + " or null" if kind.optional else text


def _rule(meta) -> str:
    if meta.get("choices"):
        return ", ".join(f"`{c}`" for c in meta["choices"])
    parts = []
    for key, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if meta.get(key) is not None:
            parts.append(f"{sign} {meta[key]:g}")
    return ", ".join(parts)


def table(module: str, name: str) -> str:
    from counting.spec import Checked, kinds

    cls = getattr(importlib.import_module(module), name)
    rows = ["| field | type | default | allowed | what |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        kind = kinds(cls)[f.name]
        if isinstance(kind.base, type) and issubclass(kind.base, Checked):
            rows.append(f"| `{cls.field_name(f.name)}` | section | | | see `{kind.base.__name__}` below |")
            continue
        default = f.default if f.default is not dataclasses.MISSING else ""
        if isinstance(default, tuple):
            default = "[" + ", ".join(map(str, default)) + "]"
        text = f.metadata.get("help", "")
        if f.metadata.get("since"):
            text += f" (since {f.metadata['since']})"
        rows.append(f"| `{cls.field_name(f.name)}` | {_type(kind)} | `{default}` | {_rule(f.metadata)} | {text} |")
    doc = (cls.__doc__ or "").strip()
    head = doc.split("\n\n")[0].replace("\n", " ") if doc and not doc.startswith(name + "(") else ""
    return (head + "\n\n" if head else "") + "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return MARKER.sub(lambda mo: table(mo.group(1), mo.group(2)), markdown)
