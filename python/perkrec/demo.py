"""The main job, end to end on the built-in simulator (``python -m perkrec demo``):
simulate a program, split it in time, fit the models (popularity, ALS, BPR, FM, the preference
model), print a report, and end with a budgeted benefit plan compared with two baselines on the
simulator's ground truth; tables, the plan (CSV and JSON lines) and a preference report go to a
folder."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, TextIO

import numpy as np
import pandas as pd

from . import _core
from ._util import renamed_keywords, time_seconds
from .data import split_by_time
from .features import interaction_matrix
from .metrics import auc, log_loss, ranking_metrics
from .models import Popularity
from .simulator import SimulatedProgram, simulate

TEST_DAYS = 30
K = 10


def _table(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    formatted = frame.copy()
    for col in formatted.columns:
        if pd.api.types.is_float_dtype(formatted[col]):
            formatted[col] = formatted[col].map(lambda v: float_format.format(v))
    return formatted.to_string()


def _rates(events: pd.DataFrame, by: str) -> pd.DataFrame:
    """Issued, claimed and redeemed counts and rates per group."""
    counts = events.pivot_table(
        index=by, columns="event_type", values="user", aggfunc="size", fill_value=0, observed=False
    )
    for t in ("issued", "claimed", "redeemed"):
        if t not in counts.columns:
            counts[t] = 0
    out = counts[["issued", "claimed", "redeemed"]].astype(np.int64)
    issued = out["issued"].where(out["issued"] > 0)
    out["claim_rate"] = out["claimed"] / issued
    out["redemption_rate"] = out["redeemed"] / issued
    return out


@renamed_keywords(members="n_users")
def run(
    n_users: int = 20000,
    seed: int = 42,
    out_dir: str = "perkrec-demo",
    num_threads: int = 0,
    stream: Optional[TextIO] = None,
    progress: bool = False,
) -> Dict[str, float]:
    """Runs the demo, prints the report to ``stream`` (default stdout) and writes tables to
    ``out_dir``. Returns the headline metrics. ``n_users``: simulated members (``members`` is its
    deprecated name)."""
    stream = sys.stdout if stream is None else stream
    say = lambda text="": print(text, file=stream)  # noqa: E731
    started = time.perf_counter()
    program: SimulatedProgram = simulate(
        n_users=n_users, seed=seed, num_threads=num_threads, progress=progress
    )
    log = program.events
    catalog = program.catalog
    events = log.to_frame(external_ids=False)
    kinds = catalog.to_frame()["kind"].astype(str).to_numpy()
    archetypes = program.truth.members["archetype"].astype(str).to_numpy()
    events["benefit_kind"] = pd.Categorical(
        np.where(events["benefit"] >= 0, kinds[events["benefit"].clip(lower=0)], None)
    )
    events["archetype"] = pd.Categorical(archetypes[events["user"]])
    start, end = log.time_range
    control_members = int(program.truth.members["control"].sum())

    say(f"perkrec {_core.__version__} demo — a simulated loyalty program (seed {seed})")
    say("=" * 72)
    say(f"members   {log.n_users:>10,}   ({control_members:,} in the random control group)")
    say(f"benefits  {len(catalog):>10,}   across {catalog.to_frame()['kind'].nunique()} kinds")
    say(f"events    {len(log):>10,}   {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    say()
    by_type = log.counts_by_type().rename("events").to_frame()
    by_type["share"] = by_type["events"] / by_type["events"].sum()
    say("Events by type")
    say(_table(by_type))
    say()
    by_kind = _rates(events[events["benefit"] >= 0], "benefit_kind")
    say("Redemption by benefit kind (per issued benefit)")
    say(_table(by_kind))
    say()
    by_archetype = _rates(events[events["benefit"] >= 0], "archetype")
    say("Redemption by planted archetype (hidden from models; shown to check the simulation)")
    say(_table(by_archetype))
    say()

    # Temporal split: the last TEST_DAYS days are the future.
    cut = end - pd.Timedelta(days=TEST_DAYS)
    train, test = split_by_time(log, cut, num_threads)
    train_matrix = interaction_matrix(
        train, half_life_days=60, cut_time=cut, num_threads=num_threads
    )
    test_matrix = interaction_matrix(
        test, {"viewed": 0, "claimed": 1, "redeemed": 1}, num_threads=num_threads
    )
    model = Popularity().fit(train_matrix, user_ids=log.user_ids, benefit_ids=log.benefit_ids)
    members_with_future = np.flatnonzero(np.diff(test_matrix.indptr) > 0).astype(np.int32)
    ids, _ = model.recommend(members_with_future, train_matrix[members_with_future], n=K)
    ranking = ranking_metrics(test_matrix[members_with_future], ids, k=K)

    # Each benefit issued in the test period, labelled 1 when redeemed later in the period.
    from .fm import redemption_samples

    labels = redemption_samples(test, catalog, window_days=float("inf"))
    scores = model.score(labels["user"].to_numpy(), labels["benefit"].to_numpy())
    y = labels["label"].to_numpy()
    has_both = 0 < y.sum() < len(y)
    redemption_auc = auc(y, scores) if has_both else float("nan")
    base_rate = float(y.mean()) if len(y) else float("nan")
    baseline_logloss = log_loss(y, np.full(len(y), base_rate)) if has_both else float("nan")

    metrics = {
        "ndcg@10": ranking["ndcg"],
        "precision@10": ranking["precision"],
        "map@10": ranking["map"],
        "hit_rate@10": ranking["hit_rate"],
        "coverage@10": ranking["coverage"],
        "members_evaluated": float(ranking["rows_evaluated"]),
        "redemption_auc": redemption_auc,
        "redemption_base_rate": base_rate,
        "redemption_logloss_base_rate": baseline_logloss,
        "test_issued": float(len(y)),
    }
    say(f"Evaluation: train before {cut:%Y-%m-%d}, test the last {TEST_DAYS} days")
    say(
        f"  ranking the benefits members claim or redeem next ({ranking['rows_evaluated']:,} members)"
    )
    rows: List[tuple] = [
        (
            "popularity",
            ranking["ndcg"],
            ranking["precision"],
            ranking["map"],
            ranking["hit_rate"],
            ranking["coverage"],
        )
    ]
    # Collaborative filtering: ALS and BPR on the same split, next to popularity.
    from .models import ALS, BPR

    for label, cf_model in (
        ("als", ALS(factors=16, iterations=15, regularization=0.05, num_threads=num_threads)),
        ("bpr", BPR(factors=16, iterations=50, learning_rate=0.05, num_threads=num_threads)),
    ):
        cf_model.fit(train_matrix, user_ids=log.user_ids, benefit_ids=log.benefit_ids)
        cf_ids, _ = cf_model.recommend(members_with_future, train_matrix[members_with_future], n=K)
        cf_ranking = ranking_metrics(test_matrix[members_with_future], cf_ids, k=K)
        rows.append(
            (
                label,
                cf_ranking["ndcg"],
                cf_ranking["precision"],
                cf_ranking["map"],
                cf_ranking["hit_rate"],
                cf_ranking["coverage"],
            )
        )
        metrics[f"{label}_ndcg@10"] = cf_ranking["ndcg"]
    ranking_table = pd.DataFrame(
        rows, columns=["model", "ndcg@10", "precision@10", "map@10", "hit_rate@10", "coverage"]
    ).set_index("model")
    say(_table(ranking_table))
    say(
        f"  predicting which issued benefits get redeemed ({len(y):,} issued, base rate {base_rate:.3f})"
    )
    redemption_table = pd.DataFrame(
        [("popularity", redemption_auc, baseline_logloss)],
        columns=["model", "auc", "log_loss (base rate)"],
    ).set_index("model")
    say(_table(redemption_table))
    say()

    fm_metrics, _, _ = _fm_section(
        program,
        train,
        cut,
        test_matrix,
        members_with_future,
        model,
        train_matrix,
        say,
        num_threads,
        seed,
    )
    metrics.update(fm_metrics)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_type.to_csv(out / "events_by_type.csv")
    by_kind.to_csv(out / "redemption_by_kind.csv")
    by_archetype.to_csv(out / "redemption_by_archetype.csv")
    ranking_table.to_csv(out / "ranking_metrics.csv")
    redemption_table.to_csv(out / "redemption_metrics.csv")
    catalog.to_frame().to_csv(out / "catalog.csv", index=False)
    (out / "summary.json").write_text(
        json.dumps(
            {
                "members": log.n_users,
                "benefits": len(catalog),
                "events": len(log),
                "seed": seed,
                **metrics,
            },
            indent=2,
        )
    )
    model.save(out / "popularity.perk")
    metrics.update(_preference_section(program, cut, out, say, num_threads))
    metrics.update(_plan_section(program, out, say, num_threads, seed))
    metrics.update(_experiment_section(program, out, say, num_threads, seed))
    say(f"Tables written to {out.resolve()}/ ({time.perf_counter() - started:.1f} s)")
    return metrics


def _fm_section(
    program,
    train,
    cut,
    test_matrix,
    members_with_future,
    popularity,
    train_matrix,
    say,
    num_threads: int,
    seed: int,
) -> Dict[str, float]:
    """Factorization machine on member, benefit, context and leak-safe history features:
    redemption AUC / log-loss of benefits issued in the test period, and ranking quality."""
    from .fm import FM, FeatureEncoder, redemption_samples
    from .pipeline import with_attributes

    cut_s = time_seconds(cut, "cut")
    # Labels of training rows only see training events; history features only events before
    # each row's time.
    train_rows = redemption_samples(train, program.catalog, program.users)
    test_rows = redemption_samples(program.events, program.catalog, program.users)
    test_rows = test_rows[test_rows["timestamp"] >= cut_s]
    enc = FeatureEncoder().fit(train_rows, events=program.events, catalog=program.catalog)
    X = enc.transform(train_rows, events=program.events)
    Xt = enc.transform(test_rows, events=program.events)
    # One thread: bit-reproducible, so the plan below (and its baselines) are the same every run.
    fm = FM(factors=8, epochs=6, reg_linear=1e-4, reg_factors=1e-4, num_threads=1, seed=seed)
    fm.fit(X, train_rows["label"], encoder=enc)
    y = test_rows["label"].to_numpy()
    p = fm.predict(Xt)
    pop = popularity.score(test_rows["user"].to_numpy(), test_rows["benefit"].to_numpy())
    has_both = 0 < y.sum() < len(y)
    fm_auc = auc(y, p) if has_both else float("nan")
    fm_ll = log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)) if has_both else float("nan")
    pop_auc = auc(y, pop) if has_both else float("nan")
    base_ll = log_loss(y, np.full(len(y), y.mean())) if has_both else float("nan")
    # Ranking: every benefit for a sample of members with a future, in the context of the cut.
    rng = np.random.default_rng(seed)
    members = np.sort(
        rng.choice(members_with_future, size=min(2000, len(members_with_future)), replace=False)
    )
    n_b = len(program.catalog)
    pairs = pd.DataFrame(
        {
            "user": np.repeat(members, n_b),
            "benefit": np.tile(np.arange(n_b), len(members)),
            "timestamp": cut_s,
        }
    )
    pairs = with_attributes(pairs, program.catalog, program.users)
    scores = fm.decision_function(enc.transform(pairs, events=program.events)).reshape(
        len(members), n_b
    )
    seen = train_matrix[members]
    scores[seen.nonzero()] = -np.inf
    fm_ids = np.argsort(-scores, axis=1, kind="stable")[:, :K].astype(np.int32)
    pop_ids, _ = popularity.recommend(members.astype(np.int32), seen, n=K)
    fm_rank = ranking_metrics(test_matrix[members], fm_ids, k=K)
    pop_rank = ranking_metrics(test_matrix[members], pop_ids, k=K)
    say(
        f"Factorization machine (8 factors, {enc.n_fields} fields incl. leak-safe history, {enc.n_features:,} "
        f"features; {len(train_rows):,} training issues)"
    )
    table = pd.DataFrame(
        [("FM", fm_auc, fm_ll), ("popularity", pop_auc, base_ll)],
        columns=["model", "auc", "log_loss"],
    ).set_index("model")
    say(
        f"  redemption of the {len(y):,} benefits issued in the test period (redeemed within validity; "
        f"popularity log-loss = base rate)"
    )
    say(_table(table))
    rank = pd.DataFrame(
        [
            ("FM", fm_rank["ndcg"], fm_rank["precision"], fm_rank["hit_rate"]),
            ("popularity", pop_rank["ndcg"], pop_rank["precision"], pop_rank["hit_rate"]),
        ],
        columns=["model", "ndcg@10", "precision@10", "hit_rate@10"],
    ).set_index("model")
    say(f"  ranking all benefits at the cut for {len(members):,} sampled members with a future")
    say(_table(rank))
    say()
    return (
        {
            "fm_redemption_auc": fm_auc,
            "fm_redemption_logloss": fm_ll,
            "fm_ndcg@10": fm_rank["ndcg"],
            "popularity_ndcg@10_fm_sample": pop_rank["ndcg"],
        },
        fm,
        enc,
    )


def _preference_section(
    program: SimulatedProgram, cut, out: Path, say, num_threads: int
) -> Dict[str, float]:
    """Preference vectors, named segments with their sizes, and the HTML report."""
    from .preference import PreferenceModel

    model = PreferenceModel(num_threads=num_threads).fit(
        program.events, program.catalog, cut, user_table=program.users
    )
    segments = model.segments()
    sizes = segments.groupby("segment", observed=False)["description"].agg(["size", "first"])
    sizes.columns = ["members", "description"]
    say("Member segments (PreferenceModel, default rules; edit them as JSON)")
    for name, row in sizes.iterrows():
        say(
            f"  {name:<30} {int(row['members']):>7,}  {row['description'] if row['members'] else ''}"
        )
    archetypes = program.truth.members["archetype"].astype(str).to_numpy()
    agreement = float((segments["segment"].astype(str).to_numpy() == archetypes).mean())
    say(f"  agreement with the planted archetypes: {agreement:.1%}")
    sizes.to_csv(out / "segments.csv")
    model.save(out / "preference.perk")
    try:
        from .plots import report

        path = report(model, out / "preference-report")
        say(f"  preference report: {path}")
    except ImportError as exc:  # matplotlib is optional
        say(f"  preference report skipped: {exc}")
    say()
    return {"segment_archetype_agreement": agreement}


# The demo's decision policy: one benefit per member, a budget of PLAN_BUDGET_PER_MEMBER per
# member on expected cost, exclusive perks for the top tiers only, no sends at night.
PLAN_BUDGET_PER_MEMBER = 1.0
PLAN_MARGIN = 0.3


@renamed_keywords(n_members="n_users")
def demo_policy(n_users: int) -> dict:
    """The policy the demo plans under (a plain dict in the documented JSON schema)."""
    return {
        "budget": PLAN_BUDGET_PER_MEMBER * n_users,
        "issue_cost": 0.05,
        "max_per_member": 1,
        "quiet_hours": {"start_hour": 22, "end_hour": 8},
        "rules": [
            {
                "name": "exclusive perks for gold and platinum",
                "effect": "require",
                "benefits": {"kinds": ["member_exclusive"]},
                "members": {
                    "attributes": [{"column": "tier", "op": "in", "value": ["gold", "platinum"]}]
                },
            },
        ],
    }


def _plan_section(program, out: Path, say, num_threads: int, seed: int) -> Dict[str, float]:
    """A budgeted plan at the end of the simulated period, against two baselines at the same
    budget, scored on the simulator's truth (true incremental return per unit of true cost)."""
    from .pipeline import BenefitPlanner
    from .plan import (
        default_segment_benefits,
        popularity_plan,
        redemption_counts,
        segment_rules_plan,
    )

    log, catalog, truth = program.events, program.catalog, program.truth
    plan_time = log.time_range[1]
    cut = plan_time - pd.Timedelta(days=TEST_DAYS)
    policy = demo_policy(log.n_users)
    # The whole pipeline in one call: an FM weighted by inverse logged propensities on the
    # issues before the cut (the issues after it early-stop it and measure how much of its
    # member x benefit interaction holds), the preference model, uplift share, order values.
    pipeline = BenefitPlanner(policy, margin=PLAN_MARGIN, seed=seed, num_threads=num_threads)
    pipeline.fit(log, catalog, program.users, cut_time=cut)
    plan = pipeline.plan(at=plan_time)
    inputs = pipeline.inputs(plan_time)  # the same P, S, V as dense matrices, for the baselines
    P, S, V = inputs.redemption_probability, inputs.incremental_share, inputs.order_value
    pref = pipeline.preference
    pipeline.save(out / "planner.perk")
    V_matrix = P * S * V[:, None]
    segments = pref.segments()
    planner = pipeline.planner
    budget = policy["budget"]
    popularity = redemption_counts(log, len(catalog))
    eligible = plan.info.get("eligible")
    codes = segments["segment"].cat.codes.to_numpy()
    names = list(segments["segment"].cat.categories)
    per_benefit_cost = policy["issue_cost"] + P.mean(axis=0) * catalog.to_frame()["cost"].to_numpy()
    rules = default_segment_benefits(
        catalog,
        popularity,
        names,
        expected_cost=per_benefit_cost,
        max_cost_per_user=budget / log.n_users,
    )
    baselines = {
        "popularity": popularity_plan(
            catalog,
            P,
            V_matrix,
            budget,
            popularity=popularity,
            issue_cost=policy["issue_cost"],
            eligible=eligible,
            seed=seed,
        ),
        "segment rules": segment_rules_plan(
            catalog,
            P,
            V_matrix,
            budget,
            user_segment=codes,
            segment_names=names,
            segment_benefits=rules,
            issue_cost=policy["issue_cost"],
            eligible=eligible,
            seed=seed,
        ),
    }
    truth_value = PLAN_MARGIN * truth.members["basket_median"].to_numpy(np.float64)
    cost_b = catalog.to_frame()["cost"].to_numpy(np.float64)
    R_true = truth.redemption_probability
    oracle = planner.plan(
        catalog,
        program.users,
        plan_time,
        redemption_probability=R_true,
        incremental_share=truth.incremental_probability / np.maximum(R_true, 1e-12),
        order_value=truth_value.astype(np.float32),
        segments=segments,
        history=log,
        preference=pref,
        eligible_matrix=False,
    )
    rows = []
    for label, p in [("perkrec plan", plan), *baselines.items(), ("oracle (true inputs)", oracle)]:
        e = p.evaluate(
            truth.redemption_probability, truth.incremental_probability, truth_value, cost_b
        )
        rows.append(
            (
                label,
                e["members"],
                p.expected_cost,
                e["true_cost"],
                e["true_incremental_return"],
                e["true_return_per_cost"],
            )
        )
    table = pd.DataFrame(
        rows,
        columns=["plan", "members", "expected_cost", "true_cost", "true_return", "return_per_cost"],
    ).set_index("plan")
    table["vs_popularity"] = table["return_per_cost"] / table.loc["popularity", "return_per_cost"]
    table["pct_of_oracle"] = (
        100 * table["true_return"] / table.loc["oracle (true inputs)", "true_return"]
    )
    say(
        f"Benefit plan at {pd.Timestamp(plan_time):%Y-%m-%d}: budget {budget:,.0f} on expected cost, one benefit "
        f"per member, incremental objective (inverse-propensity-weighted FM redemption probability, its member x "
        f"benefit interaction shrunk by the slope held-out issues measure, plus pooled member, member x kind and "
        f"member x channel effects kept by their held-out slope, times each benefit's held-out level, "
        f"x uplift share from purchase timing "
        f"x {PLAN_MARGIN:.0%} of the member's basket)"
    )
    say(
        f"  dual bound {plan.dual_bound:,.1f} on expected return, plan {plan.expected_return:,.1f} "
        f"({plan.expected_return / plan.dual_bound:.1%} of the bound)"
    )
    say(
        "  true return per unit cost on the simulator's truth, same budget; the oracle is the same planner fed "
        "the simulator's true probabilities (popularity: everyone gets "
        f"{baselines['popularity'].info['benefit']}; segment rules: "
        + ", ".join(f"{k} -> {v}" for k, v in rules.items())
        + "):"
    )
    say(_table(table))
    # Off-policy: each plan valued from the issues logged after the FM's cut (held out from it),
    # without the truth, next to its true redemptions.
    plans = {"perkrec plan": plan, **baselines, "oracle (true inputs)": oracle}
    offline_rows = []
    for label, p in plans.items():
        try:
            o = p.evaluate_offline(log, catalog, since=cut, num_threads=num_threads).loc[
                "redemptions"
            ]
        except _core.InputError:  # the log never issued the plan's pairs in the window
            o = pd.Series(
                {
                    "expected": p.frame["probability"].sum(),
                    "estimate": np.nan,
                    "lower": np.nan,
                    "upper": np.nan,
                }
            )
        true_red = p.evaluate(
            truth.redemption_probability, truth.incremental_probability, truth_value, cost_b
        )["true_redemptions"]
        offline_rows.append((label, o["expected"], o["estimate"], o["lower"], o["upper"], true_red))
    offline = pd.DataFrame(
        offline_rows, columns=["plan", "expected", "offline", "lower", "upper", "true"]
    ).set_index("plan")
    say(
        f"  redemptions estimated off-policy from the issues logged in the last {TEST_DAYS} days (SNIPS with the "
        f"logged propensities, no truth), next to the truth:"
    )
    say(_table(offline, "{:,.0f}"))
    say(
        f"  the oracle, chosen without the log, lands on its truth; the plan and the segment rules were chosen with "
        f"models that saw those {TEST_DAYS} days (the shrinkage, the preference model and its segments), so their "
        f"logged outcomes flatter them (winner's curse): value a plan on logs its models never saw"
    )
    offline.to_csv(out / "plan_offline_estimate.csv")
    say("  the plan by segment (expected figures):")
    say(_table(plan.summary(by="segment")))
    say("  the plan by benefit kind (expected figures):")
    say(_table(plan.summary(by="kind")))
    example = plan.frame.iloc[0]
    say(
        f"  e.g. member {example['member']}: {example['benefit']} ({example['kind']}) at {example['send_at']:%a %H:%M} "
        f"UTC, valid {int(example['validity_days'])} days; reasons: {example['reasons']}"
    )
    win_back, clv_fields = _win_back_section(
        program, inputs, pref, segments, plan, out, say, num_threads
    )
    plan.frame.to_csv(out / "plan.csv", index=False)
    plan.to_jsonl(out / "plan.jsonl")
    try:
        plan_offline = plan.evaluate_offline(log, catalog, since=cut, num_threads=num_threads)
    except _core.InputError:
        plan_offline = None
    plan.report(
        out / "campaign_report.html",
        offline=plan_offline,
        segments=segments,
        clv_fields=clv_fields,
        title=f"perkrec campaign report — plan at {pd.Timestamp(plan_time):%Y-%m-%d}",
    )
    say(f"  the campaign report (open in a browser): {out / 'campaign_report.html'}")
    say(f"  the fitted pipeline (perkrec.load(...).plan() plans again): {out / 'planner.perk'}")
    table.to_csv(out / "plan_vs_baselines.csv")
    say()
    return {
        "plan_return_per_cost": float(table.loc["perkrec plan", "return_per_cost"]),
        "plan_vs_popularity": float(table.loc["perkrec plan", "vs_popularity"]),
        "plan_vs_segment_rules": float(
            table.loc["perkrec plan", "return_per_cost"]
            / table.loc["segment rules", "return_per_cost"]
        ),
        "plan_true_cost": float(table.loc["perkrec plan", "true_cost"]),
        "plan_budget": float(budget),
        "plan_pct_of_oracle": float(table.loc["perkrec plan", "pct_of_oracle"]),
        "plan_offline_redemptions": float(offline.loc["perkrec plan", "offline"]),
        "plan_true_redemptions": float(offline.loc["perkrec plan", "true"]),
        **win_back,
    }


