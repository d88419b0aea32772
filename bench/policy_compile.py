"""Time Policy.compile (rules -> eligibility masks, caps and frequency cap from history) for
large member counts. No peer library does this; the figure is for sizing the planner.

    .venv/bin/python bench/policy_compile.py [n_users ...]     (default: 1000000 10000000)
"""

from __future__ import annotations

import sys
import time

import numpy as np

import perkrec

N_BENEFITS = 50
PLAN = 1_790_000_000
DAY = 86400

POLICY = {
    "budget": 1e6,
    "issue_cost": 0.02,
    "max_per_member": 2,
    "max_per_kind": 1,
    "caps": [{"period_days": 30, "max": 4}, {"period_days": 30, "max": 1, "kind": "gift"}],
    "frequency_cap": {"period_days": 7, "max_contacts": 2},
    "quiet_hours": {"start_hour": 22, "end_hour": 8, "utc_offset_column": "utc_offset"},
    "non_stackable": [{"kinds": ["threshold_discount", "percent_off"]}],
    "segment_quotas": {"s3": {"max_members": 100000, "max_cost": 5000}},
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
            "name": "no points for s0",
            "effect": "deny",
            "benefits": {"kinds": ["points"]},
            "members": {"segments": ["s0"]},
        },
        {
            "name": "adults only gifts",
            "effect": "deny",
            "benefits": {"kinds": ["gift"]},
            "members": {"attributes": [{"column": "age", "op": "<", "value": 21}]},
        },
        {
            "name": "big discounts for spenders",
            "effect": "require",
            "benefits": {"face_value": {"min": 30}},
            "members": {"attributes": [{"column": "spend", "op": ">=", "value": 500}]},
        },
        {
            "name": "holiday",
            "effect": "window",
            "benefits": {"scenarios": ["holiday"]},
            "from": PLAN - 10 * DAY,
            "until": PLAN + 20 * DAY,
        },
    ],
}


def world(n_users: int, rng: np.random.Generator):
    kinds = perkrec.BENEFIT_KINDS
    records = []
    for b in range(N_BENEFITS):
        kind = kinds[b % len(kinds)]
        rec = {
            "id": f"B{b:03d}",
            "kind": kind,
            "face_value": float(b % 40),
            "scenarios": ["holiday"] if b % 7 == 0 else ["regular"],
        }
        if kind == "threshold_discount":
            rec["threshold"] = 100.0
        if kind == "percent_off":
            rec["discount_rate"] = 0.1
        records.append(rec)
    catalog = perkrec.Catalog.from_records(records)
    users = perkrec.UserTable(perkrec.IdMap.range(n_users))
    users._impl.add_categorical(
        "tier",
        rng.integers(-1, 4, n_users).astype(np.int32),
        ["basic", "silver", "gold", "platinum"],
    )
    users._impl.add_numeric("age", rng.integers(16, 80, n_users).astype(np.float64))
    users._impl.add_numeric("spend", rng.exponential(300, n_users))
    users._impl.add_numeric("utc_offset", rng.integers(-8, 10, n_users).astype(np.float64))
    segments = (rng.integers(0, 5, n_users).astype(np.int32), [f"s{i}" for i in range(5)])
    n_events = 2 * n_users
    history = perkrec.EventLog.from_arrays(
        user=rng.integers(0, n_users, n_events).astype(np.int32),
        benefit=rng.integers(0, N_BENEFITS, n_events).astype(np.int32),
        event_type=np.zeros(n_events, dtype=np.uint8),
        timestamp=PLAN - rng.integers(1, 60 * DAY, n_events),
        n_users=n_users,
        n_benefits=N_BENEFITS,
    )
    return catalog, users, segments, history


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000]
    policy = perkrec.Policy(POLICY)
    print(
        f"perkrec {perkrec.__version__}; {len(POLICY['rules'])} rules, {N_BENEFITS} benefits, "
        f"2 issued events per member in the history"
    )
    for n in sizes:
        catalog, users, segments, history = world(n, np.random.default_rng(0))
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            compiled = policy.compile(catalog, users, PLAN, segments=segments, history=history)
            best = min(best, time.perf_counter() - t0)
        blocked = np.bincount(compiled.user_block, minlength=11)
        print(
            f"{n:>11,} members: compile {best:6.2f} s ({n / best / 1e6:5.2f} M members/s), "
            f"{compiled.n_masks} masks, frequency-capped {blocked[10]:,}, cap-full {blocked[5]:,}"
        )
        del catalog, users, segments, history, compiled


if __name__ == "__main__":
    main()
