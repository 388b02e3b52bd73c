"""Reading an integer out of a model's reply.

Strict first: the whole reply is one integer (digits or number words, an optional trailing
full stop), or its last line is "Answer: <integer>". Otherwise the last integer anywhere in
the reply (fallback). Otherwise invalid. The method is kept with every answer, so accuracy
over parsed answers and the invalid rate can be reported apart from accuracy."""

from __future__ import annotations

import re

from counting.llm.templates import ANSWER_PREFIX

UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
WORD_VALUES = {**{w: i for i, w in enumerate(UNITS)}, **TENS}
_WORD = "|".join(sorted(WORD_VALUES, key=len, reverse=True))
# "twenty-one", "twenty one", "one hundred", "a hundred and five", "12"
NUMBER = (rf"\d+|(?:(?:a|{_WORD})[\s-]+hundred(?:[\s-]+(?:and[\s-]+)?(?:{_WORD})(?:[\s-]+(?:{_WORD}))?)?)"
          rf"|(?:(?:{'|'.join(TENS)})[\s-]+(?:{'|'.join(UNITS[1:10])}))|(?:{_WORD})")
NUMBER_RE = re.compile(rf"(?<![\w-])(?:{NUMBER})(?![\w-])", re.IGNORECASE)
STRICT_RE = re.compile(rf"^\s*(?:{re.escape(ANSWER_PREFIX)}\s*)?\**({NUMBER})\**\s*\.?\s*$", re.IGNORECASE)
ANSWER_LINE_RE = re.compile(rf"^\s*\**{re.escape(ANSWER_PREFIX)}\**\s*\**({NUMBER})\**\s*\.?\s*$",
                            re.IGNORECASE | re.MULTILINE)


def value_of(text: str) -> int:
    """'12' -> 12, 'twelve' -> 12, 'twenty-one' -> 21, 'one hundred and five' -> 105."""
    text = text.lower()
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for w in re.split(r"[\s-]+", text):
        if w == "hundred":
            current = max(current, 1) * 100
        elif w == "a":
            current = 1
        elif w != "and":
            current += WORD_VALUES[w]
    return total + current


def parse(reply: str | None) -> tuple[int | None, str]:
    """(value, method): method is 'strict', 'fallback' or 'invalid' (value None)."""
    reply = (reply or "").strip()
    strict = STRICT_RE.match(reply)
    if strict:
        return value_of(strict.group(1)), "strict"
    lines = ANSWER_LINE_RE.findall(reply)
    last_line = reply.splitlines()[-1] if reply else ""
    if lines and ANSWER_LINE_RE.match(last_line):
        return value_of(lines[-1]), "strict"
    found = NUMBER_RE.findall(reply)
    if found:
        return value_of(found[-1]), "fallback"
    return None, "invalid"


def first_line(reply: str) -> str:
    """A direct reply up to its first line break after some text (leading blank lines kept):
    generation stops there, since a direct answer is one line."""
    body = reply.lstrip()
    cut = body.find("\n")
    return reply if cut < 0 else reply[:len(reply) - len(body) + cut]
