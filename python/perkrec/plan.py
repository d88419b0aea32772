"""From scores to an issuable benefit plan.

    planner = Planner(policy, objective="incremental", margin=0.3)
    plan = planner.plan(catalog, users, plan_time, redemption_probability=P,
                        incremental_share=S, order_value=V, segments=seg, history=log,
                        preference=pref_model)
    plan.frame                 one row per issued benefit: who, what, when, expected value/cost,
                               structured reasons (JSON)
    plan.summary(by="segment") expected redemptions, cost, return and return per unit cost
    plan.to_jsonl(path)        the plan as JSON lines
    plan.evaluate(...)         true return and cost when the truth is known (simulator)

Estimators the planner needs when no model provides them:

    order_value(events, margin)             per member: margin x median order amount
    incremental_share_factors(...)          the same as a TimingShare (no matrix; for the planner)
    incremental_share(preference, catalog)  per (member, benefit): 1 - P(an organic order within
                                            the benefit's validity), from the preference model's
                                            BG/NBD purchase rate; the share of a redemption that is
                                            incremental (uplift) under "benefits pull orders forward"

Estimators that correct the inputs for the logging policy and the optimizer's selection:

    issue_weights(propensity)               clipped, self-normalized inverse-propensity weights
                                            of logged issues (FM sample weights)
    shrink_interactions(P, ...)             keeps of P's member x benefit interaction only the
                                            slope held-out issues support (C++)
    pooled_redemption(...)                  member, member x kind, member x channel effects
                                            pooled by empirical Bayes, fitted on logged issues
                                            on top of a model's P, kept by the slope held-out
                                            issues support (C++; not in the default pipeline)
    incremental_share_from_control(...)     the incremental share from the random control group
                                            (an option; ranks worse than the timing heuristic
                                            on the simulator, see BENCHMARKS.md)

Baselines (same output, for comparisons at the same budget):

    popularity_plan(...)       everyone gets the most popular benefit that is affordable for all
    segment_rules_plan(...)    a fixed benefit per segment, members in random order until the
                               budget is spent

Money: `cost` is the expected cost of issuing (issue cost + P(redemption) x the catalog's cost
per redemption); `value` the expected return (objective "incremental": P(redemption) x
incremental share x order value; "redemption": P(redemption) x order value).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from . import _core
from ._util import (
    float_array,
    frame_arg,
    int_array,
    int_scalar,
    renamed_keywords,
    seconds,
    time_seconds,
)

OBJECTIVES = ("incremental", "redemption")
_SUMMARY_COLUMNS = [
    "members",
    "benefits",
    "expected_redemptions",
    "expected_cost",
    "expected_return",
    "return_per_cost",
]


def _input_error(message: str):
    return _core.InputError(message)


def _matrix(values, name: str, shape=None) -> np.ndarray:
    """A finite float64 matrix of ``shape`` (any 2-D shape when None), else InputError."""
    a = np.ascontiguousarray(values, dtype=np.float64)
    if (a.ndim != 2) if shape is None else (a.shape != tuple(shape)):
        raise _input_error(
            f"{name}: expected shape {'(members, benefits)' if shape is None else tuple(shape)} "
            f"(got {a.shape})"
        )
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise _input_error(
            f"{name}: not finite at {tuple(int(i) for i in bad)} (got {a[tuple(bad)]})"
        )
    return a


def _vector(values, name: str, n: int) -> np.ndarray:
    """A finite float64 vector of n values, else InputError."""
    a = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    if a.shape != (n,):
        raise _input_error(f"{name}: expected {n} values (got {a.size})")
    if not np.isfinite(a).all():
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        raise _input_error(f"{name}[{i}] is not finite (got {a[i]})")
    return a


# --- estimators ----------------------------------------------------------------------------------


def _is_event_log(events) -> bool:
    return isinstance(getattr(events, "_impl", None), _core.EventLog)


def order_value(events, margin: float = 0.3, *, cut_time=None) -> np.ndarray:
    """Per member: ``margin`` x the member's median order amount before ``cut_time`` (members
    without orders get the population median), float32. ``events`` is an EventLog or its frame
    (columns user, event_type, order_amount, and timestamp when ``cut_time`` is given). Computed
    in C++ (decide/planner.hpp: order_value)."""
    cut = _core.NO_TIME if cut_time is None else time_seconds(cut_time, "cut_time")
    if _is_event_log(events):
        return _core.order_value_log(events._impl, float(margin), cut)
    frame = (
        events.to_frame(external_ids=False)
        if hasattr(events, "to_frame")
        else frame_arg(events, "order_value: events")
    )
    needed = ["user", "event_type", "order_amount"] + (
        ["timestamp"] if cut_time is not None else []
    )
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise _input_error(f"order_value: events: missing columns {missing}")
    n = events.n_users if hasattr(events, "n_users") else int(frame["user"].max()) + 1
    orders = frame[frame["event_type"].astype(str).to_numpy() == "ordered"]
    times = seconds(orders["timestamp"], "timestamp") if cut_time is not None else None
    return _core.order_value(
        int_array(orders["user"].to_numpy(), np.int32, "user"),
        times,
        float_array(orders["order_amount"].to_numpy(), np.float32, "order_amount"),
        int(n),
        float(margin),
        cut,
    )


@dataclass(frozen=True)
class TimingShare:
    """The incremental share of :func:`incremental_share` in factored form: per (member,
    benefit) exp(-``orders_per_day[member]`` x ``validity_days[benefit]``), evaluated by the
    planner on eligible pairs only (no members x benefits matrix)."""

    orders_per_day: np.ndarray
    validity_days: np.ndarray

    def __post_init__(self):
        object.__setattr__(
            self, "orders_per_day", float_array(self.orders_per_day, np.float64, "orders_per_day")
        )
        object.__setattr__(
            self, "validity_days", float_array(self.validity_days, np.float64, "validity_days")
        )

    def matrix(self) -> np.ndarray:
        """The dense members x benefits float32 matrix."""
        return _core.timing_share(self.orders_per_day, self.validity_days)


@dataclass(frozen=True)
class ProbabilityFactors:
    """Redemption probabilities in factored form: P(member u redeems benefit b) =
    sigmoid(``benefit_bias[b]`` + ``user_factors[u]`` . ``benefit_factors[b]``) (float32,
    members x k and benefits x k). :meth:`Planner.plan` scores them in C++ on eligible pairs
    only, so no members x benefits matrix is ever built."""

    user_factors: np.ndarray
    benefit_factors: np.ndarray
    benefit_bias: Optional[np.ndarray] = None

    def __post_init__(self):
        u = np.ascontiguousarray(self.user_factors, dtype=np.float32)
        b = np.ascontiguousarray(self.benefit_factors, dtype=np.float32)
        if u.ndim != 2 or b.ndim != 2 or u.shape[1] != b.shape[1] or u.shape[1] < 1:
            raise _input_error(
                f"ProbabilityFactors: user_factors {u.shape} and benefit_factors {b.shape} must be "
                "2-D with the same number of columns (>= 1)"
            )
        object.__setattr__(self, "user_factors", u)
        object.__setattr__(self, "benefit_factors", b)
        if self.benefit_bias is not None:
            object.__setattr__(
                self, "benefit_bias", float_array(self.benefit_bias, np.float32, "benefit_bias")
            )


def incremental_share(preference, catalog, *, horizon_days: Optional[float] = None) -> np.ndarray:
    """members x benefits: 1 - P(the member orders anyway within the benefit's validity), from
    the preference model's BG/NBD timing (expected orders per day = expected_purchases /
    horizon, scaled by P(alive) already inside expected_purchases). A redemption by a member
    who would have ordered anyway is not incremental; a dormant member's is."""
    return incremental_share_factors(preference, catalog, horizon_days=horizon_days).matrix()


