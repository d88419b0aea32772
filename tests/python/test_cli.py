"""perkrec fit / plan / evaluate: from a program's files to a model file, a plan file equal to the
Python API's plan, its report and its evaluation; bad files answered with exit code 2, every
problem as FILE:ROW:COLUMN and no output file left behind."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.cli import _FILES, main, read_plan
from perkrec.demo import demo_policy

MEMBERS, DAYS, SEED = 800, 120, 5
PARAMS = ["--param", "seed=3", "--param", "factors=4", "--threads", "2"]


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=MEMBERS, days=DAYS, seed=SEED)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("program")
    assert (
        main(
            [
                "simulate",
                "--members",
                str(MEMBERS),
                "--days",
                str(DAYS),
                "--seed",
                str(SEED),
                "--out",
                str(d),
            ]
        )
        == 0
    )
    return d


def _inputs(d: Path, **override) -> list:
    names = {
        "events": "events.csv",
        "catalog": "catalog.csv",
        "users": "users.csv",
        "policy": "policy.json",
    }
    names.update(override)
    out = []
    for role, name in names.items():
        if name is not None:
            out += [f"--{role}", str(d / name)]
    return out


@pytest.fixture(scope="module")
def at(program):
    return program.events.time_range[1] - pd.Timedelta(days=2)


@pytest.fixture(scope="module")
def api_plan(program, at):
    """The Python API on the simulator's own objects (what the files were written from)."""
    bp = perkrec.BenefitPlanner(demo_policy(MEMBERS), seed=3, factors=4, num_threads=2)
    return bp.fit(program.events, program.catalog, program.users).plan(at=at)


