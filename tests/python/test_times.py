"""One rule for times in every function that takes one: int or float = epoch seconds (UTC);
strings, datetimes and Timestamps as pandas reads them (naive = UTC); bool is not a time; one
supported range, checked before anything is computed."""

import datetime

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec._util import seconds, time_seconds

T = 1775001600  # 2026-04-01T00:00:00Z

SAME_TIME = [
    T,
    np.int64(T),
    float(T),
    T + 0.75,
    np.float64(T),
    "2026-04-01",
    "2026-04-01T00:00:00Z",
    "2026-04-01T02:00:00+02:00",
    datetime.datetime(2026, 4, 1),
    datetime.date(2026, 4, 1),
    datetime.datetime(2026, 4, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
    np.datetime64("2026-04-01T00:00:00"),
    pd.Timestamp("2026-04-01"),
    pd.Timestamp("2026-04-01", tz="UTC"),
    pd.Timestamp("2026-03-31 20:00", tz="US/Eastern"),
]

NOT_A_TIME = [
    True,
    np.bool_(False),
    float("nan"),
    float("inf"),
    -float("inf"),
    10**30,
    -(10**15),
    2**63 - 1,
    "not a date",
    "1775001600",
    None,
    [T],
    pd.NaT,
    "9999-12-31",
    "1850-01-01",
]


@pytest.mark.parametrize("value", SAME_TIME, ids=repr)
def test_every_accepted_form_reads_as_the_same_second(value):
    assert time_seconds(value, "t") == T


@pytest.mark.parametrize("value", NOT_A_TIME, ids=repr)
def test_everything_else_is_an_input_error_naming_the_argument(value):
    with pytest.raises(perkrec.InputError, match="cut_here"):
        time_seconds(value, "cut_here")


def test_arrays_follow_the_same_rule():
    assert seconds([T, T + 1], "x").tolist() == [T, T + 1]
    assert seconds(np.array([T + 0.5]), "x").tolist() == [T]
    assert seconds(pd.Series(pd.to_datetime(["2026-04-01"], utc=True)), "x").tolist() == [T]
    assert seconds(np.array(["2026-04-01"]), "x").tolist() == [T]
    for bad in (
        np.array([True]),
        np.array([np.nan]),
        np.array([1e30]),
        np.array([T, 2**62]),
        np.array(["garbage"]),
    ):
        with pytest.raises(perkrec.InputError, match="x"):
            seconds(bad, "x")


@pytest.fixture(scope="module")
def log():
    return perkrec.simulate(n_users=300, seed=3).events


def test_split_by_time_reads_floats_as_seconds(log):
    lo, hi = log.time_range
    cut = lo + (hi - lo) / 2
    cut_s = int((cut - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1))
    expected = [len(part) for part in perkrec.split_by_time(log, cut_s)]
    assert 0 < expected[0] < len(log)
    for form in (float(cut_s), cut, cut.isoformat(), cut.to_pydatetime()):
        assert [len(part) for part in perkrec.split_by_time(log, form)] == expected
    for bad in (float("nan"), float("inf"), 10**30, "1775001600", True):
        with pytest.raises(perkrec.InputError, match="cut"):
            perkrec.split_by_time(log, bad)
    with pytest.raises(perkrec.InputError, match="cut_time"):
        perkrec.interaction_matrix(log, cut_time=float("nan"))


def test_policy_times_use_the_same_rule_and_range():
    policy = perkrec.Policy({"quiet_hours": {"start_hour": 22, "end_hour": 8}})
    assert policy.send_time(T + 23 * 3600.0) == T + 32 * 3600
    assert policy.send_time(T + 23 * 3600) == T + 32 * 3600
    assert policy.send_time("2026-04-01T23:00:00Z") == pd.Timestamp(
        T + 32 * 3600, unit="s", tz="UTC"
    )
    with pytest.raises(perkrec.InputError, match="t"):
        policy.send_time(True)
    for until in (-(10**15), "9999-12-31", 10**12):
        with pytest.raises(perkrec.ConfigError, match="until"):
            perkrec.Policy(
                {
                    "rules": [
                        {
                            "name": "w",
                            "effect": "window",
                            "benefits": {"kinds": ["gift"]},
                            "until": until,
                        }
                    ]
                }
            )
    ok = perkrec.Policy(
        {
            "rules": [
                {
                    "name": "w",
                    "effect": "window",
                    "benefits": {"kinds": ["gift"]},
                    "until": "2199-12-31",
                }
            ]
        }
    )
    assert perkrec.Policy(ok.to_dict()) == ok
