"""Member value: purchase summaries, lifetime value (BG/NBD, MBG/NBD, Pareto/NBD or BG/BB
purchases x Gamma-Gamma order value), churn risk and lifecycle stages from an event log, and
their check against a holdout (see ``include/perkrec/models/clv.hpp`` and ``models/purchase.hpp`` for the
summaries, the models, the interval method and the lifecycle rule).

>>> model = CLVModel(time_unit="week").fit(log, cut_time="2026-06-01")
>>> model.summary()                         # x, t_x, T, monetary per member (as of the cut)
>>> value = model.predict(52, discount_rate=0.002, margin=0.3)
>>> value.loc[value.lifecycle_stage == "at_risk"].sort_values("clv").tail(10)
>>> split = calibration_holdout(log, "2026-01-01", "2026-06-01")       # weeks by default
>>> fitted = CLVModel(model="paretonbd").fit(log, cut_time="2026-01-01")
>>> holdout_errors(split, fitted.predict(split.attrs["duration"]))      # MAE, Spearman, aggregate

A plain transaction log works: an ``EventLog`` of ``ordered`` events with ``order_amount`` and no
catalog (``EventLog.from_frame(df.assign(benefit=None, event_type="ordered"))``).
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
import pandas as pd

from . import _core
from ._estimator import _Estimator, _Threaded
from ._progress import ProgressArg, resolve_progress
from ._util import frame_arg, int_scalar, seconds, time_seconds
from .data import EventLog, IdMap, _expect, _Serializable

LIFECYCLE_STAGES = tuple(_core.LIFECYCLE_STAGES)
#: The member fields of ``CLVModel.member_fields`` / ``sample_fields``.
MEMBER_FIELDS = ("clv", "clv_percentile", "p_alive", "lifecycle_stage")
#: FeatureEncoder fields for them (numeric quantile buckets with a missing bucket for members
#: without a fit; the stage one-hot, "other" for missing): ``FeatureEncoder(DEFAULT_FIELDS +
#: CLV_FIELDS)`` on samples that carry the columns (``CLVModel.sample_fields``).
CLV_FIELDS = [
    {"name": "clv", "kind": "numeric", "transform": "quantile", "bins": 8},
    {"name": "clv_percentile", "kind": "numeric", "transform": "quantile", "bins": 5},
    {"name": "p_alive", "kind": "numeric", "transform": "quantile", "bins": 5},
    {"name": "lifecycle_stage", "kind": "categorical"},
]
#: The regression forecaster's features (the keys of ``params_["regression"]["purchases"]``).
REGRESSION_FEATURES = tuple(_core.CLV_REGRESSION_FEATURES)

_PARAM_KEYS = (
    "model",
    "backtest_horizon",
    "regression_l2",
    "time_unit",
    "occasion",
    "penalizer",
    "max_iterations",
    "interval_level",
    "interval_draws",
    "at_risk_cycles",
    "dormant_cycles",
    "lost_cycles",
    "at_risk_quantile",
    "dormant_quantile",
    "lost_quantile",
    "at_risk_p_alive",
    "dormant_p_alive",
    "lost_p_alive",
    "num_threads",
    "seed",
)


def _number_arg(value, name: str, context: str, low: float = 0.0, high: float = 1e6) -> float:
    """A finite real in [low, high]; anything else (bools, strings, arrays, NaN) an InputError."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not ok or not np.isfinite(value) or not low <= float(value) <= high:
        raise _core.InputError(
            f"{context}: {name}: expected a finite number in [{low:g}, {high:g}] (got {value!r:.40})"
        )
    return float(value)


