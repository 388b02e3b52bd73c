"""The constructions, looked up by name: how to build each for a given n, the rival token
its adversarial sequences pair with the query, and the largest n a search may try (the
histogram-task and MFE models attend from every position, so memory grows like n^2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from counting.config import TaskConfig
from counting.theory.count_attend import count_attend, default_directions, rivals, worst_query
from counting.theory.histogram import histogram_solution
from counting.theory.mfe import mfe_solution
from counting.theory.sequences import Sequences, adversarial
from counting.theory.weights import Construction


@dataclasses.dataclass(frozen=True)
class Spec:
    """A construction by name: how to build it at a given n, the largest n a search tries, and CountAttend's
    token directions u (None for the others)."""

    build: Callable[[int], Construction]
    cap: int  # largest n searched
    u: np.ndarray | None = None  # CountAttend's token directions (for the rival pairing)

    def adversarial(self, task: TaskConfig, seed: int = 0) -> Sequences:
        """The adversarial sequences of the task: each token against its most coherent rival under u (QC's query
        the one with the largest leak), or against the next token without u."""
        if self.u is None:
            return adversarial(task, seed=seed)
        return adversarial(task, rivals(self.u), seed, worst_query(self.u))


def _count_attend(m: int, d: int, inverse: str, cap: int) -> Spec:
    u = default_directions(m, d - 2)
    return Spec(lambda n: count_attend(TaskConfig("qc", m=m, n=n), d, inverse, u=u), cap, u)


def registry() -> dict[str, Spec]:
    """name -> Spec. m = 4 throughout except the m > d CountAttend (m = 64, d = 4)."""
    return {
        "histogram_qc": Spec(lambda n: histogram_solution(TaskConfig("qc", m=4, n=n)), 2**22),
        "histogram_task": Spec(lambda n: histogram_solution(TaskConfig("histogram", m=4, n=n)), 2**10),
        "count_attend_interp": _count_attend(4, 6, "interp", 2**18),
        "count_attend_min": _count_attend(4, 6, "min", 2**18),
        "count_attend_head": _count_attend(4, 6, "head", 2**18),
        "count_attend_head_m64_d4": _count_attend(64, 4, "head", 2**18),
        "mfe": Spec(lambda n: mfe_solution(TaskConfig("mfe", m=4, n=n)), 2**10),
    }
