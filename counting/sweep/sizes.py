"""Program sizes after compaction, by rule: the one list of `cohort.compact_sizes`, importable
without JAX (the config reads its allowed values from `SIZES`).

A rule maps the active members to the rows of the smaller program they continue in; `bucket`
applies it so that the members still divide over the devices, and `ahead_sizes` lists the sizes
a compaction can still reach (what `cohort.compile_ahead` compiles before they are needed). A
new rule is one function and one line in `SIZES`.
"""

from __future__ import annotations

AHEAD = 2  # program sizes compiled ahead of need at a time (cohort.compile_ahead): the largest a compaction can reach


def _pow2(x: int) -> int:
    """The smallest power of two that holds x."""
    p = 1
    while p < x:
        p *= 2
    return p


def _pow2_3(x: int) -> int:
    """The smallest 2^j or 3 * 2^j that holds x: at most a third of a program is padding."""
    p = _pow2(x)
    return 3 * p // 4 if p >= 4 and 3 * p // 4 >= x else p


def _exact(x: int) -> int:
    """The active members' own number: a compile per size."""
    return x


SIZES = {"pow2": _pow2, "pow2_3": _pow2_3, "exact": _exact}  # cohort.compact_sizes -> the size rule


def default() -> str:
    """The default rule, written once, in counting.config (read on use: the config reads SIZES)."""
    from counting.config import CohortConfig

    return CohortConfig().compact_sizes


def bucket(active: int, devices: int, sizes: str | None = None) -> int:
    """The program size for `active` members after compaction: the smallest size of the rule
    `sizes` (SIZES; None: the default) that holds them while that is below the number of
    devices, else the smallest devices * size, so that members still divide over the devices
    and few sizes are ever compiled."""
    up = SIZES[sizes or default()]
    size = up(active)
    return size if size < devices else devices * up(-(-active // devices))


def ahead_sizes(active: int, size: int, compiled: set[int], devices: int, sizes: str | None = None,
                depth: int = AHEAD) -> list[int]:
    """The `depth` largest program sizes below `size` that a compaction of `active` members
    can still reach under the rule `sizes` and that are not `compiled` yet: what to compile
    ahead of need (members only stop, so a compaction can only go down to these)."""
    reach = sorted({bucket(a, devices, sizes) for a in range(1, active + 1)}, reverse=True)
    return [s for s in reach if s < size and s not in compiled][:depth]
