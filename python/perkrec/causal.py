"""Causal evaluation: uplift metrics (Qini, AUUC, uplift@k, cost curve), off-policy value of a
policy from logged data (IPS, SNIPS, DM, DR, switch-DR), and randomized experiments (stable
holdout assignment; lift, incremental ROI, CUPED and bootstrap intervals; a pilot wave's level).

Everything is computed in C++ (see include/perkrec/eval/uplift_metrics.hpp, ope.hpp and
experiment.hpp for the definitions); this module converts arguments and builds DataFrames.
Uplift metrics take scikit-uplift's argument order and give its numbers: ground truth, then the
model's uplift, then the treatment flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._util import categorical_codes, float_array, int_array


def _outcome(values, name: str = "y_true") -> np.ndarray:
    return float_array(values, np.float64, name)


def _treatment(values) -> np.ndarray:
    return int_array(values, np.uint8, "treatment")


# --- uplift metrics -----------------------------------------------------------------------------


def qini_curve(y_true, uplift, treatment) -> Tuple[np.ndarray, np.ndarray]:
    """Points (rows targeted, incremental responders) of the Qini curve, targeting by
    descending uplift; tied scores form one point."""
    return _core.qini_curve(_outcome(y_true), _outcome(uplift, "uplift"), _treatment(treatment))


def uplift_curve(y_true, uplift, treatment) -> Tuple[np.ndarray, np.ndarray]:
    """Points (rows targeted, (treated mean - control mean) * rows) of the uplift curve."""
    return _core.uplift_curve(_outcome(y_true), _outcome(uplift, "uplift"), _treatment(treatment))


def perfect_qini_curve(
    y_true, treatment, negative_effect: bool = True
) -> Tuple[np.ndarray, np.ndarray]:
    """The Qini curve of the perfect model (scikit-uplift's definition)."""
    return _core.perfect_qini_curve(_outcome(y_true), _treatment(treatment), bool(negative_effect))


def perfect_uplift_curve(y_true, treatment) -> Tuple[np.ndarray, np.ndarray]:
    """The uplift curve of the perfect model (scikit-uplift's definition); binary outcomes."""
    return _core.perfect_uplift_curve(_outcome(y_true), _treatment(treatment))


def qini_auc_score(y_true, uplift, treatment, negative_effect: bool = True) -> float:
    """Area between the Qini curve and the random line over the perfect model's: 1 = perfect,
    about 0 = random (scikit-uplift's qini_auc_score)."""
    return _core.qini_auc_score(
        _outcome(y_true), _outcome(uplift, "uplift"), _treatment(treatment), bool(negative_effect)
    )


def uplift_auc_score(y_true, uplift, treatment) -> float:
    """Normalized area under the uplift curve (scikit-uplift's uplift_auc_score); binary outcomes."""
    return _core.uplift_auc_score(
        _outcome(y_true), _outcome(uplift, "uplift"), _treatment(treatment)
    )


def uplift_at_k(y_true, uplift, treatment, strategy: str = "overall", k=0.3) -> float:
    """Treated minus control mean outcome among the top ``k`` by uplift.

    ``k``: a float in (0, 1) is a fraction of the rows (rounded down), an int a number of rows.
    ``strategy``: "overall" takes the top k of all rows; "by_group" the top k of each group.
    """
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise _core.InputError(f"uplift_at_k: k must be an int or a float (got {k!r})")
    if isinstance(k, (float, np.floating)) and not 0 < k < 1:
        raise _core.InputError(
            f"uplift_at_k: a float k must be in (0, 1) (got {k!r}); pass an int for a row count"
        )
    return _core.uplift_at_k(
        _outcome(y_true), _outcome(uplift, "uplift"), _treatment(treatment), float(k), str(strategy)
    )


def cost_curve(value, cost, uplift, treatment) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows targeted, incremental cost, incremental value) when targeting by descending
    ``uplift`` (an uplift or return-on-cost score); per-row ``value`` and ``cost``."""
    return _core.cost_curve(
        _outcome(value, "value"),
        _outcome(cost, "cost"),
        _outcome(uplift, "uplift"),
        _treatment(treatment),
    )


def aucc_score(value, cost, uplift, treatment) -> float:
    """Area under the cost curve with both axes divided by their totals: about 0.5 for a random
    ranking, towards 1 for one that buys the incremental value cheaply first."""
    return _core.aucc_score(
        _outcome(value, "value"),
        _outcome(cost, "cost"),
        _outcome(uplift, "uplift"),
        _treatment(treatment),
    )


# --- off-policy evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class OffPolicyEstimate:
    """An off-policy value with its normal-approximation interval."""

    estimator: str
    value: float
    lower: float
    upper: float
    std_error: float
    effective_sample_size: float
    max_weight: float
    n_clipped: int
    n_switched: int
    n: int


def off_policy_value(
    rewards,
    logged_propensity,
    target_propensity,
    estimator: str = "ips",
    reward_estimate=None,
    target_reward_estimate=None,
    confidence: float = 0.95,
    clip: Optional[float] = None,
    switch_threshold: Optional[float] = None,
    num_threads: int = 0,
) -> OffPolicyEstimate:
    """Value of a target policy estimated from another policy's logs.

    Per logged row: the reward, the logging policy's probability of the logged action
    (``logged_propensity``, in (0, 1]) and the target policy's probability of the same action
    (``target_propensity``, in [0, 1]). ``estimator``: "ips", "snips", "dm", "dr" or
    "switch-dr"; DM needs ``target_reward_estimate`` (the reward model's expectation under the
    target policy), DR and switch-DR also ``reward_estimate`` (the model's reward for the logged
    action). ``clip`` caps the importance weights; ``switch_threshold`` is switch-DR's tau.
    """

    def optional(values, name):
        return None if values is None else float_array(values, np.float64, name)

    result = _core.off_policy_value(
        float_array(rewards, np.float64, "rewards"),
        float_array(logged_propensity, np.float64, "logged_propensity"),
        float_array(target_propensity, np.float64, "target_propensity"),
        optional(reward_estimate, "reward_estimate"),
        optional(target_reward_estimate, "target_reward_estimate"),
        str(estimator),
        float(confidence),
        math.inf if clip is None else float(clip),
        math.inf if switch_threshold is None else float(switch_threshold),
        int(num_threads),
    )
    return OffPolicyEstimate(**result)


# --- experiments --------------------------------------------------------------------------------


def holdout_hash(user_id, salt: str) -> int:
    """The stable 64-bit hash assign_holdout draws from (see include/perkrec/eval/experiment.hpp)."""
    return _core.holdout_hash(str(user_id), str(salt))


def assign_holdout(
    user_ids, salt: str, weights: Sequence[float] = (0.1, 0.9), num_threads: int = 0
) -> np.ndarray:
    """Arm (0, 1, ...) of each member, drawn with probabilities ``weights`` (normalized) from a
    hash of the member id and ``salt``: the same on every run, machine and thread count.

    Arm 0 is the control (held out), as analyze_experiment reads it: the default keeps a 10%
    holdout and treats the other 90%. Ids are hashed as text (``str(id)``, UTF-8), so the
    integer 17 and the string "17" get the same arm. A new salt (one per campaign) gives an
    independent assignment.
    """
    ids = [str(u) for u in np.asarray(user_ids, dtype=object).ravel()]
    return _core.assign_holdout(
        ids, str(salt), float_array(list(weights), np.float64, "weights"), int(num_threads)
    )


@dataclass(frozen=True)
class PilotLevel:
    """A pilot wave's level of P on the plan's own pairs (:func:`pilot_level`)."""

    level: float  # (observed + prior x c) / (expected + prior x c): multiply the rest's P by it
    ratio: float  # observed / expected, without the prior
    observed: float  # the pilot's redemption cost
    expected: float  # its expected redemption cost under P
    expected_redemptions: float  # sum of P
    standard_error: float  # of level
    lower: float  # level -/+ z standard_error (lower >= 0)
    upper: float


def pilot_level(
    probability, redeemed, cost, *, prior: float = 20.0, confidence: float = 0.95
) -> PilotLevel:
    """How far a plan's P is off on its own pairs, from a pilot wave (test and scale: the plan
    issued to a random share of members first, e.g. :func:`assign_holdout`, then its
    redemptions counted).

    One row per issued pilot pair: ``probability`` (the plan's P of it, in [0, 1]),
    ``redeemed`` (0/1) and ``cost`` (the cost of its redemption, >= 0). With E = sum P x cost
    and O = sum redeemed x cost, the level is (O + prior c) / (E + prior c), c = E / sum P:
    the ratio pulled toward 1 by ``prior`` pseudo expected redemptions. Held-out logged issues
    do not predict it (the optimizer picks the pairs P is most optimistic about); the pilot's
    own pairs do. Its standard error (the delta method with E fixed: sqrt(sum cost^2 q (1 - q))
    / (E + prior c), q = min(level x P, 1)) gives the ``confidence`` interval. Plan the rest with
    ``BenefitPlanner.plan(users=..., level=result.level)``. Computed in C++
    (decide/calibration.hpp: pilot_level); InputError naming the argument and row for bad
    values, lengths or an expected cost of 0. With ``prior=0`` a pilot without a redemption
    gives level 0, which ``plan`` rejects (a level must be > 0): keep a prior for small pilots.

    >>> pilot = perkrec.pilot_level([0.5, 0.25, 0.2, 0.1], [1, 0, 1, 0], [2, 4, 5, 10], prior=0)
    >>> pilot.expected, pilot.observed, pilot.level
    (4.0, 7.0, 1.75)
    """
    r = _core.pilot_level(
        float_array(probability, np.float64, "probability"),
        float_array(redeemed, np.float64, "redeemed"),
        float_array(cost, np.float64, "cost"),
        float(prior),
        float(confidence),
    )
    return PilotLevel(**r)


def _column(data, value, name: str) -> np.ndarray:
    """A column of ``data`` named by ``value``, or ``value`` itself when it is array-like."""
    if isinstance(value, str):
        if data is None:
            raise _core.InputError(
                f"analyze_experiment: {name}={value!r} names a column but no data was given"
            )
        if value not in data:
            raise _core.InputError(f"analyze_experiment: {name}: no column {value!r} in data")
        return np.asarray(data[value])
    return np.asarray(value)


def _arm_codes(labels: np.ndarray, arms: Optional[Sequence], control) -> Tuple[np.ndarray, list]:
    """Codes 0 (control) .. K-1 of the arm labels, and the label of each code."""
    if arms is not None:
        order = list(arms)
    elif control is None and labels.dtype.kind in "iub":
        codes = int_array(labels, np.int32, "arm")
        return codes, list(range(int(codes.max()) + 1 if codes.size else 0))
    else:
        if control is None:
            raise _core.InputError(
                "analyze_experiment: arm labels are not integer codes; name the control arm "
                "(control=...) or list the arms (arms=[control, ...])"
            )
        others = {v for v in labels.tolist() if v != control}
        try:
            others = sorted(others)
        except TypeError:  # labels of mixed types
            others = sorted(others, key=str)
        order = [control] + others
    codes = categorical_codes(labels, order, "arm").astype(np.int32)
    return np.ascontiguousarray(codes), order


def analyze_experiment(
    data=None,
    arm="arm",
    metrics=("revenue",),
    cost=None,
    pre_period=None,
    arms: Optional[Sequence] = None,
    control=None,
    confidence: float = 0.95,
    bootstrap: int = 0,
    cuped: bool = True,
    seed: int = 42,
    num_threads: int = 0,
):
    """Each arm against the control on each metric, as a DataFrame with one row per
    (arm, metric).

    ``data``: a DataFrame (or mapping of columns); ``arm``, ``metrics``, ``cost`` and the values
    of ``pre_period`` are then column names. Without ``data`` they are arrays (``metrics`` a
    mapping name -> array). Arms: integer codes with 0 = control, or labels with ``control=`` (or
    ``arms=[control, ...]`` to fix the order). ``pre_period``: a mapping metric -> pre-period
    covariate for CUPED (or one column when there is one metric). ``cost``: per-row cost of the
    benefits, for incremental ROI = lift / incremental cost. ``bootstrap``: resamples for
    percentile intervals (seeded; identical for any thread count).

    Columns: arm, metric, n_control, n_arm, control_mean, arm_mean, lift (difference of means,
    CUPED-adjusted when a covariate is given), relative_lift, std_error, lower, upper, p_value,
    theta, bootstrap_lower/upper, and roi, roi_lower/upper, roi_bootstrap_lower/upper.
    """
    import pandas as pd

    if isinstance(metrics, str):
        metrics = [metrics]
    if isinstance(metrics, Mapping):
        names = list(metrics.keys())
        columns = [_column(data, v, f"metrics[{k!r}]") for k, v in metrics.items()]
    else:
        names = [m if isinstance(m, str) else f"metric_{i}" for i, m in enumerate(metrics)]
        columns = [_column(data, m, "metrics") for m in metrics]
    if not columns:
        raise _core.InputError("analyze_experiment: metrics is empty")
    pre = [None] * len(names)
    if pre_period is not None:
        if not isinstance(pre_period, Mapping):
            if len(names) != 1:
                raise _core.InputError(
                    "analyze_experiment: pre_period must map metric names to covariates when "
                    "there are several metrics"
                )
            pre_period = {names[0]: pre_period}
        for key, value in pre_period.items():
            if key not in names:
                raise _core.InputError(
                    f"analyze_experiment: pre_period names unknown metric {key!r}"
                )
            pre[names.index(key)] = float_array(
                _column(data, value, f"pre_period[{key!r}]"), np.float64, f"pre_period[{key!r}]"
            )
    codes, labels = _arm_codes(_column(data, arm, "arm"), arms, control)
    out = _core.analyze_experiment(
        codes,
        [float_array(c, np.float64, n) for c, n in zip(columns, names)],
        pre,
        None if cost is None else float_array(_column(data, cost, "cost"), np.float64, "cost"),
        len(labels) if arms is not None or control is not None else 0,
        float(confidence),
        int(bootstrap),
        bool(cuped),
        int(seed),
        int(num_threads),
    )
    frame = pd.DataFrame(out)
    frame["arm"] = [labels[i] for i in frame["arm"]]
    frame["metric"] = [names[i] for i in frame["metric"]]
    return frame


def experiment_table(log, catalog, since=None, until=None, *, issue_cost: float = 0.0):
    """A log with a random control group read as an experiment: one row per member with
    ``arm`` ("control" for members with a control-flagged event, else "benefits"), ``orders``
    and ``revenue`` (ordered events and their amounts) and ``cost`` (the catalog cost of the
    benefits redeemed plus ``issue_cost`` per issue) between ``since`` (default: the log's
    start) and ``until`` (default: after its end). When ``since`` is given, ``orders_pre`` and
    ``revenue_pre`` hold the same sums over the period of the same length just before it (the
    CUPED covariates). Feed it to :func:`analyze_experiment`::

        members = experiment_table(log, catalog, since="2026-06-01", issue_cost=0.05)
        analyze_experiment(members, arm="arm", metrics=["orders", "revenue"], cost="cost",
                           pre_period={"orders": "orders_pre", "revenue": "revenue_pre"}, control="control")

    InputError when the log has no control flag."""
    import pandas as pd

    from ._util import time_seconds
    from .data import EventLog

    if not isinstance(log, EventLog):
        raise _core.InputError(
            f"experiment_table: log must be a perkrec.EventLog (got {type(log).__name__})"
        )
    if not isinstance(issue_cost, (int, float, np.integer, np.floating)):
        raise _core.InputError(
            f"experiment_table: issue_cost must be a number (got {issue_cost!r})"
        )
    # Per-member sums in C++ (eval/experiment.hpp: experiment_members), which checks the control
    # flag, the catalog's length, issue_cost and the window.
    raw = _core.experiment_members(
        log._impl,
        catalog.to_frame()["cost"].to_numpy(np.float64),
        _core.NO_TIME if since is None else time_seconds(since, "since"),
        _core.NO_TIME if until is None else time_seconds(until, "until"),
        float(issue_cost),
    )
    n = log.n_users
    members = pd.DataFrame(
        {
            "arm": np.where(raw["control"].astype(bool), "control", "benefits"),
            "orders": raw["orders"],
            "revenue": raw["revenue"],
            "cost": raw["cost"],
        },
        index=pd.Index(log.user_ids.ids if log.user_ids is not None else np.arange(n), name="user"),
    )
    if since is not None:
        members["orders_pre"] = raw["orders_pre"]
        members["revenue_pre"] = raw["revenue_pre"]
    return members
