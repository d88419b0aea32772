"""How close a budgeted perkrec plan gets to the oracle plan, and whether it spends its budget,
on simulated programs whose seeds and archetype mixes no other bench reports (the estimators
were tuned on seed 5 only).

Per seed x archetype mix x budget (per member, on expected cost):

  pct_oracle      the plan's TRUE incremental return as a share of the oracle plan's (the same
                  planner fed the simulator's true redemption probabilities, incremental shares
                  and order values) at the same budget
  true_return     the plan's TRUE incremental return (the numerator of pct_oracle)
  auc_test        the FM's AUC on the issues logged after its training cut (the issues early
                  stopping and the shrinkage also read; one value per seed and variant)
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
  ...+pref        the preference model's member x kind log-preference (centred per member)
                  added to logit P with weight 0.5 (preference_offset; a prototype)
  ipw+timing+shrink+es   the demo's plan inputs
  ipw+control+shrink  incremental share learned from the random control group instead
                  (perkrec.plan.incremental_share_from_control)
  ...+pool        pooled member, member x kind and member x channel effects (empirical Bayes,
                  perkrec.plan.pooled_redemption) fitted on the finished logged issues before
                  the cut on top of the FM's prediction at the issue's time, kept by their slope
                  on the issues after the cut, added to the plan-time P

  ...+pooled      the same pooled effects fitted and applied by perkrec.BenefitPlanner
                  (pooled=True: stored in its model file, applied in C++ in plan and answer)
  ...+prefit      the preference offset as a model change (BenefitPlanner preference_offset=
                  True): its weight fitted on the issues after the cut, with a preference model
                  fitted at the cut and the FM's logit [+ the pooled effects] as the offset
                  (clipped to [0, 1]; the fitted weight is in the rows as pref_weight)

  ...+behavior    what members buy and browse: the programs are simulated with behaviour
                  (perkrec.simulate(behavior=True), for every variant of the run, so variants
                  with and without it plan the same program) and BenefitPlanner.fit gets
                  behavior=(log, items, benefit_items): the FM's default behaviour field (the
                  member's purchases and views of the benefit's items, categories and brands
                  strictly before each row's time; perkrec.pipeline.DEFAULT_BEHAVIOR_FIELD).
                  Compare e.g. ipw+timing+shrink+es+pooled (BenefitPlanner's defaults) with
                  ipw+timing+shrink+es+pooled+behavior.
  ...+behavior_all  the same with every behaviour aggregate (cumulative counts, spend and
                  popularity too) instead of the default field's.

  ...+segment     the FM also gets the member's named segment as a categorical field, as of
                  each row's time (BenefitPlanner segment_field=True: preference models fitted
                  every 30 days; at plan time the fitted preference model's segment)

  ...+benlevel    P times a factor per benefit measured on the held-out issues relative to
                  all of them (BenefitPlanner benefit_level=True: the benefit's redemptions over
                  the FM's predictions / the same over every held-out issue, shrunk toward 1)

  ...+ordertime   the FM's member history field also gets the member's order timing
                  (order_days_since, order_interval_days, order_overdue: how recently and how
                  regularly the member orders, strictly before each row's time), which the
                  true redemption probability depends on through the organic order in the
                  benefit's window

  --decompose     also per case: the plan with the TRUE P, S (incremental share) or V (order
                  value) swapped in for every subset of the three (pct_true_P, ..., pct_true_SV;
                  all three is the oracle), each input's Shapley share of the gap (shapley_P,
                  shapley_S, shapley_V: the mean gain from swapping it in over the orders of
                  swapping; they sum to 100 - pct_oracle), and pct_spend_matched: the plan on
                  the estimated inputs with its budget rescaled until its TRUE spend equals the
                  budget (spend_matched_budget; a budget that does not bind stays); the
                  estimate with one part of its error taken away by the truth: pct_cal_P /
                  pct_cal_S (P or S calibrated to the truth in 50 quantile bins of the
                  estimate, its ranking kept), pct_P_member / _benefit / _member_kind /
                  _member_channel (P with that part of its logit error, truth - estimate,
                  added back: member mean, then benefit mean, member x kind and member x
                  channel means of what is left), pct_P_never_issued (the true P for the
                  members the log never issued anything to: the control group),
                  pct_P_archetype / pct_S_archetype / pct_PS_archetype (the truth's mean
                  per planted archetype and benefit in place of P, S or both: what a model
                  that knew each member's archetype and nothing individual could reach). Send times
                  do not enter the score: the truth is for a benefit issued at the plan time.

  --pilot F[,F]   also per case and share F a staged plan (a pilot wave, test and scale): the members
                  perkrec.assign_holdout puts in a share F (salt "pilot") planned first with
                  budget F x B on the estimated inputs; their redemptions drawn from
                  Bernoulli(true P) on the issued pairs (numpy Generator seeded from the case);
                  the level of P from perkrec.pilot_level on them; the other members planned
                  with P x level and budget B - the pilot's observed cost (issue costs +
                  redeemed cost). Both waves are planned from the same log at the same time (a
                  real pilot's outcomes arrive before the rest is planned). Columns: staged_pct
                  (the true incremental return of both waves / the oracle's one-shot at B),
                  staged_spend (their true expected cost / B), staged_spend_target (/ B when
                  the rest's plan spends its budget, else / the two waves' expected spend:
                  the pilot's observed cost + the rest's expected cost), pilot_level, pilot_lower,
                  pilot_upper, pilot_ratio (without the prior), pilot_true_level (the truth's
                  level on the pilot's pairs: what the pilot estimates), pilot_issued,
                  pilot_cost (the pilot's observed cost / B); each column named with @F.

    .venv/bin/python bench/plan_vs_oracle.py [--members 10000] [--seeds 101,202,303]
        [--mixes loyal_dormant,deal_seekers] [--budgets 0.5,1,2]
        [--variants fm+timing,ipw+timing,fm+timing+shrink,ipw+timing+shrink,ipw+control+shrink,
                    fm+timing+es,ipw+timing+shrink+es]
        [--threads 2] [--csv rows.csv] [--decompose] [--pilot 0.1,0.2]
"""

