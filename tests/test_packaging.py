"""Configs travel with the package: the experiment group is the top-level experiments/ folder
(no symlink), a user's own folder joins through hydra.searchpath, and an installed wheel runs
from any directory with its results under ./out/."""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import counting.cli.train
from counting.experiment import compose, experiment_dir

ROOT = Path(__file__).resolve().parents[1]


def test_every_experiments_yaml_is_in_the_experiment_group():
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from counting.experiment.compose import CONF

    cfg = compose(["experiment=quick"])
    assert cfg.experiment == "quick" and list(cfg.cohort.seed) == [0, 1] and cfg.model.norm == "none"
    with initialize_config_dir(CONF, version_base="1.3"):
        options = GlobalHydra.instance().config_loader().get_group_options("experiment")
    assert options == sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    assert experiment_dir() == ROOT / "experiments"


def test_configs_live_at_the_top_level_once_without_symlinks():
    from counting.experiment.compose import CONF

    assert not (ROOT / "counting" / "conf").exists() and CONF == str(ROOT / "conf")
    assert (ROOT / "conf" / "config.yaml").is_file()
    assert not [p for p in (ROOT / "conf").rglob("*") if p.is_symlink()]
    assert not [p for p in (ROOT / "experiments").iterdir() if p.is_symlink()]


def test_a_users_own_experiment_folder_joins_through_hydra_searchpath(tmp_path, monkeypatch, capsys):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /task: mfe\n\nexperiment: mine\nmodel:\n  d: 6\n")
    search = f"hydra.searchpath=[file://{tmp_path}]"
    cfg = compose(["experiment=mine", search])
    assert (cfg.experiment, cfg.task.name, cfg.model.d) == ("mine", "mfe", 6)
    assert compose(["experiment=quick", search]).experiment == "quick"  # the suite's own stay

    monkeypatch.setattr(sys, "argv", ["counting-train", "experiment=mine", search, "--cfg", "job"])
    counting.cli.train.main()  # the command line, as a user types it (prints the config, trains nothing)
    out = capsys.readouterr().out
    assert "experiment: mine" in out and "name: mfe" in out


@pytest.mark.slow  # a fresh interpreter importing the package (3-4 s of the fast tier; issue 32)
def test_importing_counting_changes_no_process_state():
    code = ("import os; before = dict(os.environ); import matplotlib; chosen = []; "
            "matplotlib.use = lambda *a, **k: chosen.append(a); "
            "import counting, counting.cli, counting.cli.train, counting.plots, counting.theory.figures; "
            "from jax._src import xla_bridge; "
            "assert dict(os.environ) == before, 'environment changed'; "
            "assert not xla_bridge.backends_are_initialized(), 'JAX backend started'; "
            "assert not chosen, f'matplotlib backend chosen: {chosen}'")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "XLA_FLAGS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
def test_an_installed_wheel_trains_from_an_empty_directory(tmp_path):
    """pip wheel -> a fresh virtualenv (dependencies borrowed from this one through a .pth file,
    so nothing is downloaded) -> counting-train from an empty folder: out/ lands there."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"  # a copy: the build leaves build/ behind
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "results", "out", "multirun", "outputs", "build", "dist", "*.egg-info", "__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("counting-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir)  # no pip of its own (ensurepip takes seconds): this one's pip installs into it (--python)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "_borrowed_dependencies.pth").write_text("\n".join(deps) + "\n")
    # --ignore-installed: after a non-editable `pip install .` the borrowed site-packages holds a
    # counting of its own, which pip would otherwise take as installed and skip the wheel
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                              "--no-index", "--ignore-installed", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr

    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run([str(python), "-c", ("import counting.experiment as c; from counting.experiment.compose import config_dir; "
                                             "print(c.__file__); print(c.experiment_dir()); print(config_dir())")],
                           capture_output=True, text=True, cwd=work, check=True).stdout.split()
    assert where[0].startswith(site) and where[1] == str(Path(site, "counting", "experiment_configs"))
    assert where[2] == str(Path(site, "counting", "conf")) and Path(where[2], "config.yaml").is_file()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    run = subprocess.run([str(env_dir / "bin" / "counting-train"), "-m", "experiment=quick", "train.steps=50",
                          "train.eval_every=50", "task.eval_size=128", "cohort.m=[2,4]", "cohort.seed=[0]",
                          "model.d=4", "analysis.boot=20"],
                         capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sweep quick: 2 models of this sweep, 0 failed" in run.stdout
    assert len(list((work / "out" / "quick" / "runs").iterdir())) == 2
    assert (work / "out" / "quick" / "table.csv").is_file()

    evaluate = subprocess.run([str(env_dir / "bin" / "counting-evaluate"), "nope"], capture_output=True, text=True,
                              cwd=work, env=env, timeout=120)
    assert evaluate.returncode == 2 and evaluate.stderr.startswith("error: experiment: no config nope.yaml")