def incremental_share_factors(
    preference, catalog, *, horizon_days: Optional[float] = None
) -> TimingShare:
    """:func:`incremental_share` without the matrix: a :class:`TimingShare` (orders per day per
    member, validity per benefit) that :meth:`Planner.plan` evaluates on eligible pairs only."""
    from .data import Catalog, _expect

    if not callable(getattr(preference, "timing", None)):
        raise _input_error(
            "incremental_share: preference must be a fitted perkrec.PreferenceModel "
            f"(got {type(preference).__name__})"
        )
    _expect(catalog, Catalog, "catalog", "incremental_share")
    timing = preference.timing()
    horizon = float(
        horizon_days
        if horizon_days is not None
        else preference.get_params().get("horizon_days", 30.0)
    )
    rate = timing["expected_purchases"].to_numpy(np.float64) / horizon
    return TimingShare(rate, catalog.to_frame()["validity_days"].to_numpy(np.float64))


def issue_weights(propensity, *, clip: float = 0.99) -> np.ndarray:
    """Self-normalized, clipped inverse-propensity weights for logged issues (mean 1): weight
    1 / propensity, capped at its ``clip`` quantile (``clip=1``: no cap), so that a model fitted
    with them as ``sample_weight`` targets every (member, benefit) pair rather than the ones
    the logging policy favoured. Propensities outside (0, 1] raise InputError naming the row.
    Computed in C++ (decide/calibration.hpp: issue_weights)."""
    if not isinstance(clip, (int, float, np.floating)):
        raise _core.ConfigError(f"issue_weights: clip must be in [0.5, 1] (got {clip!r})")
    p = np.ascontiguousarray(propensity, dtype=np.float64).reshape(-1)
    return _core.issue_weights(p, float(clip))


def shrink_interactions(
    redemption_probability,
    users,
    benefits,
    predicted,
    redeemed,
    *,
    sample_weight=None,
    iterations: int = 30,
    num_threads: int = 0,
) -> Tuple[np.ndarray, float]:
    """Shrinks the member x benefit interaction of a redemption-probability matrix by how much
    of it holds up on issues the model did not see (C++: include/perkrec/decide/calibration.hpp).

    In logit space the matrix is split into an additive part A (member mean + benefit mean -
    grand mean) and the interaction logit(P) - A. On held-out logged issues (``users``,
    ``benefits``, the model's ``predicted`` probability, ``redeemed`` 0/1, optional
    ``sample_weight`` e.g. :func:`issue_weights`) a weighted logistic fit with offset A finds
    the slope c of the interaction (Newton steps, clipped to [0, 1]); the result is
    sigmoid(A + c (logit(P) - A)). A planner maximizes over the interaction, so its noise is
    what it picks: c < 1 removes the optimism the optimizer would select. Returns (shrunk
    float32 matrix, c)."""
    P = _matrix(redemption_probability, "shrink_interactions: redemption_probability")
    n, nb = P.shape
    # Ranges, lengths and values are checked by the core, which names the row.
    weight = (
        None if sample_weight is None else float_array(sample_weight, np.float64, "sample_weight")
    )
    shrunk, slope = _core.shrink_interactions(
        P.reshape(-1),
        n,
        nb,
        int_array(users, np.int32, "users"),
        int_array(benefits, np.int32, "benefits"),
        float_array(predicted, np.float64, "predicted"),
        float_array(redeemed, np.float64, "redeemed"),
        weight,
        int_scalar(iterations, "iterations", -(2**31)),
        int_scalar(num_threads, "num_threads", -(2**31)),
    )
    return shrunk, float(slope)


