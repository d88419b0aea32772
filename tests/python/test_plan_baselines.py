"""Plans without the planner: the baselines, the plan's summary / JSON lines / truth
evaluation, and the estimators (order value, incremental share)."""

import json

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.plan import (
    Plan,
    _frame,
    default_segment_benefits,
    incremental_share,
    order_value,
    popularity_plan,
    redemption_counts,
    segment_rules_plan,
)


def _catalog():
    return perkrec.Catalog.from_records(
        [
            {"id": "A", "kind": "discount", "face_value": 5, "cost": 5, "validity_days": 10},
            {"id": "B", "kind": "points", "face_value": 2, "cost": 2, "validity_days": 20},
            {
                "id": "C",
                "kind": "threshold_discount",
                "face_value": 10,
                "threshold": 50,
                "cost": 10,
                "validity_days": 5,
            },
            {"id": "D", "kind": "free_shipping", "face_value": 6, "cost": 4, "validity_days": 30},
        ]
    )


def test_popularity_plan_gives_the_most_popular_affordable_benefit_to_everyone():
    cat = _catalog()
    P = np.full((10, 4), 0.5)
    V = np.ones((10, 4))
    # expected cost for all 10 members: A 25, B 10, C 50, D 20; most popular C does not fit 30.
    plan = popularity_plan(cat, P, V, 30.0, popularity=[5, 1, 9, 3])
    assert plan.info["benefit"] == "A" and len(plan.frame) == 10
    assert plan.expected_cost == pytest.approx(25.0)
    # Nothing fits everyone: the most popular goes to members in random order within budget.
    plan = popularity_plan(cat, P, V, 11.0, popularity=[5, 1, 9, 3], seed=3)  # B needs 10 for all
    assert plan.info["benefit"] == "B" and len(plan.frame) == 10
    plan = popularity_plan(cat, P, V, 9.0, popularity=[5, 1, 9, 3], seed=3)
    assert set(plan.frame["benefit"]) == {"C"} and len(plan.frame) == 1  # 5 per member
    assert plan.expected_cost <= 9.0 + 1e-9
    # Eligibility is honoured: members 0-4 may not get A.
    eligible = np.ones((10, 4), dtype=np.uint8)
    eligible[:5, 0] = 0
    plan = popularity_plan(cat, P, V, 30.0, popularity=[5, 1, 9, 3], eligible=eligible)
    assert sorted(plan.frame["member_index"]) == list(range(5, 10))


def test_default_segment_benefits_cap_the_expected_cost_per_member():
    cat = _catalog()  # A discount 5, B points 2, C threshold 10, D free shipping 6
    names = ["dormant", "high_face_value_seeker", "new_member", "everyone"]
    # Face values 5, 2, 10, 6: the 0.75 quantile is 7, so C is the top quartile.
    assert default_segment_benefits(cat, [1, 2, 3, 4], names) == {
        "dormant": "A",
        "high_face_value_seeker": "C",
        "new_member": "D",
        "everyone": "D",
    }
    capped = default_segment_benefits(
        cat, [1, 2, 3, 4], names, expected_cost=[1.0, 0.5, 3.0, 2.5], max_cost_per_user=2.0
    )
    # C and D cost too much: high-value seekers get the cheapest of their kind (C), new members
    # the cheapest free shipping (D), everyone the most popular affordable one (B).
    assert capped == {
        "dormant": "A",
        "high_face_value_seeker": "C",
        "new_member": "D",
        "everyone": "B",
    }
    with pytest.raises(perkrec.InputError, match="popularity has 3 values"):
        default_segment_benefits(cat, [1, 2, 3], names)
    with pytest.raises(perkrec.InputError, match="catalog must be a perkrec.Catalog"):
        default_segment_benefits(cat.to_frame(), [1, 2, 3, 4], names)


def test_plan_evaluate_equals_the_numpy_sums():
    """Plan.evaluate's figures (C++ decide/planner.hpp: evaluate_plan_truth) bit for bit as
    numpy sums them."""
    rng = np.random.default_rng(4)
    red, inc = rng.uniform(0, 0.5, (300, 4)), rng.uniform(0, 0.2, (300, 4))
    value, cost_b = rng.uniform(1, 30, 300), np.array([5.0, 2.0, 10.0, 4.0])
    u = rng.integers(0, 300, 700)
    b = rng.integers(0, 4, 700)
    f = _frame(_catalog(), None, u, b, red[u, b], np.ones(700), np.ones(700))
    got = Plan(f, issue_cost=0.3).evaluate(red, inc, value, cost_b)
    cost = float((0.3 + red[u, b] * cost_b[b]).sum())
    ret = float((inc[u, b] * value[u]).sum())
    assert got == {
        "members": len(np.unique(u)),
        "benefits": 700,
        "true_redemptions": float(red[u, b].sum()),
        "true_cost": cost,
        "true_incremental_return": ret,
        "true_return_per_cost": ret / cost,
    }
    with pytest.raises(perkrec.InputError, match="the truth is 10 x 4"):
        Plan(f, issue_cost=0.3).evaluate(red[:10], inc[:10], value[:10], cost_b)


