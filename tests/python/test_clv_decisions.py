"""Member value in the decisions (issue 23, item 7): CLV member fields computed in C++, leak-safe
fields for sample rows, the FeatureEncoder / FM / uplift learners picking up a planted stage
signal, Policy targeting on the fields, and the campaign report's value by stage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.clv import CLV_FIELDS, LIFECYCLE_STAGES, MEMBER_FIELDS, targeting_rule
from perkrec.plan import Plan
from perkrec.report import campaign_report, value_by_stage

BASE = pd.Timestamp("2025-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)
CUT = BASE + 300 * DAY


def _program(n: int, seed: int):
    """Members who start buying at a random day, at a random daily rate, and stop after a random
    lifetime (so every lifecycle stage occurs at the cut, day 300); the last 20 members' first
    order is after the cut (no CLV fit). One order a day at most, value 5 to 20."""
    rng = np.random.default_rng(seed)
    users, days, amounts = [], [], []
    for u in range(n):
        late = u >= n - 20
        start = rng.uniform(302, 320) if late else rng.uniform(0, 290)
        rate = rng.uniform(0.02, 0.15)
        stop = start + rng.exponential(150)
        t, times = start, [start]
        while True:
            t += rng.exponential(1 / rate)
            if t >= min(stop, 330):
                break
            times.append(t)
        value = rng.uniform(5, 20)
        for t in np.unique(np.floor(times)):
            users.append(f"m{u}")
            days.append(t + 0.3)
            amounts.append(value)
    events = pd.DataFrame(
        {
            "user": users,
            "benefit": None,
            "event_type": "ordered",
            "timestamp": BASE + pd.to_timedelta(np.asarray(days), unit="D"),
            "order_amount": amounts,
        }
    )
    return perkrec.EventLog.from_frame(events)


@pytest.fixture(scope="module")
def fitted():
    log = _program(3000, seed=11)
    model = perkrec.CLVModel(time_unit="day", interval_draws=0).fit(log, CUT)
    return log, model


def _samples(log, n_rows: int, seed: int) -> pd.DataFrame:
    """One issued benefit per row at a random member, after the cut."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user": rng.integers(0, log.n_users, n_rows).astype(np.int64),
            "benefit": 0,
            "timestamp": int(CUT.timestamp()) + rng.integers(0, 20 * 86400, n_rows),
        }
    )


def test_member_fields_come_from_cpp_with_the_documented_percentile(fitted):
    _, model = fitted
    fields = model.member_fields(30, discount_rate=0.001, margin=0.3)
    pred = model.predict(30, discount_rate=0.001, margin=0.3)
    assert list(fields.columns) == list(MEMBER_FIELDS)
    pd.testing.assert_index_equal(fields.index, pred.index)
    np.testing.assert_array_equal(fields["clv"], pred["clv"])
    np.testing.assert_array_equal(fields["p_alive"], pred["p_alive"])
    assert list(fields["lifecycle_stage"]) == list(pred["lifecycle_stage"].astype(str))
    # The percentile: the fraction of fitted members with clv <= the member's, ties share the
    # highest rank (pandas' rank(method="max", pct=True), what the pandas version computed).
    np.testing.assert_allclose(
        fields["clv_percentile"], pred["clv"].rank(method="max", pct=True), rtol=0, atol=1e-15
    )
    counts = fields["lifecycle_stage"].value_counts()
    assert {"active", "at_risk", "lost"} <= set(counts.index)
    with pytest.raises(perkrec.InputError, match="horizon"):
        model.member_fields(0)
    with pytest.raises(perkrec.InputError, match="margin"):
        model.member_fields(30, margin=float("nan"))
    with pytest.raises(perkrec.InputError, match="not fitted"):
        perkrec.CLVModel().member_fields(30)