@dataclass(frozen=True)
class PooledRedemption:
    """What :func:`pooled_redemption` returns: the members x benefits ``probability`` (float32),
    the fitted ``intercept``, each group's estimated ``variance`` and its ``effects`` (groups:
    ``"benefit"`` when no base was given, ``"member"``, then ``"member x <attribute>"``), and
    the ``slope`` of the member effects on the held-out rows (1 without them)."""

    probability: np.ndarray
    intercept: float
    groups: Tuple[str, ...]
    variance: Dict[str, float]
    effects: Dict[str, np.ndarray]
    slope: float


def pooled_redemption(
    users,
    benefits,
    redeemed,
    *,
    n_users: int,
    benefit_attributes,
    base=None,
    base_at_issue=None,
    sample_weight=None,
    held_out=None,
    sweeps: int = 30,
    burn_in: int = 3,
    initial_variance: float = 1.0,
    min_variance: float = 1e-4,
    num_threads: int = 0,
) -> PooledRedemption:
    """A pooled (empirical-Bayes) redemption model over logged issues (C++:
    include/perkrec/decide/pooled_effects.hpp).

    logit P(member, benefit) = logit base(member, benefit) + intercept + member effect + one
    effect per member and value of each benefit attribute (``benefit_attributes``: a dict
    name -> one integer code per benefit, e.g. kind and channel codes). Each group of effects
    has its own variance, estimated from the data (Laplace-approximation EM), so a pair of the
    member and an attribute value that was rarely issued is pulled toward 0 (the group mean),
    a frequent one keeps what its issues say. Fitted by weighted logistic regression on the
    issues (``users``, ``benefits``, ``redeemed`` 0/1, ``sample_weight`` e.g.
    :func:`issue_weights`); ``base`` (members x benefits, in (0, 1)): a model's P at the plan
    time, with ``base_at_issue`` its prediction for each issue at the issue's time (the offset
    the effects are fitted on top of). Without a base the model has a benefit effect instead.
    ``held_out`` (bool per issue, e.g. the issues after a time cut): left out of the fit; on
    them a logistic fit measures the slope c in [0, 1] of the member effects (how much of them
    holds up on issues they did not see) and the matrix keeps c x those effects.
    The fit is serial (identical for any thread count). Returns a :class:`PooledRedemption`."""
    if not isinstance(benefit_attributes, dict):
        raise _core.ConfigError(
            f"pooled_redemption: benefit_attributes must be a dict name -> codes (got "
            f"{type(benefit_attributes).__name__})"
        )
    n = int_scalar(n_users, "n_users", 1)
    names = [str(k) for k in benefit_attributes]
    codes = [
        int_array(v, np.int32, f"benefit_attributes[{k!r}]") for k, v in benefit_attributes.items()
    ]
    if base is not None:
        P = _matrix(base, "pooled_redemption: base")
        if P.shape[0] != n:
            raise _input_error(
                f"pooled_redemption: base has {P.shape[0]} rows (expected n_users = {n})"
            )
        nb = P.shape[1]
        flat = np.ascontiguousarray(P, dtype=np.float32).reshape(-1)
    else:
        if not codes:
            raise _input_error(
                "pooled_redemption: benefit_attributes: without a base at least one attribute "
                "gives the number of benefits (got none)"
            )
        nb, flat = len(codes[0]), None
    at_issue = (
        None if base_at_issue is None else float_array(base_at_issue, np.float64, "base_at_issue")
    )
    weight = (
        None if sample_weight is None else float_array(sample_weight, np.float64, "sample_weight")
    )
    held = None if held_out is None else int_array(held_out, np.uint8, "held_out")
    # Lengths, ranges and values are checked by the core, which names the row.
    probability, intercept, variance, effects, slope = _core.pooled_redemption(
        flat,
        n,
        nb,
        codes,
        int_array(users, np.int32, "users"),
        int_array(benefits, np.int32, "benefits"),
        at_issue,
        float_array(redeemed, np.float64, "redeemed"),
        weight,
        held,
        int_scalar(sweeps, "sweeps", -(2**31)),
        int_scalar(burn_in, "burn_in", -(2**31)),
        float(initial_variance),
        float(min_variance),
        int_scalar(num_threads, "num_threads", -(2**31)),
    )
    groups = (
        (() if base is not None else ("benefit",))
        + ("member",)
        + tuple(f"member x {k}" for k in names)
    )
    return PooledRedemption(
        probability,
        float(intercept),
        groups,
        {g: float(v) for g, v in zip(groups, variance)},
        dict(zip(groups, effects)),
        float(slope),
    )


