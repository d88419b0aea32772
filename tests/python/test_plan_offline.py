"""Plan.evaluate_offline: a plan's redemptions, cost and return estimated off-policy from a log
with logged propensities, on logs whose answers are known exactly."""

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec import _core
from perkrec._util import time_seconds
from perkrec.causal import off_policy_value
from perkrec.fm import redemption_samples
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


def _int32(values, dtype, name):
    return np.ascontiguousarray(values, dtype=np.int32)


def reference_evaluate_offline(
    plan,
    log,
    catalog,
    *,
    since=None,
    until=None,
    estimator="snips",
    confidence=0.95,
    clip=None,
    num_threads=0,
):
    """Plan.evaluate_offline as the Python assembly around the C++ calls computed it before
    the one C++ entry (eval/plan_offline.hpp), kept here as the parity reference."""
    if not isinstance(log, perkrec.EventLog):
        raise perkrec.InputError(
            f"Plan.evaluate_offline: log must be a perkrec.EventLog (got {type(log).__name__})"
        )
    if estimator not in ("snips", "ips"):
        raise perkrec.ConfigError(
            f"Plan.evaluate_offline: estimator must be 'snips' or 'ips' (got {estimator!r})"
        )
    if not log.has_propensity:
        raise perkrec.InputError(
            "Plan.evaluate_offline: the log has no logged propensities (needed to reweight the "
            "logging policy's decisions)"
        )
    cat = catalog.to_frame()
    if len(cat) != log.n_benefits:
        raise perkrec.InputError(
            f"Plan.evaluate_offline: the catalog has {len(cat)} benefits, the log {log.n_benefits}"
        )
    frame = log.to_frame(external_ids=False)
    rows = redemption_samples(frame, catalog)
    rows["propensity"] = frame["propensity"].to_numpy(np.float64)[rows["event"].to_numpy()]
    end = time_seconds(log.time_range[1], "the log's end")
    keep = np.array(rows["timestamp"] + rows["validity_days"] * 86400 <= end, dtype=bool)
    if since is not None:
        keep &= (rows["timestamp"] >= time_seconds(since, "since")).to_numpy()
    if until is not None:
        keep &= (rows["timestamp"] < time_seconds(until, "until")).to_numpy()
    rows = rows[keep]
    if len(rows) == 0:
        raise perkrec.InputError(
            "Plan.evaluate_offline: no logged issue in the window has a complete validity period"
        )
    # The plan's (member, benefit) pairs in the log's index space.
    plan_b = plan.frame["benefit_index"].to_numpy(np.int64)
    if len(plan_b) and plan_b.max() >= log.n_benefits:
        raise perkrec.InputError(
            f"Plan.evaluate_offline: the plan has benefit index {plan_b.max()}, the log "
            f"{log.n_benefits} benefits"
        )
    log_users = log.user_ids
    if log_users is not None:
        plan_u = log_users.lookup(plan.frame["member"].to_numpy(), missing="minus_one")
    else:
        plan_u = plan.frame["member_index"].to_numpy(np.int64)
        plan_u = np.where(plan_u < log.n_users, plan_u, -1)
    # The plan as the target policy (C++ eval/ope.hpp: plan_target_policy): the decisions of
    # planned members, 1 / (the member's decisions) where the plan issues the pair.
    kept, target, pair = _core.plan_target_policy(
        _int32(plan_u, np.int32, "plan members"),
        _int32(plan_b, np.int32, "plan benefits"),
        _int32(rows["user"].to_numpy(), np.int32, "user"),
        _int32(rows["benefit"].to_numpy(), np.int32, "benefit"),
        log.n_users,
        log.n_benefits,
    )
    p = rows["propensity"].to_numpy(np.float64)[kept]
    label = rows["label"].to_numpy(np.float64)[kept]
    prob = plan.frame["probability"].to_numpy(np.float64)
    per_redemption = np.where(
        prob > 0, plan.frame["value"].to_numpy(np.float64) / np.maximum(prob, 1e-300), 0.0
    )
    cost_b = cat["cost"].to_numpy(np.float64)
    safe = np.maximum(pair, 0)
    rewards = {
        "redemptions": label,
        "cost": plan.issue_cost + label * cost_b[plan_b[safe]],
        "return": label * per_redemption[safe],
    }
    expected = {
        "redemptions": float(prob.sum()),
        "cost": plan.expected_cost,
        "return": plan.expected_return,
    }
    if not np.any(target > 0):
        raise perkrec.InputError(
            "Plan.evaluate_offline: the log holds no decision that issued one of the plan's "
            "(member, benefit) pairs in the window"
        )
    n_pairs = len(plan.frame)
    out, ess = [], float("nan")
    for name, r in rewards.items():
        est = off_policy_value(
            r,
            p,
            target,
            estimator=estimator,
            confidence=confidence,
            clip=clip,
            num_threads=num_threads,
        )
        # SNIPS: a mean per planned pair; IPS: a mean per logged decision of a planned member.
        scale = n_pairs if estimator == "snips" else len(p)
        out.append((name, est.value * scale, est.lower * scale, est.upper * scale, expected[name]))
        ess = est.effective_sample_size
    result = pd.DataFrame(
        out, columns=["metric", "estimate", "lower", "upper", "expected"]
    ).set_index("metric")
    covered = np.unique(pair[target > 0])
    result.attrs.update(
        {
            "pairs": n_pairs,
            "covered_pairs": int(len(covered)),
            "decisions": int(len(p)),
            "effective_sample_size": ess,
            "estimator": estimator,
        }
    )
    return result


def varied_plan(n_users: int, n_benefits: int, seed: int) -> Plan:
    """A plan of every kind of row: members the log lacks, repeated pairs, probability 0."""
    rng = np.random.default_rng(seed)
    n = 2 * n_users
    members = rng.integers(0, n_users + 50, size=n)  # some beyond the log's members
    benefits = rng.integers(0, n_benefits, size=n)
    prob = rng.uniform(0, 0.4, size=n)
    prob[::17] = 0.0
    value = rng.uniform(0, 30, size=n)
    frame = pd.DataFrame(
        {
            "member": members,
            "member_index": members,
            "benefit_index": benefits,
            "probability": prob,
            "value": value,
            "cost": 0.2 + prob * 3.0,
        }
    )
    return Plan(frame=frame, issue_cost=0.2)


@pytest.fixture(scope="module")
def sim_program():
    return perkrec.simulate(n_users=1500, days=150, seed=4, num_threads=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"estimator": "ips"},
        {"clip": 5.0, "confidence": 0.9},
        {"since_days": 60},
        {"since_days": 90, "until_days": 30, "estimator": "ips"},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default",
)
def test_the_cpp_evaluation_gives_the_former_python_assemblys_numbers(sim_program, kwargs):
    prog = sim_program
    log = prog.events
    end = log.time_range[1]
    kwargs = dict(kwargs)
    for key in ("since", "until"):
        days = kwargs.pop(f"{key}_days", None)
        if days is not None:
            kwargs[key] = end - pd.Timedelta(days=days)
    plan = varied_plan(log.n_users, log.n_benefits, seed=len(kwargs))
    new = plan.evaluate_offline(log, prog.catalog, num_threads=2, **kwargs)
    ref = reference_evaluate_offline(plan, log, prog.catalog, num_threads=2, **kwargs)
    pd.testing.assert_frame_equal(new, ref, check_exact=True)
    assert new.attrs == ref.attrs
    assert new.attrs["covered_pairs"] > 50
