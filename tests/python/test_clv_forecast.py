"""perkrec.CLVModel forecasters: the regression learns a trend the stationary models miss,
model="auto" chooses by a backtest inside the calibration period (never the holdout), and the
choice survives save/load, thread counts and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import perkrec

BASE = pd.Timestamp("2025-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)


def _log(frame: pd.DataFrame) -> perkrec.EventLog:
    events = pd.DataFrame(
        {
            "user": frame["user"],
            "benefit": None,
            "event_type": "ordered",
            "timestamp": frame["timestamp"],
            "order_amount": frame["amount"],
        }
    )
    return perkrec.EventLog.from_frame(events)


def _trend_program(n: int, seed: int, days: int = 350):
    """Half the members buy at a steady daily rate 0.03; the other half ("rising") start at 0.01
    and double every 100 days. One order at most per day, value 10."""
    rng = np.random.default_rng(seed)
    rising = np.arange(n) % 2 == 1
    t = np.arange(days)
    rate = np.where(rising[:, None], 0.01 * 2.0 ** (t[None, :] / 100.0), 0.03)
    buys = rng.random((n, days)) < rate
    buys[:, 0] = True  # everyone's first order is on day 0
    member, day = np.nonzero(buys)
    frame = pd.DataFrame(
        {
            "user": [f"m{u}" for u in member],
            "timestamp": BASE + pd.to_timedelta(day, "D") + pd.Timedelta(hours=2),
            "amount": 10.0,
        }
    )
    return frame, pd.Index([f"m{u}" for u in range(n)])[rising]


def test_regression_learns_a_planted_trend_that_stationary_models_miss():
    frame, rising = _trend_program(2000, seed=3)
    log = _log(frame)
    cut, end = BASE + 300 * DAY, BASE + 350 * DAY
    split = perkrec.calibration_holdout(log, cut, end, time_unit="day")
    horizon = split.attrs["duration"]
    auto = perkrec.CLVModel(
        model="auto", time_unit="day", backtest_horizon=50, interval_draws=0
    ).fit(log, cut)
    stationary = perkrec.CLVModel(model="bgnbd", time_unit="day", interval_draws=0).fit(log, cut)
    sel = auto.selection_
    assert sel["backtested"] and sel["horizon"] == 50
    assert set(sel["candidates"]) == {"bgnbd", "mbgnbd", "paretonbd", "naive", "regression"}
    assert sel["choice"] == "regression"
    best = min(sel["candidates"].items(), key=lambda kv: kv[1]["score"])[0]
    assert best == "regression"
    ours = auto.predict(horizon)
    theirs = stationary.predict(horizon)
    up = split.index.isin(rising)
    actual = split["holdout_purchases"].to_numpy()
    # The stationary model under-forecasts the rising members by far; the regression follows them
    # further (features beyond their backtest range are clamped, so it does not extrapolate the
    # doubling all the way).
    assert theirs.loc[split.index[up], "expected_purchases"].mean() < 0.8 * actual[up].mean()
    assert (
        ours.loc[split.index[up], "expected_purchases"].mean()
        > theirs.loc[split.index[up], "expected_purchases"].mean()
    )
    e_ours = perkrec.holdout_errors(split, ours)
    e_theirs = perkrec.holdout_errors(split, stationary.predict(horizon))
    assert e_ours["mae_purchases"] < e_theirs["mae_purchases"]
    # The regression reports its coefficients; the trend features carry weight.
    coef = auto.params_["regression"]["purchases"]
    assert set(perkrec.clv.REGRESSION_FEATURES) <= set(coef)
    # p_alive and the stages still come from the best purchase model.
    assert auto.params_["model"] in ("bgnbd", "mbgnbd", "paretonbd")


def test_auto_never_reads_the_holdout_threads_and_save_load(tmp_path):
    frame, _ = _trend_program(600, seed=8)
    cut = BASE + 300 * DAY
    calib = frame[frame["timestamp"] < cut]
    # Events after the cut, including for members who have none before, change nothing.
    future = pd.DataFrame(
        {
            "user": ["m1", "m2", "new"],
            "timestamp": [cut, cut + 3 * DAY, cut + DAY],
            "amount": [999.0, 5.0, 7.0],
        }
    )
    one = perkrec.CLVModel(model="auto", time_unit="day", num_threads=1, interval_draws=20).fit(
        _log(calib), cut
    )
    two = perkrec.CLVModel(model="auto", time_unit="day", num_threads=2, interval_draws=20).fit(
        _log(pd.concat([frame, future])), cut
    )
    assert one.selection_["backtested"]
    assert one.params_ == two.params_
    a = one.predict(40, 0.01, 0.5)
    pd.testing.assert_frame_equal(a, two.predict(40, 0.01, 0.5))
    for model in ("regression", "naive"):
        m1 = perkrec.CLVModel(model=model, time_unit="day", num_threads=1, interval_draws=20).fit(
            _log(calib), cut
        )
        m2 = perkrec.CLVModel(model=model, time_unit="day", num_threads=2, interval_draws=20).fit(
            _log(pd.concat([frame, future])), cut
        )
        pd.testing.assert_frame_equal(m1.predict(40, 0.01, 0.5), m2.predict(40, 0.01, 0.5))
        path = tmp_path / f"{model}.perk"
        m1.save(path)
        loaded = perkrec.load(path)
        assert loaded.to_bytes() == m1.to_bytes()
        assert loaded.selection_ == m1.selection_ and loaded.params_ == m1.params_
        pd.testing.assert_frame_equal(loaded.predict(40, 0.01, 0.5), m1.predict(40, 0.01, 0.5))
        pred = m1.predict(40)
        assert np.isfinite(pred.drop(columns="lifecycle_stage").to_numpy(dtype=float)).all()
        assert (pred["clv_lower"] <= pred["clv_upper"]).all()


def test_forecasts_of_naive_match_the_baseline():
    frame, _ = _trend_program(300, seed=4)
    cut = BASE + 200 * DAY
    model = perkrec.CLVModel(model="naive", time_unit="day", interval_draws=0).fit(_log(frame), cut)
    assert model.selection_["choice"] == "naive"
    summary = model.summary()
    expected = perkrec.naive_forecast(summary, 30)
    got = model.predict(30)
    np.testing.assert_allclose(
        got["expected_purchases"], expected["expected_purchases"], rtol=1e-12
    )
    np.testing.assert_allclose(got["clv"], expected["clv"], rtol=1e-12)


def test_older_files_load_as_their_purchase_model():
    folder = Path(__file__).parent / "data"
    model = perkrec.load(folder / "clv_before_forecasters.model")
    assert model.params["model"] == "bgnbd"
    assert model.selection_["choice"] == "bgnbd" and not model.selection_["backtested"]
    expected = pd.read_csv(folder / "clv_before_forecasters_predict.csv", index_col="user")
    got = model.predict(30, 0.01, 0.5)
    for column in ("p_alive", "expected_purchases", "expected_order_value", "clv"):
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-12)


def test_bad_models_and_horizons_raise_typed_errors_and_change_nothing():
    frame, _ = _trend_program(200, seed=5)
    log = _log(frame)
    cut = BASE + 200 * DAY
    with pytest.raises(perkrec.ConfigError, match="model"):
        perkrec.CLVModel(model="lstm")
    with pytest.raises(perkrec.ConfigError, match="backtest_horizon"):
        perkrec.CLVModel(backtest_horizon=-1.0)
    with pytest.raises(perkrec.ConfigError, match="regression_l2"):
        perkrec.CLVModel(regression_l2=float("nan"))
    model = perkrec.CLVModel(model="regression", time_unit="day", interval_draws=0).fit(log, cut)
    before = model.to_bytes()
    # Nobody orders again after day 0: the backtest has nothing to learn from.
    with pytest.raises(perkrec.InputError, match="backtest"):
        model.fit(_log(frame[frame["timestamp"] < BASE + DAY]), BASE + 60 * DAY)
    assert model.to_bytes() == before
    summary = model.summary()
    with pytest.raises(perkrec.InputError, match="regression"):
        model.fit_summary(summary)
    assert model.to_bytes() == before
    with pytest.raises(perkrec.InputError, match="backtest"):
        perkrec.CLVModel(model="regression", time_unit="day", backtest_horizon=1000.0).fit(log, cut)
    with pytest.raises(perkrec.InputError, match="horizon"):
        model.predict(-1)
    # On given summaries "auto" has no backtest and is BG/NBD, saying why.
    auto = perkrec.CLVModel(model="auto", time_unit="day", interval_draws=0).fit_summary(summary)
    assert auto.selection_["choice"] == "bgnbd" and not auto.selection_["backtested"]
    assert "summaries" in auto.selection_["note"]


def test_regression_is_an_expected_value_with_unbiased_backtest_totals():
    # The Poisson regression forecasts a mean: every member a positive forecast (a median-like
    # forecast gives most one-time buyers 0), backtest totals close to the actual ones.
    frame, _ = _trend_program(3000, seed=11, days=300)
    cut = BASE + 300 * DAY
    model = perkrec.CLVModel(
        model="regression", time_unit="day", backtest_horizon=50, interval_draws=0
    ).fit(_log(frame), cut)
    reg = model.selection_["candidates"]["regression"]
    assert abs(reg["total_error_purchases"]) < 0.05
    assert abs(reg["total_error_spend"]) < 0.05
    assert model.params_["regression"]["link"] == "log"
    pred = model.predict(50)
    assert (pred["expected_purchases"] > 0).all() and (pred["clv"] > 0).all()
    # Spend is 10 per order here: the expected order value follows.
    np.testing.assert_allclose(pred["expected_order_value"], 10.0, rtol=0.1)


def test_member_fields_target_policy_rules_on_clv_and_stage():
    frame, _ = _trend_program(400, seed=6, days=300)
    log = _log(frame)
    cut = BASE + 300 * DAY
    model = perkrec.CLVModel(model="bgnbd", time_unit="day", interval_draws=0).fit(log, cut)
    fields = model.member_fields(60)
    pred = model.predict(60)
    assert list(fields.columns) == ["clv", "clv_percentile", "p_alive", "lifecycle_stage"]
    pd.testing.assert_series_equal(fields["clv"], pred["clv"])
    assert fields["clv_percentile"].between(0, 1, inclusive="right").all()
    # The percentile orders as clv does.
    order = np.argsort(fields["clv"].to_numpy(), kind="stable")
    assert np.all(np.diff(fields["clv_percentile"].to_numpy()[order]) >= 0)
    assert set(fields["lifecycle_stage"]) <= set(perkrec.clv.LIFECYCLE_STAGES)
    # Joined to the member table, a Policy targets at-risk members above the 80th percentile;
    # a member without orders before the cut has missing fields and matches no condition.
    members = fields.copy()
    members.loc["no_orders"] = [np.nan, np.nan, np.nan, None]
    users = perkrec.UserTable.from_frame(members, user_ids=log.user_ids)
    catalog = perkrec.Catalog.from_records([{"id": "WB", "kind": "discount", "face_value": 5}])
    policy = perkrec.Policy(
        {
            "rules": [
                {
                    "effect": "require",
                    "benefits": {"ids": ["WB"]},
                    "members": {
                        "attributes": [
                            {"column": "lifecycle_stage", "op": "in", "value": ["at_risk"]},
                            {"column": "clv_percentile", "op": ">", "value": 0.8},
                        ]
                    },
                }
            ]
        }
    )
    eligible = policy.compile(catalog, users, cut).eligible_matrix()[:, 0]
    table = users.to_frame()
    expected = (table["lifecycle_stage"] == "at_risk").to_numpy() & (
        table["clv_percentile"].to_numpy() > 0.8
    )
    assert expected.sum() > 0 and (~expected).sum() > 0
    np.testing.assert_array_equal(eligible, expected)
    assert not eligible[list(table.index).index("no_orders")]


def test_files_with_the_median_like_regression_load_and_predict_as_before():
    # Written by main at 6a21688 (the log1p ridge regression, before the Poisson one), with its
    # predict(40, 0.01, 0.5): it loads, predicts the same (members with a median of 0 stay 0)
    # and saves back to the same bytes.
    folder = Path(__file__).parent / "data"
    model = perkrec.load(folder / "clv_log1p_regression.model")
    assert model.selection_["choice"] == "regression"
    assert model.params_["regression"]["link"] == "log1p"
    expected = pd.read_csv(folder / "clv_log1p_regression_predict.csv")
    got = model.predict(40, 0.01, 0.5)
    for column in ("expected_purchases", "clv"):
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-12)
    assert (got["expected_purchases"] == 0).sum() == (expected["expected_purchases"] == 0).sum() > 0
    assert perkrec.CLVModel.from_bytes(model.to_bytes()).to_bytes() == model.to_bytes()
