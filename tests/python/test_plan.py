"""The planner end to end: policy -> ranker -> allocator -> send time -> reasons, on a small
simulated program, with the invariants an operator relies on."""

import json

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.plan import Planner, incremental_share, order_value


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=1500, seed=5)


@pytest.fixture(scope="module")
def inputs(program):
    end = program.events.time_range[1]
    pref = perkrec.PreferenceModel().fit(program.events, program.catalog, end)
    truth = program.truth
    P = truth.redemption_probability.astype(np.float32)
    S = incremental_share(pref, program.catalog)
    V = order_value(program.events, 0.3, cut_time=end)
    return end, pref, P, S, V


POLICY = {
    "budget": 600.0,
    "issue_cost": 0.05,
    "max_per_member": 2,
    "max_per_kind": 1,
    "quiet_hours": {"start_hour": 21, "end_hour": 9},
    "inventory": {"B02": 40},
    "segment_quotas": {"dormant": {"max_members": 50, "max_cost": 60.0}},
    "rules": [
        {
            "name": "exclusive perks for gold and platinum",
            "effect": "require",
            "benefits": {"kinds": ["member_exclusive"]},
            "members": {
                "attributes": [{"column": "tier", "op": "in", "value": ["gold", "platinum"]}]
            },
        },
        {
            "name": "no points for new members",
            "effect": "deny",
            "benefits": {"kinds": ["points"]},
            "members": {"segments": ["new_member"]},
        },
    ],
}


def _plan(program, inputs, policy=POLICY, **kw):
    end, pref, P, S, V = inputs
    planner = Planner(
        policy,
        **{k: v for k, v in kw.items() if k in ("objective", "method", "num_threads", "top_k")},
    )
    return planner.plan(
        program.catalog,
        program.users,
        end,
        redemption_probability=P,
        incremental_share=S,
        order_value=V,
        segments=pref.segments(),
        history=program.events,
        preference=pref,
    )


def test_plan_respects_every_rule_and_limit(program, inputs):
    plan = _plan(program, inputs)
    f = plan.frame
    assert len(f) > 100
    # Budget on expected cost, per-member and per-kind caps.
    assert plan.expected_cost <= POLICY["budget"] + 1e-6
    assert f.groupby("member_index").size().max() <= 2
    assert f.groupby(["member_index", "kind"], observed=True).size().max() == 1
    # Eligibility: every row is eligible under the compiled policy; the rules hold directly too.
    eligible = plan.info["eligible"]
    assert eligible[f["member_index"], f["benefit_index"]].all()
    users = program.users.to_frame()
    tiers = users["tier"].astype(str).to_numpy()[f["member_index"]]
    exclusive = f["kind"].astype(str) == "member_exclusive"
    assert np.isin(tiers[exclusive], ["gold", "platinum"]).all()
    assert not (
        (f["segment"].astype(str) == "new_member") & (f["kind"].astype(str) == "points")
    ).any()
    # Inventory and the segment quota.
    assert (f["benefit"] == "B02").sum() <= 40
    dormant = f[f["segment"].astype(str) == "dormant"]
    assert dormant["member_index"].nunique() <= 50 and dormant["cost"].sum() <= 60.0 + 1e-6
    # Quiet hours (UTC, no offset column): no send in [21:00, 09:00).
    hours = f["send_at"].dt.hour
    assert ((hours >= 9) & (hours < 21)).all()
    assert (f["send_at"] >= inputs[0]).all()
    assert (f["valid_until"] - f["send_at"] == pd.to_timedelta(f["validity_days"], unit="D")).all()
    # The dual bound bounds the plan.
    assert plan.dual_bound >= plan.expected_return - 1e-6


def test_reasons_summary_and_json_lines(program, inputs):
    plan = _plan(program, inputs)
    f = plan.frame
    reasons = [json.loads(r) for r in f["reasons"]]
    assert all(r["benefit"] == b for r, b in zip(reasons, f["benefit"]))
    assert all(abs(r["value"] - v) < 1e-3 * max(1, abs(v)) for r, v in zip(reasons, f["value"]))
    assert all(len(r["preferences"]) > 0 for r in reasons)
    rules = {r["best_ineligible"]["rule"] for r in reasons if r.get("best_ineligible")}
    assert rules <= {
        "exclusive perks for gold and platinum",
        "no points for new members",
        "inventory",
    }
    assert any(r.get("runner_up") for r in reasons)
    s = plan.summary()
    assert s.loc["all", "expected_cost"] == pytest.approx(plan.expected_cost)
    assert plan.summary(by="segment")["expected_return"].sum() == pytest.approx(
        plan.expected_return
    )
    assert plan.summary(by="kind")["benefits"].sum() == len(f)
    lines = plan.to_jsonl().splitlines()
    assert len(lines) == len(f)
    first = json.loads(lines[0])
    assert first["member"] == str(f["member"].iloc[0]) or first["member"] == f["member"].iloc[0]
    assert isinstance(first["reasons"], dict)


def test_plan_is_identical_for_any_thread_count(program, inputs):
    a = _plan(program, inputs, num_threads=1).frame.drop(columns=["reasons"])
    b = _plan(program, inputs, num_threads=2).frame.drop(columns=["reasons"])
    pd.testing.assert_frame_equal(a, b)


def test_incremental_objective_avoids_members_who_buy_anyway(program, inputs):
    end, pref, P, S, V = inputs
    S2 = np.ones_like(S)
    S2[: len(S2) // 2] = 0.0  # the first half would order anyway
    policy = {"budget": 200.0, "issue_cost": 0.05}
    kw = dict(redemption_probability=P, order_value=V, history=program.events)
    inc = Planner(policy, objective="incremental").plan(
        program.catalog, program.users, end, incremental_share=S2, **kw
    )
    red = Planner(policy, objective="redemption").plan(program.catalog, program.users, end, **kw)
    assert (inc.frame["member_index"] >= len(S2) // 2).all()
    assert (red.frame["member_index"] < len(S2) // 2).mean() > 0.3


def test_planner_rejects_bad_configuration(program, inputs):
    end, pref, P, S, V = inputs
    with pytest.raises(perkrec.ConfigError, match="objective"):
        Planner(objective="clicks")
    with pytest.raises(perkrec.ConfigError, match="/budget"):
        Planner({"budget": -1})
    with pytest.raises(perkrec.InputError, match="incremental_share"):
        Planner().plan(program.catalog, program.users, end, redemption_probability=P)
    with pytest.raises(perkrec.InputError):
        Planner().plan(
            program.catalog,
            program.users,
            end,
            redemption_probability=P[:, :5],
            incremental_share=S,
        )