from __future__ import annotations

import contextlib

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


def _or_nan(value) -> float:
    return float("nan") if value is None else float(value)


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


def _test_auc(pipeline, program, cut) -> float:
    """The FM's AUC on the issues logged after the cut (labels: redeemed within validity), with
    the features it was fitted with (its behaviour field when it has one)."""
    from perkrec.fm import redemption_samples

    rows = redemption_samples(program.events, program.catalog, program.users)
    rows = pipeline.with_member_segment(rows[rows["timestamp"].to_numpy() >= cut.value // 10**9])
    X = pipeline.encoder.transform(rows, events=program.events, behavior=pipeline.behavior)
    return perkrec.auc(rows["label"].to_numpy(), pipeline.fm.predict(X))


def preference_offset(P: np.ndarray, preference, catalog, weight: float = 0.5) -> np.ndarray:
    """P with the preference model's member x kind preference added on the logit scale:
    weight x (log of the member's relative claim rate for the benefit's kind, minus its mean
    over the benefits, so the member's level stays); the FM's member x kind error correlates
    with it (0.14-0.58 per kind on the tuning program). weight 0.5: tuned on seeds 5 and 101."""
    kinds = catalog.to_frame()["kind"].astype(str)
    lift = np.log(preference.preferences()[[f"kind:{k}" for k in kinds]].to_numpy(np.float64))
    lift -= lift.mean(1, keepdims=True)
    p = np.clip(P.astype(np.float64), 1e-6, 1 - 1e-6)
    return (1 / (1 + np.exp(-(np.log(p) - np.log1p(-p) + weight * lift)))).astype(P.dtype)


ORDER_TIMING = ["order_days_since", "order_interval_days", "order_overdue"]


@contextlib.contextmanager
def _order_timing(on: bool):
    """While on: the default encoder's member history field (perkrec.fm.DEFAULT_FIELDS, which
    BenefitPlanner's FeatureEncoder() reads) also lists the order-timing aggregates."""
    field = next(f for f in perkrec.fm.DEFAULT_FIELDS if f["name"] == "member_history")
    before = list(field["aggregates"])
    if on:
        field["aggregates"] = before + ORDER_TIMING
    try:
        yield
    finally:
        field["aggregates"] = before


def run_program(
    members: int,
    seed: int,
    mix: str,
    budgets,
    variants,
    threads: int,
    decompose: bool = False,
    issues_per_week: float = 1.5,
    pilots=(),
):
    behavior = any({"behavior", "behavior_all"} & set(v.split("+")) for v in variants)
    program = perkrec.simulate(
        n_users=members,
        seed=seed,
        archetype_mix=MIXES[mix],
        behavior=behavior,
        issues_per_week=issues_per_week,
        num_threads=threads,
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
        every_aggregate = {
            "levels": program.items.levels if behavior else [],
            "actions": program.behavior.action_names if behavior else [],
            "half_life_days": 28,
            "bins": 8,
        }
        pipeline = perkrec.BenefitPlanner(
            behavior_field=every_aggregate if "behavior_all" in extra else None,
            weighting="none" if weighting == "fm" else weighting,
            early_stopping="es" in extra,
            incremental=incremental,
            shrink="shrink" in extra,
            pooled="pooled" in extra,
            preference_offset="prefit" in extra,
            segment_field="segment" in extra,
            benefit_level="benlevel" in extra,
            margin=PLAN_MARGIN,
            seed=seed,
            num_threads=threads,
        )
        with _order_timing("ordertime" in extra):
            pipeline.fit(
                log,
                catalog,
                program.users,
                cut_time=cut,
                behavior=(
                    (program.behavior, program.items, program.benefit_items)
                    if {"behavior", "behavior_all"} & set(extra)
                    else None
                ),
            )
        inputs = pipeline.inputs(end)
        P, S, V = inputs.redemption_probability, inputs.incremental_share, inputs.order_value
        if "pool" in extra:
            P = pooled(pipeline, log, catalog, program.users, P, cut, threads)
        pref = pipeline.preference
        if "pref" in extra:
            P = preference_offset(P, pref, catalog)
        fit_seconds = time.perf_counter() - t0
        segments = pref.segments()
        true_inputs = {"P": R_true, "S": S_true, "V": truth_value.astype(np.float32)}
        swaps = (
            _error_swaps(P, S, R_true, S_true, catalog, log, truth.members["archetype"])
            if decompose
            else {}
        )
        est_inputs = {"P": P, "S": S, "V": V}
        for per_member in budgets:
            policy = demo_policy(members)
            policy["budget"] = per_member * members
            kw = dict(segments=segments, history=log, preference=pref, eligible_matrix=False)

            def run(parts: str, budget: float, **swap):
                src = {k: (true_inputs if k in parts else est_inputs)[k] for k in "PSV"}
                src.update(swap)
                pol = dict(policy, budget=budget)
                plan = Planner(pol, num_threads=threads).plan(
                    catalog,
                    program.users,
                    end,
                    redemption_probability=src["P"],
                    incremental_share=src["S"],
                    order_value=src["V"],
                    **kw,
                )
                return plan, plan.evaluate(
                    R_true, truth.incremental_probability, truth_value, cost_b
                )

            plan, e = run("", policy["budget"])
            oracle, o = run("PSV", policy["budget"])
            u = plan.frame["member_index"].to_numpy()
            b = plan.frame["benefit_index"].to_numpy()
            pct = lambda ev: 100 * ev["true_incremental_return"] / o["true_incremental_return"]  # noqa: E731
            row = {
                "seed": seed,
                "mix": mix,
                "budget": per_member,
                "variant": variant,
                "pct_oracle": pct(e),
                "true_return": e["true_incremental_return"],
                "auc_test": _test_auc(pipeline, program, cut)
                if per_member == budgets[0]
                else np.nan,
                "spend_budget": e["true_cost"] / plan.budget,
                "spend_expected": e["true_cost"] / plan.expected_cost,
                "binds": plan.expected_cost >= 0.99 * plan.budget,
                "oracle_spend_budget": o["true_cost"] / oracle.budget,
                "corr_full": _corr(P.ravel(), R_true.ravel()),
                "corr_chosen": _corr(P[u, b], R_true[u, b]),
                "p_chosen": float(P[u, b].mean()),
                "true_chosen": float(R_true[u, b].mean()),
                "fit_seconds": fit_seconds,
                "pool_slope": (
                    pipeline.pooled_effects.slope
                    if pipeline.pooled_effects is not None
                    else float("nan")
                ),
                "pref_weight": _or_nan(pipeline.preference_weight),
                "pref_weight_unclipped": _or_nan(
                    pipeline._state.get("preference_weight_unclipped")
                ),
            }
            if decompose:
                row.update(_decompose(run, pct, e, policy["budget"], swaps))
            for share in pilots:
                case = (seed, mix, per_member)
                staged = _staged(run, pct, P, R_true, cost_b, log, policy, share, case)
                row.update({f"{k}@{share:g}": v for k, v in staged.items()})
            out.append(row)
    return out


def _staged(run, pct, P, R_true, cost_b, log, policy, share: float, case) -> dict:
    """A pilot wave then the rest (see --pilot): the pilot members' plan at share x the
    budget, their redemptions drawn from the truth, P's level measured on them
    (perkrec.pilot_level), the other members planned with P x level and what is left."""
    ids = log.user_ids.ids
    in_pilot = perkrec.assign_holdout(ids, "pilot", weights=(1 - share, share)) == 1
    budget = policy["budget"]
    first, e1 = run("", share * budget, P=np.where(in_pilot[:, None], P, 0).astype(np.float32))
    u = first.frame["member_index"].to_numpy()
    b = first.frame["benefit_index"].to_numpy()
    mix_code = sum(map(ord, case[1]))
    rng = np.random.default_rng([case[0], mix_code, int(round(case[2] * 1000))])
    redeemed = (rng.random(len(u)) < R_true[u, b]).astype(np.float64)
    level = perkrec.pilot_level(
        first.frame["probability"].to_numpy(np.float64), redeemed, cost_b[b]
    )
    expected_cost = first.frame["probability"].to_numpy(np.float64) * cost_b[b]
    true_level = float((R_true[u, b] * cost_b[b]).sum() / expected_cost.sum())
    spent = len(u) * policy["issue_cost"] + float((redeemed * cost_b[b]).sum())
    rest_P = np.where(in_pilot[:, None], 0, np.minimum(P.astype(np.float64) * level.level, 1))
    rest, e2 = run("", max(budget - spent, 0.0), P=rest_P.astype(np.float32))
    both = {k: e1[k] + e2[k] for k in ("true_incremental_return", "true_cost")}
    # The target: the budget when the rest's plan spends it, else what the two waves expect
    # to spend (the pilot's observed cost + the rest's expected cost under P x level).
    binds = rest.expected_cost >= 0.99 * rest.budget
    target = budget if binds else spent + rest.expected_cost
    return {
        "staged_pct": pct(both),
        "staged_spend": both["true_cost"] / budget,
        "staged_spend_target": both["true_cost"] / target,
        "staged_binds": binds,
        "pilot_level": level.level,
        "pilot_ratio": level.ratio,
        "pilot_true_level": true_level,
        "pilot_lower": level.lower,
        "pilot_upper": level.upper,
        "pilot_issued": len(u),
        "pilot_cost": spent / budget,
    }


SUBSETS = ("P", "S", "V", "PS", "PV", "SV")


def _binned_truth(x: np.ndarray, y: np.ndarray, bins: int = 50) -> np.ndarray:
    """x replaced by the mean of y over x's quantile bin: x perfectly calibrated to y, its
    ranking kept (ties within a bin aside)."""
    edges = np.quantile(x, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    mean = np.bincount(idx.ravel(), y.ravel(), bins) / np.maximum(
        np.bincount(idx.ravel(), None, bins), 1
    )
    return mean[idx].astype(np.float32)


def _archetype_means(x: np.ndarray, archetype) -> np.ndarray:
    """Each member's row replaced by the mean row of the members of their planted archetype:
    what a model that knew every member's archetype, and nothing else about them, could know."""
    codes = pd.factorize(np.asarray(archetype))[0]
    out = np.empty_like(x, dtype=np.float32)
    for c in np.unique(codes):
        out[codes == c] = x[codes == c].mean(0)
    return out


def _error_swaps(P, S, R_true, S_true, catalog, log, archetype) -> dict:
    """Estimated inputs with one part of their error taken away, by the truth: P and S
    calibrated to the truth (ranking kept: is the loss in the level or the ranking?), and P
    with one part of its logit error (truth - estimate) added back: the member mean, the
    benefit mean (of the rest), the member x kind mean, the member x channel mean (of what
    is left after the earlier parts); and the true P for the members the log never issued a
    benefit to (the random control group: the FM never saw a row of theirs); and the
    segment-level ceilings: the truth's mean per (planted archetype, benefit) in place of P,
    of S, or of both (a model that knows each member's archetype exactly and nothing
    individual about them)."""
    logit = lambda p: np.log(np.clip(p, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(p, 1e-6, 1 - 1e-6))  # noqa: E731
    err = logit(R_true) - logit(P)
    cat = catalog.to_frame()
    parts = {"member": err.mean(1, keepdims=True)}
    rest = err - parts["member"]
    parts["benefit"] = rest.mean(0, keepdims=True)
    rest = rest - parts["benefit"]
    for attr in ("kind", "channel"):
        codes = pd.factorize(cat[attr].astype(str))[0]
        part = np.zeros_like(rest)
        for c in np.unique(codes):
            part[:, codes == c] = rest[:, codes == c].mean(1, keepdims=True)
        parts[f"member_{attr}"] = part
        rest = rest - part
    out = {"cal_P": {"P": _binned_truth(P, R_true)}, "cal_S": {"S": _binned_truth(S, S_true)}}
    frame = log.to_frame(external_ids=False)
    issued = frame["user"].to_numpy()[(frame["event_type"].astype(str) == "issued").to_numpy()]
    never = ~np.isin(np.arange(P.shape[0]), issued)
    arche_P, arche_S = _archetype_means(R_true, archetype), _archetype_means(S_true, archetype)
    out["P_archetype"] = {"P": arche_P}
    out["S_archetype"] = {"S": arche_S}
    out["PS_archetype"] = {"P": arche_P, "S": arche_S}
    out["P_never_issued"] = {"P": np.where(never[:, None], R_true, P).astype(np.float32)}
    for name, part in parts.items():
        out[f"P_{name}"] = {"P": (1 / (1 + np.exp(-(logit(P) + part)))).astype(np.float32)}
    return out


def _decompose(run, pct, e, budget: float, swaps: dict) -> dict:
    """The gap to the oracle split by swapping the simulator's true redemption probability (P),
    incremental share (S) or order value (V) in for the estimate, every subset of the three
    (the oracle is all three), with each input's Shapley share of the gap; and the budget-use
    part: the plan on the estimated inputs with its budget rescaled until its TRUE spend
    equals the budget (or its own true spend at the budget when that budget does not bind)."""
    v = {"": pct(e), "PSV": 100.0}
    for parts in SUBSETS:
        v[parts] = pct(run(parts, budget)[1])
    key = lambda parts: "".join(c for c in "PSV" if c in parts)  # noqa: E731
    out = {f"pct_true_{k}": v[k] for k in SUBSETS}
    for x in "PSV":
        others = [c for c in "PSV" if c != x]
        # Shapley weights for 3 players: 1/3 alone, 1/6 with one other, 1/3 with both others
        phi = (
            (v[key(x)] - v[""]) / 3
            + (v[key(x + others[0])] - v[others[0]]) / 6
            + (v[key(x + others[1])] - v[others[1]]) / 6
            + (v["PSV"] - v[key(others)]) / 3
        )
        out[f"shapley_{x}"] = phi
    # budget use: rescale the budget until the TRUE spend reaches the target
    scaled, ev = budget, e
    for _ in range(4):
        if ev["true_cost"] <= 0 or abs(ev["true_cost"] / budget - 1) < 0.005:
            break
        scaled *= budget / ev["true_cost"]
        before, ev = ev, run("", scaled)[1]
        if ev["true_cost"] == before["true_cost"]:  # the budget does not bind
            break
    for name, swap in swaps.items():
        out[f"pct_{name}"] = pct(run("", budget, **swap)[1])
    out["pct_spend_matched"] = pct(ev)
    out["spend_matched_budget"] = ev["true_cost"] / budget
    out["budget_scale"] = scaled / budget
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
    ap.add_argument(
        "--issues-per-week",
        type=float,
        default=1.5,
        help="the simulated logging policy's issues per member and week (simulate's default 1.5)",
    )
    ap.add_argument("--csv", default=None, help="also write the rows here")
    ap.add_argument(
        "--decompose",
        action="store_true",
        help="also split the gap to the oracle into its inputs and the budget use",
    )
    ap.add_argument(
        "--pilot",
        default="",
        help="also a staged plan per share: a pilot wave on this share of members first "
        "(e.g. 0.2, or 0.1,0.2)",
    )
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    mixes = [m for m in args.mixes.split(",") if m]
    budgets = [float(b) for b in args.budgets.split(",") if b]
    variants = [v for v in args.variants.split(",") if v]
    pilots = [float(f) for f in args.pilot.split(",") if f]
    print(
        f"perkrec {perkrec.__version__}; {platform.processor() or platform.machine()}; {args.members:,} members, "
        f"seeds {seeds}, mixes {mixes}, budgets/member {budgets}, "
        f"{args.issues_per_week} issues/member/week"
    )
    rows = []
    started = time.perf_counter()
    for mix in mixes:
        for seed in seeds:
            rows += run_program(
                args.members,
                seed,
                mix,
                budgets,
                variants,
                args.threads,
                args.decompose,
                args.issues_per_week,
                pilots,
            )
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    pd.set_option("display.width", 220)
    fmt = lambda v: f"{v:,.3f}"  # noqa: E731
    print(df.drop(columns=["fit_seconds"]).to_string(index=False, float_format=fmt))
    print("\nfit seconds per variant (mean):")
    print(df.groupby("variant", sort=False)["fit_seconds"].mean().to_string(float_format=fmt))
    print("\nmean over seeds and mixes:")
    print(
        df.groupby(["variant", "budget"], sort=False)[
            [
                "pct_oracle",
                "true_return",
                "auc_test",
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
    for share in pilots:
        f = f"@{share:g}"
        print(f"\none-shot vs staged (pilot share {share:g}), per budget:")
        df["spend_target"] = np.where(df["binds"], df["spend_budget"], df["spend_expected"])
        df["within"] = (df["spend_target"] - 1).abs() <= 0.1
        df["staged_within" + f] = (df["staged_spend_target" + f] - 1).abs() <= 0.1
        print(
            df.groupby(["variant", "budget"], sort=False)
            .agg(
                pct_oracle=("pct_oracle", "mean"),
                staged_pct=("staged_pct" + f, "mean"),
                within=("within", "sum"),
                staged_within=("staged_within" + f, "sum"),
                spend_min=("spend_target", "min"),
                spend_max=("spend_target", "max"),
                staged_min=("staged_spend_target" + f, "min"),
                staged_max=("staged_spend_target" + f, "max"),
                level=("pilot_level" + f, "mean"),
                cases=("seed", "size"),
            )
            .to_string(float_format=fmt)
        )
    if args.decompose:
        cols = [c for c in df.columns if c.startswith(("pct_", "shapley_", "spend_matched"))]
        print("\ngap decomposition, mean over seeds and mixes:")
        print(
            df.groupby(["variant", "budget"], sort=False)[cols + ["oracle_spend_budget"]]
            .mean()
            .to_string(float_format=fmt)
        )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
