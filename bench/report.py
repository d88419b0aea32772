"""Campaign report generation time and page size for a large plan (issue 18 target: a
1M-member plan's report in < 5 s, page < 3 MB).

The plan is synthetic (its shape is what Planner.plan returns: one row per issued benefit with
segment, kind, channel, send time and a JSON explanation); only campaign_report is timed.

    .venv/bin/python bench/report.py --members 1000000
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import pandas as pd

from perkrec.plan import Plan
from perkrec.report import campaign_report


def synthetic_plan(n: int, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    kinds = np.array(
        [
            "discount",
            "threshold_discount",
            "percent_off",
            "gift",
            "points",
            "free_shipping",
            "member_exclusive",
            "service",
        ]
    )
    segments = np.array(
        [
            "threshold_discount_sensitive",
            "high_face_value_seeker",
            "points_redemption_active",
            "dormant",
            "new_member",
            "discount_indifferent_loyal",
        ]
    )
    dims = np.array(
        ["channel:app", "channel:email", "kind:points", "scope:category", "threshold:none"]
    )
    benefit = rng.integers(0, 48, n)
    p = rng.beta(2, 12, n)
    cost = rng.uniform(0.2, 3.0, n)
    value = p * rng.uniform(5, 40, n)
    start = pd.Timestamp("2026-07-01", tz="UTC").value // 10**9
    send = start + rng.integers(0, 14 * 86400, n)
    dim = dims[rng.integers(0, len(dims), n)]
    reasons = [
        json.dumps(
            {
                "member": str(i),
                "benefit": f"B{b:02d}",
                "probability": round(float(q), 5),
                "preferences": [{"dimension": d, "lift": 1.5, "lower": 1.2, "upper": 1.8}],
                "runner_up": {"benefit": "B01", "reason": "member_cap"},
            }
        )
        for i, b, q, d in zip(range(n), benefit, p, dim)
    ]
    frame = pd.DataFrame(
        {
            "member": np.arange(n).astype(str),
            "member_index": np.arange(n),
            "benefit": [f"B{b:02d}" for b in benefit],
            "benefit_index": benefit,
            "kind": pd.Categorical(kinds[benefit % len(kinds)]),
            "segment": pd.Categorical(segments[rng.integers(0, len(segments), n)]),
            "channel": pd.Categorical(np.array(["app", "email", "sms"])[benefit % 3]),
            "probability": p,
            "value": value,
            "cost": cost,
            "net": value - cost,
            "send_at": pd.to_datetime(send, unit="s", utc=True),
            "validity_days": np.full(n, 7, np.int32),
            "reasons": reasons,
        }
    )
    frame["valid_until"] = frame["send_at"] + pd.Timedelta(days=7)
    return Plan(frame, budget=float(cost.sum() * 1.05), method="dual")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print("command: " + " ".join([sys.executable.split("/")[-1]] + sys.argv))
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; python {platform.python_version()}"
    )
    plan = synthetic_plan(args.members, args.seed)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        page = campaign_report(plan)
        times.append(time.perf_counter() - t)
    size = len(page.encode("utf-8"))
    print(f"| plan rows | report time (s, best of {args.repeats}) | median (s) | page size (KB) |")
    print("|---:|---:|---:|---:|")
    print(
        f"| {args.members:,} | {min(times):.2f} | {float(np.median(times)):.2f} | {size / 1024:.0f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