def test_sample_fields_are_leak_safe_and_missing_for_members_without_a_fit(fitted):
    log, model = fitted
    rows = _samples(log, 500, seed=1)
    rows.loc[0, "user"] = -1  # an unknown member (redemption_samples(unknown="keep"))
    late = log.user_ids.lookup(["m2999"])[0]
    rows.loc[1, "user"] = late  # first order after the cut
    out = model.sample_fields(rows, 30)
    assert list(out.columns) == list(rows.columns) + list(MEMBER_FIELDS)
    pd.testing.assert_frame_equal(out[rows.columns], rows)
    fields = model.member_fields(30)
    ids = log.user_ids.to_external(rows["user"].to_numpy()[2:].astype(np.int32))
    expected = fields.reindex(ids)
    np.testing.assert_array_equal(out["clv"].to_numpy()[2:], expected["clv"].to_numpy())
    assert list(out["lifecycle_stage"].fillna("-"))[2:] == list(
        expected["lifecycle_stage"].fillna("-")
    )
    for i in (0, 1):
        assert out.loc[i, ["clv", "clv_percentile", "p_alive"]].isna().all()
        assert pd.isna(out.loc[i, "lifecycle_stage"])
    # Rows before the fit's cut would read their future; bad members and columns are named.
    early = rows.copy()
    early.loc[7, "timestamp"] = int(CUT.timestamp()) - 1
    with pytest.raises(perkrec.InputError, match=r"timestamps\[7\].*cut_time"):
        model.sample_fields(early, 30)
    bad = rows.copy()
    bad.loc[3, "user"] = log.n_users
    with pytest.raises(perkrec.InputError, match=r"users\[3\]"):
        model.sample_fields(bad, 30)
    with pytest.raises(perkrec.InputError, match="integer member indices"):
        model.sample_fields(rows.assign(user=rows["user"].astype(str)), 30)
    with pytest.raises(perkrec.InputError, match="'clv'"):
        model.sample_fields(rows.assign(clv=1.0), 30)
    with pytest.raises(perkrec.InputError, match="timestamp"):
        model.sample_fields(rows.drop(columns="timestamp"), 30)
    summary_only = perkrec.CLVModel().fit_summary(model.summary())
    with pytest.raises(perkrec.InputError, match="summaries"):
        summary_only.sample_fields(rows, 30)


def test_encoder_puts_members_without_a_fit_in_the_missing_bucket(fitted):
    log, model = fitted
    rows = model.sample_fields(_samples(log, 400, seed=2), 30)
    rows.loc[:9, "user"] = -1
    rows.loc[:9, ["clv", "clv_percentile", "p_alive"]] = np.nan
    rows.loc[:9, "lifecycle_stage"] = None
    enc = perkrec.FeatureEncoder(CLV_FIELDS).fit(rows)
    X = enc.transform(rows)
    assert np.isfinite(X.data).all()
    assert (np.diff(X.indptr) == len(CLV_FIELDS)).all()  # one feature per field and row
    offsets, sizes = enc.field_offsets(), enc.field_sizes
    for i in range(10):
        cols = X.indices[X.indptr[i] : X.indptr[i + 1]]
        for f in range(3):  # numeric quantile fields: the extra last bucket
            assert cols[f] == offsets[f] + sizes[f] - 1
        assert cols[3] == offsets[3]  # the stage: "other"
    # Every row with fields (a random row may hit a member without a fit) is out of it.
    has = rows["clv"].notna().to_numpy()
    assert has.sum() > 350
    dense = X.toarray()
    for f in range(3):
        np.testing.assert_array_equal(dense[:, offsets[f] + sizes[f] - 1], ~has)
    np.testing.assert_array_equal(dense[:, offsets[3]], ~has)
    # A standardized field cannot take a missing value: a typed error naming it.
    std = [{"name": "clv", "kind": "numeric", "transform": "standardize"}]
    with pytest.raises(perkrec.InputError, match="clv"):
        perkrec.FeatureEncoder(std).fit(rows)


def _planted(log, model, n_rows: int, seed: int):
    """Samples whose label depends on the member's stage only: P(1) = 0.6 for at_risk members,
    0.1 otherwise; a random treatment moves only at-risk members (+0.4)."""
    rng = np.random.default_rng(seed)
    rows = model.sample_fields(_samples(log, n_rows, seed), 30)
    at_risk = (rows["lifecycle_stage"] == "at_risk").to_numpy()
    rows["label"] = (rng.random(n_rows) < np.where(at_risk, 0.6, 0.1)).astype(np.uint8)
    treatment = rng.integers(0, 2, n_rows)
    rows["treatment"] = treatment
    rows["outcome"] = (rng.random(n_rows) < 0.1 + 0.4 * (treatment * at_risk)).astype(np.uint8)
    return rows, at_risk


