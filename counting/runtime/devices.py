"""How JAX is set up for the suite's commands: how many XLA devices the CPU backend has (one
per core by default, so that the members of a cohort train on all cores in parallel: see
counting.training.program.spread; a single model uses one device, whose large matrix products still
use every core), and JAX's persistent compilation cache (`use_compilation_cache`).

Importing `counting` changes nothing. Every `counting-*` command, the benchmark and the tests
call `use_cpu_devices()` first; a library user (a script, a notebook) calls it right after
`import jax`, before the first JAX operation:

    import jax
    from counting.runtime.devices import use_cpu_devices
    use_cpu_devices()      # one CPU device per core; use_cpu_devices(4) for four
"""

from __future__ import annotations

import os
import re
import warnings

ENV = "COUNTING_CPU_DEVICES"
CACHE_ENV = "COUNTING_JAX_CACHE"  # a folder for compiled programs, or "off"
_FLAG = re.compile(r"--xla_force_host_platform_device_count=(\d+)")


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def requested() -> int | None:
    """The count the environment asks for: the user's own XLA_FLAGS device count first, then
    COUNTING_CPU_DEVICES; None when neither is set."""
    flag = _FLAG.search(os.environ.get("XLA_FLAGS", ""))
    if flag:
        return int(flag.group(1))
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV}: expected a positive integer, got {value!r}")
    return int(value)


def use_cpu_devices(n: int | None = None) -> int:
    """Give JAX's CPU backend `n` devices (default: the environment's request, see
    `requested`, else one per core) and return the number it has.

    Sets `jax_num_cpu_devices`, which only takes effect before the backend starts (the first
    JAX operation). Called after that, it changes nothing: it returns the number the backend
    already has and warns if that differs from `n`. It affects the CPU backend only; on a
    GPU or TPU host the accelerator's devices are used as before.
    """
    import jax

    if n is None:
        n = requested() or cores()
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # the backend is already running (e.g. a notebook that used JAX first)
        have = len(jax.devices("cpu"))
        if have != n:
            warnings.warn(f"JAX's CPU backend already started with {have} device(s); call "
                          f"counting.runtime.devices.use_cpu_devices() before the first JAX operation "
                          f"to get {n}", stacklevel=2)
        return have
    return n


def compilation_cache_dir() -> str | None:
    """Where compiled programs are kept between processes: $COUNTING_JAX_CACHE ("off": nowhere),
    else ~/.cache/counting/jax/<machine kind and jaxlib>. Keyed by the kind of machine, because
    a CPU program is compiled for its instruction set and a home folder may be shared by
    machines of several kinds (a cluster)."""
    import hashlib
    from importlib import metadata
    from pathlib import Path

    from counting.runtime.machine import cpu_model, isa_level

    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() == "off":
        return None
    if value:
        return value
    try:
        jaxlib = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        jaxlib = "unknown"
    key = hashlib.sha256(f"{cpu_model()}|{isa_level()}|{jaxlib}".encode()).hexdigest()[:12]
    return str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "counting" / "jax" / key)


def use_compilation_cache(path: str | None = None) -> str | None:
    """Turns on JAX's persistent compilation cache (default folder: `compilation_cache_dir`):
    a program compiled once (a cohort's train chunk takes tens of seconds on a small CPU) is
    loaded, not compiled, by the next process that needs it. Every program is kept, however
    short its compile (the family evaluators and samplers take a fraction of a second each, and
    a sweep's steps compile dozens of them): examples/tiny_experiment.py took 22-24 s with every
    program kept against 26-27 s with only those over 0.5 s (2-core AMD EPYC, beside a training
    run; a few dozen small files more in the cache). It changes no number: the loaded program is
    the compiled one. Returns the folder, or None when the cache is off."""
    import jax

    path = compilation_cache_dir() if path is None else path
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