def _real_arg(value, name: str, context: str) -> float:
    """A real number (range checks, NaN included, are the C++ side's); other types an InputError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise _core.InputError(f"{context}: {name}: expected a number (got {value!r:.40})")
    return float(value)


def _columns(frame: pd.DataFrame, columns, name: str, context: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise _core.InputError(f"{context}: {name}: missing column {column!r}")


def _member_index(users: np.ndarray, ids: Optional[IdMap]) -> pd.Index:
    if ids is not None and len(ids):
        return pd.Index(ids.to_external(np.ascontiguousarray(users, dtype=np.int32)), name="user")
    return pd.Index(users, name="user")


def _summary_frame(raw: dict, ids: Optional[IdMap]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {k: raw[k] for k in ("x", "t_x", "T", "monetary", "mean_order_value")},
        index=_member_index(raw["users"], ids),
    )
    frame["first_order"] = pd.to_datetime(raw["first_order"], unit="s", utc=True)
    return frame


def summarize_purchases(
    log: EventLog, cut_time, time_unit: str = "week", occasion: str = "day", num_threads: int = 0
) -> pd.DataFrame:
    """Per-member purchase summaries of the ``ordered`` events strictly before ``cut_time``:
    repeat occasions ``x``, recency ``t_x``, age ``T`` (in ``time_unit``s), mean repeat occasion
    value ``monetary``, ``mean_order_value`` and ``first_order``; indexed by member id. Orders in
    one ``occasion`` period ("day" or "week") are one occasion."""
    _expect(log, EventLog, "log", "summarize_purchases")
    raw = _core.summarize_purchases(
        log._impl,
        time_seconds(cut_time, "cut_time"),
        str(time_unit),
        str(occasion),
        int(num_threads),
    )
    return _summary_frame(raw, log.user_ids)


def _internal_user(log: EventLog, user, context: str) -> int:
    """The log's dense index of member ``user`` (an external id, or an index without ids)."""
    ids = log.user_ids
    try:
        if ids is not None and len(ids):
            internal = int(ids.lookup([user], missing="minus_one")[0])
        else:
            internal = int_scalar(user, "user", -1, 2**31 - 1)
    except (TypeError, ValueError):
        internal = -1
    if internal < 0 or internal >= log.n_users:
        raise _core.InputError(f"{context}: user: unknown member {user!r:.40}")
    return internal


