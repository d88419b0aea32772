"""What an incremental share must know to help the plan (issue 13): on one simulated program,
BenefitPlanner's defaults (ipw+timing+shrink+es+pooled) give P, the incremental share S and
the order value V; the plan (% of the oracle's true incremental return, true spend / budget)
is re-run with S replaced by:

  timing             the default: 1 - P(organic order in the validity window), purchase timing
  true               the simulator's true share (P, V estimated)
  <group>_truth      the true share averaged over the members of a group, per benefit, for
                     groups: the planted archetype (arch), the preference model's segment (seg),
                     its most likely latent class (class), deciles of the timing share (timing10)
  timing_x_arch      the timing share rescaled per archetype to the true share's mean
  excess_<group>     a member's induced-order rate r from excess orders inside claim windows
                     (orders in the union of the member's [claim, claim + validity) windows less
                     the member's order rate outside them times the windows' length, per claim),
                     shrunk to its group's rate (prior weight 50 claims); S = (1 - po) r /
                     (r + (1 - r) po a), po = 1 - timing share, a the member's use of a benefit
                     on an organic order solved from their redemptions per claim (the
                     simulator's form of the true share)
  timing_unredeemed  the timing share from a preference model fitted without the orders that
                     carry a redemption (induced orders hide a lapse from the timing model)
  control            perkrec.plan.incremental_share_from_control (the random control group)
  control_seg        the same with the member's segment as one more stratum

and prints the correlation of each S with the true share over the full members x benefits
matrix. The `*_truth` rows read the truth, so they bound what an estimator of that form could
reach; they are diagnostics, not estimators.

    .venv/bin/python bench/share_probes.py [--members 4000] [--seed 5] [--mix tuning]
        [--budgets 0.5,1,2] [--threads 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from plan_vs_oracle import MIXES

import perkrec
from perkrec.demo import PLAN_MARGIN, TEST_DAYS, demo_policy
from perkrec.plan import Planner

DAY = 86400


def claim_window_stats(log, catalog, end) -> dict:
    """Per member: claims, days in the union of claim windows, orders inside them, the order
    rate outside them, redemptions (events before `end`)."""
    f = log.to_frame()
    f = f[f["timestamp"] < end]
    t = ((f["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    u = f["user"].to_numpy()
    et = f["event_type"].astype(str).to_numpy()
    cf = catalog.to_frame()
    validity = dict(zip(cf["id"], cf["validity_days"]))
    n = log.n_users
    end_s = int(pd.Timestamp(end).timestamp())
    first = np.full(n, end_s, dtype=np.int64)
    np.minimum.at(first, u, t)
    om, cm = et == "ordered", et == "claimed"
    order = np.lexsort((t[om], u[om]))
    ou, ot = u[om][order], t[om][order]
    ostart = np.searchsorted(ou, np.arange(n))
    oend = np.searchsorted(ou, np.arange(n), side="right")
    cu, ct = u[cm], t[cm]
    cend = np.minimum(
        ct + np.array([validity[b] for b in f["benefit"].to_numpy()[cm]]) * DAY, end_s
    )
    corder = np.lexsort((ct, cu))
    cu, ct, cend = cu[corder], ct[corder], cend[corder]
    claims = np.bincount(cu, minlength=n)
    cs = np.searchsorted(cu, np.arange(n))
    win_days, win_orders = np.zeros(n), np.zeros(n)
    for m in np.nonzero(claims)[0]:
        s = ot[ostart[m] : oend[m]]
        lo, hi = ct[cs[m]], cend[cs[m]]
        for i in range(cs[m] + 1, cs[m] + claims[m]):
            if ct[i] > hi:
                win_days[m] += (hi - lo) / DAY
                win_orders[m] += np.searchsorted(s, hi) - np.searchsorted(s, lo)
                lo, hi = ct[i], cend[i]
            else:
                hi = max(hi, cend[i])
        win_days[m] += (hi - lo) / DAY
        win_orders[m] += np.searchsorted(s, hi) - np.searchsorted(s, lo)
    span = np.maximum((end_s - first) / DAY, 1.0)
    outside = np.maximum(oend - ostart - win_orders, 0) / np.maximum(span - win_days, 1.0)
    return {
        "claims": claims,
        "excess": win_orders - outside * win_days,
        "redeemed": np.bincount(u[et == "redeemed"], minlength=n),
    }


def excess_share(S_timing, stats, groups, prior=50.0) -> np.ndarray:
    po = np.clip(1.0 - S_timing, 0.0, 1.0)
    c, exc, rd = stats["claims"], stats["excess"], stats["redeemed"]
    g_claims = np.bincount(groups, weights=c)
    r_g = np.clip(np.bincount(groups, weights=exc) / np.maximum(g_claims, 1), 0.01, 0.99)
    prc_g = np.clip(np.bincount(groups, weights=rd) / np.maximum(g_claims, 1), 0.01, 0.99)
    r = np.clip((exc + prior * r_g[groups]) / (c + prior), 0.01, 0.99)
    prc = np.clip((rd + prior * prc_g[groups]) / (c + prior), 0.01, 0.99)
    a = np.clip((prc - r) / np.maximum((1 - r) * po.mean(axis=1), 1e-3), 0.05, 1.0)
    r, a = r[:, None], a[:, None]
    return ((1 - po) * r / np.maximum(r + (1 - r) * po * a, 1e-6)).astype(np.float32)


def unredeemed_timing_share(log, catalog, end, pipeline) -> np.ndarray:
    """The timing share from a preference model fitted on the log without the orders that
    carry a redemption (an order at the same time as one of the member's redeemed events):
    induced orders keep a lapsed member looking active to the purchase-timing model."""
    from perkrec.plan import incremental_share

    f = log.to_frame()
    t = ((f["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    u = f["user"].to_numpy(np.int64)
    et = f["event_type"].astype(str).to_numpy()
    red = et == "redeemed"
    key = u * (1 << 40) + t
    carries = (et == "ordered") & np.isin(key, key[red])
    pref = perkrec.PreferenceModel(**pipeline.preference_params).fit(
        log.filter(~carries), catalog, end
    )
    return incremental_share(pref, catalog).astype(np.float32)


def control_share_by_group(log, catalog, end, groups, pseudo_issues=60, min_rows=200, seed=0):
    """perkrec.plan.incremental_share_from_control with the member's group as one more stratum:
    each (group, benefit) is a benefit of its own (kind = group x kind), so the C++ strata are
    group x kind x (validity / order cycle) x (how overdue), falling back to group x kind, then
    to all; the member's share of benefit b is that of (their group, b)."""
    from perkrec.fm import _event_arrays, redemption_samples
    from perkrec import _core

    frame = log.to_frame(external_ids=False)
    n = log.n_users
    cat = catalog.to_frame()
    kinds = cat["kind"].astype("category")
    kind_code = kinds.cat.codes.to_numpy().astype(np.int64)
    n_kinds, nb = len(kinds.cat.categories), len(cat)
    validity = cat["validity_days"].to_numpy(np.float64)
    t_plan = int(pd.Timestamp(end).timestamp())
    user, benefit, etype, seconds = _event_arrays(frame)
    before = seconds < t_plan
    is_order = (etype == "ordered") & before
    control_member = np.zeros(n, bool)
    control_member[user[frame["control"].to_numpy().astype(bool)]] = True
    all_issued = np.flatnonzero((etype == "issued") & (benefit >= 0) & before)
    issued = all_issued[seconds[all_issued] + validity[benefit[all_issued]] * DAY <= t_plan]
    labels = redemption_samples(frame[before], cat)
    redeemed = labels["label"].to_numpy()[np.isin(all_issued, issued)].astype(np.float64)
    iu, ib, it = user[issued], benefit[issued], seconds[issued]
    rng = np.random.default_rng(seed)
    ctrl = np.flatnonzero(control_member)
    first_seen = pd.Series(seconds).groupby(user).min().reindex(np.arange(n)).to_numpy()
    draw = rng.integers(0, len(issued), size=(len(ctrl), pseudo_issues)).ravel()
    cu, ct, cb = np.repeat(ctrl, pseudo_issues), it[draw], ib[draw]
    ok = ct >= first_seen[cu]
    cu, ct, cb = cu[ok], ct[ok], cb[ok]
    G = int(groups.max()) + 1
    S = _core.incremental_share_from_control(
        int(n),
        user[is_order].astype(np.int32),
        seconds[is_order].astype(np.int64),
        iu.astype(np.int32),
        (groups[iu] * nb + ib).astype(np.int32),
        it.astype(np.int64),
        redeemed,
        cu.astype(np.int32),
        (groups[cu] * nb + cb).astype(np.int32),
        ct.astype(np.int64),
        np.concatenate([g * n_kinds + kind_code for g in range(G)]).astype(np.int32),
        int(G * n_kinds),
        np.tile(validity, G),
        t_plan,
        int(min_rows),
    ).reshape(n, G * nb)
    cols = groups[:, None] * nb + np.arange(nb)[None, :]
    return np.take_along_axis(S, cols, axis=1).astype(np.float32)


def group_truth(S_true, groups) -> np.ndarray:
    out = np.zeros_like(S_true)
    for g in np.unique(groups):
        out[groups == g] = S_true[groups == g].mean(axis=0)
    return out.astype(np.float32)


def codes(values) -> np.ndarray:
    return pd.Series(np.asarray(values)).astype("category").cat.codes.to_numpy().astype(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--members", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--mix", default="tuning", choices=sorted(MIXES))
    ap.add_argument("--budgets", default="0.5,1,2")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    n, threads = args.members, args.threads
    program = perkrec.simulate(
        n_users=n, seed=args.seed, archetype_mix=MIXES[args.mix], num_threads=threads
    )
    log, catalog, truth = program.events, program.catalog, program.truth
    end = log.time_range[1]
    cut = end - pd.Timedelta(days=TEST_DAYS)
    R_true = truth.redemption_probability
    S_true = (truth.incremental_probability / np.maximum(R_true, 1e-12)).astype(np.float32)
    V_true = (PLAN_MARGIN * truth.members["basket_median"].to_numpy(np.float64)).astype(np.float32)
    cost = catalog.to_frame()["cost"].to_numpy(np.float64)
    pipeline = perkrec.BenefitPlanner(margin=PLAN_MARGIN, seed=args.seed, num_threads=threads)
    pipeline.fit(log, catalog, program.users, cut_time=cut)
    inputs = pipeline.inputs(end)
    P, S, V = inputs.redemption_probability, inputs.incremental_share, inputs.order_value
    pref = pipeline.preference
    segments = pref.segments()
    arch = codes(truth.members["archetype"])
    groups = {
        "arch": arch,
        "seg": codes(segments["segment"]),
        "class": np.asarray(pref.memberships()).argmax(axis=1).astype(np.int64),
        "timing10": pd.qcut(S.mean(axis=1), 10, labels=False, duplicates="drop").astype(np.int64),
    }
    stats = claim_window_stats(log, catalog, end)
    shares = {"timing": S, "true": S_true}
    for name, g in groups.items():
        shares[f"{name}_truth"] = group_truth(S_true, g)
    rescaled = S.copy()
    for a in np.unique(arch):
        rescaled[arch == a] = np.clip(
            S[arch == a] * S_true[arch == a].mean() / S[arch == a].mean(), 0, 1
        )
    shares["timing_x_arch"] = rescaled
    for name in ("seg", "arch"):
        shares[f"excess_{name}"] = excess_share(S, stats, groups[name])
    shares["timing_unredeemed"] = unredeemed_timing_share(log, catalog, end, pipeline)
    shares["control"] = perkrec.plan.incremental_share_from_control(log, catalog, end).astype(
        np.float32
    )
    shares["control_seg"] = control_share_by_group(log, catalog, end, groups["seg"])

    print(f"program: {n} members, seed {args.seed}, mix {args.mix}")
    print("mean share by archetype (true / timing / excess_seg):")
    for a, label in enumerate(np.unique(np.asarray(truth.members["archetype"]))):
        m = arch == a
        print(
            f"  {label}: {S_true[m].mean():.3f} / {S[m].mean():.3f} / {shares['excess_seg'][m].mean():.3f}"
        )
    rows = []
    for per_member in (float(b) for b in args.budgets.split(",")):
        policy = demo_policy(n)
        policy["budget"] = per_member * n

        def plan_with(p, s, v):
            plan = Planner(policy, num_threads=threads).plan(
                catalog,
                program.users,
                end,
                redemption_probability=p,
                incremental_share=s,
                order_value=v,
                segments=segments,
                history=log,
                preference=pref,
                eligible_matrix=False,
            )
            return plan, plan.evaluate(R_true, truth.incremental_probability, V_true, cost)

        _, oracle = plan_with(R_true, S_true, V_true)
        for name, share in shares.items():
            plan, e = plan_with(P, share, V)
            rows.append(
                {
                    "budget": per_member,
                    "share": name,
                    "pct_oracle": 100
                    * e["true_incremental_return"]
                    / oracle["true_incremental_return"],
                    "spend_budget": e["true_cost"] / plan.budget,
                    "corr_true_share": float(np.corrcoef(share.ravel(), S_true.ravel())[0, 1]),
                }
            )
    out = pd.DataFrame(rows)
    table = out.pivot(index="share", columns="budget", values=["pct_oracle", "spend_budget"])
    table[("corr_true_share", "")] = out.groupby("share")["corr_true_share"].first()
    print(table.loc[list(shares)].round(3).to_string())


if __name__ == "__main__":
    main()
