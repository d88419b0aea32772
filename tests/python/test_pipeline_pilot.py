"""A pilot wave (test and scale): BenefitPlanner.plan(users=..., level=...) plans some
members with their P times a level (C++ PlanScope), and perkrec.pilot_level measures that level
from a pilot's redemptions (C++ pilot_level)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.demo import TEST_DAYS, demo_policy


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=600, days=120, seed=8, num_threads=2)


@pytest.fixture(scope="module")
def bp(program):
    cut = program.events.time_range[1] - pd.Timedelta(days=TEST_DAYS)
    planner = perkrec.BenefitPlanner(demo_policy(program.events.n_users), seed=3, num_threads=2)
    return planner.fit(program.events, program.catalog, program.users, cut_time=cut)


@pytest.fixture(scope="module")
def pilot_ids(bp):
    ids = bp.events.user_ids.ids
    return ids[perkrec.assign_holdout(ids, "pilot", weights=(0.8, 0.2)) == 1]


def test_a_subset_plan_holds_only_its_members_within_its_budget(bp, pilot_ids):
    budget = 0.2 * demo_policy(bp.events.n_users)["budget"]
    plan = bp.plan(budget=budget, user_ids=pilot_ids)
    assert len(plan.frame) > 20
    assert set(plan.frame["member"]) <= set(pilot_ids)
    assert plan.expected_cost <= budget + 1e-6
    # A boolean mask over the fitted members, or their indices, plan the same.
    mask = np.isin(bp.events.user_ids.ids, pilot_ids)
    pd.testing.assert_frame_equal(bp.plan(budget=budget, users=mask).frame, plan.frame)
    index = np.flatnonzero(mask)
    pd.testing.assert_frame_equal(bp.plan(budget=budget, users=index).frame, plan.frame)
    # Its members' rows are the whole plan's P (computed for everyone, then masked).
    whole = bp.inputs().redemption_probability
    rows = plan.frame
    np.testing.assert_array_equal(
        rows["probability"].to_numpy(np.float32),
        whole[rows["member_index"].to_numpy(), rows["benefit_index"].to_numpy()],
    )


def test_level_one_and_every_member_equal_the_plain_plan(bp):
    plain = bp.plan()
    pd.testing.assert_frame_equal(bp.plan(level=1.0).frame, plain.frame)
    every = np.ones(bp.events.n_users, dtype=bool)
    pd.testing.assert_frame_equal(bp.plan(users=every, level=1).frame, plain.frame)


def test_a_level_multiplies_the_plans_p(bp):
    plain = bp.plan(budget=1e9)
    for level in (0.7, 1.6):
        scaled = bp.plan(budget=1e9, level=level)
        both = plain.frame.merge(scaled.frame, on=["member_index", "benefit_index"])
        assert len(both) > 0.8 * len(plain.frame)
        want = np.minimum(both["probability_x"].to_numpy(np.float64) * level, 1.0)
        np.testing.assert_array_equal(
            both["probability_y"].to_numpy(np.float32), want.astype(np.float32)
        )


def test_the_scope_equals_planning_the_scoped_p_by_hand(bp, pilot_ids):
    """plan(user_ids=, level=) is the plan of P zeroed outside the members and times the level
    (what bench/plan_vs_oracle.py --pilot feeds perkrec.Planner)."""
    mask = np.isin(bp.events.user_ids.ids, pilot_ids)
    inputs = bp.inputs()
    P = inputs.redemption_probability.astype(np.float64)
    scoped = np.where(mask[:, None], np.minimum(P * 0.8, 1.0), 0.0).astype(np.float32)
    by_hand = bp.plan(budget=300, inputs=dataclasses.replace(inputs, redemption_probability=scoped))
    got = bp.plan(budget=300, user_ids=pilot_ids, level=0.8)
    pd.testing.assert_frame_equal(got.frame, by_hand.frame)
    assert got.expected_cost == by_hand.expected_cost


def test_bad_members_and_levels_raise_typed_errors(bp):
    ids = bp.events.user_ids.ids
    unknown = int(ids.max()) + 17
    with pytest.raises(perkrec.InputError, match=rf"user_ids: .*{unknown}"):
        bp.plan(user_ids=[ids[0], unknown])
    with pytest.raises(perkrec.InputError, match=r"users: a boolean mask.*\(3,\)"):
        bp.plan(users=np.ones(3, dtype=bool))
    with pytest.raises(perkrec.InputError, match=r"users\[1\] must be a member index"):
        bp.plan(users=[0, len(ids)])
    with pytest.raises(perkrec.InputError, match="not both"):
        bp.plan(users=[0], user_ids=ids[:1])
    # 0/1 arms (assign_holdout's) are not indices: a repeated index is an error, not members 0, 1
    arms = perkrec.assign_holdout(ids, "pilot", weights=(0.8, 0.2))
    with pytest.raises(
        perkrec.InputError, match=r"users: member index [01] is repeated.*arms == 1"
    ):
        bp.plan(users=arms)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(perkrec.InputError, match=r"level must be finite and > 0"):
            bp.plan(level=bad)
    for bad in ("2", True):
        with pytest.raises(perkrec.InputError, match="level must be a number"):
            bp.plan(level=bad)
    with pytest.raises(perkrec.InputError, match="users, user_ids and level"):
        bp.plan(level=1.2, inputs=bp.inputs())


def test_pilot_level_reads_the_pilots_redemptions():
    p, cost = [0.5, 0.25, 0.2, 0.1], [2.0, 4.0, 5.0, 10.0]
    got = perkrec.pilot_level(p, [1, 0, 1, 0], cost, prior=0)
    assert (got.expected, got.observed, got.level, got.ratio) == (4.0, 7.0, 1.75, 1.75)
    assert got.standard_error == pytest.approx(np.sqrt(24.5) / 4)
    # The default prior (20 pseudo expected redemptions) pulls a small pilot toward 1.
    shrunk = perkrec.pilot_level(p, [1, 0, 1, 0], cost)
    assert 1 < shrunk.level < 1.75 and shrunk.lower < shrunk.level < shrunk.upper
    with pytest.raises(perkrec.InputError, match="redeemed at row 2"):
        perkrec.pilot_level(p, [1, 0, 2, 0], cost)
    with pytest.raises(perkrec.InputError, match="probability at row 0"):
        perkrec.pilot_level([1.5, 0, 0, 0], [1, 0, 0, 0], cost)
    with pytest.raises(perkrec.InputError, match="cost at row 3"):
        perkrec.pilot_level(p, [1, 0, 0, 0], [1, 1, 1, float("nan")])
    with pytest.raises(perkrec.InputError, match="rows"):
        perkrec.pilot_level(p, [1, 0], cost)
    with pytest.raises(perkrec.ConfigError, match="prior"):
        perkrec.pilot_level(p, [1, 0, 0, 0], cost, prior=-1)
