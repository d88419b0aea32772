"""Ranker throughput: perkrec.rank (fused eligibility + top-K by value - cost, C++) against the
same computation written in numpy (vectorized value/cost, argpartition top-K), on the same
data in one process; plus the blend path, and explain() throughput for plan rows.

    .venv/bin/python bench/rank.py [--members 200000] [--benefits 50] [--top-k 10] [--threads 2]
                                   [--explain-rows 100000]

Objective: on the simulator (--sim-members), each member's single best benefit by the
redemption objective (P(redeem) x value - cost) and by the incremental objective
(P(incremental purchase) x value - cost), both from the simulator's true probabilities, and the
TRUE incremental return and cost of each choice: how much ranking by uplift matters.

Data: random redemption probabilities in [0, 0.5), incremental shares, member values and
per-benefit costs; eligibility from 64 random masks (70% eligible). Both sides produce the
same candidates (checked: benefit ids of every row equal). Times are the best of 3 runs.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import perkrec
from perkrec import _core


def best_of(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def numpy_rank(eligible, prob, share, member_value, cost, top_k):
    prob = prob.astype(np.float64)  # perkrec computes value and cost in double
    value = prob * share * member_value[:, None]
    total_cost = prob * cost[None, :]
    key = np.where(eligible, value - total_cost, -np.inf)
    key = np.where(key > 0, key, -np.inf)
    k = min(top_k, key.shape[1])
    part = np.argpartition(-key, k - 1, axis=1)[:, :k]
    part_key = np.take_along_axis(key, part, axis=1)
    # Deterministic order: key descending, benefit ascending (as perkrec).
    order = np.lexsort((part, -part_key), axis=1)
    ids = np.take_along_axis(part, order, axis=1)
    keys = np.take_along_axis(part_key, order, axis=1)
    valid = np.isfinite(keys)
    return ids[valid], np.cumsum(np.concatenate([[0], valid.sum(axis=1)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=200_000)
    ap.add_argument("--benefits", type=int, default=50)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--explain-rows", type=int, default=100_000)
    ap.add_argument("--sim-members", type=int, default=20_000)
    ap.add_argument(
        "--margin", type=float, default=0.3, help="value of a redemption = margin x basket_median"
    )
    args = ap.parse_args()
    n, m = args.members, args.benefits
    rng = np.random.default_rng(0)
    prob = (0.5 * rng.random((n, m))).astype(np.float32)
    share = rng.random((n, m)).astype(np.float32)
    member_value = (5 + 40 * rng.random(n)).astype(np.float32)
    cost = (10 * rng.random(m)).astype(np.float32)
    mask_rows = (rng.random((64, m)) < 0.7).astype(np.uint8)
    member_mask = rng.integers(0, 64, n)
    eligible = mask_rows[member_mask]
    masks = _core.EligibilityMasks.from_dense(np.ascontiguousarray(eligible).reshape(-1), n, m)
    print(
        f"# {platform.processor() or platform.machine()}, {n} members x {m} benefits, top_k {args.top_k}, "
        f"{args.threads} threads"
    )

    def run_perkrec():
        return perkrec.rank(
            masks,
            prob,
            incremental_share=share,
            user_value=member_value,
            cost_per_redemption=cost,
            top_k=args.top_k,
            num_threads=args.threads,
        )

    t_perkrec, cand = best_of(run_perkrec)
    t_numpy, (ids, offsets) = best_of(
        lambda: numpy_rank(eligible.astype(bool), prob, share, member_value, cost, args.top_k)
    )
    same = np.array_equal(np.asarray(cand.offsets), offsets) and np.array_equal(
        np.asarray(cand.benefit), ids
    )
    print(
        f"rank dense   perkrec {t_perkrec:.3f} s ({n / t_perkrec / 1e6:.2f} M members/s)   numpy {t_numpy:.3f} s"
        f"   numpy/perkrec {t_numpy / t_perkrec:.1f}x   same candidates: {same}"
    )

    score = rng.normal(size=(n, m)).astype(np.float32)
    blend = perkrec.ScoreBlend().add_source("cf", score).add_source("fm", prob, transform="logit")
    blend.set_weights(-1.0, [0.5, 1.0])
    t_blend, _ = best_of(
        lambda: perkrec.rank(
            masks,
            blend=blend,
            incremental_share=share,
            user_value=member_value,
            cost_per_redemption=cost,
            top_k=args.top_k,
            num_threads=args.threads,
        )
    )
    print(
        f"rank blend   perkrec {t_blend:.3f} s ({n / t_blend / 1e6:.2f} M members/s; 2 matrix sources, "
        f"eligible pairs only)"
    )

    rows = args.explain_rows
    members = rng.integers(0, n, rows).astype(np.int32)
    benefits = rng.integers(0, m, rows).astype(np.int32)
    dims = [f"kind:{k}" for k in range(8)] + [f"band:{k}" for k in range(3)]
    prefs = (0.5 + rng.random((n, len(dims)))).astype(np.float32)
    bdims = np.zeros((m, len(dims)), dtype=np.uint8)
    bdims[np.arange(m), np.arange(m) % 8] = 1
    bdims[np.arange(m), 8 + np.arange(m) % 3] = 1
    contrib = rng.normal(size=(rows, 2)).astype(np.float32)
    best = rng.integers(-1, m, n).astype(np.int32)
    rule = np.where(best >= 0, 0, -1).astype(np.int32)

    def run_explain():
        return perkrec.explain(
            members,
            benefits,
            preferences=prefs,
            dimension_names=dims,
            benefit_dimensions=bdims,
            benefit_ids=[f"B{b:03d}" for b in range(m)],
            contributions=contrib,
            source_names=["cf", "fm"],
            probability=prob[members, benefits],
            value=prob[members, benefits] * 10,
            cost=np.ones(rows, np.float32),
            best_ineligible_benefit=best,
            best_ineligible_rule=rule,
            rule_names=["gold only"],
            num_threads=args.threads,
        )

    t_explain, texts = best_of(run_explain)
    print(
        f"explain      perkrec {t_explain:.3f} s for {rows} rows ({rows / t_explain / 1e3:.0f} k rows/s), "
        f"{sum(map(len, texts)) / rows:.0f} bytes/row"
    )

    if args.sim_members > 0:
        objective_comparison(args)


def objective_comparison(args) -> None:
    program = perkrec.simulate(n_users=args.sim_members, seed=5, num_threads=args.threads)
    truth = program.truth
    redeem = truth.redemption_probability.astype(np.float32)
    incremental = truth.incremental_probability.astype(np.float64)
    share = np.clip(incremental / np.maximum(redeem, 1e-9), 0, 1).astype(np.float32)
    value = (args.margin * truth.members["basket_median"].to_numpy()).astype(np.float32)
    cost = program.catalog.to_frame()["cost"].to_numpy().astype(np.float32)
    n = redeem.shape[0]
    print(
        f"# objective on the simulator: {n} members x {redeem.shape[1]} benefits, value = {args.margin} x "
        f"basket_median, top-1 per member, no budget"
    )
    for objective in ("redemption", "incremental"):
        c = perkrec.rank(
            None,
            redeem,
            incremental_share=share,
            user_value=value,
            cost_per_redemption=program.catalog,
            objective=objective,
            top_k=1,
            keep_non_positive=True,
            num_threads=args.threads,
        )
        members = np.repeat(np.arange(n), np.diff(c.offsets))
        b = np.asarray(c.benefit)
        true_return = float((incremental[members, b] * value[members]).sum())
        true_cost = float((redeem[members, b] * cost[b]).sum())
        print(
            f"  {objective:<12} true incremental return {true_return:10.0f}   expected cost {true_cost:9.0f}   "
            f"return/cost {true_return / true_cost:5.2f}   net {true_return - true_cost:10.0f}"
        )


if __name__ == "__main__":
    main()
