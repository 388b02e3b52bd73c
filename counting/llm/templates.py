"""Prompt text: the message around a task's question (`Task.llm_question`), and its chat or completion form.

Default: answer with a single integer and no reasoning, since the theory is about what one
forward pass computes. Opt-in reasoning: think first, then end with the fixed line
"Answer: <integer>", which the parser reads first."""

from __future__ import annotations

ANSWER_PREFIX = "Answer:"
DIRECT = "Reply with a single integer and nothing else."
REASONING = f"Think step by step, then end your reply with a final line of the form '{ANSWER_PREFIX} <integer>'."
NAMES = {" ": "spaces", ", ": "commas", "\n": "newlines"}


def question(ask: str, sequence: list[str], query: str | None, separator: str, reasoning: bool) -> str:
    """The user's message: the list, the task's question `ask` ('{query}' filled in), and the answer instruction."""
    lines = [f"Here is a list of items separated by {NAMES[separator]}:", separator.join(sequence),
             ask.format(query=query), REASONING if reasoning else DIRECT]
    return "\n".join(lines)


def completion(prompt: str, reasoning: bool) -> str:
    """The completion form: the message, then the answer cue (a direct answer follows it)."""
    return f"{prompt}\n{'Reasoning:' if reasoning else ANSWER_PREFIX}"


def chat(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]
