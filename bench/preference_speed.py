"""Speed of the wide table and the preference model: 10M events, 1M members.

Synthetic events on the simulator's 48-benefit catalog: 1,000,000 members with 10 events each
on average (issued 40%, viewed 15%, claimed 12%, redeemed 5%, expired 3%, ordered 25%) over
180 days. Times ``wide_table`` (one pass: all columns) and ``PreferenceModel.fit`` (counts,
latent classes, beta-binomial posterior with intervals, member features, hour-of-week
profiles, BG/NBD and repurchase timing) on the given number of threads. There is no peer
library computing the same preference vectors, so there is no side-by-side figure; the pandas
line computes only the per-member claim rate of one dimension group for scale.

    .venv/bin/python bench/preference_speed.py [--members 1000000] [--events 10000000] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import perkrec
from perkrec import _core
from perkrec.data import Catalog


def synthetic(members: int, events: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    params = _core.SimulatorParams()
    catalog = Catalog._wrap(_core.simulated_catalog(params))
    user = np.sort(rng.integers(0, members, events, dtype=np.int32))
    kind = rng.choice(6, size=events, p=[0.40, 0.15, 0.12, 0.05, 0.03, 0.25]).astype(np.uint8)
    benefit = rng.integers(0, len(catalog), events, dtype=np.int32)
    benefit[kind == 5] = -1
    start = 1767225600
    timestamp = start + rng.integers(0, 180 * 86400, events, dtype=np.int64)
    amount = np.where((kind == 5) | (kind == 3), rng.lognormal(3.8, 0.4, events), 0).astype(
        np.float32
    )
    log = perkrec.EventLog.from_arrays(
        user,
        benefit,
        kind,
        timestamp,
        order_amount=amount,
        n_users=members,
        n_benefits=len(catalog),
    )
    return log, catalog, start + 180 * 86400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    log, catalog, cut = synthetic(args.members, args.events)
    print(
        f"{len(log):,} events, {log.n_users:,} members, {len(catalog)} benefits, {args.threads} threads"
    )
    for r in range(args.repeats):
        t0 = time.perf_counter()
        table = perkrec.wide_table(log, catalog, cut, num_threads=args.threads)
        t1 = time.perf_counter()
        perkrec.PreferenceModel(num_threads=args.threads).fit(log, catalog, cut)
        t2 = time.perf_counter()
        print(
            f"run {r + 1}: wide_table {t1 - t0:.2f} s ({table.shape[1]} columns), "
            f"PreferenceModel.fit {t2 - t1:.2f} s, total {t2 - t0:.2f} s"
        )
    frame = pd.DataFrame({"user": log.users, "benefit": log.benefits, "type": log.event_types})
    t0 = time.perf_counter()
    kinds = catalog.to_frame()["kind"].astype(str).to_numpy()
    part = frame[frame["type"].isin([0, 2])]
    part = part.assign(kind=kinds[part["benefit"].to_numpy()])
    rates = part.pivot_table(index="user", columns=["kind", "type"], aggfunc="size", fill_value=0)
    t1 = time.perf_counter()
    print(f"pandas: claims and issues per member and kind only: {t1 - t0:.2f} s ({rates.shape})")


if __name__ == "__main__":
    main()
