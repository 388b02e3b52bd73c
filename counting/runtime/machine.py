"""What decides a run's floating-point arithmetic besides the code: the machine and libraries.

XLA compiles for the CPU it runs on: an AVX-512 host and an AVX2 host (or two CPU models)
round the same program differently, so a trained model reproduces bit for bit only on the
same kind of machine, with the same jax/jaxlib, the same code fingerprint and the same layout
of members (counting.sweep.cohort). LLVM's optimisation level (XLA_FLAGS'
--xla_backend_optimization_level, which the tests lower to 0 to compile faster) rounds
differently too, so a level set there is part of the arithmetic. Every record stores
`arithmetic()` and `versions()`; `same_arithmetic` says whether two of them allow an exact comparison
(counting.experiment.reproduce compares statistically otherwise).
"""

from __future__ import annotations

import functools
import os
import platform
import re
from importlib import metadata

X86_LEVELS = (("avx512f", "avx512"), ("avx2", "avx2"), ("avx", "avx"), ("sse4_2", "sse4.2"))
ARM_LEVELS = (("sve2", "sve2"), ("sve", "sve"), ("asimd", "neon"))
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "hydra-core")


@functools.cache
def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def isa_level(info: dict[str, str] | None = None) -> str:
    """The widest vector instruction set the CPU offers (XLA_FLAGS' --xla_cpu_max_isa caps it)."""
    info = cpu_info() if info is None else info
    flags = set((info.get("flags") or info.get("Features") or "").split())
    levels = ARM_LEVELS if platform.machine().lower() in ("aarch64", "arm64") else X86_LEVELS
    level = next((name for flag, name in levels if flag in flags), "unknown")
    cap = re.search(r"--xla_cpu_max_isa=(\S+)", os.environ.get("XLA_FLAGS", ""))
    return f"{level} (max_isa={cap.group(1)})" if cap else level


def xla_opt_level() -> str | None:
    """The LLVM optimisation level XLA_FLAGS sets for every program
    (--xla_backend_optimization_level), or None: XLA's default."""
    level = re.search(r"--xla_backend_optimization_level=(\S+)", os.environ.get("XLA_FLAGS", ""))
    return level.group(1) if level else None


def cpu_model(info: dict[str, str] | None = None) -> str:
    """'AMD EPYC (AuthenticAMD 25/1)': the model name with vendor, family and model numbers
    (a hypervisor may show only a generic name)."""
    info = cpu_info() if info is None else info
    name = info.get("model name") or info.get("Model") or platform.processor() or platform.machine()
    ids = [info[k] for k in ("vendor_id", "CPU implementer") if k in info]
    numbers = "/".join(info[k] for k in ("cpu family", "model", "CPU part") if k in info)
    return f"{name} ({' '.join(ids + [numbers]).strip()})" if ids or numbers else name


def arithmetic() -> dict[str, str]:
    """The kind of machine a program's arithmetic depends on: the CPU's architecture, model and
    instruction-set level, or the accelerator's kind."""
    import jax

    backend = jax.default_backend()
    level = xla_opt_level()
    opt = {} if level is None else {"xla_opt": level}
    if backend == "cpu":
        return {"backend": "cpu", "arch": platform.machine(), "cpu": cpu_model(), "isa": isa_level(), **opt}
    return {"backend": backend, "device": str(jax.devices()[0].device_kind), **opt}


def label(arith: dict | None) -> str:
    """One string for a table column: 'cpu x86_64 avx2 AMD EPYC (AuthenticAMD 25/1)', with
    ' O0' after it where XLA_FLAGS set the optimisation level to 0."""
    if not arith:
        return ""
    opt = f" O{arith['xla_opt']}" if "xla_opt" in arith else ""
    if arith.get("backend") == "cpu":
        return f"cpu {arith.get('arch', '')} {arith.get('isa', '')} {arith.get('cpu', '')}".strip() + opt
    return f"{arith.get('backend', '')} {arith.get('device', '')}".strip() + opt


def versions() -> dict[str, str]:
    """Python and the library versions that decide a run's numbers."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def same_arithmetic(a: dict, b: dict) -> bool:
    """Whether two records' machines and libraries allow an exact comparison: the same
    arithmetic kind and the same jax and jaxlib."""
    return (bool(a.get("arithmetic")) and a.get("arithmetic") == b.get("arithmetic")
            and all(a.get("versions", {}).get(p) == b.get("versions", {}).get(p) for p in ("jax", "jaxlib")))