def test_segment_rules_plan_follows_the_rules_within_budget():
    cat = _catalog()
    rng = np.random.default_rng(0)
    P = rng.uniform(0.05, 0.6, size=(200, 4))
    V = rng.uniform(0, 3, size=(200, 4))
    codes = rng.integers(-1, 3, size=200)
    names = ["dormant", "points_redemption_active", "threshold_discount_sensitive"]
    rules = default_segment_benefits(cat, [1, 2, 3, 4], names)
    assert rules == {
        "dormant": "A",
        "points_redemption_active": "B",
        "threshold_discount_sensitive": "C",
    }
    for budget in (5.0, 40.0, 1e9):
        plan = segment_rules_plan(
            cat,
            P,
            V,
            budget,
            user_segment=codes,
            segment_names=names,
            segment_benefits=rules,
            issue_cost=0.1,
        )
        f = plan.frame
        assert plan.expected_cost <= budget + 1e-9
        want = np.array(["A", "B", "C"])[codes[f["member_index"]]]
        assert (f["benefit"].to_numpy() == want).all()
        assert (codes[f["member_index"]] >= 0).all()  # no rule, no benefit
        assert (
            f["segment"].astype(str).to_numpy() == np.array(names)[codes[f["member_index"]]]
        ).all()
        cost = (
            0.1
            + P[f["member_index"], f["benefit_index"]] * np.array([5, 2, 10, 4])[f["benefit_index"]]
        )
        np.testing.assert_allclose(f["cost"], cost)
    assert len(
        segment_rules_plan(
            cat, P, V, 1e9, user_segment=codes, segment_names=names, segment_benefits=rules
        ).frame
    ) == int((codes >= 0).sum())
    with pytest.raises(perkrec.InputError, match="unknown benefit"):
        segment_rules_plan(
            cat,
            P,
            V,
            1.0,
            user_segment=codes,
            segment_names=names,
            segment_benefits={"dormant": "nope"},
        )


def test_plan_summary_jsonl_and_truth_evaluation():
    cat = _catalog()
    f = _frame(
        cat,
        None,
        [0, 0, 2],
        [1, 3, 0],
        [0.5, 0.2, 0.1],
        [3.0, 1.0, 2.0],
        [1.0, 0.8, 0.5],
        segment_names=["x", "y"],
        member_segment=np.array([0, 1, 1]),
        send_at=[1_767_225_600] * 3,
        validity_days=[20, 30, 10],
        reasons=[json.dumps({"why": i}) for i in range(3)],
    )
    plan = Plan(f, budget=10.0, issue_cost=0.1)
    s = plan.summary()
    assert s.loc["all", "members"] == 2 and s.loc["all", "benefits"] == 3
    assert s.loc["all", "expected_cost"] == pytest.approx(2.3)
    assert s.loc["all", "return_per_cost"] == pytest.approx(6.0 / 2.3)
    by = plan.summary(by="segment")
    assert by["expected_return"].sum() == pytest.approx(6.0) and set(by.index) == {"x", "y"}
    assert plan.summary(by="kind").loc["points", "expected_redemptions"] == pytest.approx(0.5)
    with pytest.raises(perkrec.InputError, match="unknown column"):
        plan.summary(by="nope")
    lines = plan.to_jsonl().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert (
        first["benefit"] == "B" and first["reasons"] == {"why": 0} and first["validity_days"] == 20
    )
    assert first["valid_until"].startswith("2026-01-21")
    red = np.zeros((3, 4))
    inc = np.zeros((3, 4))
    red[0, 1], red[0, 3], red[2, 0] = 0.4, 0.3, 0.2
    inc[0, 1], inc[0, 3], inc[2, 0] = 0.1, 0.0, 0.2
    e = plan.evaluate(red, inc, [10.0, 0.0, 5.0], [5, 2, 10, 4])
    assert e["true_incremental_return"] == pytest.approx(0.1 * 10 + 0.2 * 5)
    assert e["true_cost"] == pytest.approx(0.3 + 0.4 * 2 + 0.3 * 4 + 0.2 * 5)


