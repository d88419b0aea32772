"""The decision layer's headline target on the simulator: a budgeted perkrec plan's TRUE
incremental return per unit of true cost, against the popularity baseline (everyone gets the
most popular affordable benefit) and fixed segment rules, at the same budget.

Each seed simulates a program, fits the demo's models (FM on issues before the last 30 days,
inverse-propensity weighted and early-stopped on the issues after them, its member x benefit
interaction shrunk by those issues;
the preference model at the plan time; BENCHMARKS.md's figures of 2026-11-23 predate the
weighting and the shrinkage) and plans at the end of the period. Rows:

  perkrec (incremental)   the planner as the demo runs it (uplift objective)
  perkrec (redemption)    the same planner maximizing redemption value instead of uplift
  oracle (incremental)    the planner fed the simulator's true probabilities (a ceiling)
  popularity, segment rules   the baselines
  perkrec (popularity's spend)  the planner with the popularity baseline's expected spend as
                          its budget (the baseline often spends less than the budget)

    .venv/bin/python bench/plan_vs_baselines.py [--members 20000] [--seeds 42,7,11]
                                                [--budgets 0.5,1,2]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd

import perkrec
from perkrec.demo import PLAN_MARGIN, TEST_DAYS, demo_policy
from perkrec.plan import (
    Planner,
    default_segment_benefits,
    popularity_plan,
    redemption_counts,
    segment_rules_plan,
)


def run_seed(members: int, seed: int, budgets, threads: int):
    program = perkrec.simulate(n_users=members, seed=seed, num_threads=threads)
    log, catalog, truth = program.events, program.catalog, program.truth
    start, end = log.time_range
    cut = end - pd.Timedelta(days=TEST_DAYS)
    # The demo's plan inputs: IPW-weighted, early-stopped FM, interaction shrunk by the later issues.
    pipeline = perkrec.BenefitPlanner(margin=PLAN_MARGIN, seed=seed, num_threads=threads)
    inputs = pipeline.fit(log, catalog, program.users, cut_time=cut).inputs(end)
    P, S, V = inputs.redemption_probability, inputs.incremental_share, inputs.order_value
    pref = pipeline.preference
    segments = pref.segments()
    codes = segments["segment"].cat.codes.to_numpy()
    names = list(segments["segment"].cat.categories)
    popularity = redemption_counts(log, len(catalog))
    truth_value = PLAN_MARGIN * truth.members["basket_median"].to_numpy(np.float64)
    cost_b = catalog.to_frame()["cost"].to_numpy(np.float64)
    R_true = truth.redemption_probability
    S_true = truth.incremental_probability / np.maximum(R_true, 1e-12)
    out = []
    for per_member in budgets:
        policy = demo_policy(members)
        policy["budget"] = per_member * members
        budget = policy["budget"]
        plans = {}
        t0 = time.perf_counter()
        plans["perkrec (incremental)"] = Planner(
            policy, objective="incremental", num_threads=threads
        ).plan(
            catalog,
            program.users,
            end,
            redemption_probability=P,
            incremental_share=S,
            order_value=V,
            segments=segments,
            history=log,
            preference=pref,
        )
        plan_seconds = time.perf_counter() - t0
        plans["perkrec (redemption)"] = Planner(
            policy, objective="redemption", num_threads=threads
        ).plan(
            catalog,
            program.users,
            end,
            redemption_probability=P,
            order_value=V,
            segments=segments,
            history=log,
            preference=pref,
        )
        plans["oracle (incremental)"] = Planner(
            policy, objective="incremental", num_threads=threads
        ).plan(
            catalog,
            program.users,
            end,
            redemption_probability=R_true,
            incremental_share=S_true,
            order_value=truth_value.astype(np.float32),
            segments=segments,
            history=log,
            preference=pref,
        )
        eligible = plans["perkrec (incremental)"].info.get("eligible")
        V_matrix = P * S * V[:, None]
        plans["popularity"] = popularity_plan(
            catalog,
            P,
            V_matrix,
            budget,
            popularity=popularity,
            issue_cost=policy["issue_cost"],
            eligible=eligible,
            seed=seed,
        )
        plans["segment rules"] = segment_rules_plan(
            catalog,
            P,
            V_matrix,
            budget,
            user_segment=codes,
            segment_names=names,
            segment_benefits=default_segment_benefits(
                catalog,
                popularity,
                names,
                expected_cost=policy["issue_cost"] + P.mean(axis=0) * cost_b,
                max_cost_per_user=per_member,
            ),
            issue_cost=policy["issue_cost"],
            eligible=eligible,
            seed=seed,
        )
        # The same planner held to the popularity baseline's expected spend (a same-spend view).
        plans["perkrec (popularity's spend)"] = Planner(
            policy, objective="incremental", num_threads=threads
        ).plan(
            catalog,
            program.users,
            end,
            redemption_probability=P,
            incremental_share=S,
            order_value=V,
            segments=segments,
            history=log,
            preference=pref,
            budget=plans["popularity"].expected_cost,
        )
        for label, p in plans.items():
            e = p.evaluate(R_true, truth.incremental_probability, truth_value, cost_b)
            out.append(
                {
                    "seed": seed,
                    "budget_per_member": per_member,
                    "plan": label,
                    "members": e["members"],
                    "expected_cost": p.expected_cost,
                    "true_cost": e["true_cost"],
                    "true_return": e["true_incremental_return"],
                    "return_per_cost": e["true_return_per_cost"],
                    "plan_seconds": plan_seconds if label == "perkrec (incremental)" else np.nan,
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--members", type=int, default=20000)
    ap.add_argument("--seeds", default="42,7,11")
    ap.add_argument("--budgets", default="0.5,1,2", help="budget per member on expected cost")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    budgets = [float(b) for b in args.budgets.split(",") if b]
    print(
        f"perkrec {perkrec.__version__}; {platform.processor() or platform.machine()}; "
        f"{args.members:,} members, seeds {seeds}, budgets/member {budgets}"
    )
    rows = []
    for seed in seeds:
        rows += run_seed(args.members, seed, budgets, args.threads)
    df = pd.DataFrame(rows)
    base = df[df["plan"] == "popularity"].set_index(["seed", "budget_per_member"])[
        "return_per_cost"
    ]
    seg = df[df["plan"] == "segment rules"].set_index(["seed", "budget_per_member"])[
        "return_per_cost"
    ]
    key = list(zip(df["seed"], df["budget_per_member"]))
    df["vs_popularity"] = df["return_per_cost"].to_numpy() / base.loc[key].to_numpy()
    df["vs_segment_rules"] = df["return_per_cost"].to_numpy() / seg.loc[key].to_numpy()
    pd.set_option("display.width", 200)
    print(df.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    print("\nmean over seeds:")
    print(
        df.groupby(["budget_per_member", "plan"], sort=False)[
            ["true_cost", "true_return", "return_per_cost", "vs_popularity", "vs_segment_rules"]
        ]
        .mean()
        .to_string(float_format=lambda v: f"{v:,.3f}")
    )


if __name__ == "__main__":
    main()