def incremental_share_from_control(
    events, catalog, plan_time, *, pseudo_issues: int = 60, min_rows: int = 200, seed: int = 0
) -> np.ndarray:
    """members x benefits: the share of a redemption that is incremental, learned from the
    random control group instead of assumed from purchase timing.

    Outcome: an order within the benefit's validity after an issue. For logged issues whose
    window ends before ``plan_time``, and for ``pseudo_issues`` per control member (issue time
    and benefit drawn from the logged issues, after the member's first event), strata are
    benefit kind x (validity / the member's mean days between orders) x (days since the last
    order / that mean). Per stratum, share = (order rate issued - order rate control) /
    redemption rate issued, clipped to [0, 1]; strata with fewer than ``min_rows`` rows on
    either side fall back to the kind's pooled share, then to the overall one. At
    ``plan_time`` every member's stratum comes from their orders before it.

    ``events``: an EventLog with the control flag (control members are never issued anything),
    or its frame (dense member and benefit indices); ``catalog`` a perkrec.Catalog (or its
    frame). The pseudo-issues are drawn per control member from stream (``seed``, member).
    Raises InputError when the log has no control flag, no control members or no issues.
    Computed in C++ (decide/planner.hpp: incremental_share_from_control)."""
    from .data import Catalog, EventLog

    if not isinstance(catalog, Catalog):
        catalog = Catalog.from_frame(frame_arg(catalog, "incremental_share_from_control: catalog"))
    if not isinstance(events, EventLog):
        frame = frame_arg(events, "incremental_share_from_control: events")
        if "control" not in frame.columns:
            raise _input_error(
                "incremental_share_from_control: events: no control column (a random control "
                "group is needed; use incremental_share(preference, catalog) without one)"
            )
        events = EventLog.from_arrays(
            frame["user"].to_numpy(),
            frame["benefit"].to_numpy(),
            frame["event_type"].to_numpy(),
            frame["timestamp"],
            control=frame["control"].to_numpy(),
            n_benefits=len(catalog),
        )
    if not (isinstance(pseudo_issues, (int, np.integer)) and pseudo_issues >= 1):
        raise _core.ConfigError(
            f"incremental_share_from_control: pseudo_issues must be an integer >= 1 "
            f"(got {pseudo_issues!r})"
        )
    if not (isinstance(min_rows, (int, np.integer)) and min_rows >= 1):
        raise _core.ConfigError(
            f"incremental_share_from_control: min_rows must be an integer >= 1 "
            f"(got {min_rows!r})"
        )
    return _core.incremental_share_from_control_log(
        events._impl,
        catalog._impl,
        time_seconds(plan_time, "plan_time"),
        int_scalar(pseudo_issues, "pseudo_issues", 1),
        int_scalar(min_rows, "min_rows", 1, 2**62),
        int_scalar(seed, "seed", 0, 2**64 - 1),
    )


def redemption_counts(events, n_benefits: int) -> np.ndarray:
    """Redemptions per benefit in ``events`` (an EventLog or its frame): the popularity the
    baselines rank by."""
    if _is_event_log(events):
        return _core.redemption_counts_log(events._impl, int(n_benefits))
    frame = events.to_frame(external_ids=False) if hasattr(events, "to_frame") else events
    b = frame.loc[frame["event_type"].astype(str) == "redeemed", "benefit"].to_numpy()
    return _core.redemption_counts(int_array(b, np.int32, "benefit"), int(n_benefits))


# --- plans -------------------------------------------------------------------------------------


