"""Plan.evaluate_offline: a plan's redemptions, cost and return estimated off-policy from a log
with logged propensities, on logs whose answers are known exactly."""

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.plan import Plan

DAY = 86400
T0 = 1_700_000_000
CATALOG = perkrec.Catalog.from_records(
    [
        {"id": f"B{k}", "kind": "discount", "face_value": 5, "cost": 2.0 + k, "validity_days": 7}
        for k in range(3)
    ]
)


def uniform_log(n_members: int, rounds: int, propensity: float = 1 / 3, seed: int = 0):
    """Each member gets every benefit once per round (the logging policy draws each with
    ``propensity``); a member redeems exactly the benefit ``member % 3`` (deterministic reward)."""
    rng = np.random.default_rng(seed)
    user, benefit, etype, time, prop = [], [], [], [], []
    for r in range(rounds):
        for u in range(n_members):
            for b in rng.permutation(3):
                t = T0 + (r * 3 + int(b)) * 10 * DAY + u
                (
                    user.append(u),
                    benefit.append(int(b)),
                    etype.append("issued"),
                    time.append(t),
                    prop.append(propensity),
                )
                if b == u % 3:
                    (
                        user.append(u),
                        benefit.append(int(b)),
                        etype.append("redeemed"),
                        time.append(t + DAY),
                    )
                    prop.append(1.0)
    end = T0 + (rounds * 3 + 2) * 10 * DAY
    user.append(0), benefit.append(-1), etype.append("ordered"), time.append(end), prop.append(1.0)
    return perkrec.EventLog.from_arrays(user, benefit, etype, time, propensity=prop, n_benefits=3)


def make_plan(members, benefits, probability=0.5, value=4.0, issue_cost=0.1) -> Plan:
    members = np.asarray(members)
    benefits = np.asarray(benefits)
    prob = np.full(len(members), probability)
    frame = pd.DataFrame(
        {
            "member": members,
            "member_index": members,
            "benefit_index": benefits,
            "probability": prob,
            "value": np.full(len(members), value),
            "cost": issue_cost + prob * (2.0 + benefits),
        }
    )
    return Plan(frame=frame, issue_cost=issue_cost)


@pytest.mark.parametrize("estimator", ["snips", "ips"])
def test_a_plan_that_gives_each_member_what_they_redeem_is_valued_exactly(estimator):
    log = uniform_log(30, rounds=2)
    members = np.arange(30)
    perfect = make_plan(members, members % 3)
    out = perfect.evaluate_offline(log, CATALOG, estimator=estimator)
    assert out.loc["redemptions", "estimate"] == pytest.approx(30.0)
    # Every redemption costs issue cost + the benefit's cost; return = redemptions x value / probability.
    assert out.loc["cost", "estimate"] == pytest.approx(
        30 * 0.1 + sum(2.0 + m % 3 for m in members)
    )
    assert out.loc["return", "estimate"] == pytest.approx(30 * 4.0 / 0.5)
    assert out.loc["redemptions", "expected"] == pytest.approx(15.0)
    assert out.attrs["pairs"] == 30 and out.attrs["covered_pairs"] == 30
    wrong = make_plan(members, (members + 1) % 3)
    assert (
        wrong.evaluate_offline(log, CATALOG, estimator=estimator).loc["redemptions", "estimate"]
        == 0.0
    )


def test_a_mixed_plan_is_valued_by_its_share_of_right_pairs():
    log = uniform_log(30, rounds=2)
    members = np.arange(30)
    right = members < 10
    plan = make_plan(members, np.where(right, members % 3, (members + 1) % 3))
    out = plan.evaluate_offline(log, CATALOG)
    assert out.loc["redemptions", "estimate"] == pytest.approx(10.0)
    assert out.loc["redemptions", "lower"] < 10.0 < out.loc["redemptions", "upper"]


def test_the_snips_estimate_does_not_depend_on_the_scale_of_the_propensities():
    members = np.arange(30)
    plan = make_plan(members, np.where(members < 12, members % 3, (members + 2) % 3))
    a = plan.evaluate_offline(uniform_log(30, 2, propensity=1 / 3), CATALOG)
    b = plan.evaluate_offline(uniform_log(30, 2, propensity=0.05), CATALOG)
    assert a.loc["redemptions", "estimate"] == pytest.approx(b.loc["redemptions", "estimate"])
    assert a.loc["redemptions", "estimate"] == pytest.approx(12.0)


def test_the_window_and_the_validity_decide_which_issues_count():
    log = uniform_log(6, rounds=2)
    members = np.arange(6)
    plan = make_plan(members, members % 3)
    all_rows = plan.evaluate_offline(log, CATALOG).attrs["decisions"]
    late = plan.evaluate_offline(log, CATALOG, since=T0 + 30 * DAY).attrs["decisions"]
    early = plan.evaluate_offline(log, CATALOG, until=T0 + 30 * DAY).attrs["decisions"]
    assert all_rows == 6 * 6 and late + early == all_rows and late == early == 18


def test_bad_inputs_are_typed_errors():
    log = uniform_log(6, rounds=1)
    plan = make_plan(np.arange(6), np.arange(6) % 3)
    with pytest.raises(perkrec.ConfigError, match="estimator"):
        plan.evaluate_offline(log, CATALOG, estimator="dm")
    with pytest.raises(perkrec.InputError, match="EventLog"):
        plan.evaluate_offline(log.to_frame(), CATALOG)
    bare = perkrec.EventLog.from_arrays(log.users, log.benefits, log.event_types, log.timestamps)
    with pytest.raises(perkrec.InputError, match="propensities"):
        plan.evaluate_offline(bare, CATALOG)
    with pytest.raises(perkrec.InputError, match="no logged issue"):
        plan.evaluate_offline(log, CATALOG, since=T0 + 1000 * DAY)
    nobody = make_plan([5], [0])  # member 5 redeems benefit 2 only, but was also issued 0
    assert nobody.evaluate_offline(log, CATALOG).loc["redemptions", "estimate"] == 0.0


def test_the_estimate_is_close_to_the_truth_on_a_simulated_program():
    """On the simulator a random plan's redemptions estimated from the last 60 days of logged
    issues: the interval holds the plan's true redemptions at the plan time (the simulator's
    truth; the flat expected figure the plan was given is far off)."""
    prog = perkrec.simulate(n_users=3000, seed=11, num_threads=2)
    log, truth = prog.events, prog.truth
    R = truth.redemption_probability
    rng = np.random.default_rng(0)
    members = np.arange(3000)
    benefits = rng.integers(0, R.shape[1], size=3000)
    plan = make_plan(members, benefits, probability=0.1)
    out = plan.evaluate_offline(log, prog.catalog, since=log.time_range[1] - pd.Timedelta(days=60))
    true = float(R[members, benefits].sum())
    assert out.attrs["covered_pairs"] > 100
    assert out.loc["redemptions", "lower"] <= true <= out.loc["redemptions", "upper"]
    assert abs(out.loc["redemptions", "estimate"] / true - 1) < 0.15