class CLVModel(_Serializable, _Estimator, _Threaded):
    """Lifetime value of each member: purchases x Gamma-Gamma order value, or a forecast chosen
    by a backtest inside the calibration period.

    ``model``: a purchase model — "bgnbd" (BG/NBD), "mbgnbd" (MBG/NBD: one-time
    buyers may have dropped out too), "paretonbd" (Pareto/NBD: dropout in continuous time) or
    "bgbb" (BG/BB: one purchase opportunity per time_unit; needs ``occasion`` equal to
    ``time_unit``), whose ``clv`` is an expected value; "naive" (own rate x / T, x mean order
    value); "regression" (Poisson log-link ridge regressions of the purchases and of the spend
    in the next H time_units on the member's summary, recent-window rates, spend, the purchase
    model's own forecast and benefit history, fitted by Newton/IRLS in C++; trained on a
    strictly time-split backtest inside the calibration period, H = ``backtest_horizon`` or a
    quarter of the order history before the cut; an expected value whose total equals the
    actual total on the data it is fitted on); or "auto" (the forecast with the least
    per-member backtest error among BG/NBD, MBG/NBD, Pareto/NBD, naive and regression, every
    one an expected value). The backtest never reads events at or after the cut; its choice and every
    candidate's per-member MAE are in ``selection_`` (and ``params_["selection"]``). Fitted on
    given summaries (``fit_summary``) there is no backtest and "auto" is BG/NBD. p_alive, the
    lifecycle stages and the intervals always come from a purchase model (under "auto" the
    best of the three by the backtest). ``time_unit``: "day" or "week" — the unit of recency, age, horizon and
    discount rate. ``penalizer`` >= 0 shrinks the log-parameters (a fit never fails on ordinary
    data; parameters that run to 0 or infinity are reported in ``params_["purchase"]
    ["at_boundary"]``). Keywords left as None keep the C++ defaults (``params`` shows them):
    ``occasion`` ("day": orders on one day are one purchase occasion, as the literature does),
    ``interval_level``/``interval_draws`` (clv_lower/clv_upper), the lifecycle thresholds, ``seed``.
    ``fit`` needs exclusive access; ``predict`` is safe from several threads.
    """

    _core_class = _core.CLVModel

    def __init__(
        self,
        model: str = "auto",
        time_unit: str = "week",
        penalizer: float = 0.0,
        num_threads: int = 0,
        *,
        backtest_horizon: Optional[float] = None,
        regression_l2: Optional[float] = None,
        occasion: Optional[str] = None,
        max_iterations: Optional[int] = None,
        interval_level: Optional[float] = None,
        interval_draws: Optional[int] = None,
        at_risk_cycles: Optional[float] = None,
        dormant_cycles: Optional[float] = None,
        lost_cycles: Optional[float] = None,
        at_risk_quantile: Optional[float] = None,
        dormant_quantile: Optional[float] = None,
        lost_quantile: Optional[float] = None,
        at_risk_p_alive: Optional[float] = None,
        dormant_p_alive: Optional[float] = None,
        lost_p_alive: Optional[float] = None,
        seed: Optional[int] = None,
    ):
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        params = {k: v for k, v in given.items() if v is not None}
        self._impl = _core.CLVModel(json.dumps(params))

    @classmethod
    def _wrap(cls, impl):
        obj = cls.__new__(cls)
        obj._impl = impl
        obj._init_params = obj.params
        return obj

    @property
    def params(self) -> dict:
        """Every hyper-parameter in effect, C++ defaults included."""
        return json.loads(self._impl.get_params())

    # --- fitting -----------------------------------------------------------------------------
    def fit(self, log: EventLog, cut_time=None, *, progress: ProgressArg = False) -> "CLVModel":
        """Summarizes the ``ordered`` events of ``log`` strictly before ``cut_time`` (default:
        after the last event) and fits the purchase and spend models. On error the model is
        unchanged."""
        _expect(log, EventLog, "log", "CLVModel.fit")
        if cut_time is not None:
            cut = time_seconds(cut_time, "cut_time")
        else:
            cut = (
                int(log._impl.max_time) + 1 if len(log) else 1
            )  # an empty log fails in C++, naming it
        self._impl.fit(log._impl, cut, resolve_progress(progress))
        return self

    def fit_summary(self, summary: pd.DataFrame, *, progress: ProgressArg = False) -> "CLVModel":
        """Fits on given summaries: a DataFrame with columns ``x``, ``t_x``, ``T`` and optionally
        ``monetary`` (mean repeat order value), in ``time_unit``s — e.g. a published table. Rows
        are members in order; the index names them in this session's results (a saved model
        names them 0..n-1)."""
        _columns(
            frame_arg(summary, "CLVModel.fit_summary: summary"),
            ("x", "t_x", "T"),
            "summary",
            "CLVModel.fit_summary",
        )
        arrays = [
            np.ascontiguousarray(summary[c].to_numpy(dtype=np.float64)) for c in ("x", "t_x", "T")
        ]
        monetary = (
            np.ascontiguousarray(summary["monetary"].to_numpy(dtype=np.float64))
            if "monetary" in summary
            else np.zeros(len(summary))
        )
        self._impl.fit_summary(*arrays, monetary, resolve_progress(progress))
        self._summary_index = pd.Index(summary.index, name="user")
        return self

    # --- results -----------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self._impl.fitted

    def _require_fitted(self, method: str) -> None:
        if not self._impl.fitted:
            raise _core.InputError(f"CLVModel.{method}: the model is not fitted")

    def _index(self, users: np.ndarray) -> pd.Index:
        given = getattr(self, "_summary_index", None)
        ids = IdMap._wrap(self._impl.user_ids)
        if not len(ids) and given is not None and len(given) == len(users):
            return given
        return _member_index(users, ids if len(ids) else None)

    def summary(self, log: Optional[EventLog] = None, cut_time=None) -> pd.DataFrame:
        """The fitted members' summaries (no arguments), or those of ``log`` at ``cut_time`` under
        this model's time_unit and occasion (without fitting). Indexed by member id."""
        if log is not None:
            params = self.params
            return summarize_purchases(
                log,
                log._impl.max_time + 1 if cut_time is None else cut_time,
                params["time_unit"],
                params["occasion"],
                params["num_threads"],
            )
        self._require_fitted("summary")
        raw = self._impl.summary()
        frame = _summary_frame(raw, None)
        frame.index = self._index(raw["users"])
        return frame

    @staticmethod
    def _summary_arrays(summary: pd.DataFrame, method: str):
        """x, t_x and T of ``summary`` (columns checked) as float64 arrays (InputError naming
        ``method`` when they are not numbers)."""
        try:
            return [
                np.ascontiguousarray(summary[c].to_numpy(dtype=np.float64))
                for c in ("x", "t_x", "T")
            ]
        except (TypeError, ValueError) as exc:
            raise _core.InputError(
                f"CLVModel.{method}: summary: x, t_x and T must be numbers ({exc})"
            ) from None

    def conditional(self, summary: pd.DataFrame, horizon: float) -> pd.DataFrame:
        """The purchase model's ``p_alive`` and ``expected_purchases`` in the next ``horizon``
        time_units for given summaries (columns ``x``, ``t_x``, ``T`` in time_units, e.g. from
        ``summary(log, cut_time)``), indexed like ``summary``."""
        self._require_fitted("conditional")
        _columns(
            frame_arg(summary, "CLVModel.conditional: summary"),
            ("x", "t_x", "T"),
            "summary",
            "CLVModel.conditional",
        )
        horizon = _number_arg(horizon, "horizon", "CLVModel.conditional")
        arrays = self._summary_arrays(summary, "conditional")
        return pd.DataFrame(self._impl.conditional(*arrays, horizon), index=summary.index)

    def expected_purchases_by_period(
        self, periods: int, summary: Optional[pd.DataFrame] = None, end: Optional[float] = None
    ) -> np.ndarray:
        """Expected occasions of the fitted members (or of ``summary``'s) in each of the next
        ``periods`` time_units after the cut, summed over members (the aggregate tracking
        curve); with ``end`` the periods stop there (a partial last period). Computed in C++
        (``CLVModel::expected_purchases_by_period``)."""
        self._require_fitted("expected_purchases_by_period")
        periods = int_scalar(periods, "periods", 0, 100_000)
        if summary is None:
            summary = self.summary()
        stop = (
            float(periods)
            if end is None
            else _number_arg(end, "end", "CLVModel.expected_purchases_by_period")
        )
        method = "expected_purchases_by_period"
        _columns(
            frame_arg(summary, f"CLVModel.{method}: summary"),
            ("x", "t_x", "T"),
            "summary",
            f"CLVModel.{method}",
        )
        arrays = self._summary_arrays(summary, method)
        return self._impl.expected_purchases_by_period(*arrays, int(periods), stop)

    def p_alive_history(self, log: EventLog, user, times) -> pd.DataFrame:
        """One member's ``p_alive`` (and ``expected_purchases`` in the next time_unit) as they
        stood at each of ``times``: the member's orders before each time summarized as at a cut
        there (the summaries' rules), under this model's fitted parameters; columns ``x``,
        ``t_x``, ``T``, ``p_alive``, ``expected_purchases``, indexed by time. Times before the
        member's first order are left out. Computed in C++ (``CLVModel::p_alive_history``)."""
        self._require_fitted("p_alive_history")
        _expect(log, EventLog, "log", "CLVModel.p_alive_history")
        internal = _internal_user(log, user, "CLVModel.p_alive_history")
        try:
            stamps_in = pd.to_datetime(pd.Index(list(times)), utc=True)
        except (TypeError, ValueError) as exc:
            raise _core.InputError(
                f"CLVModel.p_alive_history: times: expected times ({exc})"
            ) from None
        raw = self._impl.p_alive_history(
            log._impl, internal, seconds(stamps_in, "CLVModel.p_alive_history: times")
        )
        index = pd.DatetimeIndex(stamps_in[raw.pop("position").astype(np.int64)], name="time")
        return pd.DataFrame(raw, index=index)

    def predict(
        self, horizon: float, discount_rate: float = 0.0, margin: float = 1.0
    ) -> pd.DataFrame:
        """Per fitted member over the next ``horizon`` time_units: ``p_alive``,
        ``expected_purchases``, ``expected_order_value``, ``clv`` (expected spend x margin,
        discounted by ``discount_rate`` per time_unit), ``clv_lower``/``clv_upper`` (an interval
        at ``params["interval_level"]`` from parameter uncertainty and the member's own
        posterior) and ``lifecycle_stage`` (new, active, at_risk, dormant, lost)."""
        self._require_fitted("predict")
        out = self._impl.predict(
            _real_arg(horizon, "horizon", "CLVModel.predict"),
            _real_arg(discount_rate, "discount_rate", "CLVModel.predict"),
            _real_arg(margin, "margin", "CLVModel.predict"),
        )
        stage = pd.Categorical.from_codes(
            out.pop("lifecycle_stage").astype(np.int64), list(LIFECYCLE_STAGES)
        )
        frame = pd.DataFrame(out, index=self._index(self._impl.summary()["users"]))
        frame["lifecycle_stage"] = stage
        return frame

    def _fields_frame(self, raw: dict, index) -> pd.DataFrame:
        codes = raw["lifecycle_stage"].astype(np.int64)
        stages = np.asarray(LIFECYCLE_STAGES, dtype=object)[np.maximum(codes, 0)]
        stages[codes < 0] = None
        return pd.DataFrame(
            {
                "clv": raw["clv"],
                "clv_percentile": raw["clv_percentile"],
                "p_alive": raw["p_alive"],
                "lifecycle_stage": stages,
            },
            index=index,
        )

    def member_fields(
        self, horizon: float, discount_rate: float = 0.0, margin: float = 1.0
    ) -> pd.DataFrame:
        """Member fields for the decisions, per fitted member (indexed by external id): ``clv``,
        ``clv_percentile`` (the fraction of fitted members whose clv is <= the member's, in
        (0, 1]; ties share the highest rank), ``p_alive`` and ``lifecycle_stage`` (a string),
        as ``predict(horizon, discount_rate, margin)`` gives them (computed in C++,
        ``CLVModel::member_fields``). Join them to the member frame of ``UserTable.from_frame``
        and Policy rules can target them, e.g. only at-risk members above the 80th CLV
        percentile (``targeting_rule`` writes this rule)::

            {"effect": "require", "benefits": {"kinds": ["discount"]}, "members": {"attributes": [
                {"column": "lifecycle_stage", "op": "in", "value": ["at_risk"]},
                {"column": "clv_percentile", "op": ">", "value": 0.8}]}}

        Members the model has not fitted (no order before the cut) get missing values there,
        which satisfy no condition. A table built at the cut describes the members as of the
        cut: for training rows at earlier times use ``sample_fields`` (leak-safe)."""
        self._require_fitted("member_fields")
        raw = self._impl.member_fields(
            _real_arg(horizon, "horizon", "CLVModel.member_fields"),
            _real_arg(discount_rate, "discount_rate", "CLVModel.member_fields"),
            _real_arg(margin, "margin", "CLVModel.member_fields"),
        )
        return self._fields_frame(raw, self._index(self._impl.summary()["users"]))

    def sample_fields(
        self, samples: pd.DataFrame, horizon: float, discount_rate: float = 0.0, margin: float = 1.0
    ) -> pd.DataFrame:
        """``samples`` (e.g. ``redemption_samples`` rows: a ``user`` column of member indices of
        the log this model was fitted on, -1 = unknown, and a ``timestamp`` column) with the
        member fields of ``member_fields`` added as columns ``clv``, ``clv_percentile``,
        ``p_alive`` and ``lifecycle_stage`` — leak-safe: every sample must be at or after the
        fit's cut (the fit read only the orders before it), else an InputError names the first
        row before it. Members without an order before the cut and unknown members get missing
        values: a ``numeric`` encoder field puts them in its missing bucket (quantile) or raises
        (standardize), a ``categorical`` one in "other" (see ``CLV_FIELDS``). Fit the model at
        the start of the training window (or refit per window) so that every row sees only its
        past. A column of those names already in ``samples`` is an InputError."""
        self._require_fitted("sample_fields")
        frame_arg(samples, "CLVModel.sample_fields: samples")
        _columns(samples, ("user", "timestamp"), "samples", "CLVModel.sample_fields")
        clash = [c for c in MEMBER_FIELDS if c in samples.columns]
        if clash:
            raise _core.InputError(
                f"CLVModel.sample_fields: samples already have a column {clash[0]!r}"
            )
        users = samples["user"]
        if not pd.api.types.is_integer_dtype(users.dtype):
            raise _core.InputError(
                "CLVModel.sample_fields: samples: user must hold integer member indices "
                f"(got dtype {users.dtype})"
            )
        raw = self._impl.sample_fields(
            np.ascontiguousarray(users.to_numpy(), dtype=np.int64),
            seconds(samples["timestamp"], "timestamp"),
            _real_arg(horizon, "horizon", "CLVModel.sample_fields"),
            _real_arg(discount_rate, "discount_rate", "CLVModel.sample_fields"),
            _real_arg(margin, "margin", "CLVModel.sample_fields"),
        )
        out = samples.copy()
        for column, values in self._fields_frame(raw, samples.index).items():
            out[column] = values.to_numpy()
        return out

    @property
    def params_(self) -> dict:
        """The fitted parameters: ``model``, the purchase model's ``r, alpha, a, b`` (BG/NBD,
        MBG/NBD) or ``r, alpha, s, beta`` (Pareto/NBD) and Gamma-Gamma ``p, q, gamma`` (when
        fitted), each fit's standard errors, boundary parameters, log-likelihood and convergence,
        the frequency-spend correlation and the lifecycle thresholds."""
        self._require_fitted("params_")
        return json.loads(self._impl.report_json())

    @property
    def selection_(self) -> dict:
        """How the forecast was chosen: ``choice`` ("bgnbd", ..., "naive" or "regression"),
        ``backtested``, ``note`` (why there was no backtest), ``horizon`` (H, time_units),
        ``backtest_cut``, ``members`` and per candidate its backtest ``mae_purchases``,
        ``mae_spend``, ``score`` (the sum of both MAEs relative to the naive forecast's; the
        least wins under model="auto") and ``total_error_purchases`` / ``total_error_spend``
        ((sum forecast - sum actual) / sum actual; None when unknown)."""
        return self.params_["selection"]

    @property
    def cut_time(self) -> Optional[pd.Timestamp]:
        """The fit's cut time (None when fitted on given summaries)."""
        self._require_fitted("cut_time")
        t = self._impl.cut_time
        return None if t == np.iinfo(np.int64).min else pd.Timestamp(t, unit="s", tz="UTC")

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self._init_params.items() if v is not None)
        state = f"{len(self._impl.summary()['users'])} members" if self.fitted else "not fitted"
        return f"CLVModel({given}; {state})"


