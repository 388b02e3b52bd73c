"""Where a command's XLA compile time goes: every backend compile of every Python process it
starts (pytest's workers and the commands the tests run as subprocesses), by program and test.

    python benchmarks/compile_profile.py record /tmp/cp -- python -m pytest -m slow   # record
    python benchmarks/compile_profile.py summary /tmp/cp                              # summarise

Run the recording from an empty compilation cache (a new COUNTING_JAX_CACHE folder), as CI
does: an event then is either a compile or a load from what an earlier test of the same run
wrote (a load takes well under `HIT_S`; the summary counts those apart).

`record` puts a `sitecustomize` module on PYTHONPATH, so every Python the command starts
registers a listener for jax's "/jax/core/compile/backend_compile_duration" event as soon as
jax is imported, and appends [program, seconds, test] to OUT/events/<pid>.jsonl; the test is
PYTEST_CURRENT_TEST, which a test's subprocesses inherit. (Ray's workers, started by the Ray
head, do not inherit it: their compiles are not recorded.) The timing of a recorded run is not
a reading of the suite's: every process imports the hook, and its cost was not measured.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

HIT_S = 0.3  # an event shorter than this is counted as a load from the cache, not a compile

HOOK = '''\
import importlib.abc, importlib.machinery, json, os, sys

class _CompileListener(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "jax._src.monitoring":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            out = open(os.path.join({events!r}, f"{{os.getpid()}}.jsonl"), "a", buffering=1)

            def listen(event, seconds, **kw):
                if event == "/jax/core/compile/backend_compile_duration":
                    out.write(json.dumps([kw.get("fun_name", ""), seconds, os.environ.get("PYTEST_CURRENT_TEST", "")]) + "\\n")

            module.register_event_duration_secs_listener(listen)

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _CompileListener())
'''


def record(out: Path, command: list[str]) -> int:
    """Runs `command` with the listener in every Python process it starts."""
    events, hook = out / "events", out / "hook"
    events.mkdir(parents=True, exist_ok=True)
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK.format(events=str(events.resolve())))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(hook.resolve()), os.environ.get("PYTHONPATH")])))
    return subprocess.call(command, env=env)


def program(name: str) -> str:
    """"jit(local)" -> "local"."""
    return name.removeprefix("jit(").removesuffix(")")


def summary(out: Path, top: int = 25) -> None:
    """Prints compile seconds by program, by test file and by test (compiles only, loads apart)."""
    rows = [json.loads(line) for p in sorted((out / "events").glob("*.jsonl")) for line in p.open()]
    compiled = [(program(n), s, t.split(" (")[0]) for n, s, t in rows if s >= HIT_S]
    loads = sum(1 for _, s, _ in rows if s < HIT_S)
    print(f"{len(rows)} compile events: {len(compiled)} compiles ({sum(s for _, s, _ in compiled):.1f} s), "
          f"{loads} shorter than {HIT_S} s (cache loads and trivial programs, {sum(s for _, s, _ in rows if s < HIT_S):.1f} s)")
    for title, key in (("program", lambda r: r[0]), ("test file", lambda r: r[2].split("::")[0] or "(no test)"),
                       ("test", lambda r: r[2] or "(no test)")):
        seconds, count = collections.Counter(), collections.Counter()
        for r in compiled:
            seconds[key(r)] += r[1]
            count[key(r)] += 1
        print(f"\n| compile s | compiles | {title} |\n|---|---|---|")
        for name, s in seconds.most_common(top):
            print(f"| {s:.1f} | {count[name]} | {name} |")


def main(argv: list[str] | None = None) -> None:
    """The command line: `record OUT -- COMMAND...` or `summary OUT`."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("record", "summary"))
    p.add_argument("out", type=Path)
    p.add_argument("command", nargs=argparse.REMAINDER, help="record: the command, after --")
    a = p.parse_args(argv)
    if a.mode == "record":
        command = a.command[1:] if a.command[:1] == ["--"] else a.command
        if not command:
            p.error("record: give the command after --")
        sys.exit(record(a.out, command))
    summary(a.out)


if __name__ == "__main__":
    main()