def test_fm_and_uplift_pick_up_a_planted_stage_signal(fitted):
    log, model = fitted
    train, _ = _planted(log, model, 8000, seed=3)
    test, at_risk = _planted(log, model, 4000, seed=4)
    assert 0.05 < at_risk.mean() < 0.7
    enc = perkrec.FeatureEncoder(CLV_FIELDS).fit(train)
    X, Xt = enc.transform(train), enc.transform(test)
    fm = perkrec.FM(factors=0, epochs=20, learning_rate=0.1, seed=1)
    fm.fit(X, train["label"], encoder=enc)
    p = fm.predict(Xt)
    # The stage is the whole signal: the FM's AUC reaches the oracle's (the true probability).
    oracle = perkrec.auc(test["label"], np.where(at_risk, 0.6, 0.1))
    assert perkrec.auc(test["label"], p) > oracle - 0.02
    assert abs(p[at_risk].mean() - 0.6) < 0.05 and abs(p[~at_risk].mean() - 0.1) < 0.03
    # Only the stage field: the same.
    stage_only = perkrec.FeatureEncoder([CLV_FIELDS[3]]).fit(train)
    fm2 = perkrec.FM(factors=0, epochs=20, learning_rate=0.1, seed=1)
    fm2.fit(stage_only.transform(train), train["label"], encoder=stage_only)
    p2 = fm2.predict(stage_only.transform(test))
    assert abs(p2[at_risk].mean() - 0.6) < 0.05 and abs(p2[~at_risk].mean() - 0.1) < 0.03
    # The T-learner on the encoder's rows finds the effect on at-risk members only.
    uplift = perkrec.UpliftModel("t", factors=0, epochs=20, learning_rate=0.1, seed=1)
    uplift.fit(X, train["outcome"], train["treatment"])
    u = uplift.predict(Xt)
    assert abs(u[at_risk].mean() - 0.4) < 0.06
    assert abs(u[~at_risk].mean()) < 0.03


def test_targeting_rule_selects_at_risk_members_above_the_percentile(fitted):
    log, model = fitted
    fields = model.member_fields(30)
    users = perkrec.UserTable.from_frame(fields, user_ids=log.user_ids, unknown="raise")
    catalog = perkrec.Catalog.from_records([{"id": "WB", "kind": "discount", "face_value": 5}])
    rule = targeting_rule(["at_risk"], 0.8, benefits={"ids": ["WB"]}, name="win-back")
    assert rule == {
        "name": "win-back",
        "effect": "require",
        "members": {
            "attributes": [
                {"column": "lifecycle_stage", "op": "in", "value": ["at_risk"]},
                {"column": "clv_percentile", "op": ">", "value": 0.8},
            ]
        },
        "benefits": {"ids": ["WB"]},
    }
    eligible = perkrec.Policy({"rules": [rule]}).compile(catalog, users, CUT).eligible_matrix()
    table = fields.reindex(log.user_ids.ids)
    expected = (table["lifecycle_stage"] == "at_risk").to_numpy() & (
        table["clv_percentile"].to_numpy() > 0.8
    )
    assert 0 < expected.sum() < 0.2 * len(expected)
    np.testing.assert_array_equal(eligible[:, 0], expected)
    # Several stages, duplicates kept once; no percentile condition.
    both = targeting_rule(["dormant", "at_risk", "dormant"])
    assert both["members"]["attributes"] == [
        {"column": "lifecycle_stage", "op": "in", "value": ["dormant", "at_risk"]}
    ]
    with pytest.raises(perkrec.InputError, match="'at-risk'"):
        targeting_rule(["at-risk"])
    with pytest.raises(perkrec.InputError, match="at least one"):
        targeting_rule([])
    with pytest.raises(perkrec.InputError, match="min_clv_percentile"):
        targeting_rule(["at_risk"], 1.0)
    with pytest.raises(perkrec.InputError, match="min_clv_percentile"):
        targeting_rule(["at_risk"], float("nan"))


