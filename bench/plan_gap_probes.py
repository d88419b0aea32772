"""Probes behind the reading of `bench/plan_vs_oracle.py --decompose` (BENCHMARKS.md, "Where the
gap to the oracle is lost"), on one simulated program with the demo's plan inputs
(ipw+timing+shrink+es, no pooled effects), scored on the simulator's truth:

  1. the FM's P against the true P for members issued that benefit, members never issued it,
     and the random control group (the FM never saw a row of theirs);
  2. per benefit: the IPW-weighted redemption rate of the logged issues (last 30 days; days
     60-120 before the end) against the truth's mean P of that benefit at the plan time;
  3. the incremental share (purchase timing) against the true share by archetype, and the plan
     (% of the oracle) with the true share swapped in for one archetype at a time.

    .venv/bin/python bench/plan_gap_probes.py [--members 3000] [--seed 5] [--mix tuning]
        [--threads 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from plan_vs_oracle import MIXES

import perkrec
from perkrec.demo import PLAN_MARGIN, TEST_DAYS, demo_policy
from perkrec.fm import redemption_samples
from perkrec.plan import Planner, issue_weights


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--members", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--mix", default="tuning", choices=sorted(MIXES))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    n, threads = args.members, args.threads
    prog = perkrec.simulate(
        n_users=n, seed=args.seed, archetype_mix=MIXES[args.mix], num_threads=threads
    )
    log, cat, truth = prog.events, prog.catalog, prog.truth
    end = log.time_range[1]
    cut = end - pd.Timedelta(days=TEST_DAYS)
    bp = perkrec.BenefitPlanner(
        weighting="ipw",
        early_stopping=True,
        shrink=True,
        margin=PLAN_MARGIN,
        seed=args.seed,
        num_threads=threads,
    )
    bp.fit(log, cat, prog.users, cut_time=cut)
    inputs = bp.inputs(end)
    P, S, V = inputs.redemption_probability, inputs.incremental_share, inputs.order_value
    R, inc = truth.redemption_probability, truth.incremental_probability
    S_true = (inc / np.maximum(R, 1e-12)).astype(np.float32)
    value = PLAN_MARGIN * truth.members["basket_median"].to_numpy(np.float64)
    cost = cat.to_frame()["cost"].to_numpy(np.float64)
    frame = log.to_frame(external_ids=False)
    issued = (frame["event_type"].astype(str) == "issued").to_numpy() & (
        frame["benefit"].to_numpy() >= 0
    )
    count = np.zeros(P.shape)
    np.add.at(count, (frame["user"].to_numpy()[issued], frame["benefit"].to_numpy()[issued]), 1)
    control = truth.members["control"].to_numpy()

    print("1. corr(P, true P) and mean logit error (truth - estimate) by pair:")
    logit = lambda p: np.log(np.clip(p, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(p, 1e-6, 1 - 1e-6))  # noqa: E731
    err = logit(R) - logit(P)
    groups = {
        "issued that benefit": count > 0,
        "never issued it (not control)": (count == 0) & ~control[:, None],
        "control group": np.broadcast_to(control[:, None], P.shape),
    }
    for name, m in groups.items():
        print(
            f"   {name:30s} corr {np.corrcoef(P[m], R[m])[0, 1]:.3f}  mean error {err[m].mean():+.3f}"
        )

    print(
        "2. per benefit: IPW-weighted logged redemption rate vs the truth's mean P at the plan time:"
    )
    weights = issue_weights(frame["propensity"].to_numpy()[issued], clip=1.0)
    rows = redemption_samples(log, cat, prog.users)
    t_end, t_cut = end.value // 10**9, cut.value // 10**9
    start = rows["timestamp"].to_numpy()
    ends = start + rows["validity_days"].to_numpy() * 86400
    validity = cat.to_frame()["validity_days"].to_numpy()
    for name, m in {
        "last 30 days": (start >= t_cut) & (ends <= t_end),
        "days 60-120 before the end": (start >= t_cut - 90 * 86400) & (start < t_cut - 30 * 86400),
    }.items():
        b, y, w = rows["benefit"].to_numpy()[m], rows["label"].to_numpy(np.float64)[m], weights[m]
        with np.errstate(invalid="ignore"):
            rate = np.bincount(b, w * y, P.shape[1]) / np.bincount(b, w, P.shape[1])
        ok = np.isfinite(rate) & (rate > 0)
        ratio = rate[ok] / R.mean(0)[ok]
        by_validity = ", ".join(
            f"{v} days {np.mean(ratio[validity[ok] == v]):.2f}" for v in np.unique(validity[ok])
        )
        print(
            f"   {name}: {m.sum()} issues, {ok.sum()} benefits; sd of log(logged / truth) "
            f"{np.std(np.log(ratio)):.3f}; mean ratio by validity: {by_validity}"
        )

    print("3. incremental share (timing) vs the truth by archetype; plan % of the oracle:")
    pref = bp.preference
    segments = pref.segments()

    def planned(P_, S_, budget):
        policy = demo_policy(n)
        policy["budget"] = budget * n
        plan = Planner(policy, num_threads=threads).plan(
            cat,
            prog.users,
            end,
            redemption_probability=P_,
            incremental_share=S_,
            order_value=V,
            segments=segments,
            history=log,
            preference=pref,
            eligible_matrix=False,
        )
        return plan.evaluate(R, inc, value, cost)["true_incremental_return"]

    archetype = truth.members["archetype"].astype(str).to_numpy()
    for a in np.unique(archetype):
        m = archetype == a
        print(f"   {a:30s} share {S[m].mean():.3f}  true {S_true[m].mean():.3f}")
    for budget in (0.5, 1, 2):
        oracle = planned(R, S_true, budget)
        swaps = ", ".join(
            f"{a} {100 * planned(P, np.where((archetype == a)[:, None], S_true, S).astype(np.float32), budget) / oracle:.1f}"
            for a in np.unique(archetype)
        )
        print(
            f"   budget {budget}: plan {100 * planned(P, S, budget) / oracle:.1f}; true S for: {swaps}"
        )


if __name__ == "__main__":
    main()
