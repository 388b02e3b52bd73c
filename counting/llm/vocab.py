"""Item vocabularies, looked up by name, and the single-token check.

No item is a digit or a number word, so an item can never be read as an answer."""

from __future__ import annotations

import string
from collections.abc import Callable
from functools import cache
from pathlib import Path

WORDS_FILE = Path(__file__).with_name("words.txt")  # common English nouns, one a line


@cache
def letters() -> tuple[str, ...]:
    return tuple(string.ascii_lowercase)


@cache
def words() -> tuple[str, ...]:
    return tuple(w.strip() for w in WORDS_FILE.read_text().splitlines() if w.strip())


VOCABULARIES: dict[str, Callable[[], tuple[str, ...]]] = {"letters": letters, "words": words}


def tokens_per_item(tokenizer, items, separator: str) -> list[int]:
    """How many tokens each item takes where it stands in a prompt, after a separator:
    tokens of "x<separator><item>" minus those of "x<separator without trailing spaces>"."""
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    base = count("x" + separator.rstrip(" "))
    return [count(f"x{separator}{item}") - base for item in items]
