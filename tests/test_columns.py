"""One table schema, derived from the dataclasses: every identity field is a column, types come
from the fields, one reader parses every table, and a series is every model that shares every
identity field but d, m and the seed."""

import csv
import dataclasses
from pathlib import Path

import pytest
from tiny import tiny

from counting.analysis.analyze import analyze
from counting.config import AnalysisConfig, ModelConfig, StopConfig, TaskConfig, TrainConfig
from counting.spec import flat_fields
from counting.store import write_table
from counting.store.aggregate import row_of
from counting.store.columns import TableError, identity_columns, identity_row, read_rows, read_table, series_columns

RESULTS = Path(__file__).parents[1] / "results"


def record(cfg, accuracy=0.5):
    return {"hash": cfg.hash(), "config": cfg.to_dict(), "status": "complete", "steps": 20, "stop_reason": "budget",
            "metrics": {"accuracy": accuracy, "baseline_accuracy": 0.25, "loss": 1.0, "seq_accuracy": accuracy}}


def test_every_identity_field_is_a_column_with_a_unique_name_and_its_type():
    cols = identity_columns()
    names = [c.name for c in cols]
    assert len(names) == len(set(names))
    paths = {c.path for c in cols}
    for section, cls in (("task", TaskConfig), ("model", ModelConfig), ("train", TrainConfig)):
        assert {d for d, _, _ in flat_fields(cls, f"{section}.")} <= paths
    kinds = {c.name: c.kind for c in cols}
    assert kinds["d"] is int and kinds["lr"] is float and kinds["bos"] is bool and kinds["pos"] is str
    assert kinds["train.stop.patience"] is int and kinds["eval_every"] is int


def test_the_identity_row_empties_the_stop_rule_and_eval_every_without_a_rule():
    plain = identity_row(tiny())
    assert plain["eval_every"] is None and plain["train.stop.patience"] is None
    ruled = identity_row(tiny(stop={"patience": 3}))
    assert ruled["eval_every"] == 10 and ruled["train.stop.patience"] == 3 and ruled["train_steps"] == 20


@pytest.mark.parametrize("change", [
    {"stop": {"patience": 3}},  # same rule family, other patience
    {"train": {"eval_every": 5}},  # same rule, checked at other steps
])
def test_models_that_differ_only_in_the_stop_rule_are_two_series(change, tmp_path):
    a = tiny(stop={"patience": 2, "target": 0.9})
    b = tiny(base=a, **change)
    assert a.hash() != b.hash()
    rows = []
    for seed in (0, 1):
        for cfg, acc in ((a, 0.9), (b, 0.3)):
            c = tiny(base=cfg, train={"seed": seed})
            rows.append(row_of(record(c, acc)))
    path = tmp_path / "table.csv"
    write_table(path, rows)
    parsed = read_table(path)
    columns = series_columns(parsed)
    assert set(columns) & {"train.stop.patience", "eval_every"}
    analysis = analyze(parsed, AnalysisConfig(boot=20))
    assert len(analysis.cells) == 2  # never one cell averaging the two rules
    assert sorted(c.mean for c in analysis.cells) == [0.3, 0.9]


def test_searched_hyperparameters_do_not_split_series():
    rows = [row_of(record(tiny(train={"lr": lr, "seed": s}))) for lr in (1e-3, 3e-3) for s in (0, 1)]
    assert "lr" in series_columns(rows)
    assert "lr" not in series_columns(rows, exclude=("lr",))


def test_one_reader_parses_every_committed_table_with_the_schema_types():
    tables = sorted(p for p in RESULTS.glob("*/*.csv") if p.name != "published.csv")  # published: a peer's numbers
    assert len(tables) > 30
    for path in tables:
        rows = read_rows(path)  # an empty table (no fit) parses to no rows
        for r in rows:
            for col in ("d", "m", "n", "seed", "steps", "count", "support", "eval_n", "budget"):
                if r.get(col) is not None:
                    assert isinstance(r[col], int), (path, col, r[col])
            for col in ("accuracy", "m_thr", "slope", "lr"):
                if col in r:
                    assert isinstance(r[col], float), (path, col)


def test_old_committed_tables_stay_readable_and_analysable():
    rows = read_table(RESULTS / "phase_qc" / "table.csv")  # written by the 0.1 code (fingerprint b77625c7df257321)
    assert len(rows) == 132 and isinstance(rows[0]["causal"], bool)
    analysis = analyze(rows, AnalysisConfig(boot=20))
    assert {r["d"] for r in analysis.threshold_rows} == {4, 8, 16, 32}


def test_a_legacy_softmax_column_is_read_as_attention(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("task,d,m,seed,accuracy,softmax\nqc,4,2,0,0.5,False\n")
    assert read_rows(path)[0]["attention"] == "linear"


@pytest.mark.parametrize("column, value, words", [
    ("accuracy", "abc", ["row 3", "column accuracy", "a number", "'abc'"]),
    ("d", "4.5", ["row 3", "column d", "an integer"]),
    ("causal", "maybe", ["column causal", "true or false"]),
])
def test_a_bad_value_is_one_line_naming_file_row_and_column(tmp_path, column, value, words):
    rows = [row_of(record(tiny(train={"seed": s}))) for s in (0, 1)]
    path = tmp_path / "table.csv"
    write_table(path, rows)
    with path.open() as f:
        raw = list(csv.DictReader(f))
    raw[1][column] = value
    write_table(path, raw)
    with pytest.raises(TableError) as err:
        read_rows(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    for w in words:
        assert w in msg


def test_counting_analyze_on_a_bad_table_is_one_line_and_exit_2(tmp_path, capsys):
    from counting.cli.analyze import main

    rows = [row_of(record(tiny(train={"seed": s}))) for s in (0, 1)]
    path = tmp_path / "table.csv"
    write_table(path, [{**rows[0], "accuracy": "abc"}, rows[1]])
    with pytest.raises(SystemExit) as exit_:
        main(["--table", str(path)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.count("\n") == 0 and "column accuracy" in err


def test_new_fields_keep_every_earlier_hash():
    """model.arch was added with a default that reproduces the earlier model: the identity
    leaves it out while it holds that default, so no earlier run's hash moved."""
    cfg = tiny()
    assert "arch" not in cfg.identity()["model"]
    assert identity_row(cfg)["arch"] == "transformer"
    assert dataclasses.replace(cfg, model=dataclasses.replace(cfg.model)).hash() == cfg.hash()
    assert StopConfig().active is False
