"""Command-line entry points: the only place that reads raw Hydra configs or argv.

Each command is a thin wrapper around the library (`counting.experiment` for the pipeline):
it parses its input, calls the library, prints, and turns a user's mistake into one line and
an exit status. Exit statuses: 0 done; 1 a run or a step failed during compute (the others
ran, their results are kept); 2 bad input before any compute (a config value, a file, a
table, too little disk space). Every command starts with `prepare()`.
"""

import functools
import logging
import os
import sys

from counting.config import RunConfig
from counting.spec import ConfigError

RESULTS_DIR = RunConfig().results_dir  # where counting-train writes, and where the other commands look by default


def prepare(devices: bool = True) -> None:
    """What every counting-* command does first: the XLA CPU devices (one per core) and JAX's
    persistent compilation cache (see counting.runtime.devices; `devices=False` in commands that never
    run JAX, which then need not import it) and, on a machine without a display, matplotlib's
    file-only backend."""
    if devices:
        from counting.runtime.devices import use_compilation_cache, use_cpu_devices

        try:
            use_cpu_devices()
        except ValueError as err:
            fail(ConfigError(str(err)))
        use_compilation_cache()
    headless_plots()


def headless_plots() -> None:
    """Agg when nothing could show a window (no DISPLAY or WAYLAND_DISPLAY on Linux) and the
    user has not chosen a backend (MPLBACKEND)."""
    display = sys.platform in ("win32", "darwin") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not display and not os.environ.get("MPLBACKEND"):
        import matplotlib

        matplotlib.use("Agg")


def hydra_main(config_name: str = "config"):
    """`hydra.main` over the package's configs with the experiment group wired in; the app
    calls `prepare()` before Hydra starts, and a broken experiment file is one line. Use it as
    @hydra_main("config")."""
    import hydra

    from counting.experiment.compose import CONF, register_configs

    def decorate(task):
        app = hydra.main(version_base="1.3", config_path=CONF, config_name=config_name)(task)

        @functools.wraps(task)
        def entry(*args, **kwargs):
            prepare()
            try:
                register_configs(config_name)
                check_user_experiments(sys.argv[1:])
            except ConfigError as err:
                fail(err)
            return app(*args, **kwargs)

        return entry

    return decorate


def check_user_experiments(argv: list[str]) -> None:
    """The experiment files a command line adds (`hydra.searchpath=[file://DIR]`, `--config-dir
    DIR`, `-cd DIR`), read before Hydra does: a YAML syntax error is one line naming the file
    instead of Hydra's traceback."""
    from pathlib import Path

    from counting.experiment.compose import EXPERIMENT, load_yaml

    folders = []
    for i, arg in enumerate(argv):
        if arg.startswith("hydra.searchpath="):
            folders += [p.strip(" '\"").removeprefix("file://") for p in arg.partition("=")[2].strip("[]").split(",")]
        elif arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            folders.append(argv[i + 1])
        elif arg.startswith("--config-dir="):
            folders.append(arg.partition("=")[2])
    for folder in folders:
        for path in sorted((Path(folder) / EXPERIMENT).glob("*.yaml")):
            load_yaml(path)


def quiet_libraries() -> None:
    """Hydra sets the root logger to INFO; keep JAX's and Orbax's chatter out of run logs."""
    for name in ("absl", "jax", "orbax"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # Orbax's abandoned write tasks after a failed write


def fail(err: Exception, status: int = 2):
    """A user's mistake: one line on stderr, exit status 2 (default), no traceback."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(status)
