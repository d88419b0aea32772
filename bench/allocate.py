"""Allocator benchmark: perkrec.allocate (Lagrangian dual) against the integer optimum (scipy
milp / HiGHS and perkrec's own branch and bound) on small instances, against the value-per-cost
greedy baseline and the dual bound on a mid-size instance, and the wall time of the 10M members
x 50 candidates target.

    .venv/bin/python bench/allocate.py [--members 10000000] [--candidates 50] [--small 100]
                                       [--mid 500000] [--max-per-member 1,2] [--inventory]
                                       [--lock FILE]

With --lock, every timed section holds an exclusive flock on that file (data generation does
not). Nothing but perkrec, numpy and scipy is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import resource
import time

import numpy as np

import perkrec
from perkrec.allocate import allocate_milp


@contextlib.contextmanager
def exclusive(path):
    if not path:
        yield
        return
    with open(path, "a") as f:
        t0 = time.time()
        fcntl.flock(f, fcntl.LOCK_EX)
        waited = time.time() - t0
        if waited > 1:
            print(f"  (waited {waited:.0f} s for the CPU lock)")
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def quiet_stdout():
    """HiGHS prints debug lines from C++ on some instances: silence fd 1 around milp."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def synthetic(n_users, k, n_benefits, seed, chunk=1_000_000):
    """k candidates per member over n_benefits benefits, built in chunks (no big temporaries):
    distinct benefits per row (a random start and consecutive ids), expected value
    p x (value of a redemption), expected cost issue cost + p x cost per redemption."""
    rng = np.random.default_rng(seed)
    n = n_users * k
    offsets = np.arange(0, n + 1, k, dtype=np.int64)
    benefit = np.empty(n, np.int32)
    value = np.empty(n, np.float32)
    cost = np.empty(n, np.float32)
    b_value = rng.uniform(2.0, 12.0, n_benefits).astype(np.float32)
    b_cost = rng.uniform(0.5, 6.0, n_benefits).astype(np.float32)
    steps = np.arange(k, dtype=np.int32)
    for u0 in range(0, n_users, chunk):
        u1 = min(n_users, u0 + chunk)
        rows = u1 - u0
        start = rng.integers(0, n_benefits, rows, dtype=np.int32)
        b = (start[:, None] + steps[None, :]) % n_benefits
        p = rng.beta(0.6, 6.0, (rows, k)).astype(np.float32)
        s = slice(u0 * k, u1 * k)
        benefit[s] = b.ravel()
        value[s] = (p * b_value[b] * rng.uniform(0.5, 1.5, (rows, 1)).astype(np.float32)).ravel()
        cost[s] = (0.02 + p * b_cost[b]).ravel()
    return {
        "offsets": offsets,
        "benefit": benefit,
        "value": value,
        "cost": cost,
        "n_benefits": n_benefits,
    }