@pytest.fixture(scope="module")
def one_command(files, at, tmp_path_factory):
    """`perkrec plan` from the CSV files in one command, run as a user runs it (a subprocess)."""
    out = tmp_path_factory.mktemp("one")
    cmd = [
        sys.executable,
        "-m",
        "perkrec",
        "plan",
        *_inputs(files),
        *PARAMS,
        "--at",
        f"{at:%Y-%m-%d %H:%M:%S}",
        "--out",
        str(out / "plan.csv"),
        "--report",
        str(out / "report.html"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "%" not in done.stderr  # no progress bar when stderr is not a terminal
    return out, done


def _same_values(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same rows in the same order, same values, for a plan read back from a file."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0
    for col in expected.columns:
        e, g = expected[col], got[col]
        if col in ("send_at", "valid_until"):
            assert (pd.to_datetime(g, utc=True) == e).all(), col
        elif pd.api.types.is_float_dtype(e):
            np.testing.assert_array_equal(
                g.to_numpy(np.float64), e.to_numpy(np.float64), err_msg=col
            )
        elif pd.api.types.is_integer_dtype(e):
            np.testing.assert_array_equal(g.to_numpy(np.int64), e.to_numpy(np.int64), err_msg=col)
        else:
            assert (g.astype(str).to_numpy() == e.astype(str).to_numpy()).all(), col


def test_plan_from_files_in_one_command_equals_the_python_api(one_command, api_plan):
    out, done = one_command
    _same_values(pd.read_csv(out / "plan.csv"), api_plan.frame)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "Where the budget goes" in page
    assert "perkrec plan: wrote" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "plan.csv",
        "report.html",
    ]  # no temporaries left


def test_fit_then_plan_from_the_model_file_in_every_format(files, at, api_plan, tmp_path, capsys):
    model = tmp_path / "pipeline.perkrec"
    (tmp_path / "params.json").write_text(
        json.dumps({"seed": 3, "factors": 7})
    )  # --param wins over the file
    assert (
        main(
            [
                "fit",
                *_inputs(files),
                "--params",
                str(tmp_path / "params.json"),
                "--param",
                "factors=4",
                "--threads",
                "2",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    assert perkrec.info(model)["kind"] == "BenefitPlanner"
    when = str(int(at.value // 10**9))  # epoch seconds work as well as dates
    for name in ("plan.parquet", "plan.jsonl", "plan.csv"):
        assert (
            main(["plan", "--model", str(model), "--at", when, "--out", str(tmp_path / name)]) == 0
        )
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "plan.parquet"), api_plan.frame)
    lines = (tmp_path / "plan.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        json.loads(line) for line in api_plan.to_jsonl().splitlines()
    ]
    _same_values(pd.read_csv(tmp_path / "plan.csv"), api_plan.frame)
    # evaluate reads every format back to the same plan.
    results = []
    pages = []
    for name in ("plan.parquet", "plan.jsonl", "plan.csv"):
        assert (
            main(
                [
                    "evaluate",
                    "--plan",
                    str(tmp_path / name),
                    *_inputs(files),
                    "--out",
                    str(tmp_path / "e.json"),
                    "--report",
                    str(tmp_path / "e.html"),
                ]
            )
            == 0
        )
        results.append(json.loads((tmp_path / "e.json").read_text())["offline"])
        pages.append(
            re.sub(
                r"<title>.*?</h1>",
                "",
                (tmp_path / "e.html").read_text(encoding="utf-8"),
                flags=re.S,
            )
        )
    assert results[0] == results[1] == results[2] and results[0]["covered_pairs"] > 0
    assert pages[0] == pages[1] == pages[2] and "Top reasons" in pages[0]
    # --budget overrides the policy's.
    assert (
        main(
            [
                "plan",
                "--model",
                str(model),
                "--at",
                when,
                "--budget",
                "50",
                "--out",
                str(tmp_path / "b.csv"),
            ]
        )
        == 0
    )
    smaller = pd.read_csv(tmp_path / "b.csv")
    assert smaller["cost"].sum() <= 50 + 1e-6 and len(smaller) < len(api_plan.frame)
    assert "perkrec fit: BenefitPlanner(800 members" in capsys.readouterr().out


def test_evaluate_gives_the_offline_estimate_and_the_experiment(
    one_command, files, program, tmp_path, capsys
):
    from perkrec.causal import analyze_experiment, experiment_table

    plan_file = one_command[0] / "plan.csv"
    since = program.events.time_range[1] - pd.Timedelta(days=30)
    rc = main(
        [
            "evaluate",
            "--plan",
            str(plan_file),
            "--events",
            str(files / "events.csv"),
            "--catalog",
            str(files / "catalog.csv"),
            "--policy",
            str(files / "policy.json"),
            "--since",
            f"{since:%Y-%m-%d %H:%M:%S}",
            "--threads",
            "2",
            "--out",
            str(tmp_path / "ev.json"),
            "--report",
            str(tmp_path / "ev.html"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "Off-policy estimate (SNIPS" in out and "Experiment:" in out and "revenue" in out
    page = (tmp_path / "ev.html").read_text(encoding="utf-8")
    for section in (
        "The plan valued off-policy from the log",
        "Experiment: incremental results",
        "Pacing",
        "Where the budget goes",
    ):
        assert section in page, section
    result = json.loads((tmp_path / "ev.json").read_text())
    # The same figures as the Python API on the same plan and log.
    plan = read_plan(plan_file, program.catalog, issue_cost=demo_policy(MEMBERS)["issue_cost"])
    expected = plan.evaluate_offline(program.events, program.catalog, since=since, num_threads=2)
    for metric in ("redemptions", "cost", "return"):
        got = result["offline"]["metrics"][metric]
        assert got["estimate"] == pytest.approx(expected.loc[metric, "estimate"], rel=1e-12)
        assert got["lower"] <= got["estimate"] <= got["upper"]
    assert result["offline"]["pairs"] == len(plan.frame)
    members = experiment_table(
        program.events, program.catalog, since=since, issue_cost=demo_policy(MEMBERS)["issue_cost"]
    )
    exp = analyze_experiment(
        members,
        arm="arm",
        metrics=["orders", "revenue"],
        cost="cost",
        pre_period={"orders": "orders_pre", "revenue": "revenue_pre"},
        control="control",
    )
    got = {r["metric"]: r for r in result["experiment"]}
    for row in exp.to_dict("records"):
        assert got[row["metric"]]["lift"] == pytest.approx(row["lift"], rel=1e-12)
        assert got[row["metric"]]["n_control"] == row["n_control"] > 0
    # A window without a complete logged issue: no estimate, said, and the experiment still.
    late = program.events.time_range[1] - pd.Timedelta(days=1)
    assert (
        main(
            [
                "evaluate",
                "--plan",
                str(plan_file),
                *_inputs(files, users=None),
                "--since",
                f"{late:%Y-%m-%d %H:%M}",
                "--out",
                str(tmp_path / "late.json"),
            ]
        )
        == 0
    )
    assert (
        "No off-policy estimate: Plan.evaluate_offline: no logged issue" in capsys.readouterr().out
    )
    late_result = json.loads((tmp_path / "late.json").read_text())
    assert "offline" not in late_result and "no logged issue" in late_result["offline_error"]
    assert len(late_result["experiment"]) == 2
    # IPS as well; a plan with a benefit the catalog lacks is a problem with its row.
    assert (
        main(
            [
                "evaluate",
                "--plan",
                str(plan_file),
                *_inputs(files, users=None, policy=None),
                "--estimator",
                "ips",
            ]
        )
        == 0
    )
    bad = pd.read_csv(plan_file)
    bad.loc[2, "benefit"] = "NOPE"
    bad.loc[3, "benefit"] = None
    bad["value"] = bad["value"].astype(object)
    bad.loc[5, "value"] = "lots"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--plan",
                str(tmp_path / "bad.csv"),
                *_inputs(files, users=None, policy=None),
                "--out",
                str(tmp_path / "bad.json"),
            ]
        )
        == 2
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{tmp_path / 'bad.csv'}:5:benefit: missing benefit id",
        f"{tmp_path / 'bad.csv'}:4:benefit: benefit 'NOPE' is not in the catalog",
        f"{tmp_path / 'bad.csv'}:7:value: not a finite number 'lots'",
    ]
    assert not (tmp_path / "bad.json").exists()


def test_experiment_table_matches_the_logged_events(program):
    from perkrec.causal import experiment_table

    frame = program.events.to_frame()
    members = experiment_table(program.events, program.catalog, issue_cost=0.5)
    orders = frame[frame["event_type"].astype(str) == "ordered"]
    assert members["orders"].sum() == len(orders)
    assert members["revenue"].sum() == pytest.approx(orders["order_amount"].sum())
    assert "orders_pre" not in members.columns  # no --since: no pre-period
    control = frame.groupby("user")["control"].max()
    assert (members.loc[control.index, "arm"] == np.where(control > 0, "control", "benefits")).all()
    with pytest.raises(perkrec.InputError, match="since must be before until"):
        experiment_table(program.events, program.catalog, since="2030-01-01", until="2029-01-01")


def test_experiment_table_equals_per_member_sums_of_the_events(program):
    """The C++ sums (eval/experiment.hpp: experiment_members) against numpy's bincount."""
    from perkrec.causal import experiment_table

    log, n = program.events, program.events.n_users
    frame = log.to_frame(external_ids=False)
    t = log.timestamps
    etype = frame["event_type"].astype(str).to_numpy()
    cost_b = program.catalog.to_frame()["cost"].to_numpy(np.float64)
    b = frame["benefit"].to_numpy()
    red_cost = np.where(b >= 0, cost_b[np.maximum(b, 0)], 0.0)
    amount = frame["order_amount"].to_numpy(np.float64)
    user = frame["user"].to_numpy()

    def sums(mask, weights=None):
        w = None if weights is None else weights[mask]
        return np.bincount(user[mask], weights=w, minlength=n).astype(np.float64)

    first, last = int(t.min()), int(t.max())
    since, until = first + (last - first) // 2, last - 86400 * 3
    members = experiment_table(log, program.catalog, since=since, until=until, issue_cost=0.25)
    now = (t >= since) & (t < until)
    before = (t >= since - (until - since)) & (t < since)
    orders = etype == "ordered"
    np.testing.assert_array_equal(members["orders"], sums(orders & now))
    np.testing.assert_array_equal(members["revenue"], sums(orders & now, amount))
    np.testing.assert_array_equal(
        members["cost"],
        sums((etype == "redeemed") & now, red_cost) + 0.25 * sums((etype == "issued") & now),
    )
    np.testing.assert_array_equal(members["orders_pre"], sums(orders & before))
    np.testing.assert_array_equal(members["revenue_pre"], sums(orders & before, amount))
    assert (members["arm"] == "control").sum() == (sums(frame["control"].to_numpy()) > 0).sum()


# --- bad input ---------------------------------------------------------------------------------
def _broken(files: Path, d: Path, kind: str) -> tuple:
    """A copy of the program with one problem; the FILE:ROW:COLUMN it must be reported at."""
    for name in ("events.csv", "catalog.csv", "users.csv", "policy.json"):
        (d / name).write_bytes((files / name).read_bytes())
    ev = pd.read_csv(files / "events.csv")
    if kind == "missing column":
        ev.drop(columns=["timestamp"]).to_csv(d / "events.csv", index=False)
        return f"{d / 'events.csv'}:timestamp: missing column"
    if kind == "bad time":
        ev["timestamp"] = ev["timestamp"].astype(object)
        ev.loc[6, "timestamp"] = "2026-02-31 10:00:00"
        ev.to_csv(d / "events.csv", index=False)
        return f"{d / 'events.csv'}:8:timestamp: not a time '2026-02-31 10:00:00'"
    if kind == "unknown benefit":
        row = int(np.flatnonzero(ev["benefit"].notna().to_numpy())[3])
        ev.loc[row, "benefit"] = "B999"
        ev.to_csv(d / "events.csv", index=False)
        return f"{d / 'events.csv'}:{row + 2}:benefit: benefit 'B999' is not in the catalog"
    if kind == "malformed policy":
        (d / "policy.json").write_text('{"budget": 100,\n "max_per_member": }\n')
        return f"{d / 'policy.json'}"
    if kind == "bad policy field":
        policy = json.loads((files / "policy.json").read_text())
        policy["rules"][0]["effect"] = "forbid-ish"
        (d / "policy.json").write_text(json.dumps(policy))
        return f"{d / 'policy.json'}:/rules/0/effect:"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["missing column", "bad time", "unknown benefit", "malformed policy", "bad policy field"],
)
@pytest.mark.parametrize("command", ["fit", "plan"])
def test_bad_files_exit_2_naming_file_row_and_column_without_output(
    files, tmp_path, capsys, kind, command
):
    where = _broken(files, tmp_path, kind)
    out = tmp_path / ("pipeline.perkrec" if command == "fit" else "plan.parquet")
    extra = ["--report", str(tmp_path / "report.html")] if command == "plan" else []
    rc = main([command, *_inputs(tmp_path), "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert rc == 2
    assert where in captured.out, captured.out
    assert "problem(s)" in captured.err
    assert not out.exists() and not (tmp_path / "report.html").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_malformed_policy_names_its_line_and_column(files, tmp_path, capsys):
    _broken(files, tmp_path, "malformed policy")
    assert main(["validate", "--policy", str(tmp_path / "policy.json")]) == 2
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'policy.json'}:") and re.search(
        r"line 2|2:\d+|column", line
    ), line


def test_bad_options_exit_2_before_any_work(files, tmp_path, capsys):
    out = tmp_path / "plan.csv"
    cases = [
        (["plan", *_inputs(files), "--out", str(tmp_path / "plan.xlsx")], "unknown format '.xlsx'"),
        (
            ["plan", *_inputs(files), "--out", str(out), "--param", "factorz=3"],
            "unknown model parameter(s) ['factorz']",
        ),
        (["plan", *_inputs(files), "--out", str(out), "--param", "factors=-1"], "factors"),
        (["plan", *_inputs(files), "--out", str(out), "--at", "yesterday-ish"], "--at"),
        (["plan", "--model", str(tmp_path / "nope.perkrec"), "--out", str(out)], "nope.perkrec"),
        (["plan", "--model", "m.perkrec", *_inputs(files), "--out", str(out)], "not both"),
        (["plan", "--out", str(out)], "give --model"),
        (
            ["fit", *_inputs(files, policy=None), "--out", str(tmp_path / "m.perkrec")],
            "missing --policy",
        ),
        (["fit", *_inputs(files), "--out", str(tmp_path / "no" / "m.perkrec")], "no such folder"),
    ]
    (tmp_path / "params.json").write_text("[1, 2]")
    cases.append(
        (
            ["fit", *_inputs(files), "--params", str(tmp_path / "params.json"), "--out", str(out)],
            "expected a JSON object",
        )
    )
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not out.exists() and not (tmp_path / "m.perkrec").exists()


def test_a_failure_while_fitting_or_writing_leaves_no_output(files, tmp_path, capsys, monkeypatch):
    import perkrec.cli as cli

    # The simulator's log has propensities; without that column 'ipw' weighting cannot fit.
    ev = pd.read_csv(files / "events.csv").drop(columns=["propensity"])
    ev.to_csv(tmp_path / "events.csv", index=False)
    out = tmp_path / "m.perkrec"
    assert (
        main(
            [
                "fit",
                *_inputs(files, events=None),
                "--events",
                str(tmp_path / "events.csv"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "weighting='none'" in capsys.readouterr().err and not out.exists()

    def half_written(plan, path, kind=None):
        Path(path).write_text("member,benefit\n1,")
        raise OSError("disk full")

    monkeypatch.setattr(cli, "write_plan", half_written)
    model = tmp_path / "m2.perkrec"
    perkrec.BenefitPlanner(demo_policy(MEMBERS), epochs=1, early_stopping=False, shrink=False).fit(
        *_program_objects(files)
    ).save(model)
    with pytest.raises(OSError, match="disk full"):
        main(["plan", "--model", str(model), "--out", str(tmp_path / "plan.csv")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "m2.perkrec"]


def _program_objects(files: Path):
    from perkrec.validate import load_files

    loaded = load_files(
        events=files / "events.csv", catalog=files / "catalog.csv", users=files / "users.csv"
    )
    return loaded.events, loaded.catalog, loaded.users


def test_files_load_into_the_simulators_objects(files, program):
    """The loader reads the written files back into the same log, catalog and members (so the
    plans above are the Python API's on the same inputs)."""
    events, catalog, users = _program_objects(files)
    assert (
        events.user_ids == program.events.user_ids
        and events.benefit_ids == program.events.benefit_ids
    )
    pd.testing.assert_frame_equal(
        events.to_frame(), program.events.to_frame(), check_categorical=False
    )
    assert catalog == program.catalog
    pd.testing.assert_frame_equal(
        users.to_frame(), program.users.to_frame(), check_categorical=False
    )


# --- progress and help -------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_on_a_terminal_only_and_not_with_quiet(files, tmp_path, monkeypatch, capsys):
    model = tmp_path / "m.perkrec"
    perkrec.BenefitPlanner(demo_policy(MEMBERS), epochs=1, early_stopping=False, shrink=False).fit(
        *_program_objects(files)
    ).save(model)
    for quiet, expect_bar in ((False, True), (True, False)):
        term = _Terminal()
        monkeypatch.setattr(sys, "stderr", term)
        argv = ["plan", "--model", str(model), "--out", str(tmp_path / "p.csv")] + (
            ["--quiet"] if quiet else []
        )
        assert main(argv) == 0
        text = term.getvalue()
        assert (
            "perkrec plan [2/3] planning" in text and "perkrec plan: done in" in text
        ) == expect_bar, text
    monkeypatch.undo()
    assert main(["plan", "--model", str(model), "--out", str(tmp_path / "p.csv")]) == 0
    assert "%" not in capsys.readouterr().err  # pytest's stderr is not a terminal


@pytest.mark.parametrize("command", ["validate", "fit", "plan", "evaluate", "simulate"])
def test_help_teaches_the_file_formats(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "Example" in text
    if command != "simulate":
        for word in (
            "event_type",
            "timestamp",
            "epoch seconds",
            "validity_days",
            "policy",
            '"budget"',
        ):
            assert word in text, (command, word)


def test_the_help_example_rows_are_valid_files(tmp_path, capsys):
    """The example rows the help shows load without a problem."""
    section = _FILES.split("Example rows:\n", 1)[1].split("\n\n", 1)[0]
    files, name = {}, None
    for line in section.splitlines():
        m = re.match(r"\s+(\w+\.csv)\s+(.*)", line)
        if m:
            name = m.group(1)
            files[name] = [m.group(2)]
        else:
            files[name].append(line.strip())
    for name, rows in files.items():
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    policy = _FILES.split("policy   JSON object;", 1)[1].split("\n", 1)[1].split("\n\n", 1)[0]
    (tmp_path / "policy.json").write_text(policy.split("Example rows:")[0])
    rc = main(["validate", *_inputs(tmp_path)])
    assert rc == 0, capsys.readouterr()


# --- a real program ----------------------------------------------------------------------------
def test_plan_on_the_complete_journey_files(tmp_path, capsys):
    """dunnhumby's Complete Journey (2017) written as perkrec files as a user would (campaigns as
    benefits, targetings as issues, coupon redemptions, baskets as orders, demographics), a
    slice of 300 households; validate, then files -> plan in one command."""
    from conftest import dataset_path

    src = dataset_path("dunnhumby-complete-journey-2017")
    campaigns = pd.read_parquet(src / "campaign_descriptions.parquet")
    targeted = pd.read_parquet(src / "campaigns.parquet")
    demographics = pd.read_parquet(src / "demographics.parquet")
    households = np.sort(
        np.intersect1d(targeted["household_id"].unique(), demographics["household_id"])
    )[:300]
    targeted = targeted[targeted["household_id"].isin(households)].merge(
        campaigns, on="campaign_id"
    )
    redeemed = pd.read_parquet(src / "coupon_redemptions.parquet")
    redeemed = redeemed[redeemed["household_id"].isin(households)]
    baskets = pd.read_parquet(
        src / "transactions.parquet",
        columns=["household_id", "basket_id", "sales_value", "transaction_timestamp"],
        filters=[("household_id", "in", list(households))],
    )
    baskets = baskets.groupby(["household_id", "basket_id"], as_index=False).agg(
        order_amount=("sales_value", "sum"), timestamp=("transaction_timestamp", "min")
    )
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    "user": targeted["household_id"],
                    "benefit": "C" + targeted["campaign_id"].astype(str),
                    "event_type": "issued",
                    "timestamp": targeted["start_date"],
                    "order_amount": np.nan,
                }
            ),
            pd.DataFrame(
                {
                    "user": redeemed["household_id"],
                    "benefit": "C" + redeemed["campaign_id"].astype(str),
                    "event_type": "redeemed",
                    "timestamp": redeemed["redemption_date"],
                    "order_amount": 0.0,
                }
            ),
            pd.DataFrame(
                {
                    "user": baskets["household_id"],
                    "benefit": None,
                    "event_type": "ordered",
                    "timestamp": baskets["timestamp"],
                    "order_amount": baskets["order_amount"],
                }
            ),
        ],
        ignore_index=True,
    )
    events.to_csv(tmp_path / "events.csv", index=False)
    pd.DataFrame(
        {
            "id": "C" + campaigns["campaign_id"].astype(str),
            "kind": "discount",
            "face_value": 2.0,
            "cost": 2.0,
            "validity_days": (campaigns["end_date"] - campaigns["start_date"]).dt.days + 1,
            "tags": "campaign_type:" + campaigns["campaign_type"].str.replace(" ", ""),
        }
    ).to_csv(tmp_path / "catalog.csv", index=False)
    demographics = demographics[demographics["household_id"].isin(households)]
    demographics.rename(columns={"household_id": "user"}).to_csv(
        tmp_path / "users.csv", index=False
    )
    (tmp_path / "policy.json").write_text(
        json.dumps({"budget": 60, "issue_cost": 0.1, "max_per_member": 1})
    )
    assert main(["validate", *_inputs(tmp_path)]) == 0, capsys.readouterr().out
    rc = main(
        [
            "plan",
            *_inputs(tmp_path),
            "--cut-time",
            "2017-09-01",
            "--param",
            "weighting=none",
            "--param",
            "factors=4",
            "--threads",
            "2",
            "--out",
            str(tmp_path / "plan.csv"),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert 0 < len(plan) and plan["cost"].sum() <= 60 + 1e-6
    assert plan.groupby("member").size().max() == 1
    assert set(plan["member"]) <= set(households)
    assert set(plan["benefit"]) <= set("C" + campaigns["campaign_id"].astype(str))
    # No logged propensities and no control group: nothing to evaluate, said plainly.
    assert (
        main(["evaluate", "--plan", str(tmp_path / "plan.csv"), *_inputs(tmp_path, users=None)])
        == 2
    )
    assert "neither logged propensities" in capsys.readouterr().err


def test_text_member_ids_give_the_same_plan_under_their_own_ids(files, tmp_path, capsys):
    """Member ids are carried through as given: the plan's member column holds the files' ids
    (not member indices), and evaluate matches them back to the log."""
    for name in ("catalog.csv", "policy.json"):
        (tmp_path / name).write_bytes((files / name).read_bytes())
    for name, column in (("events.csv", "user"), ("users.csv", "user")):
        frame = pd.read_csv(files / name)
        frame[column] = "m" + frame[column].astype(str)
        frame.to_csv(tmp_path / name, index=False)
    fast = [
        "--param",
        "epochs=1",
        "--param",
        "early_stopping=false",
        "--param",
        "shrink=false",
        "--threads",
        "2",
    ]
    plans = {}
    for label, d in (("numbers", files), ("text", tmp_path)):
        plans[label] = tmp_path / f"plan-{label}.csv"
        assert (
            main(["plan", *_inputs(d), *fast, "--out", str(plans[label])]) == 0
        ), capsys.readouterr().err
    numbers, text = pd.read_csv(plans["numbers"]), pd.read_csv(plans["text"])
    assert (text["member"] == "m" + numbers["member"].astype(str)).all()
    pd.testing.assert_frame_equal(
        text.drop(columns=["member", "reasons"]), numbers.drop(columns=["member", "reasons"])
    )
    results = {}
    for label, d in (("numbers", files), ("text", tmp_path)):
        out = tmp_path / f"{label}.json"
        assert main(["evaluate", "--plan", str(plans[label]), *_inputs(d), "--out", str(out)]) == 0
        results[label] = json.loads(out.read_text())
    assert results["text"]["offline"] == results["numbers"]["offline"]
    assert results["text"]["offline"]["covered_pairs"] > 0


def test_behaviour_files_fit_and_plan_as_the_python_api(tmp_path, capsys):
    """`simulate --behavior` writes what members buy and browse; `fit --behavior --items
    --benefit-items` gives the planner the Python API fits on the simulator's objects (the same
    plan), and `plan --model --behavior` reads a newer log without refitting."""
    n, days, seed = 400, 90, 11
    d = tmp_path / "program"
    args = ["simulate", "--members", str(n), "--days", str(days), "--seed", str(seed)]
    assert main([*args, "--behavior", "--out", str(d)]) == 0
    assert "behavior.csv, items.csv, benefit_items.csv" in capsys.readouterr().out
    program = perkrec.simulate(n_users=n, days=days, seed=seed, behavior=True)
    behavior = ["--behavior", str(d / "behavior.csv"), "--items", str(d / "items.csv")]
    behavior += ["--benefit-items", str(d / "benefit_items.csv")]
    assert main(["validate", *_inputs(d), *behavior]) == 0
    shown = capsys.readouterr().out
    kept = f"{len(program.behavior):,} events of {program.behavior.n_users:,} members kept"
    assert kept in shown and "perkrec validate: no problems" in shown
    bad = pd.read_csv(d / "behavior.csv")
    bad.loc[3, "amount"] = -2.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    rc = main(["validate", *_inputs(d), "--behavior", str(tmp_path / "bad.csv"), *behavior[2:]])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.csv" in err and "amount" in err
    model = tmp_path / "pipeline.perkrec"
    assert main(["fit", *_inputs(d), *behavior, *PARAMS, "--out", str(model)]) == 0
    at = program.events.time_range[1] - pd.Timedelta(days=1)
    when = f"{at:%Y-%m-%d %H:%M:%S}"
    assert (
        main(["plan", "--model", str(model), "--at", when, "--out", str(tmp_path / "p.csv")]) == 0
    )
    bp = perkrec.BenefitPlanner(demo_policy(n), seed=3, factors=4, num_threads=2)
    bp.fit(
        program.events,
        program.catalog,
        program.users,
        behavior=(program.behavior, program.items, program.benefit_items),
    )
    api = bp.plan(at=at)
    _same_values(pd.read_csv(tmp_path / "p.csv"), api.frame)
    assert perkrec.BenefitPlanner.load(model).behavior is not None
    # A newer log (here: the purchases of the last 60 days dropped) changes the plan, as the API.
    log = pd.read_csv(d / "behavior.csv")
    recent = pd.to_datetime(log["timestamp"], utc=True) >= at - pd.Timedelta(days=60)
    log[~recent].to_csv(tmp_path / "older.csv", index=False)
    out = tmp_path / "older_plan.csv"
    older = ["--behavior", str(tmp_path / "older.csv")]
    assert main(["plan", "--model", str(model), *older, "--at", when, "--out", str(out)]) == 0
    frame = program.behavior.to_frame()
    keep = (frame["timestamp"] < at - pd.Timedelta(days=60)).to_numpy()
    newer = perkrec.BehaviorLog.from_frame(
        pd.read_csv(tmp_path / "older.csv"),
        user_ids=program.events,
        items=program.items,
        user="user",
        item="item",
        action="action",
        time="timestamp",
        quantity="quantity",
        amount="amount",
        basket="basket",
    )
    assert len(newer) == int(keep.sum())
    _same_values(pd.read_csv(out), bp.plan(at=at, behavior=newer).frame)
    assert not pd.read_csv(out)[["member", "benefit"]].equals(api.frame[["member", "benefit"]])
    # The three files go together; --items is the model's own with --model.
    capsys.readouterr()
    rc = main(["fit", *_inputs(d), *behavior[:2], "--out", str(tmp_path / "x.perkrec")])
    assert rc == 2 and "--items, --benefit-items" in capsys.readouterr().err
    assert not (tmp_path / "x.perkrec").exists()
    rc = main(["plan", "--model", str(model), *behavior, "--out", str(tmp_path / "x.csv")])
    assert rc == 2 and "--items" in capsys.readouterr().err
    # A model fitted without behaviour refuses a behaviour log.
    plain = tmp_path / "plain.perkrec"
    assert main(["fit", *_inputs(d), *PARAMS, "--out", str(plain)]) == 0
    rc = main(["plan", "--model", str(plain), *older, "--out", str(tmp_path / "x.csv")])
    assert rc == 2 and "without behaviour" in capsys.readouterr().err
