"""Progress of a training job in model-steps: a live bar on a terminal, plain periodic log
lines elsewhere (SLURM logs, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Self, TextIO


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts a job's model-steps (models x steps): `update` rewrites a live bar on a terminal, or writes a
    plain line every `interval_s` seconds (and at the end) elsewhere."""

    def __init__(self, models: int, steps: int, label: str = "", stream: TextIO | None = None,
                 interval_s: float = 30.0):
        self.total = models * steps
        self.models, self.label = models, label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval_s = interval_s if not self.tty else 0.0
        self.t0 = time.perf_counter()
        self.last_print = -float("inf")
        self.done = 0

    def start(self) -> None:
        """Starts the clock (call after compiling, so rates count training only)."""
        self.t0 = time.perf_counter()

    def line(self) -> str:
        """The progress line: a bar, model-steps done of the total, the models, the rate, the time elapsed and
        the time left."""
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = _clock(left) if rate > 0 else "?"
        frac = self.done / max(self.total, 1)
        bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
        return (f"{self.label} [{bar}] {self.done}/{self.total} model-steps ({self.models} models) "
                f"{rate:,.0f} model-steps/s, elapsed {_clock(elapsed)}, left {eta}")

    def finish(self) -> None:
        """Ends the count where it is (models that stopped early leave steps untrained)."""
        if self.done < self.total:
            self.total = self.done
            self.update(0)

    def update(self, model_steps: int) -> None:
        """Counts `model_steps` more and shows the line (on a terminal at once; elsewhere when `interval_s` has
        passed or the count is complete)."""
        self.done += model_steps
        now = time.perf_counter()
        final = self.done >= self.total
        if self.tty:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
            self.stream.flush()
        elif final or now - self.last_print >= self.interval_s:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last_print = now


class Heartbeat:
    """For work without a step count (a theory table): a line every `interval_s` seconds
    while it runs, naming it and the time elapsed, so a long command is never silent.

        with Heartbeat("theory part 3/8 precision"):
            compute()
    """

    def __init__(self, label: str, interval_s: float = 30.0, stream: TextIO | None = None):
        import threading

        self.label, self.interval_s = label, interval_s
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.wait(self.interval_s):
            self.stream.write(f"{self.label}: running, elapsed {_clock(time.perf_counter() - t0)}\n")
            self.stream.flush()

    def __enter__(self) -> Self:
        self.stream.write(f"{self.label}: started\n")
        self.stream.flush()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
