"""How close a budgeted perkrec plan gets to the oracle plan, and whether it spends its budget,
on simulated programs whose seeds and archetype mixes no other bench reports (the estimators
were tuned on seed 5 only).

Per seed x archetype mix x budget (per member, on expected cost):

  pct_oracle      the plan's TRUE incremental return as a share of the oracle plan's (the same
                  planner fed the simulator's true redemption probabilities, incremental shares
                  and order values) at the same budget
  spend_budget    the plan's TRUE spend / its budget
  spend_expected  the plan's TRUE spend / its own expected spend (the target when the budget
                  does not bind, i.e. expected spend < 99% of the budget)
  corr_full       correlation of the estimated redemption probability P with the true one over
                  the full member x benefit matrix
  corr_chosen     the same on the pairs the plan chose; p_chosen / true_chosen their means

Input variants (the redemption model's weighting + the incremental share's source):

  fm+timing       the former default: FM on the logged issues, unweighted; incremental share
                  1 - P(organic order) from the preference model's purchase timing
  ipw+timing      FM with clipped, self-normalized inverse-propensity sample weights
  ...+shrink      the FM's member x benefit interaction shrunk by the slope measured on the
                  issues logged after the FM's training cut (perkrec.plan.shrink_interactions)
  ...+es          the FM trained up to 10 epochs, keeping the best on the issues after the cut
                  (early stopping; without it: 6 epochs, the former setting)
  ipw+timing+shrink+es   the demo's plan inputs
  ipw+control+shrink  incremental share learned from the random control group instead
                  (perkrec.plan.incremental_share_from_control)
  ...+pool        pooled member, member x kind and member x channel effects (empirical Bayes,
                  perkrec.plan.pooled_redemption) fitted on the finished logged issues before
                  the cut on top of the FM's prediction at the issue's time, kept by their slope
                  on the issues after the cut, added to the plan-time P

    .venv/bin/python bench/plan_vs_oracle.py [--members 10000] [--seeds 101,202,303]
        [--mixes loyal_dormant,deal_seekers] [--budgets 0.5,1,2]
        [--variants fm+timing,ipw+timing,fm+timing+shrink,ipw+timing+shrink,ipw+control+shrink,
                    fm+timing+es,ipw+timing+shrink+es]
        [--threads 2] [--csv rows.csv]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd

import perkrec
from perkrec.demo import PLAN_MARGIN, TEST_DAYS, demo_policy
from perkrec.plan import Planner

# Archetype shares (threshold, high-value, points, loyal, dormant, new); the default mix
# (0.22, 0.18, 0.18, 0.17, 0.15, 0.10) is the one the other benches and the demo use.
MIXES = {
    "loyal_dormant": (0.10, 0.10, 0.10, 0.30, 0.30, 0.10),
    "deal_seekers": (0.35, 0.25, 0.20, 0.08, 0.04, 0.08),
    "tuning": (0.30, 0.10, 0.10, 0.20, 0.20, 0.10),
    "default": (0.22, 0.18, 0.18, 0.17, 0.15, 0.10),  # the demo's and the other benches'
}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return (
        float(np.corrcoef(a, b)[0, 1])
        if len(a) > 2 and a.std() > 0 and b.std() > 0
        else float("nan")
    )


def pooled(pipeline, log, catalog, users, P, cut, threads: int) -> np.ndarray:
    """P with pooled member, member x kind and member x channel effects fitted on the logged
    issues whose validity ended by the FM's cut, on top of the FM's prediction for the issue at
    its time, kept by the slope the issues after the cut (validity ended by the end of the log)
    support (perkrec.plan.pooled_redemption)."""
    from perkrec.fm import redemption_samples
    from perkrec.plan import issue_weights, pooled_redemption

    frame = log.to_frame(external_ids=False)
    issued = (frame["event_type"].astype(str) == "issued").to_numpy() & (
        frame["benefit"].to_numpy() >= 0
    )
    weights = issue_weights(frame["propensity"].to_numpy()[issued])
    rows = redemption_samples(log, catalog, users)
    t_end = log.time_range[1].value // 10**9
    t_cut = cut.value // 10**9
    ends = (rows["timestamp"] + rows["validity_days"] * 86400).to_numpy()
    done = (ends <= t_cut) | ((rows["timestamp"] >= t_cut).to_numpy() & (ends <= t_end))
    rows = rows[done]
    at_issue = np.clip(
        pipeline.fm.predict(pipeline.encoder.transform(rows, events=log)), 1e-6, 1 - 1e-6
    )
    cat = catalog.to_frame()
    codes = {c: pd.factorize(cat[c].astype(str))[0] for c in ("kind", "channel")}
    return pooled_redemption(
        rows["user"],
        rows["benefit"],
        rows["label"],
        n_users=P.shape[0],
        benefit_attributes=codes,
        base=np.clip(P, 1e-6, 1 - 1e-6),
        base_at_issue=at_issue,
        sample_weight=weights[done],
        held_out=rows["timestamp"].to_numpy() >= t_cut,
        num_threads=threads,
    ).probability


def run_program(members: int, seed: int, mix: str, budgets, variants, threads: int):
    program = perkrec.simulate(
        n_users=members, seed=seed, archetype_mix=MIXES[mix], num_threads=threads
    )
    log, catalog, truth = program.events, program.catalog, program.truth
    end = log.time_range[1]
    cut = end - pd.Timedelta(days=TEST_DAYS)
    R_true = truth.redemption_probability
    S_true = truth.incremental_probability / np.maximum(R_true, 1e-12)
    truth_value = PLAN_MARGIN * truth.members["basket_median"].to_numpy(np.float64)
    cost_b = catalog.to_frame()["cost"].to_numpy(np.float64)
    out = []
    for variant in variants:
        weighting, incremental, *extra = variant.split("+")
        t0 = time.perf_counter()
        pipeline = perkrec.BenefitPlanner(
            weighting="none" if weighting == "fm" else weighting,
            early_stopping="es" in extra,
            incremental=incremental,
            shrink="shrink" in extra,
            margin=PLAN_MARGIN,
            seed=seed,
            num_threads=threads,
        )
        pipeline.fit(log, catalog, program.users, cut_time=cut)
        inputs = pipeline.inputs(end)
        P, S, V = inputs.redemption_probability, inputs.incremental_share, inputs.order_value
        if "pool" in extra:
            P = pooled(pipeline, log, catalog, program.users, P, cut, threads)
        pref = pipeline.preference
        fit_seconds = time.perf_counter() - t0
        segments = pref.segments()
        for per_member in budgets:
            policy = demo_policy(members)
            policy["budget"] = per_member * members
            kw = dict(segments=segments, history=log, preference=pref, eligible_matrix=False)
            plan = Planner(policy, num_threads=threads).plan(
                catalog,
                program.users,
                end,
                redemption_probability=P,
                incremental_share=S,
                order_value=V,
                **kw,
            )
            oracle = Planner(policy, num_threads=threads).plan(
                catalog,
                program.users,
                end,
                redemption_probability=R_true,
                incremental_share=S_true,
                order_value=truth_value.astype(np.float32),
                **kw,
            )
            e = plan.evaluate(R_true, truth.incremental_probability, truth_value, cost_b)
            o = oracle.evaluate(R_true, truth.incremental_probability, truth_value, cost_b)
            u = plan.frame["member_index"].to_numpy()
            b = plan.frame["benefit_index"].to_numpy()
            out.append(
                {
                    "seed": seed,
                    "mix": mix,
                    "budget": per_member,
                    "variant": variant,
                    "pct_oracle": 100 * e["true_incremental_return"] / o["true_incremental_return"],
                    "spend_budget": e["true_cost"] / plan.budget,
                    "spend_expected": e["true_cost"] / plan.expected_cost,
                    "binds": plan.expected_cost >= 0.99 * plan.budget,
                    "oracle_spend_budget": o["true_cost"] / oracle.budget,
                    "corr_full": _corr(P.ravel(), R_true.ravel()),
                    "corr_chosen": _corr(P[u, b], R_true[u, b]),
                    "p_chosen": float(P[u, b].mean()),
                    "true_chosen": float(R_true[u, b].mean()),
                    "fit_seconds": fit_seconds,
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--members", type=int, default=10000)
    ap.add_argument("--seeds", default="101,202,303")
    ap.add_argument("--mixes", default="loyal_dormant,deal_seekers")
    ap.add_argument("--budgets", default="0.5,1,2", help="budget per member on expected cost")
    ap.add_argument(
        "--variants",
        default="fm+timing,ipw+timing,fm+timing+shrink,ipw+timing+shrink,ipw+control+shrink,"
        "fm+timing+es,ipw+timing+shrink+es",
    )
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--csv", default=None, help="also write the rows here")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    mixes = [m for m in args.mixes.split(",") if m]
    budgets = [float(b) for b in args.budgets.split(",") if b]
    variants = [v for v in args.variants.split(",") if v]
    print(
        f"perkrec {perkrec.__version__}; {platform.processor() or platform.machine()}; {args.members:,} members, "
        f"seeds {seeds}, mixes {mixes}, budgets/member {budgets}"
    )
    rows = []
    started = time.perf_counter()
    for mix in mixes:
        for seed in seeds:
            rows += run_program(args.members, seed, mix, budgets, variants, args.threads)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    pd.set_option("display.width", 220)
    fmt = lambda v: f"{v:,.3f}"  # noqa: E731
    print(df.drop(columns=["fit_seconds"]).to_string(index=False, float_format=fmt))
    print("\nmean over seeds and mixes:")
    print(
        df.groupby(["variant", "budget"], sort=False)[
            [
                "pct_oracle",
                "spend_budget",
                "spend_expected",
                "corr_full",
                "corr_chosen",
                "p_chosen",
                "true_chosen",
            ]
        ]
        .mean()
        .to_string(float_format=fmt)
    )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