def stage_codes(stages, name: str = "stages") -> np.ndarray:
    """The codes (indices into LIFECYCLE_STAGES) of lifecycle stage names; an unknown name is
    an InputError naming ``name`` and the value (the C++ ``lifecycle_stage_code``)."""
    if isinstance(stages, str):
        stages = [stages]
    return np.asarray(
        [_core.lifecycle_stage_code(str(s), name) for s in stages], dtype=np.int64
    ).reshape(-1)


def targeting_rule(
    stages=("at_risk",),
    min_clv_percentile: Optional[float] = None,
    *,
    benefits: Optional[dict] = None,
    name: str = "lifecycle targeting",
) -> dict:
    """A Policy rule (a dict of the JSON schema) that gives the selected ``benefits`` (a benefit
    selector; default every benefit) only to members in one of ``stages`` and, when given, above
    ``min_clv_percentile`` (in [0, 1)) of CLV — on the member fields of
    ``CLVModel.member_fields`` joined to the UserTable. E.g. a win-back campaign:
    ``targeting_rule(["at_risk"], 0.8)``. Unknown stage names raise InputError naming the
    stage; an empty ``stages`` or a percentile outside [0, 1) raises InputError."""
    codes = stage_codes(stages, "targeting_rule: stages")
    if len(codes) == 0:
        raise _core.InputError("targeting_rule: stages: expected at least one stage (got none)")
    conditions = [
        {
            "column": "lifecycle_stage",
            "op": "in",
            "value": [LIFECYCLE_STAGES[c] for c in dict.fromkeys(codes.tolist())],
        }
    ]
    if min_clv_percentile is not None:
        low = _number_arg(min_clv_percentile, "min_clv_percentile", "targeting_rule", 0.0, 1.0)
        if low >= 1.0:
            raise _core.InputError(
                f"targeting_rule: min_clv_percentile must be < 1 (got {min_clv_percentile!r}): "
                "no member is above the top of the ranking"
            )
        conditions.append({"column": "clv_percentile", "op": ">", "value": low})
    rule = {"name": str(name), "effect": "require", "members": {"attributes": conditions}}
    if benefits is not None:
        if not isinstance(benefits, dict):
            raise _core.InputError(
                f"targeting_rule: benefits must be a benefit selector dict (got {benefits!r:.40})"
            )
        rule["benefits"] = dict(benefits)
    return rule


