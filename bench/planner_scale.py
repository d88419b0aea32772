"""Time the Planner end to end at scale: policy compile, then Planner.plan (candidate scoring on
eligible pairs, rank, allocate, send time, explain, all in C++) and the plan's DataFrame.

No members x benefits matrix exists anywhere: the redemption probabilities come from per-member
and per-benefit factors (perkrec.plan.ProbabilityFactors: sigmoid(bias_b + u . b), k = 8,
float32), scored in C++ on blocks of 256 members with only their eligible pairs; the
incremental share from per-member order rates and per-benefit validity
(perkrec.plan.TimingShare: exp(-rate x validity)), evaluated the same way.

    .venv/bin/python bench/planner_scale.py [n_users ...]     (default: 100000 300000 1000000)
    PERKREC_BENCH_THREADS=2 to set num_threads (default 0 = OpenMP default)
"""

from __future__ import annotations

import os
import resource
import sys
import time

import numpy as np

import perkrec
from perkrec.plan import Planner, ProbabilityFactors, TimingShare

N_BENEFITS = 48
FACTORS = 8
PLAN = 1_790_000_000
DAY = 86400

POLICY = {
    "issue_cost": 0.05,
    "max_per_member": 2,
    "max_per_kind": 1,
    "quiet_hours": {"start_hour": 22, "end_hour": 8, "utc_offset_column": "utc_offset"},
    "non_stackable": [{"kinds": ["threshold_discount", "percent_off"]}],
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
            "name": "adults only gifts",
            "effect": "deny",
            "benefits": {"kinds": ["gift"]},
            "members": {"attributes": [{"column": "age", "op": "<", "value": 21}]},
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
            "face_value": float(5 + b % 40),
            "cost": float(2 + b % 9),
            "validity_days": int(7 + 7 * (b % 4)),
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
    users._impl.add_numeric("utc_offset", rng.integers(-8, 10, n_users).astype(np.float64))
    probability = ProbabilityFactors(
        (0.6 * rng.standard_normal((n_users, FACTORS))).astype(np.float32),
        (0.6 * rng.standard_normal((N_BENEFITS, FACTORS))).astype(np.float32),
        rng.uniform(-3.5, -1.5, N_BENEFITS).astype(np.float32),
    )
    share = TimingShare(
        rng.gamma(1.0, 0.03, n_users), catalog.to_frame()["validity_days"].to_numpy(np.float64)
    )
    order_value = (0.3 * rng.lognormal(3.5, 0.6, n_users)).astype(np.float32)
    return catalog, users, probability, share, order_value


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 300_000, 1_000_000]
    threads = int(os.environ.get("PERKREC_BENCH_THREADS", "0"))
    print(
        f"perkrec {perkrec.__version__}; {N_BENEFITS} benefits, {FACTORS} factors, num_threads={threads}, "
        f"{os.cpu_count()} CPUs"
    )
    for n in sizes:
        catalog, users, probability, share, order_value = world(n, np.random.default_rng(0))
        policy = dict(POLICY, budget=0.15 * n)  # roughly one member in five gets something
        planner = Planner(policy, objective="incremental", num_threads=threads)
        t0 = time.perf_counter()
        plan = planner.plan(
            catalog,
            users,
            PLAN,
            redemption_probability=probability,
            incremental_share=share,
            order_value=order_value,
            eligible_matrix=False,
        )
        total = time.perf_counter() - t0
        # The same stages once more, timed apart: compile, then the C++ call alone.
        t0 = time.perf_counter()
        compiled = planner.policy.compile(catalog, users, PLAN, num_threads=threads)
        t_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        perkrec._core.plan(
            compiled._impl,
            catalog._impl,
            PLAN,
            '{"objective": "incremental", "num_threads": %d}' % threads,
            None,
            None,
            probability.user_factors.reshape(-1),
            probability.benefit_factors.reshape(-1),
            probability.benefit_bias,
            FACTORS,
            None,
            share.orders_per_day,
            share.validity_days,
            order_value,
            None,
            None,
            0.15 * n,
        )
        t_core = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        candidates = plan.info["candidates"]
        print(
            f"{n:>10,} members: end to end {total:6.2f} s (compile {t_compile:5.2f} s, C++ plan "
            f"{t_core:5.2f} s, rest = DataFrame {max(total - t_compile - t_core, 0):5.2f} s); "
            f"{len(candidates.benefit):,} candidates, {len(plan.frame):,} rows, cost {plan.expected_cost:,.0f} "
            f"of {plan.budget:,.0f}; peak RSS {rss:,.0f} MiB"
        )
        del catalog, users, probability, share, order_value, plan, compiled, candidates


if __name__ == "__main__":
    main()
