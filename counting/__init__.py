"""counting: an experiment suite for 'When Can Transformers Count to n?' (arXiv 2407.15160).

On a CPU host, XLA gets one device per core (unless XLA_FLAGS already says otherwise, or
COUNTING_CPU_DEVICES sets another number), so that a cohort of small models runs its members
on all cores in parallel (see counting.cohort.spread). A single model uses one device, whose
large matrix products still use every core. This must happen before JAX is first imported.
"""

import os


def _host_devices() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    count = os.environ.get("COUNTING_CPU_DEVICES") or str(len(os.sched_getaffinity(0)))
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


_host_devices()
