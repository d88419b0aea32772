"""BehaviorLog build speed and behaviour-feature throughput on a synthetic purchase log.

A synthetic program: --members members, --items items (Zipf-like popularity) in 50 categories and
500 brands, 2,000 benefits of 12 items each, --events purchase events over one year (member,
item, time, quantity, amount, basket), and --samples (member, benefit, time) samples. Times are
the C++ calls alone (arrays prepared beforehand, GIL released), best of --repeat runs:

  build    BehaviorLog from columns in random order (counting sort + per-member time sort) and
           from columns already sorted by (member, time) (the copy path); rows/s
  features behavior_features for every sample: the 8 aggregates below at the items scope and
           two levels, plus member totals and popularity; samples/s

    .venv/bin/python bench/behavior.py --events 10000000 --samples 1000000 --threads 2

The machine's load matters: on a shared 2-core machine, report `uptime`'s load with the figures
(the CPU seconds printed beside each time are less sensitive to other processes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--members", type=int, default=200_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--skip-sorted",
        action="store_true",
        help="skip the sorted-input build (saves a copy of the log)",
    )
    args = ap.parse_args()

    import perkrec
    from perkrec import _core

    rng = np.random.default_rng(args.seed)
    n, m, k = args.events, args.members, args.items
    t0 = time.perf_counter()
    user = rng.integers(0, m, n, dtype=np.int64).astype(np.int32)
    item = np.minimum(rng.zipf(1.3, n) - 1, k - 1).astype(np.int32)
    item = ((item.astype(np.int64) * 7919) % k).astype(np.int32)  # spread the popular items
    stamp = (1_700_000_000 + rng.integers(0, 365 * 86400, n)).astype(np.int64)
    quantity = rng.integers(1, 4, n).astype(np.float64)
    amount = np.round(rng.gamma(2.0, 2.0, n), 2)
    basket = (stamp // 3600) * 1_000_003 + user  # one basket per member and hour
    sorted_cols = None
    if not args.skip_sorted:
        order = np.lexsort((stamp, user))
        sorted_cols = [a[order] for a in (user, item, stamp, quantity, amount, basket)]
        del order
    print(f"prepared {n:,} events, {m:,} members, {k:,} items in {time.perf_counter() - t0:.1f} s")

    def build(cols):
        u, i, t, q, a, b = cols
        return _core.BehaviorLog.from_arrays(
            u, i, t, None, q, a, b, m, k, ["purchase"], "drop", args.threads
        )

    for label, cols in (
        ("random order", [user, item, stamp, quantity, amount, basket]),
        ("sorted", sorted_cols),
    ):
        if cols is None:
            continue
        best, cpu = float("inf"), float("inf")
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            log = build(cols)
            best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
            del log
        print(
            f"build ({label}): {best:.2f} s = {n / best / 1e6:.1f} M rows/s ({args.threads} threads; "
            f"{cpu:.2f} CPU s)"
        )
    del sorted_cols

    log = build([user, item, stamp, quantity, amount, basket])
    items = perkrec.IdMap.range(k)
    catalog = _core.ItemCatalog(items._impl)
    catalog.add_level(
        "category", rng.integers(0, 50, k).astype(np.int32), [f"c{j}" for j in range(50)]
    )
    catalog.add_level(
        "brand", rng.integers(0, 500, k).astype(np.int32), [f"b{j}" for j in range(500)]
    )
    n_benefits = 2000
    applies = _core.BenefitItems.from_pairs(
        np.repeat(np.arange(n_benefits, dtype=np.int32), 12),
        rng.integers(0, k, n_benefits * 12).astype(np.int32),
        n_benefits,
        k,
        "drop",
    )
    s = args.samples
    su = rng.integers(0, m, s).astype(np.int64)
    sb = rng.integers(0, n_benefits, s).astype(np.int64)
    st = (1_700_000_000 + rng.integers(0, 365 * 86400, s)).astype(np.int64)
    aggregates = [
        "count",
        "quantity",
        "spend",
        "decayed_count",
        "days_since_last",
        "share_of_wallet",
        "member_count",
        "member_baskets",
        "member_spend",
        "member_distinct_items",
        "member_days_since_last",
        "popularity_events",
        "popularity_members",
    ]
    for label, aggs in (("all 13 aggregates", aggregates), ("without popularity", aggregates[:-2])):
        best, cpu = float("inf"), float("inf")
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            cols = _core.behavior_features(
                su,
                sb,
                st,
                log,
                catalog,
                applies,
                aggs,
                ["category", "brand"],
                ["purchase"],
                28.0,
                args.threads,
            )
            best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        print(
            f"features ({label}, {len(cols)} columns, levels category+brand): {best:.2f} s = "
            f"{s / best / 1e6:.2f} M samples/s over {n:,} events ({args.threads} threads; {cpu:.2f} CPU s)"
        )


if __name__ == "__main__":
    main()