# --- evaluation against a holdout ------------------------------------------------------------
def calibration_holdout(
    log: EventLog,
    calibration_end,
    observation_end,
    time_unit: str = "week",
    occasion: str = "day",
    num_threads: int = 0,
) -> pd.DataFrame:
    """Calibration summaries at ``calibration_end`` (as ``summarize_purchases``) of the members
    with an order before it, with their ``holdout_purchases`` (occasions) and ``holdout_spend``
    in [calibration_end, observation_end); indexed by member id. ``attrs`` hold ``duration``
    (the holdout length in time_units), ``period_purchases`` (all members' holdout occasions per
    time_unit period), ``time_unit``, ``occasion`` and both ends."""
    _expect(log, EventLog, "log", "calibration_holdout")
    start = time_seconds(calibration_end, "calibration_end")
    end = time_seconds(observation_end, "observation_end")
    raw = _core.calibration_holdout(
        log._impl, start, end, str(time_unit), str(occasion), int(num_threads)
    )
    frame = _summary_frame(raw, log.user_ids)
    frame["holdout_purchases"] = raw["holdout_purchases"]
    frame["holdout_spend"] = raw["holdout_spend"]
    frame.attrs.update(
        {
            "duration": float(raw["duration"]),
            "period_purchases": raw["period_purchases"],
            "time_unit": str(time_unit),
            "occasion": str(occasion),
            "calibration_end": pd.Timestamp(start, unit="s", tz="UTC"),
            "observation_end": pd.Timestamp(end, unit="s", tz="UTC"),
        }
    )
    return frame


