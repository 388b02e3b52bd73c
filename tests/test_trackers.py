"""The tracker sinks (counting.store.trackers): TensorBoard event files, read back with TensorBoard's own
reader, hold exactly what metrics.jsonl holds; W&B works offline; the logger choice is no part of a
run's identity; a failing tracker leaves the run and its metrics.jsonl alone."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import tiny

from counting.config import ConfigError, JobConfig
from counting.store import METRICS, RECORD
from counting.sweep.runner import execute_many, folder_of

ROOT = Path(__file__).parents[1]
SCALARS = ("loss", "train_loss", "accuracy", "seq_accuracy", "baseline_accuracy", "support_worst")
PLATEAU = {"watch": "support", "patience": 1, "min_delta": 100.0}  # stops (plateau) at its 2nd evaluation


def sweep_cfgs(tmp_path, logger):
    """Two models watching their validation families: one stops on a plateau at step 20 (the
    reason is in its row), the other at its budget of 30 steps (in no row)."""
    top = dict(results_dir=str(tmp_path / "results"), experiment="tiny", logger=logger)
    return [tiny(train={"steps": 30, "eval_every": 10, "seed": 0}, stop=PLATEAU, **top),
            tiny(train={"steps": 30, "eval_every": 10, "seed": 1}, stop={"watch": "support"}, **top)]


def accumulate(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})  # 0: keep every event
    acc.Reload()
    return acc


def expected_series(folder: Path) -> tuple[dict[str, dict[int, float]], dict]:
    """What the event files must hold, from metrics.jsonl and record.json alone."""
    record = json.loads((folder / RECORD).read_text())
    out: dict[str, dict[int, float]] = {}
    for line in (folder / METRICS).read_text().splitlines():
        row = json.loads(line)
        step = row["step"]
        values = {key: row.get(key) for key in SCALARS}
        values.update({f"support/{k}": v for k, v in row.get("support", {}).items()})
        values.update({f"param_norm/{k}": v for k, v in row.get("param_norms", {}).items()})
        values["stop"] = float(step >= record["steps"])  # 1 from the evaluation the model stopped at
        for tag, value in values.items():
            if value is not None and math.isfinite(value):
                out.setdefault(tag, {})[step] = value
    return out, record


@pytest.fixture(scope="module")
def tensorboard_sweep(tmp_path_factory):
    pytest.importorskip("tensorboardX", reason="logger=tensorboard needs tensorboardX: pip install -e '.[tensorboard]'")
    pytest.importorskip("tensorboard", reason="the test reads the event files with the tensorboard package")
    tmp = tmp_path_factory.mktemp("tb")
    cfgs = sweep_cfgs(tmp, "tensorboard")
    report = execute_many(cfgs, show_progress=False)
    assert not report.failed and len(report.trained) == 2
    return cfgs


@pytest.mark.slow  # trains a two-model sweep
def test_tensorboard_event_files_hold_what_metrics_jsonl_holds(tensorboard_sweep):
    from counting.store.trackers import run_name, tensorboard_dir

    cfgs = tensorboard_sweep
    logdir = tensorboard_dir(cfgs[0])
    assert logdir == Path(cfgs[0].results_dir) / "tiny" / "tensorboard"
    assert sorted(p.name for p in logdir.iterdir()) == sorted(run_name(c) for c in cfgs)  # one run per model
    reasons = {}
    for cfg in cfgs:
        name = run_name(cfg)
        assert name == f"d8_m3_n4_lr0.003_wd0.01_seed{cfg.train.seed}_{cfg.hash()[:6]}"
        expected, record = expected_series(folder_of(cfg))
        assert any(tag.startswith("support/") for tag in expected) and "support_worst" in expected
        acc = accumulate(logdir / name)
        assert sorted(acc.Tags()["scalars"]) == sorted(expected)
        for tag, series in expected.items():
            events = acc.Scalars(tag)
            assert [e.step for e in events] == sorted(series), tag  # each step once, in order
            for event in events:
                assert event.value == pytest.approx(series[event.step], rel=1e-6, abs=1e-7), (name, tag, event.step)
        (text,) = acc.Tensors("stop_reason/text_summary")
        assert text.step == record["steps"]
        reasons[cfg.train.seed] = text.tensor_proto.string_val[0].decode()
        assert reasons[cfg.train.seed] == record["stop_reason"]
    assert reasons == {0: "plateau", 1: "budget"}


def test_the_logger_is_no_part_of_a_run_identity():
    base = tiny()
    for logger in ("tensorboard", "wandb"):
        other = tiny(logger=logger)
        assert other.hash() == base.hash() and other.identity() == base.identity()
        assert folder_of(other) == folder_of(base)
    assert "logger" not in base.identity()


def test_the_logger_is_chosen_in_the_config_and_checked_before_any_training():
    from omegaconf import OmegaConf

    from counting.experiment import compose

    def job(*overrides):
        return JobConfig.from_dict(OmegaConf.to_container(compose(list(overrides)), resolve=True))

    assert job().run.logger == "jsonl"
    assert job("logger=tensorboard").run.logger == "tensorboard"
    with pytest.raises(ConfigError, match=r"^logger: unknown value 'tb'; allowed: jsonl, tensorboard, wandb$"):
        job("logger=tb")


def test_a_missing_tracker_package_is_one_line_before_any_compute(tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboardX" else find_spec(name, *a))
    cfg = tiny(results_dir=str(tmp_path), logger="tensorboard")
    with pytest.raises(ConfigError, match=r"logger: tensorboard needs the tensorboardX package: pip install"):
        execute_many([cfg], show_progress=False)
    assert not (folder_of(cfg) / METRICS).exists()


def rows(steps, offset=0.0):
    return [{"step": s, "loss": 1.0 / s + offset, "train_loss": 2.0 / s, "accuracy": 0.5, "seq_accuracy": 0.25,
             "baseline_accuracy": 0.3, "param_norms": {"embed": 1.5}, "wall_s": 0.1} for s in steps]


def test_a_resumed_attempt_writes_each_step_once_and_a_fresh_attempt_starts_fresh(tmp_path):
    pytest.importorskip("tensorboardX", reason="logger=tensorboard needs tensorboardX: pip install -e '.[tensorboard]'")
    pytest.importorskip("tensorboard", reason="the test reads the event files with the tensorboard package")
    from counting.store.trackers import Trackers, run_name, tensorboard_dir

    cfg = tiny(train={"steps": 40}, results_dir=str(tmp_path), logger="tensorboard")
    folder = tensorboard_dir(cfg) / run_name(cfg)

    def attempt(resume_at, written):
        trackers = Trackers([cfg], resume_at)
        log = trackers.wrap(0, lambda row: None)
        for row in written:
            log(row)
        trackers.close()

    def losses():
        return [(e.step, round(e.value, 6)) for e in accumulate(folder).Scalars("loss")]

    attempt(None, rows([10, 20, 30]))  # killed after step 30; its checkpoint was at step 10
    attempt(10, rows([20, 30, 40], offset=1.0))  # the resumed attempt: steps after 10 only
    assert losses() == [(10, 0.1), (20, 1.05), (30, round(1 + 1 / 30, 6)), (40, 1.025)]
    assert [(e.step, e.value) for e in accumulate(folder).Scalars("stop")] == [(10, 0), (20, 0), (30, 0), (40, 1)]
    attempt(None, rows([10]))  # a fresh attempt (no checkpoint): fresh curves
    assert losses() == [(10, 0.1)]


def test_a_failing_tracker_leaves_the_run_and_metrics_jsonl_alone(tmp_path, monkeypatch, capsys):
    from counting.store import trackers

    class Broken:
        KIND = "tensorboard"

        def __init__(self, cfg, resume_at):
            pass

        def log(self, row):
            raise OSError("disk quota exceeded")

        def close(self):
            raise RuntimeError("and closing fails too")

    monkeypatch.setitem(trackers.SINKS, "tensorboard", Broken)
    cfgs = [tiny(results_dir=str(tmp_path), logger="tensorboard", train={"seed": s}) for s in (0, 1)]
    sink = trackers.Trackers(cfgs)
    written = []
    logs = [sink.wrap(i, written.append) for i in range(2)]
    for row in rows([10, 20]):
        for log in logs:
            log(row)
    sink.close()
    assert written == [r for r in rows([10, 20]) for _ in range(2)]  # every row reached metrics.jsonl
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("logger=tensorboard failed (log: OSError: disk quota exceeded); this chunk goes on with "
                    "metrics.jsonl only")]

    def refuse(cfg, resume_at):
        raise ImportError("no tensorboardX")

    monkeypatch.setitem(trackers.SINKS, "tensorboard", refuse)  # a sink that cannot even open
    sink = trackers.Trackers(cfgs)
    sink.wrap(0, written.append)(rows([30])[0])
    sink.close()
    assert written[-1]["step"] == 30
    assert capsys.readouterr().err.count("\n") == 1


def wandb_history(path: Path) -> dict[int, dict]:
    """The history rows of an offline W&B run's .wandb file (LevelDB's log format: 32 KiB blocks of
    records, each a 7-byte header (checksum, length, type 1 = whole, 2-4 = first, middle, last
    piece) and a piece of one serialised `Record`), by step."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, piece, out = 7, b"", {}
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        piece, pos = piece + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(piece)
            piece = b""
            if record.WhichOneof("record_type") == "history":
                row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                out[row["_step"]] = row
    return out


def test_logger_wandb_works_offline(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="logger=wandb needs wandb: pip install -e '.[wandb]'")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb_dir").mkdir()
    cfg = tiny(results_dir=str(tmp_path / "results"), logger="wandb")
    report = execute_many([cfg], show_progress=False)
    assert not report.failed and report.trained == [folder_of(cfg)]
    wandb.teardown()  # W&B's service writes the last records of a finished run on its own time
    (run,) = (tmp_path / "wandb_dir" / "wandb").glob("offline-run-*")  # one offline run per model, for `wandb sync`
    (data,) = run.glob("run-*.wandb")
    expected, _ = expected_series(folder_of(cfg))
    history = wandb_history(data)
    assert sorted(history) == [10, 20]
    for tag, series in expected.items():
        assert {step: row[tag] for step, row in history.items() if tag in row} == pytest.approx(series), tag


def test_the_suite_imports_without_the_trackers_and_their_output_is_not_committed():
    code = "import sys, counting.sweep.runner, counting.store.trackers; print('tensorboardX' in sys.modules, 'wandb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {"results/*/tensorboard/", "results/*/wandb/"} <= set(ignored)