@dataclass
class Plan:
    """An issuable plan: ``frame`` has one row per (member, benefit) issued."""

    frame: pd.DataFrame
    budget: float = float("inf")
    method: str = ""
    dual_bound: float = float("nan")
    multiplier: float = float("nan")
    issue_cost: float = 0.0
    info: Dict[str, object] = field(default_factory=dict)

    @property
    def expected_cost(self) -> float:
        return float(self.frame["cost"].sum())

    @property
    def expected_return(self) -> float:
        return float(self.frame["value"].sum())

    def summary(self, by: Optional[str] = None) -> pd.DataFrame:
        """Expected redemptions, cost, return and return per unit cost, overall (``by=None``)
        or per ``"segment"`` / ``"kind"`` / any column of ``frame``."""
        f = self.frame
        if by is not None and by not in f.columns:
            raise _input_error(f"Plan.summary: unknown column {by!r} (have {list(f.columns)})")
        keys = ["_all"] if by is None else [by]
        g = f.assign(_all="all").groupby(keys, observed=True, sort=True)
        out = pd.DataFrame(
            {
                "members": g["member_index"].nunique(),
                "benefits": g.size(),
                "expected_redemptions": g["probability"].sum(),
                "expected_cost": g["cost"].sum(),
                "expected_return": g["value"].sum(),
            }
        )
        if len(out) == 0:
            out = pd.DataFrame(
                [[0, 0, 0.0, 0.0, 0.0]],
                columns=_SUMMARY_COLUMNS[:-1],
                index=pd.Index(["all"], name=keys[0]),
            )
        out["return_per_cost"] = out["expected_return"] / out["expected_cost"].where(
            out["expected_cost"] > 0
        )
        if by is None:
            out.index = pd.Index(["all"], name="plan")
        return out[_SUMMARY_COLUMNS]

    def to_jsonl(self, path=None) -> Optional[str]:
        """The plan as JSON lines (one object per issued benefit; ``reasons`` nested). Writes
        ``path`` when given, else returns the text."""
        lines = []
        cols = [c for c in self.frame.columns if c not in ("reasons",)]
        for row in self.frame.itertuples(index=False):
            rec = {}
            for c in cols:
                v = getattr(row, c)
                if isinstance(v, pd.Timestamp):
                    v = v.isoformat()
                elif isinstance(v, (np.integer,)):
                    v = int(v)
                elif isinstance(v, (np.floating, float)):
                    v = None if not np.isfinite(v) else float(v)
                rec[c] = v
            if "reasons" in self.frame.columns:
                r = getattr(row, "reasons")
                rec["reasons"] = json.loads(r) if isinstance(r, str) and r else r
            lines.append(json.dumps(rec, default=str))
        text = "\n".join(lines) + ("\n" if lines else "")
        if path is None:
            return text
        from pathlib import Path

        Path(path).write_text(text)
        return None

    def evaluate(
        self, redemption_probability, incremental_probability, order_value, cost_per_redemption
    ) -> Dict[str, float]:
        """The plan's TRUE return when the truth is known (e.g. the simulator's
        SimulationTruth): expected incremental return = sum of P(incremental order) x order
        value, expected cost = issue cost + P(redemption) x cost per redemption."""
        red_all = _matrix(redemption_probability, "Plan.evaluate: redemption_probability")
        inc_all = _matrix(
            incremental_probability, "Plan.evaluate: incremental_probability", red_all.shape
        )
        n, nb = red_all.shape
        value = _vector(order_value, "Plan.evaluate: order_value", n)
        cost_b = _vector(cost_per_redemption, "Plan.evaluate: cost_per_redemption", nb)
        # Sums in C++ (decide/planner.hpp: evaluate_plan_truth), which checks the rows' range.
        t = _core.evaluate_plan_truth(
            red_all.reshape(-1),
            inc_all.reshape(-1),
            n,
            nb,
            value,
            cost_b,
            int_array(self.frame["member_index"].to_numpy(), np.int32, "member_index"),
            int_array(self.frame["benefit_index"].to_numpy(), np.int32, "benefit_index"),
            float(self.issue_cost),
        )
        return {
            "members": int(t["members"]),
            "benefits": int(t["benefits"]),
            "true_redemptions": float(t["redemptions"]),
            "true_cost": float(t["cost"]),
            "true_incremental_return": float(t["incremental_return"]),
            "true_return_per_cost": float(t["return_per_cost"]),
        }

    def evaluate_offline(
        self,
        log,
        catalog,
        *,
        since=None,
        until=None,
        estimator: str = "snips",
        confidence: float = 0.95,
        clip: Optional[float] = None,
        num_threads: int = 0,
    ) -> pd.DataFrame:
        """The plan's redemptions, cost and return estimated OFF-POLICY from a log of issues with
        logged propensities (no truth needed): how the plan would have done had it issued its
        benefits in the log's period, with a confidence interval.

        Each logged issue of ``log`` between ``since`` and ``until`` (default: the whole log)
        whose validity ended by the log's end is a decision of the logging policy: member, the
        benefit it issued with probability ``propensity``, and the reward (redeemed within the
        validity, see :func:`perkrec.redemption_samples`). The plan, read as a target policy,
        issues the logged benefit with probability 1 when the plan gives it to that member and
        0 otherwise; each member's decisions weigh 1 / (their number), so every member counts
        once. ``estimator``: ``"snips"`` (self-normalized; default: it does not depend on the
        scale of the propensities, e.g. a logged probability of sending anything that day) or
        ``"ips"`` (unbiased when each logged issue is one decision and its propensity the
        probability of that benefit in it). Rewards per
        decision: redemption (0/1), return (redemption x the plan's expected return per
        redemption of that pair, i.e. its order value and incremental share) and cost (issue
        cost + redemption x the catalog's cost). Totals scale the estimated mean to the plan:
        with ``"snips"`` a mean per planned pair times the plan's pairs, with ``"ips"`` a mean
        per logged decision of a planned member times the decisions kept; either way they
        assume the pairs the log covers stand for the ones it does not.

        Returns a frame indexed by ``redemptions``, ``cost``, ``return`` with columns
        ``estimate``, ``lower``, ``upper``, ``expected`` (the plan's own figure), and attrs
        ``pairs`` (the plan's pairs), ``covered_pairs`` (pairs with a logged decision) and
        ``decisions`` (logged decisions used), ``effective_sample_size``. Needs logged
        propensities (InputError otherwise); propensities outside (0, 1] are InputErrors naming
        the row (:func:`perkrec.off_policy_value`).
        """
        from .data import Catalog, EventLog

        if not isinstance(log, EventLog):
            raise _input_error(
                f"Plan.evaluate_offline: log must be a perkrec.EventLog (got {type(log).__name__})"
            )
        if not isinstance(catalog, Catalog):
            raise _input_error(
                f"Plan.evaluate_offline: catalog must be a perkrec.Catalog (got "
                f"{type(catalog).__name__})"
            )
        # The plan's members in the log's index space (-1: a member the log lacks).
        log_users = log.user_ids
        if log_users is not None:
            plan_u = log_users.lookup(self.frame["member"].to_numpy(), missing="minus_one")
        else:
            plan_u = self.frame["member_index"].to_numpy(np.int64)
            plan_u = np.where(plan_u < log.n_users, plan_u, -1)
        # The window's decisions, the rewards and the estimates in C++ (eval/plan_offline.hpp),
        # the GIL released.
        out = _core.evaluate_plan_offline(
            log._impl,
            catalog._impl,
            int_array(plan_u, np.int32, "plan members"),
            int_array(self.frame["benefit_index"].to_numpy(), np.int32, "plan benefits"),
            float_array(self.frame["probability"].to_numpy(), np.float64, "probability"),
            float_array(self.frame["value"].to_numpy(), np.float64, "value"),
            float(self.issue_cost),
            _core.NO_TIME if since is None else time_seconds(since, "since"),
            _core.NO_TIME if until is None else time_seconds(until, "until"),
            str(estimator),
            float(confidence),
            math.inf if clip is None else float(clip),
            int(num_threads),
        )
        expected = [
            float(self.frame["probability"].to_numpy(np.float64).sum()),
            self.expected_cost,
            self.expected_return,
        ]
        result = pd.DataFrame(
            {
                "estimate": out["estimate"],
                "lower": out["lower"],
                "upper": out["upper"],
                "expected": expected,
            },
            index=pd.Index(["redemptions", "cost", "return"], name="metric"),
        )
        result.attrs.update(
            {
                "pairs": out["pairs"],
                "covered_pairs": out["covered_pairs"],
                "decisions": out["decisions"],
                "effective_sample_size": out["effective_sample_size"],
                "estimator": estimator,
            }
        )
        return result

    def _repr_html_(self) -> str:
        from .report import plan_summary_html

        return plan_summary_html(self)

    def report(self, path=None, **inputs) -> str:
        """The campaign report of this plan (see ``perkrec.report.campaign_report``)."""
        from .report import campaign_report

        return campaign_report(self, path, **inputs)

    def __repr__(self) -> str:
        return (
            f"Plan({len(self.frame):,} benefits to {self.frame['member_index'].nunique():,} members, "
            f"expected cost {self.expected_cost:,.2f} of budget {self.budget:,.2f}, "
            f"expected return {self.expected_return:,.2f})"
        )