def _plan() -> Plan:
    frame = pd.DataFrame(
        {
            "member": ["a", "b", "b", "d", "z"],
            "member_index": [0, 1, 1, 3, 9],
            "benefit": ["X", "X", "Y", "Y", "X"],
            "benefit_index": [0, 0, 1, 1, 0],
            "kind": pd.Categorical(["discount"] * 5),
            "probability": [0.5, 0.2, 0.3, 0.1, 0.4],
            "value": [4.0, 1.0, 2.0, 3.0, 5.0],
            "cost": [2.0, 1.0, 1.0, 4.0, 2.0],
        }
    )
    frame["net"] = frame["value"] - frame["cost"]
    return Plan(frame=frame, budget=20.0, method="dual")


def _clv_fields() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "clv": [10.0, 30.0, 50.0, 20.0, np.nan],
            "lifecycle_stage": ["active", "at_risk", "at_risk", "lost", None],
        },
        index=pd.Index(["a", "b", "c", "d", "e"], name="user"),
    )


def test_value_by_stage_exact_figures_and_report_section():
    plan = _plan()
    segments = pd.Series(["deal", "deal", "fan", "fan", "deal"], index=list("abcde"))
    tables = value_by_stage(plan, _clv_fields(), segments)
    stage = tables["lifecycle_stage"]
    # "z" is planned but has no CLV fields, "e" has none either: both in "no fit".
    assert list(stage.index) == ["active", "at_risk", "lost", "no fit"]
    assert stage["members"].tolist() == [1, 2, 1, 2]
    np.testing.assert_allclose(stage["mean_clv"].to_numpy()[:3], [10.0, 40.0, 20.0])
    assert np.isnan(stage.loc["no fit", "mean_clv"])
    assert stage["planned_members"].tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(stage["expected_cost"], [2.0, 2.0, 4.0, 2.0])
    np.testing.assert_allclose(stage["share_of_spend"], [0.2, 0.2, 0.4, 0.2])
    np.testing.assert_allclose(stage["expected_return"], [4.0, 3.0, 3.0, 5.0])
    np.testing.assert_allclose(stage["return_per_cost"], [2.0, 1.5, 0.75, 2.5])
    seg = tables["segment"]
    assert seg.loc["deal", "members"] == 3 and seg.loc["fan", "members"] == 2
    np.testing.assert_allclose(seg.loc["deal", "mean_clv"], 20.0)  # a, b (e has none)
    np.testing.assert_allclose(seg.loc["fan", ["expected_cost", "expected_return"]], [4.0, 3.0])
    page = campaign_report(plan, clv_fields=_clv_fields(), segments=segments)
    assert "<h2>Value by segment and lifecycle stage</h2>" in page and "at_risk" in page
    assert "Value by segment" not in campaign_report(plan)


def test_value_by_stage_bad_input_raises_typed_errors():
    plan = _plan()
    good = _clv_fields()
    with pytest.raises(perkrec.InputError, match="'at-risk'"):
        value_by_stage(
            plan, good.assign(lifecycle_stage=["at-risk", "active", "lost", "new", None])
        )
    with pytest.raises(perkrec.InputError, match="clv of member 'b'"):
        value_by_stage(plan, good.assign(clv=[1.0, np.nan, 2.0, 3.0, np.nan]))
    with pytest.raises(perkrec.InputError, match="shares no member id"):
        value_by_stage(plan, good.set_axis(range(5)))
    with pytest.raises(perkrec.InputError, match="duplicate member id 'a'"):
        value_by_stage(plan, good.set_axis(list("abcda")))
    with pytest.raises(perkrec.InputError, match="missing column 'clv'"):
        value_by_stage(plan, good.drop(columns="clv"))
    with pytest.raises(perkrec.InputError, match="perkrec.Plan"):
        value_by_stage(plan.frame, good)


def test_stage_codes_name_unknown_stages():
    assert perkrec.clv.stage_codes(list(LIFECYCLE_STAGES)).tolist() == [0, 1, 2, 3, 4]
    assert perkrec.clv.stage_codes("lost").tolist() == [4]
    with pytest.raises(perkrec.InputError, match="stages.*'churned'"):
        perkrec.clv.stage_codes(["active", "churned"])


def test_value_by_stage_segments_must_share_member_ids():
    with pytest.raises(perkrec.InputError, match="segments share no member id"):
        value_by_stage(_plan(), _clv_fields(), np.array(["deal"] * 5))