# The win-back campaign: members the CLV model calls at_risk above this CLV percentile, with a
# budget of PLAN_BUDGET_PER_MEMBER per targeted member; the CLV horizon in weeks.
WIN_BACK_STAGES = ("at_risk",)
WIN_BACK_MIN_PERCENTILE = 0.8
CLV_HORIZON_WEEKS = 13


def _win_back_section(program, inputs, pref, segments, plan, out: Path, say, num_threads: int):
    """Member value in the decisions: a CLV model fitted at the plan time on the log, its
    member fields joined to the member table, the main plan's spend and return by lifecycle
    stage, and a win-back campaign (a Policy member condition: at-risk members above the 80th
    CLV percentile) against the same budget planned over all members, both scored on the
    simulator's truth."""
    from .clv import CLVModel, targeting_rule
    from .data import UserTable
    from .plan import Planner
    from .report import value_by_stage

    log, catalog, truth = program.events, program.catalog, program.truth
    plan_time = log.time_range[1]
    clv = CLVModel(model="bgnbd", time_unit="week", interval_draws=0, num_threads=num_threads).fit(
        log, plan_time
    )
    fields = clv.member_fields(CLV_HORIZON_WEEKS, margin=PLAN_MARGIN)
    members = program.users.to_frame().join(fields)
    users = UserTable.from_frame(members, user_ids=log.user_ids, unknown="raise")
    stage_table = value_by_stage(plan, fields, segments)["lifecycle_stage"]
    say(
        f"  member value (CLVModel, BG/NBD + Gamma-Gamma at the plan time; clv = {PLAN_MARGIN:.0%} "
        f"of the expected spend in {CLV_HORIZON_WEEKS} weeks) and where the plan's budget goes:"
    )
    say(_table(stage_table))
    stage_table.to_csv(out / "plan_value_by_stage.csv")

    rule = targeting_rule(WIN_BACK_STAGES, WIN_BACK_MIN_PERCENTILE, name="win-back")
    targeted_members = int(
        (
            members["lifecycle_stage"].isin(WIN_BACK_STAGES)
            & (members["clv_percentile"] > WIN_BACK_MIN_PERCENTILE)
        ).sum()
    )
    budget = PLAN_BUDGET_PER_MEMBER * targeted_members
    base = demo_policy(log.n_users)
    targeted_policy = dict(base, budget=budget, rules=base["rules"] + [rule])
    common = dict(
        redemption_probability=inputs.redemption_probability,
        incremental_share=inputs.incremental_share,
        order_value=inputs.order_value,
        segments=segments,
        history=log,
        preference=pref,
        eligible_matrix=False,
    )
    plans = {
        "win-back (at_risk, clv > p80)": Planner(targeted_policy, num_threads=num_threads).plan(
            catalog, users, plan_time, **common
        ),
        "same budget, all members": Planner(
            dict(base, budget=budget), num_threads=num_threads
        ).plan(catalog, users, plan_time, **common),
    }
    truth_value = PLAN_MARGIN * truth.members["basket_median"].to_numpy(np.float64)
    cost_b = catalog.to_frame()["cost"].to_numpy(np.float64)
    rows = []
    for label, p in plans.items():
        e = p.evaluate(
            truth.redemption_probability, truth.incremental_probability, truth_value, cost_b
        )
        rows.append(
            (
                label,
                e["members"],
                p.expected_return,
                e["true_cost"],
                e["true_incremental_return"],
                e["true_return_per_cost"],
            )
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "plan",
            "members",
            "expected_return",
            "true_cost",
            "true_return",
            "return_per_cost",
        ],
    ).set_index("plan")
    say(
        f"  win-back campaign: {targeted_members:,} members at_risk above the "
        f"{WIN_BACK_MIN_PERCENTILE:.0%} CLV percentile (a Policy member condition on the CLV fields), "
        f"budget {budget:,.0f}, against the same budget planned over all members; true figures "
        "on the simulator's truth:"
    )
    say(_table(table))
    table.to_csv(out / "win_back.csv")
    plans["win-back (at_risk, clv > p80)"].frame.to_csv(out / "win_back_plan.csv", index=False)
    fields.to_csv(out / "clv_fields.csv")
    targeted, spread = table.iloc[0], table.iloc[1]
    return {
        "win_back_members": float(targeted_members),
        "win_back_budget": float(budget),
        "win_back_true_return": float(targeted["true_return"]),
        "win_back_true_cost": float(targeted["true_cost"]),
        "win_back_return_per_cost": float(targeted["return_per_cost"]),
        "win_back_all_members_true_return": float(spread["true_return"]),
        "win_back_all_members_true_cost": float(spread["true_cost"]),
        "win_back_all_members_return_per_cost": float(spread["return_per_cost"]),
    }, fields