def _frame(
    catalog,
    user_ids,
    member_index,
    benefit_index,
    probability,
    value,
    cost,
    *,
    segment_names=None,
    member_segment=None,
    send_at=None,
    validity_days=None,
    reasons=None,
    extra: Optional[Dict[str, np.ndarray]] = None,
) -> pd.DataFrame:
    cat = catalog.to_frame()
    member_index = np.asarray(member_index, dtype=np.int64)
    benefit_index = np.asarray(benefit_index, dtype=np.int64)
    members = (
        user_ids.to_external(member_index.astype(np.int32))
        if user_ids is not None
        else member_index
    )
    f = pd.DataFrame(
        {
            "member": members,
            "member_index": member_index,
            "benefit": cat["id"].to_numpy()[benefit_index],
            "benefit_index": benefit_index,
            "kind": pd.Categorical(cat["kind"].astype(str).to_numpy()[benefit_index]),
        }
    )
    if member_segment is not None and segment_names is not None:
        codes = np.asarray(member_segment)[member_index]
        names = np.asarray(list(segment_names) + ["none"], dtype=object)
        f["segment"] = pd.Categorical(names[np.where(codes >= 0, codes, len(names) - 1)])
    f["probability"] = np.asarray(probability, dtype=np.float64)
    f["value"] = np.asarray(value, dtype=np.float64)
    f["cost"] = np.asarray(cost, dtype=np.float64)
    f["net"] = f["value"] - f["cost"]
    if send_at is not None:
        f["send_at"] = pd.to_datetime(np.asarray(send_at, dtype=np.int64), unit="s", utc=True)
        days = (
            np.asarray(validity_days, dtype=np.float64)
            if validity_days is not None
            else cat["validity_days"].to_numpy(np.float64)[benefit_index]
        )
        f["validity_days"] = days.astype(np.int32)
        f["valid_until"] = f["send_at"] + pd.to_timedelta(days, unit="D")
    for k, v in (extra or {}).items():
        f[k] = v
    if reasons is not None:
        f["reasons"] = list(reasons)
    return f


# --- baselines ---------------------------------------------------------------------------------