def _float_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    return np.ascontiguousarray(frame[column].to_numpy(dtype=np.float64))


def naive_forecast(summary: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """The naive own-rate forecast: each member's repeat occasions per time_unit so far
    (x / T; 0 when T = 0) x horizon, and that x their mean order value for the spend (``clv``);
    indexed like ``summary``, with the columns of ``CLVModel.predict`` that ``holdout_errors``
    reads. Computed in C++ (models/clv.hpp: naive_forecast), which raises InputError for
    values that are not finite or negative x / T."""
    _columns(
        frame_arg(summary, "naive_forecast: summary"),
        ("x", "T", "mean_order_value"),
        "summary",
        "naive_forecast",
    )
    horizon = _number_arg(horizon, "horizon", "naive_forecast")
    purchases, spend = _core.naive_forecast(
        _float_column(summary, "x"),
        _float_column(summary, "T"),
        _float_column(summary, "mean_order_value"),
        horizon,
    )
    return pd.DataFrame({"expected_purchases": purchases, "clv": spend}, index=summary.index)


def holdout_errors(holdout: pd.DataFrame, prediction: pd.DataFrame) -> dict:
    """Per-member and aggregate errors of a forecast against ``calibration_holdout``'s actuals,
    rows matched by member id: ``mae_purchases`` / ``mae_spend`` (mean absolute error per
    member), ``spearman_purchases`` / ``spearman_spend`` (rank correlation of forecast and
    actual, ties at their mean rank; NaN with fewer than two members or a constant side),
    ``aggregate_purchases_error`` / ``aggregate_spend_error`` ((forecast total - actual
    total) / actual total; NaN when the actual total is 0). The forecast's spend is its ``clv``
    column (``predict`` over the holdout's duration with discount_rate 0 and margin 1 is the
    expected spend). Computed in C++ (eval/metrics.hpp: holdout_errors); a value that is not
    finite is an InputError naming the row (``actual_*`` / ``forecast_*``)."""
    _columns(
        frame_arg(holdout, "holdout_errors: holdout"),
        ("holdout_purchases", "holdout_spend"),
        "holdout",
        "holdout_errors",
    )
    _columns(
        frame_arg(prediction, "holdout_errors: prediction"),
        ("expected_purchases", "clv"),
        "prediction",
        "holdout_errors",
    )
    missing = holdout.index.difference(prediction.index)
    if len(missing):
        raise _core.InputError(
            f"holdout_errors: prediction: no row for {len(missing)} holdout members "
            f"(first {missing[0]!r})"
        )
    pred = prediction.loc[holdout.index]
    out = _core.holdout_errors(
        _float_column(holdout, "holdout_purchases"),
        _float_column(holdout, "holdout_spend"),
        _float_column(pred, "expected_purchases"),
        _float_column(pred, "clv"),
    )
    return {"members": int(out.pop("members")), **{k: float(v) for k, v in out.items()}}