def _experiment_section(program, out: Path, say, num_threads: int, seed: int) -> Dict[str, float]:
    """What the logging policy's last month of benefits earned, read from the program's random
    control group as an operator would (no truth): orders, revenue and benefit cost per member
    in the last TEST_DAYS days, treated vs control, CUPED on the same metrics in the TEST_DAYS
    days before, intervals by the delta method and the bootstrap."""
    from .causal import analyze_experiment, experiment_table

    log, catalog = program.events, program.catalog
    if not log.has_control:
        return {}
    start = log.time_range[1] - pd.Timedelta(days=TEST_DAYS)
    members = experiment_table(
        log, catalog, since=start, issue_cost=demo_policy(log.n_users)["issue_cost"]
    )
    control = (members["arm"] == "control").to_numpy()
    result = analyze_experiment(
        members,
        arm="arm",
        metrics=["orders", "revenue"],
        cost="cost",
        pre_period={"orders": "orders_pre", "revenue": "revenue_pre"},
        control="control",
        bootstrap=200,
        seed=seed,
        num_threads=num_threads,
    )
    plain = analyze_experiment(
        members,
        arm="arm",
        metrics=["revenue"],
        control="control",
        cuped=False,
        num_threads=num_threads,
    )
    rev = result.set_index("metric").loc["revenue"]
    say(
        f"Last {TEST_DAYS} days' benefits as an experiment (the program's random control group: "
        f"{int(control.sum()):,} members never issued anything, vs {int((~control).sum()):,} who were; per member, "
        f"CUPED on the {TEST_DAYS} days before)"
    )
    shown = result.set_index("metric")[
        ["control_mean", "arm_mean", "lift", "lower", "upper", "relative_lift", "p_value"]
    ]
    say(_table(shown))
    say(
        f"  incremental revenue per unit of benefit cost (ROI): {rev['roi']:.2f} [{rev['roi_lower']:.2f}, "
        f"{rev['roi_upper']:.2f}] (bootstrap [{rev['roi_bootstrap_lower']:.2f}, {rev['roi_bootstrap_upper']:.2f}]); "
        f"CUPED cut the revenue lift's standard error from {float(plain['std_error'].iloc[0]):.3f} to "
        f"{rev['std_error']:.3f}"
    )
    result.to_csv(out / "experiment.csv", index=False)
    say()
    return {
        "experiment_revenue_lift": float(rev["lift"]),
        "experiment_revenue_lower": float(rev["lower"]),
        "experiment_revenue_upper": float(rev["upper"]),
        "experiment_roi": float(rev["roi"]),
    }
