"""perkrec.CLVModel: summaries, BG/NBD + Gamma-Gamma on the published CDNOW tables, predictions,
lifecycle stages, save/load, threads, leaks and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import perkrec
from conftest import dataset_path

CUT = pd.Timestamp("1997-10-01", tz="UTC")  # weeks 1-39 of CDNOW: orders up to 1997-09-30


def _orders_log(frame: pd.DataFrame) -> perkrec.EventLog:
    """A plain transaction log: ordered events only, no catalog."""
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


def _simulate(
    n: int, seed: int, r=0.8, alpha=20.0, a=0.6, b=3.0, p=5.0, q=4.0, gamma=30.0, days=400
):
    """Orders of n members simulated by BG/NBD (per day) with Gamma-Gamma order values."""
    rng = np.random.default_rng(seed)
    users, times, amounts = [], [], []
    base = pd.Timestamp("2025-01-01", tz="UTC").value // 10**9
    for u in range(n):
        lam = rng.gamma(r) / alpha
        drop = rng.beta(a, b)
        nu = rng.gamma(q) / gamma
        t = float(rng.integers(0, days // 2))
        day = int(t)
        users.append(f"m{u}")
        times.append(base + day * 86400 + 3600)
        amounts.append(rng.gamma(p) / nu)
        while True:
            t += rng.exponential() / lam
            if t >= days:
                break
            if int(t) == day:
                t = day + 1.0
                if t >= days:
                    break
            day = int(t)
            users.append(f"m{u}")
            times.append(base + day * 86400 + 7200)
            amounts.append(rng.gamma(p) / nu)
            if rng.random() < drop:
                break
    frame = pd.DataFrame({"user": users, "timestamp": times, "amount": amounts})
    return frame, base + days * 86400


@pytest.fixture(scope="module")
def cdnow():
    folder = dataset_path("cdnow-fader-hardie")
    summary = pd.read_csv(folder / "cdnow_customers_summary_with_transactions.csv")
    raw = pd.read_csv(
        folder / "CDNOW_sample.txt.gz",
        sep=r"\s+",
        header=None,
        names=["original_id", "user", "date", "cds", "amount"],
    )
    raw["timestamp"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d", utc=True)
    return summary, raw


def test_cdnow_published_tables(cdnow):
    summary, _ = cdnow
    model = perkrec.CLVModel(time_unit="week").fit_summary(
        summary.rename(columns={"zbar": "monetary"})
    )
    fitted = model.params_
    assert fitted["r"] == pytest.approx(0.243, abs=0.001)
    assert fitted["alpha"] == pytest.approx(4.414, abs=0.001)
    assert fitted["a"] == pytest.approx(0.793, abs=0.001)
    assert fitted["b"] == pytest.approx(2.426, abs=0.001)
    assert fitted["purchase"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    assert fitted["purchase"]["converged"]
    assert fitted["p"] == pytest.approx(6.2488, abs=0.01)
    assert fitted["q"] == pytest.approx(3.7446, abs=0.01)
    assert fitted["gamma"] == pytest.approx(15.4477, abs=0.02)
    # Standard errors from the Hessian equal lifetimes' on the same summaries (0.11.3:
    # r 0.0126, alpha 0.3782, a 0.1857, b 0.7053; p 1.1897, q 0.2902, v 4.16).
    se = {**fitted["purchase"]["standard_errors"], **fitted["spend"]["standard_errors"]}
    expected_se = {
        "r": 0.0126,
        "alpha": 0.3782,
        "a": 0.1857,
        "b": 0.7053,
        "p": 1.1897,
        "q": 0.2902,
        "gamma": 4.16,
    }
    for name, value in expected_se.items():
        assert se[name] == pytest.approx(value, rel=0.01), name
    assert abs(fitted["frequency_spend_correlation"]) < 0.2
    pred = model.predict(39)
    assert np.isfinite(
        pred[["p_alive", "expected_purchases", "clv", "clv_lower", "clv_upper"]].to_numpy()
    ).all()
    # The worked example of Fader, Hardie and Lee (customer 1: x 2, t_x 30.43, T 38.86): 1.226
    # expected purchases in the next 39 weeks (lifetimes 0.11.3: 1.22591).
    assert pred["expected_purchases"].iloc[0] == pytest.approx(1.2259, abs=0.0005)
    assert pred["p_alive"].iloc[0] == pytest.approx(0.7266, abs=0.0005)  # lifetimes: 0.72661


def test_cdnow_summaries_from_the_transactions(cdnow):
    summary, raw = cdnow
    log = _orders_log(raw)
    ours = perkrec.summarize_purchases(log, CUT, time_unit="week")
    ours.index = ours.index.astype(np.int64)
    expected = summary.set_index("ID").loc[ours.index]
    assert len(ours) == 2357
    np.testing.assert_array_equal(ours["x"].to_numpy(), expected["x"].to_numpy())
    np.testing.assert_allclose(ours["t_x"].to_numpy(), expected["t_x"].to_numpy(), atol=0.0051)
    np.testing.assert_allclose(ours["T"].to_numpy(), expected["T"].to_numpy(), atol=0.0051)
    np.testing.assert_allclose(
        ours["monetary"].to_numpy(), expected["zbar"].to_numpy(), atol=0.0051
    )
    # The model's summary() of the log is the same table.
    model = perkrec.CLVModel(model="bgnbd", time_unit="week")
    pd.testing.assert_frame_equal(
        model.summary(log, CUT).astype({"x": float}),
        ours.astype({"x": float}),
        check_index_type=False,
    )
    # Fitting from the log reproduces the published BG/NBD parameters.
    fitted = model.fit(log, CUT).params_
    assert fitted["r"] == pytest.approx(0.243, abs=0.001)
    assert fitted["b"] == pytest.approx(2.426, abs=0.001)


def test_plain_transaction_log_and_external_ids():
    frame, end = _simulate(1500, seed=3)
    log = _orders_log(frame)
    model = perkrec.CLVModel(model="bgnbd", time_unit="day", num_threads=2, interval_draws=100).fit(
        log, end
    )
    summary = model.summary()
    assert summary.index.name == "user" and summary.index[0] == "m0"
    assert list(summary.columns[:4]) == ["x", "t_x", "T", "monetary"]
    pred = model.predict(30, discount_rate=0.001, margin=0.4)
    assert pred.index.equals(summary.index)
    assert list(pred.columns) == [
        "p_alive",
        "expected_purchases",
        "expected_order_value",
        "clv",
        "clv_lower",
        "clv_upper",
        "lifecycle_stage",
    ]
    assert list(pred["lifecycle_stage"].cat.categories) == list(perkrec.LIFECYCLE_STAGES)
    assert ((pred.p_alive >= 0) & (pred.p_alive <= 1)).all()
    assert (pred.clv_lower <= pred.clv_upper).all()
    inside = ((pred.clv_lower <= pred.clv) & (pred.clv <= pred.clv_upper)).mean()
    assert inside > 0.95
    plain = model.predict(30)
    np.testing.assert_allclose(
        plain.clv, plain.expected_purchases * plain.expected_order_value, rtol=1e-9
    )
    assert (pred.clv <= plain.clv * 0.4 + 1e-9).all()  # discounting and margin only lower it


def test_parameter_recovery_within_sampling_error():
    for seed in (11, 12):
        frame, end = _simulate(4000, seed=seed)
        fitted = (
            perkrec.CLVModel(model="bgnbd", time_unit="day", interval_draws=0)
            .fit(_orders_log(frame), end)
            .params_
        )
        se = fitted["purchase"]["standard_errors"]
        for name, truth in (("r", 0.8), ("alpha", 20.0), ("a", 0.6), ("b", 3.0)):
            assert abs(fitted[name] - truth) < 4 * se[name], (seed, name, fitted[name], se[name])
        se = fitted["spend"]["standard_errors"]
        for name, truth in (("p", 5.0), ("q", 4.0), ("gamma", 30.0)):
            assert abs(fitted[name] - truth) < 4 * se[name], (seed, name, fitted[name], se[name])


def test_no_leak_threads_and_save_load(tmp_path):
    frame, end = _simulate(1500, seed=5)
    future = frame.iloc[::4].assign(
        timestamp=lambda f: end + 3600 * (1 + np.arange(len(f)) % 100), amount=999.0
    )
    one = perkrec.CLVModel(time_unit="day", num_threads=1, interval_draws=50).fit(
        _orders_log(frame), end
    )
    two = perkrec.CLVModel(time_unit="day", num_threads=2, interval_draws=50).fit(
        _orders_log(pd.concat([frame, future])), end
    )
    a, b = one.predict(20, 0.01, 0.5), two.predict(20, 0.01, 0.5)
    pd.testing.assert_frame_equal(a, b)
    assert one.params_ == two.params_
    path = tmp_path / "clv.perk"
    one.save(path)
    loaded = perkrec.load(path)
    assert isinstance(loaded, perkrec.CLVModel)
    pd.testing.assert_frame_equal(loaded.predict(20, 0.01, 0.5), a)
    assert loaded.to_bytes() == one.to_bytes()
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(one)).predict(20, 0.01, 0.5), a)
    assert loaded.cut_time == pd.Timestamp(end, unit="s", tz="UTC")
    bad = bytearray(one.to_bytes())
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(perkrec.ModelFormatError):
        perkrec.CLVModel.from_bytes(bytes(bad))


def test_boundary_cases():
    t0 = pd.Timestamp("2025-03-01", tz="UTC")
    day = pd.Timedelta(days=1)
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "a", "b", "c", "d"],
            "timestamp": [
                t0,
                t0 + pd.Timedelta(hours=5),
                t0 + 10 * day,
                t0 + 20 * day,
                t0 + 30 * day,
                t0 + 29 * day,
                t0 + 40 * day,
                t0 + 2 * day,
            ],
            "amount": [5.0, 5.0, 8.0, 9.0, 100.0, 7.0, 3.0, 4.0],
        }
    )
    cut = t0 + 30 * day  # a's order exactly at the cut is excluded; c orders after it
    s = perkrec.summarize_purchases(_orders_log(frame), cut, time_unit="day")
    assert list(s.index) == ["a", "b", "d"]
    assert s.loc["a", "x"] == 2 and s.loc["a", "t_x"] == 20 and s.loc["a", "T"] == 29
    assert s.loc["a", "monetary"] == pytest.approx(8.5)
    assert s.loc["b", "x"] == 0 and s.loc["b", "T"] == 0  # first order on the cut's last day
    model = perkrec.CLVModel(time_unit="day").fit(_orders_log(frame), cut)
    assert np.isfinite(model.predict(10).iloc[:, :6].to_numpy(dtype=float)).all()

    # Nobody repeats: the spend model is skipped, predictions stay finite.
    single = pd.DataFrame(
        {
            "user": [f"u{i}" for i in range(100)],
            "timestamp": [t0 + (i % 20) * day for i in range(100)],
            "amount": 10.0,
        }
    )
    model = perkrec.CLVModel(time_unit="day").fit(_orders_log(single), t0 + 30 * day)
    assert "p" not in model.params_
    assert np.isfinite(model.predict(10)[["clv", "p_alive"]].to_numpy()).all()

    # Everyone repeats steadily until the cut: no detectable dropout, still a fit.
    rows = [(f"u{i}", t0 + d * day) for i in range(200) for d in range(i % 5, 100, 5)]
    steady = pd.DataFrame(rows, columns=["user", "timestamp"]).assign(amount=20.0)
    fitted = (
        perkrec.CLVModel(model="bgnbd", time_unit="day")
        .fit(_orders_log(steady), t0 + 100 * day)
        .params_
    )
    assert fitted["purchase"]["at_boundary"] or fitted["a"] / fitted["b"] < 1e-3


def test_bad_input_raises_typed_errors_and_changes_nothing():
    frame, end = _simulate(300, seed=9)
    log = _orders_log(frame)
    model = perkrec.CLVModel(time_unit="day").fit(log, end)
    before = model.to_bytes()
    with pytest.raises(perkrec.InputError, match="cut_time"):
        model.fit(log, pd.Timestamp("2000-01-01", tz="UTC"))
    with pytest.raises(perkrec.InputError, match="empty"):
        model.fit(perkrec.EventLog(), end)
    with pytest.raises(perkrec.InputError, match="log"):
        model.fit("not a log", end)
    with pytest.raises(perkrec.InputError, match="horizon"):
        model.predict(-1)
    with pytest.raises(perkrec.InputError, match="discount_rate"):
        model.predict(5, discount_rate=float("nan"))
    with pytest.raises(perkrec.InputError, match="monetary"):
        model.fit_summary(
            pd.DataFrame(
                {"x": [1.0, 2.0], "t_x": [1.0, 2.0], "T": [3.0, 3.0], "monetary": [1.0, -1.0]}
            )
        )
    assert model.to_bytes() == before
    with pytest.raises(perkrec.ConfigError, match="time_unit"):
        perkrec.CLVModel(time_unit="month")
    with pytest.raises(perkrec.ConfigError, match="model"):
        perkrec.CLVModel(model="gompertz")
    with pytest.raises(perkrec.ConfigError, match="penalizer"):
        perkrec.CLVModel(penalizer=-0.1)
    for amount in (-5.0, float("nan")):
        bad = frame.head(3).assign(amount=[1.0, amount, 2.0])
        with pytest.raises(perkrec.InputError, match="order_amount"):
            _orders_log(bad)
    with pytest.raises(perkrec.InputError, match="not fitted"):
        perkrec.CLVModel().predict(5)
