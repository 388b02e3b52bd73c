"""How long the hf backend takes to load a packaged GGUF model: read and dequantised from the
file by transformers (no copy kept), the same while keeping the dequantised copy in an empty
cache folder (the first load), and read back from that copy (every later load). Each arm in a
fresh process, so no arm inherits another's imports or loaded modules.

    python benchmarks/llm_load.py [--model smollm2-135m] [--out benchmarks/results/llm_load.md]

Prints the three times (seconds from the backend's construction to a model ready to answer) and
writes them with the CPU model, the load average at the start, the date and the command. Needs the
llm extra and the model's package (python -m counting.llm.models install smollm2-135m)."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ARM = """
import sys, time
from counting.llm.backends.hf import HFBackend
from counting.llm.config import HFConfig
began = time.perf_counter()
HFBackend(HFConfig(model=sys.argv[1], threads=1))
print(time.perf_counter() - began)
"""


def arm(model: str, cache: str) -> float:
    env = {**os.environ, "COUNTING_LLM_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", ARM, model], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from counting.runtime.machine import cpu_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", default=None, help="a Markdown file for the figures (default: print only)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:
        seconds = {"from the GGUF file, no copy kept (COUNTING_LLM_CACHE=off)": arm(args.model, "off"),
                   "from the GGUF file, keeping the copy (the first load)": arm(args.model, cache),
                   "from the kept copy (every later load)": arm(args.model, cache)}
        size = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
    header = (f"`{' '.join(['python', *map(shlex.quote, sys.argv)])}`, "
              f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}, {cpu_model()}, "
              f"{os.cpu_count()} cores, load average {load:.2f} at the start; the copy takes {size / 2**20:.0f} MiB.")
    lines = [f"# hf backend: loading {args.model}", "", header, "",
             "| load | seconds |", "|---|---|", *(f"| {k} | {v:.2f} |" for k, v in seconds.items())]
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
