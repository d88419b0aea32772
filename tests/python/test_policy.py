"""perkrec.Policy: strict JSON, compile to masks and constraints, caps from history, send time."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pandas as pd
import pytest

import perkrec

PLAN = pd.Timestamp("2026-06-01", tz="UTC")


@pytest.fixture()
def catalog():
    return perkrec.Catalog.from_records(
        [
            {
                "id": "B0",
                "kind": "discount",
                "face_value": 5,
                "channel": "app",
                "scenarios": ["regular"],
            },
            {
                "id": "B1",
                "kind": "threshold_discount",
                "face_value": 20,
                "threshold": 150,
                "scenarios": ["holiday"],
            },
            {"id": "B2", "kind": "points", "face_value": 2, "tags": ["spring"]},
            {"id": "B3", "kind": "member_exclusive"},
            {"id": "B4", "kind": "gift", "face_value": 10, "inventory": 0},
        ]
    )


@pytest.fixture()
def users():
    frame = pd.DataFrame(
        {
            "tier": ["gold", "basic", "platinum", None],
            "age": [30.0, 45.0, np.nan, 70.0],
            "utc_offset": [0.0, 5.5, -8.0, np.nan],
        },
        index=pd.Index(["m0", "m1", "m2", "m3"], name="user"),
    )
    return perkrec.UserTable.from_frame(frame)


SPEC = {
    "budget": 100,
    "issue_cost": 0.05,
    "max_per_member": 2,
    "max_per_kind": 1,
    "diversity": 0.2,
    "caps": [{"period_days": 7, "max": 2}],
    "frequency_cap": {"period_days": 3, "max_contacts": 1},
    "quiet_hours": {"start_hour": 22, "end_hour": 8, "utc_offset_column": "utc_offset"},
    "inventory": {"B3": 50},
    "non_stackable": [["B0", "B1"]],
    "segment_quotas": {"dormant": {"max_members": 1, "max_cost": 10}},
    "rules": [
        {
            "name": "exclusive for gold+",
            "effect": "require",
            "benefits": {"kinds": ["member_exclusive"]},
            "members": {
                "attributes": [{"column": "tier", "op": "in", "value": ["gold", "platinum"]}]
            },
        },
        {
            "name": "no points for the young",
            "effect": "deny",
            "benefits": {"kinds": ["points"]},
            "members": {"attributes": [{"column": "age", "op": "<", "value": 40}]},
        },
        {
            "name": "holiday",
            "effect": "window",
            "benefits": {"scenarios": ["holiday"]},
            "from": "2026-12-01",
            "until": "2027-01-01",
        },
        {
            "name": "no discounts for dormant",
            "effect": "deny",
            "benefits": {"kinds": ["discount"]},
            "members": {"segments": ["dormant"]},
        },
    ],
}


def test_compile_known_answer(catalog, users):
    policy = perkrec.Policy(SPEC)
    segments = pd.Series(["active", "dormant", None, "dormant"])
    compiled = policy.compile(catalog, users, PLAN, segments=segments)
    expected = np.array(
        [
            # B0     B1     B2     B3     B4 (inventory 0)
            [True, False, False, True, False],  # gold, 30: young -> no points
            [False, False, True, False, False],  # basic, dormant: no discounts, no exclusive
            [True, False, True, True, False],  # platinum, age missing (matches no condition)
            [False, False, True, False, False],  # missing tier, dormant
        ]
    )
    np.testing.assert_array_equal(compiled.eligible_matrix(), expected)
    assert compiled.rule_names == [r["name"] for r in SPEC["rules"]] + ["inventory"]
    assert list(compiled.excluding_rule([0, 1, 0, 0], [2, 3, 1, 4])) == [
        "no points for the young",
        "exclusive for gold+",
        "holiday",
        "inventory",
    ]
    assert compiled.excluding_rule([0], [0])[0] is None
    # Members 1 and 3 share one mask; mask_bits are the unique rows.
    assert compiled.user_masks[1] == compiled.user_masks[3]
    np.testing.assert_array_equal(compiled.mask_bits()[compiled.user_masks], expected)
    counts = compiled.rule_counts().set_index("rule")["excluded_pairs"]
    assert (
        counts["inventory"] == 4
        and counts["holiday"] == 4
        and counts["no points for the young"] == 1
    )

    k = compiled.constraints
    assert (
        k.budget == 100
        and k.max_per_member == 2
        and k.max_per_kind == 1
        and k.diversity == pytest.approx(0.2)
    )
    np.testing.assert_array_equal(k.inventory, [-1, -1, -1, 50, 0])
    np.testing.assert_array_equal(k.benefit_group, [0, 0, -1, -1, -1])
    np.testing.assert_array_equal(
        k.benefit_kind,
        [
            perkrec.BENEFIT_KINDS.index(x)
            for x in ["discount", "threshold_discount", "points", "member_exclusive", "gift"]
        ],
    )
    assert compiled.segment_names == ["active", "dormant"]
    np.testing.assert_array_equal(k.member_segment, [0, 1, -1, 1])
    np.testing.assert_array_equal(k.segment_max_members, [-1, 1])
    np.testing.assert_allclose(k.segment_max_cost, [-1, 10])
    np.testing.assert_array_equal(k.member_capacity, [2, 2, 2, 2])
    k.validate(4, 5)
    assert compiled.issue_cost == pytest.approx(0.05)
    np.testing.assert_allclose(compiled.utc_offset_hours, [0, 5.5, -8, 0])


def test_window_opens_inside_the_dates(catalog, users):
    policy = perkrec.Policy({"rules": [SPEC["rules"][2]]})
    inside = policy.compile(catalog, users, "2026-12-24 18:00")
    assert inside.eligible_matrix()[:, 1].all()
    assert not policy.compile(catalog, users, "2027-01-01").eligible_matrix()[:, 1].any()
    assert policy.compile(catalog, users, "2026-12-01").eligible_matrix()[:, 1].all()


def test_segments_from_frame_and_pair(catalog, users):
    policy = perkrec.Policy({"rules": [SPEC["rules"][3]]})
    frame = pd.DataFrame({"segment": pd.Categorical(["dormant", "a", "a", "dormant"])})
    a = policy.compile(catalog, users, PLAN, segments=frame).eligible_matrix()
    b = policy.compile(
        catalog, users, PLAN, segments=(np.array([1, 0, 0, 1]), ["a", "dormant"])
    ).eligible_matrix()
    np.testing.assert_array_equal(a, b)
    assert not a[0, 0] and a[1, 0]
    # A categorical keeps its categories (and their order), even unused ones.
    seg = pd.Series(pd.Categorical(["x", "x", "x", "x"], categories=["dormant", "x", "vip"]))
    quota = perkrec.Policy({"segment_quotas": {"vip": {"max_members": 3}}})
    c = quota.compile(catalog, users, PLAN, segments=seg)
    assert c.segment_names == ["dormant", "x", "vip"]
    np.testing.assert_array_equal(c.constraints.member_segment, [1, 1, 1, 1])
    np.testing.assert_array_equal(c.constraints.segment_max_members, [-1, -1, 3])
    with pytest.raises(perkrec.InputError, match="segment"):
        policy.compile(catalog, users, PLAN)
    with pytest.raises(perkrec.InputError, match="one per member"):
        policy.compile(catalog, users, PLAN, segments=["a", "b"])


def test_caps_and_frequency_cap_from_history(catalog, users):
    day = 86400
    plan = int(PLAN.value // 10**9)
    log = perkrec.EventLog.from_arrays(
        user=np.array([0, 0, 1, 2, 2], dtype=np.int32),
        benefit=np.array([0, 2, 0, 1, 3], dtype=np.int32),
        event_type=["issued", "issued", "issued", "issued", "viewed"],
        timestamp=np.array(
            [plan - 7 * day, plan - day, plan - 7 * day - 1, plan - 5 * day, plan - day]
        ),
        n_users=4,
        n_benefits=5,
    )
    policy = perkrec.Policy(
        {
            "max_per_member": 2,
            "caps": [{"period_days": 7, "max": 2}],
            "frequency_cap": {"period_days": 3, "max_contacts": 1},
        }
    )
    compiled = policy.compile(catalog, users, plan, history=log)
    # m0: two issues in [plan - 7d, plan): cap used up, and one contact in 3 days: frequency cap.
    # m1: its issue is one second too old. m2: one issue 5 days ago (outside the 3-day window).
    np.testing.assert_array_equal(compiled.constraints.member_capacity, [0, 2, 1, 2])
    assert list(compiled.user_block_names()) == ["frequency_cap", "none", "none", "none"]
    lenient = perkrec.Policy({"max_per_member": 2, "caps": [{"period_days": 7, "max": 2}]})
    c2 = lenient.compile(catalog, users, plan, history=log)
    assert list(c2.user_block_names()) == ["member_cap", "none", "none", "none"]


def test_send_time_quiet_hours(catalog, users):
    policy = perkrec.Policy(
        {"quiet_hours": {"start_hour": 22, "end_hour": 8, "utc_offset_column": "utc_offset"}}
    )
    t = pd.Timestamp("2026-06-01 23:30", tz="UTC")
    assert policy.send_time(t) == pd.Timestamp("2026-06-02 08:00", tz="UTC")
    assert policy.send_time("2026-06-01 12:00") == pd.Timestamp("2026-06-01 12:00", tz="UTC")
    secs = int(pd.Timestamp("2026-06-01 17:00", tz="UTC").value // 10**9)
    # UTC+5.5: 22:30 local -> 08:00 local = 02:30 UTC.
    assert policy.send_time(secs, 5.5) == int(
        pd.Timestamp("2026-06-02 02:30", tz="UTC").value // 10**9
    )
    compiled = policy.compile(catalog, users, PLAN)
    assert compiled.send_time(secs, 1) == policy.send_time(secs, 5.5)
    out = compiled.send_times(secs, np.arange(4))
    expected = [policy.send_time(secs, o) for o in (0, 5.5, -8, 0)]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "spec, pointer",
    [
        ({"budget": -1}, "/budget"),
        ({"budgett": 1}, "/budgett"),
        (
            {
                "rules": [
                    {
                        "effect": "deny",
                        "members": {
                            "attributes": [{"column": "a", "op": "==", "value": 1, "extra": 0}]
                        },
                    }
                ]
            },
            "/rules/0/members/attributes/0/extra",
        ),
        (
            {"rules": [{"effect": "deny", "benefits": {"kinds": ["voucher"]}}]},
            "/rules/0/benefits/kinds/0",
        ),
        (
            {"rules": [{"effect": "window", "from": "2026-12-02", "until": "2026-12-01"}]},
            "/rules/0/until",
        ),
        ({"max_per_member": 1, "max_per_kind": 2}, "/max_per_kind"),
        ({"quiet_hours": {"start_hour": 5, "end_hour": 5}}, "/quiet_hours/end_hour"),
        ({"segment_quotas": {"x": {"max_members": -3}}}, "/segment_quotas/x/max_members"),
        ({"non_stackable": [["B1"], ["B2", "B1"]]}, "/non_stackable/1/ids/1"),
        (
            {
                "rules": [
                    {"effect": "deny", "benefits": {"kinds": ["gift"]}},
                    {"effect": "require", "benefits": {"kinds": ["gift"]}},
                ]
            },
            "/rules/1",
        ),
    ],
)
def test_strict_parsing_names_the_pointer(spec, pointer):
    with pytest.raises(perkrec.ConfigError, match=re.escape(pointer)) as info:
        perkrec.Policy(spec)
    assert isinstance(info.value, ValueError)


def test_compile_errors_name_rule_and_column(catalog, users):
    policy = perkrec.Policy(
        {
            "rules": [
                {
                    "name": "by region",
                    "effect": "deny",
                    "members": {"attributes": [{"column": "region", "op": "==", "value": "x"}]},
                }
            ]
        }
    )
    with pytest.raises(perkrec.InputError, match="by region.*unknown column 'region'"):
        policy.compile(catalog, users, PLAN)


def test_round_trip_and_sources(tmp_path):
    policy = perkrec.Policy(SPEC)
    d = policy.to_dict()
    assert perkrec.Policy(d) == policy
    assert perkrec.Policy.from_json(policy.to_json()) == policy
    assert perkrec.Policy.from_dict(d).to_dict() == d
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(SPEC))
    assert perkrec.Policy(path) == policy
    assert perkrec.Policy.from_path(str(path)) == policy
    assert perkrec.Policy(str(path)) == policy
    assert d["rules"][2]["from"] == "2026-12-01T00:00:00Z"
    assert policy.budget == 100 and policy.rule_names[0] == "exclusive for gold+"
    assert perkrec.Policy() == perkrec.Policy({})
    assert np.isinf(perkrec.Policy().budget)
    assert "Policy(4 rules" in repr(policy)
    assert pickle.loads(pickle.dumps(policy)) == policy


def test_simulated_program_thread_invariance(small_program):
    program = small_program
    policy = perkrec.Policy(
        {
            "max_per_member": 2,
            "caps": [{"period_days": 30, "max": 3}],
            "frequency_cap": {"period_days": 7, "max_contacts": 2},
            "rules": [
                {
                    "name": "gifts for gold+",
                    "effect": "require",
                    "benefits": {"kinds": ["gift"]},
                    "members": {
                        "attributes": [
                            {"column": "tier", "op": "in", "value": ["gold", "platinum"]}
                        ]
                    },
                },
                {
                    "name": "no points for the young",
                    "effect": "deny",
                    "benefits": {"kinds": ["points"]},
                    "members": {
                        "attributes": [{"column": "age_band", "op": "==", "value": "18-24"}]
                    },
                },
            ],
        }
    )
    plan = program.truth.reference_time
    a = policy.compile(program.catalog, program.users, plan, history=program.events, num_threads=1)
    b = policy.compile(program.catalog, program.users, plan, history=program.events, num_threads=2)
    np.testing.assert_array_equal(a.user_masks, b.user_masks)
    np.testing.assert_array_equal(a.mask_rules(), b.mask_rules())
    np.testing.assert_array_equal(a.constraints.member_capacity, b.constraints.member_capacity)
    np.testing.assert_array_equal(a.user_block, b.user_block)
    # Rules split members into a few masks, and the dense matrix agrees with the attributes.
    assert 2 <= a.n_masks <= 5
    frame = program.users.to_frame()
    kinds = program.catalog.to_frame()["kind"].astype(str).to_numpy()
    eligible = a.eligible_matrix()
    gold = frame["tier"].isin(["gold", "platinum"]).to_numpy()
    young = (frame["age_band"] == "18-24").to_numpy()
    assert (kinds == "gift").any() and (kinds == "points").any() and young.any() and gold.any()
    assert not eligible[np.ix_(~gold, kinds == "gift")].any()
    assert eligible[np.ix_(gold, kinds == "gift")].all()
    assert not eligible[np.ix_(young, kinds == "points")].any()
    assert eligible[np.ix_(~young, kinds == "points")].all()
    assert eligible[:, ~np.isin(kinds, ["gift", "points"])].all()
    a.constraints.validate(len(program.users), len(program.catalog))
    # Caps and the frequency cap agree with a pandas computation over the log.
    ev = program.events.to_frame()
    ev = ev[ev["event_type"] == "issued"]
    t = (
        pd.to_datetime(ev["timestamp"], utc=True)
        if not pd.api.types.is_numeric_dtype(ev["timestamp"])
        else pd.to_datetime(ev["timestamp"], unit="s", utc=True)
    )
    users = ev["user"].to_numpy().astype(np.int64)
    month = (t >= plan - pd.Timedelta(days=30)) & (t < plan)
    issued = np.bincount(users[month.to_numpy()], minlength=len(program.users))
    week = ((t >= plan - pd.Timedelta(days=7)) & (t < plan)).to_numpy()
    contacts = (
        pd.DataFrame({"u": users[week], "t": t[week].to_numpy()})
        .drop_duplicates()
        .groupby("u")
        .size()
    )
    contacts = contacts.reindex(range(len(program.users)), fill_value=0).to_numpy()
    capacity = np.where(contacts >= 2, 0, np.clip(np.minimum(2, 3 - issued), 0, None))
    np.testing.assert_array_equal(a.constraints.member_capacity, capacity)
    block = np.where(contacts >= 2, 10, np.where(capacity == 0, 5, 0))
    np.testing.assert_array_equal(a.user_block, block)
    assert (block == 10).any() and (block == 5).any() and (block == 0).any()