def small_instance(rng, n_users, k, n_benefits):
    lengths = rng.integers(1, k + 1, n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    benefit = np.concatenate(
        [rng.choice(n_benefits, size=m, replace=False) for m in lengths]
    ).astype(np.int32)
    p = rng.beta(0.8, 4.0, offsets[-1])
    value = (p * rng.uniform(2, 12, offsets[-1])).astype(np.float32)
    cost = (0.05 + p * rng.uniform(0.5, 6, offsets[-1])).astype(np.float32)
    c = {
        "offsets": offsets,
        "benefit": benefit,
        "value": value,
        "cost": cost,
        "n_benefits": n_benefits,
    }
    kk = {
        "budget": float(cost.sum() * rng.uniform(0.1, 0.5)),
        "max_per_member": int(rng.integers(1, 3)),
    }
    if rng.random() < 0.5:
        kk["inventory"] = np.where(
            rng.random(n_benefits) < 0.5, -1, rng.integers(1, n_users // 2 + 2, n_benefits)
        )
    if rng.random() < 0.4:
        kk["benefit_kind"] = rng.integers(0, 3, n_benefits)
        kk["n_kinds"] = 3
        kk["max_per_kind"] = 1
    if rng.random() < 0.3:
        kk["benefit_group"] = np.where(
            rng.random(n_benefits) < 0.5, rng.integers(0, 2, n_benefits), -1
        )
    if rng.random() < 0.4:
        kk["member_segment"] = rng.integers(-1, 3, n_users)
        kk["segment_max_members"] = [int(rng.integers(1, n_users // 2 + 2)), -1, -1]
        kk["segment_max_cost"] = [-1.0, float(cost.sum() * 0.1), -1.0]
    return c, kk


def bench_small(n_instances, seed):
    rng = np.random.default_rng(seed)
    dual, greedy, exact_ok, bound_gap = [], [], 0, []
    t_dual = t_milp = t_exact = 0.0
    for _ in range(n_instances):
        c, k = small_instance(rng, int(rng.integers(8, 15)), 4, 8)
        t0 = time.perf_counter()
        with quiet_stdout():
            opt, _ = allocate_milp(c, k)
        t_milp += time.perf_counter() - t0
        t0 = time.perf_counter()
        e = perkrec.allocate(c, k, method="exact")
        t_exact += time.perf_counter() - t0
        t0 = time.perf_counter()
        d = perkrec.allocate(c, k)
        t_dual += time.perf_counter() - t0
        g = perkrec.allocate(c, k, method="greedy")
        for plan in (d, e, g):
            assert perkrec.check_allocation(c, k, plan) == "", plan.method
        exact_ok += abs(e.value - opt) <= 1e-6 * max(1.0, opt)
        if opt > 0:
            dual.append(d.value / opt)
            greedy.append(g.value / opt)
            bound_gap.append(d.dual_bound / opt - 1)
    dual, greedy = np.array(dual), np.array(greedy)
    print(
        f"small instances: {n_instances} random (8-14 members x 1-4 candidates, 8 benefits, random "
        "budget / inventory / kind caps / groups / segment quotas)"
    )
    print(f"  allocate_exact == milp optimum:       {exact_ok}/{n_instances}")
    print(
        f"  dual plan / optimum:  mean {dual.mean():.4f}  min {dual.min():.4f}  "
        f"(>= 0.99 on {np.mean(dual >= 0.99):.0%} of instances)"
    )
    print(f"  greedy / optimum:     mean {greedy.mean():.4f}  min {greedy.min():.4f}")
    print(f"  dual bound / optimum - 1: mean {np.mean(bound_gap):.4f}")
    print(
        f"  time per instance: dual {1e3 * t_dual / n_instances:.2f} ms, exact {1e3 * t_exact / n_instances:.2f} ms, "
        f"milp {1e3 * t_milp / n_instances:.2f} ms"
    )


def bench_mid(n_users, k, lock):
    c = synthetic(n_users, k, 200, seed=11)
    total = float(c["cost"].sum())
    budget = 0.02 * total
    cons = {
        "budget": budget,
        "max_per_member": 2,
        "inventory": np.where(np.arange(200) % 10 == 0, n_users // 50, -1),
        "benefit_kind": np.arange(200) % 5,
        "n_kinds": 5,
        "max_per_kind": 1,
    }
    with exclusive(lock):
        t0 = time.perf_counter()
        d = perkrec.allocate(c, cons)
        t_d = time.perf_counter() - t0
        t0 = time.perf_counter()
        g = perkrec.allocate(c, cons, method="greedy")
        t_g = time.perf_counter() - t0
    assert perkrec.check_allocation(c, cons, d) == "" and perkrec.check_allocation(c, cons, g) == ""
    print(
        f"mid instance: {n_users:,} members x {k} candidates, 200 benefits, budget 2% of total cost, "
        "2 per member, 1 per kind, inventory on 20 benefits"
    )
    print(
        f"  dual:   value {d.value:,.1f}  cost {d.cost:,.1f} / {budget:,.1f}  bound {d.dual_bound:,.1f}  "
        f"value/bound {d.value / d.dual_bound:.5f}  {t_d:.2f} s  ({d.iterations} multiplier evaluations)"
    )
    print(
        f"  greedy: value {g.value:,.1f}  cost {g.cost:,.1f}  greedy/dual {g.value / d.value:.4f}  {t_g:.2f} s"
    )


def bench_big(n_users, k, lock, caps, inventory=False):
    t0 = time.perf_counter()
    c = synthetic(n_users, k, 200, seed=5)
    t_gen = time.perf_counter() - t0
    budget = 0.02 * float(c["cost"].sum(dtype=np.float64))
    gb = sum(c[x].nbytes for x in ("offsets", "benefit", "value", "cost")) / 2**30
    print(
        f"big instance: {n_users:,} members x {k} candidates ({n_users * k:,} entries, {gb:.1f} GiB of "
        f"arrays, generated in {t_gen:.0f} s), 200 benefits, budget 2% of total cost"
    )
    for cap in caps:
        cons = {"budget": budget, "max_per_member": cap}
        label = f"{cap} per member"
        if cap > 1:
            cons.update(benefit_kind=np.arange(200) % 5, n_kinds=5, max_per_kind=1)
            label += ", 1 per kind (5 kinds)"
        if inventory:
            cons.update(inventory=np.where(np.arange(200) % 10 == 0, n_users // 50, -1))
            label += ", inventory on 20 benefits"
        with exclusive(lock):
            t0 = time.perf_counter()
            d = perkrec.allocate(c, cons)
            t_d = time.perf_counter() - t0
        print(
            f"  allocate (dual, {perkrec._core.default_num_threads()} threads), {label}: {t_d:.1f} s   "
            f"value {d.value:,.1f}  cost {d.cost:,.1f} / {budget:,.1f}  value/bound {d.value / d.dual_bound:.6f}  "
            f"{d.iterations} multiplier evaluations, {len(d.candidate):,} benefits issued"
        )
    print(
        f"  peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB"
    )


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--members", type=int, default=10_000_000)
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument(
        "--max-per-member", default="1,2", help="comma-separated caps timed on the big instance"
    )
    ap.add_argument("--small", type=int, default=100, help="small instances vs milp (0 = skip)")
    ap.add_argument(
        "--mid", type=int, default=500_000, help="members of the greedy comparison (0 = skip)"
    )
    ap.add_argument("--lock", default="", help="flock this file exclusively around timed sections")
    ap.add_argument(
        "--inventory",
        action="store_true",
        help="big instance: also limit the inventory of 20 of the 200 benefits (as the mid instance)",
    )
    args = ap.parse_args()
    print(
        f"perkrec {perkrec.__version__}, {os.cpu_count()} CPUs, {perkrec._core.default_num_threads()} threads"
    )
    if args.small:
        bench_small(args.small, seed=1)
    if args.mid:
        bench_mid(args.mid, args.candidates, args.lock)
    if args.members:
        bench_big(
            args.members,
            args.candidates,
            args.lock,
            [int(x) for x in args.max_per_member.split(",")],
            args.inventory,
        )


if __name__ == "__main__":
    main()