def _baseline_inputs(
    name: str, catalog, redemption_probability, value, budget: float, issue_cost: float, eligible
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated (P, value, cost per redemption, eligible) for a baseline; InputError /
    ConfigError naming the argument."""
    if not (budget >= 0):
        raise _core.ConfigError(f"{name}: budget must be >= 0 (got {budget})")
    if not (np.isfinite(issue_cost) and issue_cost >= 0):
        raise _core.ConfigError(f"{name}: issue_cost must be finite and >= 0 (got {issue_cost})")
    cost_b = catalog.to_frame()["cost"].to_numpy(np.float64)
    P = _matrix(redemption_probability, f"{name}: redemption_probability")
    if P.shape[1] != len(cost_b):
        raise _input_error(
            f"{name}: redemption_probability has {P.shape[1]} benefit columns "
            f"(the catalog has {len(cost_b)})"
        )
    V = _matrix(value, f"{name}: value", P.shape)
    ok = np.ones(P.shape, dtype=bool) if eligible is None else np.asarray(eligible).astype(bool)
    if ok.shape != P.shape:
        raise _input_error(f"{name}: eligible has shape {ok.shape} (expected {P.shape})")
    return P, V, cost_b, ok


def _baseline_arrays(P, V, cost_b, eligible, seed: int):
    """The baselines' arrays as the core takes them (flat float64, uint8 eligibility or None,
    numpy's permutation of the members for the random fill)."""
    ok = None if eligible is None else np.ascontiguousarray(eligible, dtype=np.uint8).reshape(-1)
    order = np.random.default_rng(seed).permutation(P.shape[0]).astype(np.int32)
    return (
        P.shape[0],
        P.shape[1],
        P.reshape(-1),
        V.reshape(-1),
        np.ascontiguousarray(cost_b, dtype=np.float64),
        ok,
        order,
    )


def popularity_plan(
    catalog,
    redemption_probability,
    value,
    budget: float,
    *,
    popularity,
    issue_cost: float = 0.0,
    eligible=None,
    user_ids=None,
    seed: int = 0,
) -> Plan:
    """Baseline: the most popular benefit (by ``popularity``, e.g. past redemptions) whose
    expected cost for every member fits the budget goes to everyone; when none fits, the most
    popular one goes to members in random order until the budget is spent. ``value`` is the
    members x benefits expected return the planner uses (so the plans are comparable);
    ``eligible`` an optional members x benefits 0/1 mask."""
    P, V, cost_b, ok = _baseline_inputs(
        "popularity_plan", catalog, redemption_probability, value, budget, issue_cost, eligible
    )
    pop = _vector(popularity, "popularity_plan: popularity", P.shape[1])
    n_users, n_benefits, p_flat, v_flat, cost_flat, ok_flat, order = _baseline_arrays(
        P, V, cost_b, None if eligible is None else ok, seed
    )
    members, b, prob, val, cost, choice = _core.popularity_plan(
        n_users,
        n_benefits,
        p_flat,
        v_flat,
        cost_flat,
        ok_flat,
        float(budget),
        float(issue_cost),
        order,
        pop,
    )
    f = _frame(catalog, user_ids, members, b, prob, val, cost)
    return Plan(
        f,
        budget=budget,
        method="popularity",
        issue_cost=issue_cost,
        info={"benefit": catalog.to_frame()["id"].iloc[choice]},
    )


@renamed_keywords(max_cost_per_member="max_cost_per_user")
def default_segment_benefits(
    catalog,
    popularity,
    segment_names: Sequence[str],
    *,
    expected_cost=None,
    max_cost_per_user: Optional[float] = None,
) -> Dict[str, str]:
    """A fixed benefit per segment, as an operator would write it by hand: the most popular
    benefit of the kind the segment is named for (threshold discounts for threshold-sensitive
    members, points for points-active ones, the top face-value quartile for high-face-value
    seekers, a plain discount to win back dormant members, free shipping for new members), and
    the most popular benefit overall for everyone else. With ``expected_cost`` (per benefit,
    e.g. the population's redemption rate x cost) and ``max_cost_per_user`` only benefits
    affordable for every member of the segment are considered, like the popularity baseline
    (the cheapest of the kind when none is). ``max_cost_per_member`` is the deprecated name of
    ``max_cost_per_user``. Chosen in C++ (decide/planner.hpp: default_segment_benefits)."""
    from .data import Catalog, _expect

    _expect(catalog, Catalog, "catalog", "default_segment_benefits")
    keys = list(segment_names)
    capped = expected_cost is not None and max_cost_per_user is not None
    chosen = _core.default_segment_benefits(
        catalog._impl,
        float_array(popularity, np.float64, "popularity"),
        [str(k) for k in keys],
        float_array(expected_cost, np.float64, "expected_cost") if capped else None,
        float(max_cost_per_user) if capped else float("inf"),
    )
    ids = catalog.to_frame()["id"]
    return {key: str(ids.iloc[b]) for key, b in zip(keys, chosen)}


@renamed_keywords(member_segment="user_segment")
def segment_rules_plan(
    catalog,
    redemption_probability,
    value,
    budget: float,
    *,
    user_segment,
    segment_names: Sequence[str],
    segment_benefits: Dict[str, str],
    issue_cost: float = 0.0,
    eligible=None,
    user_ids=None,
    seed: int = 0,
) -> Plan:
    """Baseline: each segment gets its fixed benefit (``segment_benefits``: segment name ->
    benefit id; segments not named get nothing), members in random order until the budget is
    spent. ``user_segment``: segment code per member (-1 = none; ``member_segment`` is its
    deprecated name)."""
    P, V, cost_b, ok = _baseline_inputs(
        "segment_rules_plan", catalog, redemption_probability, value, budget, issue_cost, eligible
    )
    n = P.shape[0]
    cat = catalog.to_frame()
    index_of = {str(b): i for i, b in enumerate(cat["id"].astype(str))}
    unknown = [b for b in segment_benefits.values() if str(b) not in index_of]
    if unknown:
        raise _input_error(f"segment_rules_plan: unknown benefit ids {unknown}")
    seg_to_b = np.array(
        [index_of[str(segment_benefits[s])] if s in segment_benefits else -1 for s in segment_names]
        + [-1]
    )
    codes = np.asarray(user_segment, dtype=np.int64).reshape(-1)
    if codes.shape != (n,) or (
        len(codes) and (codes.min() < -1 or codes.max() >= len(segment_names))
    ):
        raise _input_error(
            f"segment_rules_plan: user_segment must hold {n} codes in [-1, {len(segment_names)}) "
            f"(got {codes.size} codes)"
        )
    n_users, n_benefits, p_flat, v_flat, cost_flat, ok_flat, order = _baseline_arrays(
        P, V, cost_b, None if eligible is None else ok, seed
    )
    members, b, prob, val, cost, _ = _core.segment_rules_plan(
        n_users,
        n_benefits,
        p_flat,
        v_flat,
        cost_flat,
        ok_flat,
        float(budget),
        float(issue_cost),
        order,
        codes.astype(np.int32),
        seg_to_b[:-1].astype(np.int32),
    )
    names = list(segment_names)
    f = _frame(
        catalog, user_ids, members, b, prob, val, cost, segment_names=names, member_segment=codes
    )
    return Plan(
        f,
        budget=budget,
        method="segment_rules",
        issue_cost=issue_cost,
        info={"segment_benefits": dict(segment_benefits)},
    )


# --- the planner -------------------------------------------------------------------------------


class Planner:
    """Policy -> eligibility masks and constraints; Ranker -> candidates with expected value
    and cost; Allocator -> the budget-constrained plan; then send time, validity and reasons.

    ``policy``: a perkrec.Policy, its JSON text, a dict, or None (no rules, unlimited budget).
    ``objective``: "incremental" (uplift: value only for redemptions that would not have
    happened anyway) or "redemption". ``method``: "dual" (Lagrangian multiple-choice knapsack),
    "greedy" or "exact" (small instances only)."""

    def __init__(
        self,
        policy=None,
        *,
        objective: str = "incremental",
        top_k: int = 50,
        method: str = "dual",
        num_threads: int = 0,
    ):
        from .policy import Policy

        if objective not in OBJECTIVES:
            raise _core.ConfigError(
                f"Planner: objective must be one of {OBJECTIVES} (got {objective!r})"
            )
        if method not in ("dual", "greedy", "exact"):
            raise _core.ConfigError(
                f"Planner: method must be 'dual', 'greedy' or 'exact' (got {method!r})"
            )
        if not (isinstance(top_k, (int, np.integer)) and top_k >= 1):
            raise _core.ConfigError(f"Planner: top_k must be an integer >= 1 (got {top_k!r})")
        self.policy = (
            policy if isinstance(policy, Policy) else Policy({} if policy is None else policy)
        )
        self.objective = objective
        self.top_k = int(top_k)
        self.method = method
        self.num_threads = num_threads

    @renamed_keywords(users="user_table")
    def plan(
        self,
        catalog,
        user_table,
        plan_time,
        *,
        redemption_probability=None,
        blend=None,
        incremental_share=None,
        order_value=None,
        benefit_value=None,
        segments=None,
        history=None,
        preference=None,
        budget: Optional[float] = None,
        eligible_matrix: bool = True,
        behavior=None,
    ) -> Plan:
        """Plans for the members of ``user_table`` (UserTable rows = member indices of the
        probabilities; ``users`` is its deprecated name) at ``plan_time``.

        ``redemption_probability``: members x benefits P(redemption | issued), or a
        :class:`ProbabilityFactors` (scored in C++ on eligible pairs only: no members x benefits
        matrix), or a fitted ``blend`` (perkrec.ScoreBlend) evaluated on eligible pairs only.
        ``incremental_share``: members x benefits (or per member) share of a redemption that is
        incremental (objective "incremental"; e.g. :func:`incremental_share`), or a
        :class:`TimingShare` (:func:`incremental_share_factors`, evaluated on eligible pairs).
        The steps run in C++ (decide/planner.hpp: Planner::plan) with the GIL released. ``order_value``: per member value of a
        redemption (e.g. :func:`order_value`); ``benefit_value``: per benefit multiplier.
        ``segments`` (``PreferenceModel.segments()`` or labels) feed segment rules, quotas and
        the summary; ``history`` (EventLog) the caps; ``preference`` (a fitted
        PreferenceModel) send times, validity and the preference part of the reasons.
        ``budget`` overrides the policy's. ``behavior`` (BehaviorLog, ItemCatalog,
        BenefitItems): the reasons name each chosen member's matching behaviour of the 8 weeks
        before ``plan_time`` (key "behavior"). Returns a :class:`Plan`; ``plan.info`` keeps the
        compiled policy, candidates, allocation and, with ``eligible_matrix``, the dense
        eligibility (for baselines under the same rules)."""
        from .ranking import _impl_of, _optional_floats

        triple = (None, None, None)
        if behavior is not None:
            from .behavior import _behavior_triple

            triple = _behavior_triple(behavior, "Planner.plan")
        if self.objective == "incremental" and incremental_share is None:
            raise _input_error(
                "Planner.plan: objective 'incremental' needs incremental_share "
                "(e.g. perkrec.incremental_share(preference, catalog))"
            )
        t_plan = time_seconds(plan_time, "plan_time")
        prob = factors = None
        if isinstance(redemption_probability, ProbabilityFactors) and blend is None:
            factors = redemption_probability
        elif redemption_probability is not None and blend is None:
            parr = np.asarray(redemption_probability)
            if parr.ndim != 2:
                raise _input_error(
                    f"rank: probability: expected a 2-D members x benefits matrix (got {parr.ndim} "
                    "dimensions)"
                )
            prob = np.ascontiguousarray(parr, dtype=np.float32).reshape(-1)
        elif blend is None:
            raise _input_error("rank: give probability (members x benefits) or blend")
        share = timing = None
        if self.objective == "incremental":
            if isinstance(incremental_share, TimingShare):
                timing = incremental_share
            else:
                share = _optional_floats(incremental_share, "incremental_share")
        compiled = self.policy.compile(
            catalog,
            user_table,
            plan_time,
            segments=segments,
            history=history,
            num_threads=self.num_threads,
        )
        params = {
            "objective": self.objective,
            "top_k": self.top_k,
            "method": self.method,
            "num_threads": int_scalar(self.num_threads, "num_threads", -(2**31)),
        }
        result = _core.plan(
            compiled._impl,
            _impl_of(catalog),
            t_plan,
            json.dumps(params),
            prob,
            None if blend is None else blend._impl,
            None if factors is None else factors.user_factors.reshape(-1),
            None if factors is None else factors.benefit_factors.reshape(-1),
            None if factors is None else factors.benefit_bias,
            0 if factors is None else factors.user_factors.shape[1],
            share,
            None if timing is None else timing.orders_per_day,
            None if timing is None else timing.validity_days,
            _optional_floats(order_value, "member_value"),
            _optional_floats(benefit_value, "benefit_value"),
            None if preference is None else _impl_of(preference),
            float("nan") if budget is None else float(budget),
            *triple,
        )
        return _plan_from_result(compiled, catalog, user_table, result, eligible_matrix)


def _plan_from_result(compiled, catalog, user_table, result, eligible_matrix: bool = True) -> Plan:
    """A :class:`Plan` from a compiled policy and the core's Planner::plan tuple
    (candidates, diagnostics, allocation, rows, budget)."""
    candidates, diagnostics, allocation, rows, planned_budget = result
    from .data import UserTable

    # The member column holds the members' external ids (the UserTable's map).
    user_ids = user_table.user_ids if isinstance(user_table, UserTable) else None
    member_segment = np.asarray(compiled.constraints.member_segment)
    frame = _frame(
        catalog,
        user_ids,
        rows["member"],
        rows["benefit"],
        rows["probability"],
        rows["value"],
        rows["cost"],
        segment_names=compiled.segment_names if len(member_segment) else None,
        member_segment=member_segment if len(member_segment) else None,
        send_at=rows["send_at"],
        validity_days=rows["validity_days"],
        reasons=rows["reasons"],
    )
    info: Dict[str, object] = {
        "compiled": compiled,
        "candidates": candidates,
        "allocation": allocation,
        "diagnostics": diagnostics,
    }
    if eligible_matrix and compiled.n_users * compiled.n_benefits <= 50_000_000:
        info["eligible"] = compiled.eligible_matrix()
    return Plan(
        frame,
        budget=float(planned_budget),
        method=allocation.method,
        dual_bound=float(allocation.dual_bound),
        multiplier=float(allocation.multiplier),
        issue_cost=compiled.issue_cost,
        info=info,
    )