def test_order_value_and_incremental_share():
    ev = pd.DataFrame(
        {
            "user": [0, 0, 0, 1, 2],
            "benefit": [-1, -1, -1, -1, 0],
            "event_type": ["ordered", "ordered", "ordered", "ordered", "issued"],
            "timestamp": pd.to_datetime([1, 2, 3, 4, 5], unit="D", utc=True),
            "order_amount": [10.0, 30.0, 20.0, 50.0, 0.0],
        }
    )
    v = order_value(ev, 0.5)
    np.testing.assert_allclose(v, [10.0, 25.0, 0.5 * 25.0])  # member 2: the population median
    v = order_value(ev, 0.5, cut_time=pd.Timestamp(3, unit="D"))
    np.testing.assert_allclose(v, [10.0, 10.0, 10.0])
    with pytest.raises(perkrec.ConfigError, match="margin"):
        order_value(ev, 0.0)

    class Timing:
        def timing(self):
            return pd.DataFrame({"expected_purchases": [0.0, 3.0]})

        def get_params(self):
            return {"horizon_days": 30.0}

    S = incremental_share(Timing(), _catalog())
    np.testing.assert_allclose(S[0], 1.0)  # never buys: all uplift
    np.testing.assert_allclose(S[1], np.exp(-0.1 * np.array([10, 20, 5, 30])), rtol=1e-6)


def test_baselines_and_evaluate_reject_bad_input():
    cat = _catalog()
    P = np.full((6, 4), 0.5)
    V = np.ones((6, 4))
    bad = P.copy()
    bad[2, 1] = np.nan
    with pytest.raises(perkrec.InputError, match=r"redemption_probability: not finite at \(2, 1\)"):
        popularity_plan(cat, bad, V, 10.0, popularity=[1, 2, 3, 4])
    with pytest.raises(perkrec.InputError, match="value: expected shape"):
        popularity_plan(cat, P, V[:, :3], 10.0, popularity=[1, 2, 3, 4])
    with pytest.raises(perkrec.InputError, match="has 3 benefit columns"):
        popularity_plan(cat, P[:, :3], V[:, :3], 10.0, popularity=[1, 2, 3])
    with pytest.raises(perkrec.InputError, match="popularity: expected 4 values"):
        popularity_plan(cat, P, V, 10.0, popularity=[1, 2])
    with pytest.raises(perkrec.ConfigError, match="budget must be >= 0"):
        popularity_plan(cat, P, V, -1.0, popularity=[1, 2, 3, 4])
    with pytest.raises(perkrec.InputError, match="eligible has shape"):
        popularity_plan(cat, P, V, 10.0, popularity=[1, 2, 3, 4], eligible=np.ones((6, 3)))
    names = ["dormant"]
    with pytest.raises(perkrec.InputError, match="user_segment"):
        segment_rules_plan(
            cat,
            P,
            V,
            10.0,
            user_segment=[0, 0, 1, 0, 0, 0],
            segment_names=names,
            segment_benefits={"dormant": "A"},
        )
    with pytest.raises(perkrec.ConfigError, match="budget"):
        segment_rules_plan(
            cat,
            P,
            V,
            float("nan"),
            user_segment=[0] * 6,
            segment_names=names,
            segment_benefits={"dormant": "A"},
        )
    plan = popularity_plan(cat, P, V, 100.0, popularity=[1, 2, 3, 4])
    with pytest.raises(perkrec.InputError, match="incremental_probability: expected shape"):
        plan.evaluate(P, P[:, :2], np.ones(6), [1, 1, 1, 1])
    with pytest.raises(perkrec.InputError, match="order_value: expected 6 values"):
        plan.evaluate(P, P, np.ones(5), [1, 1, 1, 1])
    with pytest.raises(perkrec.InputError, match="the truth is 3 x 4"):
        plan.evaluate(P[:3], P[:3], np.ones(3), [1, 1, 1, 1])


def test_redemption_counts_ignore_events_without_a_benefit():
    ev = pd.DataFrame(
        {
            "user": [0, 0, 1, 1, 2],
            "benefit": [2, -1, 2, 0, 3],
            "event_type": ["redeemed", "redeemed", "redeemed", "issued", "redeemed"],
        }
    )
    np.testing.assert_array_equal(redemption_counts(ev, 5), [0, 0, 2, 1, 0])
