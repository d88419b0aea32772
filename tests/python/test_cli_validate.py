"""perkrec validate: every problem of a program's files with its file, row and column, exit
code 2; clean files (CSV or Parquet, as the simulator writes them) pass with exit code 0."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import perkrec
from perkrec.__main__ import main
from perkrec.demo import demo_policy
from perkrec.validate import Problem, validate_files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("program")
    prog = perkrec.simulate(n_users=300, seed=5)
    prog.events.to_frame().to_csv(d / "events.csv", index=False)
    prog.events.to_frame().to_parquet(d / "events.parquet", index=False)
    prog.catalog.to_frame().to_csv(d / "catalog.csv", index=False)
    prog.users.to_frame().to_csv(d / "users.csv")
    (d / "policy.json").write_text(json.dumps(demo_policy(300)))
    return d


def test_clean_files_pass(files, capsys):
    for events in ("events.csv", "events.parquet"):
        rc = main(
            [
                "validate",
                "--events",
                str(files / events),
                "--catalog",
                str(files / "catalog.csv"),
                "--users",
                str(files / "users.csv"),
                "--policy",
                str(files / "policy.json"),
            ]
        )
        out = capsys.readouterr().out
        assert rc == 0, out
        assert "no problems" in out and "300 rows" in out


def test_every_problem_with_file_row_and_column(files, tmp_path, capsys):
    ev = pd.read_csv(files / "events.csv")
    ev.loc[3, "timestamp"] = "2026-13-45"
    ev.loc[5, "event_type"] = "clicked"
    ev.loc[7, "benefit"] = "B99"
    ev.loc[9, "order_amount"] = -3
    ev.loc[10, "propensity"] = 0
    ev.to_csv(tmp_path / "events.csv", index=False)
    cat = pd.read_csv(files / "catalog.csv")
    cat.loc[4, "kind"] = "teleport"
    cat.loc[6, "validity_days"] = -2
    cat.to_csv(tmp_path / "catalog.csv", index=False)
    (tmp_path / "policy.json").write_text('{"nonsense": 1}')
    problems = validate_files(
        events=tmp_path / "events.csv",
        catalog=tmp_path / "catalog.csv",
        policy=tmp_path / "policy.json",
    )
    where = {(p.file.split("/")[-1], p.row, p.column) for p in problems}
    # CSV rows as a spreadsheet numbers them: header = 1, frame row i = i + 2.
    assert where == {
        ("catalog.csv", 6, "kind"),
        ("catalog.csv", 8, "validity_days"),
        ("events.csv", 5, "timestamp"),
        ("events.csv", 7, "event_type"),
        ("events.csv", 9, "benefit"),
        ("events.csv", 11, "order_amount"),
        ("events.csv", 12, "propensity"),
        ("policy.json", None, "/nonsense"),
    }  # the policy: its JSON pointer
    assert any("teleport" in p.message for p in problems)
    assert any("/nonsense" in p.message for p in problems)
    rc = main(
        [
            "validate",
            "--events",
            str(tmp_path / "events.csv"),
            "--catalog",
            str(tmp_path / "catalog.csv"),
            "--policy",
            str(tmp_path / "policy.json"),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 2
    assert f"{tmp_path / 'events.csv'}:5:timestamp: not a time '2026-13-45'" in captured.out
    assert "8 problem(s)" in captured.err


def test_many_rows_of_one_kind_are_capped_and_counted(files, tmp_path):
    ev = pd.read_csv(files / "events.csv")
    ev["event_type"] = "clicked"
    ev.to_csv(tmp_path / "events.csv", index=False)
    problems = [
        p
        for p in validate_files(events=tmp_path / "events.csv", max_per_kind=3)
        if p.column == "event_type"
    ]
    assert [p.row for p in problems] == [2, 3, 4, None]
    assert problems[-1].message == f"... and {len(ev) - 3:,} more rows like these"


def test_missing_columns_and_files(files, tmp_path, capsys):
    pd.read_csv(files / "events.csv").drop(columns=["timestamp"]).to_csv(
        tmp_path / "events.csv", index=False
    )
    problems = validate_files(events=tmp_path / "events.csv", users=tmp_path / "nope.csv")
    assert Problem(str(tmp_path / "nope.csv"), None, None, "no such file") in problems
    assert any(p.column == "timestamp" and p.message.startswith("missing column") for p in problems)
    assert main(["validate"]) == 2
    assert "at least one of" in capsys.readouterr().err
    with pytest.raises(perkrec.InputError, match="event roles"):
        validate_files(events=tmp_path / "events.csv", event_columns={"when": "t"})
