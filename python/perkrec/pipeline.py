"""From an event log to a benefit plan in one call.

    bp = perkrec.BenefitPlanner(policy).fit(events, catalog, users, cut_time)
    plan = bp.plan()                      # a perkrec.Plan at the end of the log
    bp.save("planner.perk")               # one model file; perkrec.load / BenefitPlanner.load

``fit`` learns what the plan needs, the recipe the demo plans with:

1. redemption samples from the issues logged before ``cut_time`` whose validity ended by the
   end of the log, labelled from the whole log (an issue still open at the cut keeps a later
   redemption: labels cut short at the cut made the FM under-predict recent issues and the
   plan time; features see only the events before each row), a
   :class:`~perkrec.FeatureEncoder` with leak-safe history features, and an FM weighted by
   clipped inverse logged propensities (``weighting="ipw"``), early-stopped on the issues
   logged after ``cut_time`` whose validity ended by the end of the log;
2. those held-out issues again, with the FM's predictions, to measure how much of the FM's
   member x benefit interaction holds up (``shrink=True``; applied to P at plan time by
   :func:`perkrec.plan.shrink_interactions`);
3. with ``pooled=True``, pooled member, member x kind and member x channel effects on top of
   the FM (:func:`perkrec.plan.pooled_redemption`'s fit: on the issues whose validity ended by
   ``cut_time``, the FM's prediction at each issue as the offset, kept by the slope the
   held-out issues support), and with ``preference_offset=True`` the weight of the preference
   model's member x kind log-preference as a logit offset, fitted on the held-out issues with
   a preference model fitted at ``cut_time`` (so it has not seen them);
4. the :class:`~perkrec.PreferenceModel` (segments, send times, purchase timing; with the
   ``user_table``'s attributes as covariates of its class prior, as the README fits it), each member's
   order value (``margin`` x median basket) and, with ``incremental="control"``, the
   incremental share learned from the random control group, all as of the end of the log.

What members buy and browse: ``fit(..., behavior=(BehaviorLog, ItemCatalog, BenefitItems))``
adds one ``behavior`` field to the FM's encoder (``behavior_field``; by default
:data:`DEFAULT_BEHAVIOR_FIELD` over every level of the item catalog and every action of the
log: the member's purchases, views, ... of the benefit's items and of their categories and
brands, strictly before each row's time), stores the three in the model file, and the plan's
reasons name the member's matching behaviour of the 8 weeks before the plan time
(``"behavior": [{"action": "purchase", "scope": "items", "count": 6, ..., "text": "bought
items of this benefit 6 times in the last 8 weeks"}]``). ``plan(behavior=newer_log)`` and
``inputs(behavior=newer_log)`` read a newer BehaviorLog of the same items without refitting.

``fit`` runs in C++ (include/perkrec/decide/benefit_planner_fit.hpp: ``fit_benefit_planner``),
one call with the GIL released, and gives the model file the Python recipe it replaced gave,
byte for byte (with ``fm_threads=1``); a C++ service or training job fits the same file.

``plan(at=...)`` scores every (member, benefit) at ``at`` through the FM and its encoder,
shrinks, adds the pooled effects and the preference offset when fitted with them, and hands P, the incremental share and the order values to :class:`perkrec.Planner`.

``plan`` runs in C++ (include/perkrec/decide/benefit_planner.hpp): the rows are encoded and
scored block by block, P is kept as one members x benefits float32 matrix (the shrinkage needs
every pair's logit), nothing as float64; ``answer`` decides for one member as a server does.

Cost: ``plan`` scores every (member, benefit) pair at ``at``: 1.2-1.8 s for 20,000 members x 48
benefits and 11 s for 100,000 on 2 shared cores, about 3x faster than the Python recipe it
replaced, with identical plans (BENCHMARKS.md, "BenefitPlanner.plan in C++").
The saved file holds the event log (the history the features and caps read), which dominates
its size.
Thread safety: ``fit`` needs exclusive access; ``plan``, ``inputs`` and ``answer`` only read the
fitted state (the first call builds the C++ planner once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from . import _core
from ._progress import ProgressArg, resolve_progress
from ._serializable import register as _register_kind
from ._util import int_array, int_scalar, renamed_keywords, renamed_property, time_seconds

WEIGHTINGS = ("ipw", "none")
#: The behaviour field fit adds when given behaviour and no ``behavior_field``; ``levels`` and
#: ``actions`` (None here) become every level of the item catalog and every action of the log.
#: Its aggregates are the ones whose scale does not grow with the length of the history (decayed
#: counts, days since the last event, share of wallet): the plan scores at the end of the log,
#: later than every training issue, where cumulative counts and popularity would lie beyond the
#: values the FM was fitted on. Read from C++ (decide/benefit_planner_fit.hpp:
#: benefit_planner_default_behavior_field), the one definition.
DEFAULT_BEHAVIOR_FIELD = json.loads(_core.BENEFIT_PLANNER_DEFAULT_BEHAVIOR_FIELD_JSON)
INCREMENTAL_SOURCES = ("timing", "control")
DEFAULT_CUT_DAYS = int(_core.DEFAULT_CUT_DAYS)  # C++: kDefaultCutDays
# segment_field: the member's segment in training rows comes from preference models fitted at
# checkpoints this many days apart (the column name is C++'s kMemberSegmentColumn).
SEGMENT_CHECKPOINT_DAYS = int(_core.SEGMENT_CHECKPOINT_DAYS)
# benefit_level: pseudo expected redemptions pulling each benefit's factor toward 1 (C++:
# kBenefitLevelPrior).
BENEFIT_LEVEL_PRIOR = float(_core.BENEFIT_LEVEL_PRIOR)
MEMBER_SEGMENT = "member_segment"


def _config_error(message: str):
    return _core.ConfigError(message)


def _input_error(message: str):
    return _core.InputError(message)


@dataclass(frozen=True)
class PlanInputs:
    """What the planner is fed at one plan time: ``redemption_probability`` (members x
    benefits, float32, after the shrinkage), ``incremental_share`` (members x benefits) and
    ``order_value`` (per member)."""

    redemption_probability: np.ndarray
    incremental_share: np.ndarray
    order_value: np.ndarray


@renamed_keywords(users="user_table")
def with_attributes(pairs: pd.DataFrame, catalog, user_table=None) -> pd.DataFrame:
    """Adds to ``pairs`` (columns user, benefit, timestamp in epoch seconds) the benefit, member
    and context columns :func:`perkrec.redemption_samples` produces, so the FM's encoder sees
    the same columns at plan time as in training. ``user_table`` (a UserTable; ``users`` is its
    deprecated name) adds the member attributes."""
    from .fm import _face_value_band

    cat = catalog.to_frame()
    b = pairs["benefit"].to_numpy()
    for col in (
        "kind",
        "face_value",
        "threshold",
        "discount_rate",
        "validity_days",
        "scope",
        "channel",
    ):
        pairs[col] = cat[col].to_numpy()[b]
    pairs["face_value_band"] = _face_value_band(pairs["face_value"])
    t = pairs["timestamp"].to_numpy()
    if user_table is not None:
        table = user_table.to_frame()
        u = pairs["user"].to_numpy()
        for col in table.columns:
            if col == "signup_time":
                pairs["tenure_days"] = (t - table[col].to_numpy().astype(np.float64)[u]) / 86400.0
            else:
                pairs[col] = table[col].to_numpy()[u]
    stamp = pd.to_datetime(t, unit="s", utc=True)
    pairs["weekday"] = stamp.day_of_week
    pairs["hour"] = stamp.hour
    return pairs


class BenefitPlanner:
    """The fitted pipeline from an event log to a :class:`~perkrec.Plan`.

    ``policy``: a :class:`perkrec.Policy`, its JSON text or a dict (None: no rules, no budget).
    Model parameters (defaults = the demo's):

    - ``factors``, ``reg_linear``, ``reg_factors``, ``learning_rate``, ``seed``: the FM's;
      ``epochs`` (None: 10 with early stopping, else 6), ``early_stopping`` (keep the epoch with
      the best log-loss on the held-out issues, stop after ``early_stopping_rounds`` without
      improvement), ``fm_threads`` (1: bit-reproducible);
    - ``weighting``: "ipw" (inverse logged propensity) or "none";
    - ``shrink``: shrink the FM's member x benefit interaction on the held-out issues;
    - ``pooled``: add pooled member, member x kind and member x channel effects fitted on top of
      the FM, kept by their held-out slope (see the module docstring; on by default: +3.2 / +1.3
      / +0.3 points of the oracle at budgets 0.5 / 1 / 2 on programs it was not tuned on,
      BENCHMARKS.md);
    - ``preference_offset``: add the preference model's member x kind log-preference to logit
      P with a weight fitted on the held-out issues (0 when they do not support it; off by
      default: it helps at budget 2 but not at 0.5 / 1 on the bench's untuned programs);
    - ``incremental``: "timing" (purchase timing of the preference model) or "control" (the
      random control group); ``margin``: share of a member's median basket a redemption earns;
    - ``preference_params``: keyword arguments of :class:`perkrec.PreferenceModel`;
    - ``objective``, ``top_k``, ``method``: the :class:`perkrec.Planner`'s; ``num_threads``;
    - ``behavior_field``: the FM's behaviour field (a FeatureEncoder field dict of kind
      "behavior") when ``fit`` is given ``behavior=``; None = :data:`DEFAULT_BEHAVIOR_FIELD`
      (every item level and action). Giving one makes ``behavior=`` required in ``fit``.
    - ``segment_field``: the FM also gets the member's named segment (the preference model's
      default rules) as a categorical field, ``member_segment``: in each training and held-out
      row the segment as of the row's time (preference models fitted on the events before
      checkpoints every ``SEGMENT_CHECKPOINT_DAYS`` days from the log's start; "none" before
      the first), at plan time the stored preference model's segment (C++,
      decide/benefit_planner.hpp). The FM then learns how each segment answers each benefit.
      On by default: +2.0 / +2.8 / +2.8 points of the oracle at budgets 0.5 / 1 / 2 on six
      simulated programs never used before (better in 15 of 18 cases, one tie; BENCHMARKS.md); the fit
      adds one preference model fit per checkpoint.
    - ``benefit_level``: multiply the plan's P by a factor per benefit measured on the
      held-out issues: the benefit's redemptions over the FM's predictions relative to all
      held-out issues' (so the held-out window's own season cancels), pulled toward 1 by
      ``BENEFIT_LEVEL_PRIOR`` pseudo expected redemptions (C++ ``benefit_levels``,
      decide/calibration.hpp; stored in the model file, applied in plan and answer alike).
      On by default: +1.2 points of the oracle on six simulated programs never used before
      (better in 15 of 18 cases; +1.3 to +2.5 on the tuning programs, 17 of 18), though the
      plan's true spend comes no closer to its target (within ±10% in 12 of 18 cases either
      way; BENCHMARKS.md). Model files written before it load with it off.

    Bad parameters raise ConfigError naming the field here, before anything is fitted.
    Thread safety: ``fit`` needs exclusive access; ``plan`` may run from several threads.
    """

    def __init__(
        self,
        policy=None,
        *,
        factors: int = 8,
        epochs: Optional[int] = None,
        reg_linear: float = 1e-4,
        reg_factors: float = 1e-4,
        learning_rate: float = 0.05,
        early_stopping: bool = True,
        early_stopping_rounds: int = 2,
        fm_threads: int = 1,
        weighting: str = "ipw",
        shrink: bool = True,
        pooled: bool = True,
        preference_offset: bool = False,
        incremental: str = "timing",
        margin: float = 0.3,
        preference_params: Optional[dict] = None,
        objective: str = "incremental",
        top_k: int = 50,
        method: str = "dual",
        seed: int = 42,
        num_threads: int = 0,
        behavior_field: Optional[dict] = None,
        segment_field: bool = True,
        benefit_level: bool = True,
    ):
        from .fm import FM, FeatureEncoder
        from .plan import Planner
        from .preference import PreferenceModel

        if weighting not in WEIGHTINGS:
            raise _config_error(
                f"BenefitPlanner: weighting must be one of {WEIGHTINGS} (got {weighting!r})"
            )
        if incremental not in INCREMENTAL_SOURCES:
            raise _config_error(
                f"BenefitPlanner: incremental must be one of {INCREMENTAL_SOURCES} "
                f"(got {incremental!r})"
            )
        for name, value in (
            ("shrink", shrink),
            ("early_stopping", early_stopping),
            ("pooled", pooled),
            ("preference_offset", preference_offset),
            ("segment_field", segment_field),
            ("benefit_level", benefit_level),
        ):
            if not isinstance(value, (bool, np.bool_)):
                raise _config_error(f"BenefitPlanner: {name} must be True or False (got {value!r})")
        if isinstance(margin, bool) or not (
            isinstance(margin, (int, float, np.floating)) and 0 < margin <= 1
        ):
            raise _config_error(f"BenefitPlanner: margin must be in (0, 1] (got {margin!r})")
        if preference_params is not None and not isinstance(preference_params, dict):
            raise _config_error(
                f"BenefitPlanner: preference_params must be a dict (got "
                f"{type(preference_params).__name__})"
            )
        self.fm_params = dict(
            factors=factors,
            epochs=(10 if early_stopping else 6) if epochs is None else epochs,
            early_stopping_rounds=early_stopping_rounds if early_stopping else 0,
            reg_linear=reg_linear,
            reg_factors=reg_factors,
            learning_rate=learning_rate,
            num_threads=fm_threads,
            seed=seed,
        )
        if behavior_field is not None:
            if not isinstance(behavior_field, dict):
                raise _config_error(
                    f"BenefitPlanner: behavior_field must be a dict or None (got "
                    f"{type(behavior_field).__name__})"
                )
            behavior_field = {"name": "behavior", **behavior_field}
            if behavior_field.setdefault("kind", "behavior") != "behavior":
                raise _config_error(
                    f"BenefitPlanner: behavior_field: kind must be 'behavior' (got "
                    f"{behavior_field['kind']!r})"
                )
            FeatureEncoder([behavior_field])  # ConfigError naming the key, now
        self.preference_params = dict(preference_params or {})
        self.preference_params.setdefault("num_threads", num_threads)
        # The sub-objects validate their own parameters (ConfigError naming the field) now.
        FM(**self.fm_params)
        PreferenceModel(**self.preference_params)
        self.planner = Planner(
            policy, objective=objective, top_k=top_k, method=method, num_threads=num_threads
        )
        self.params = dict(
            early_stopping=bool(early_stopping),
            weighting=weighting,
            shrink=bool(shrink),
            pooled=bool(pooled),
            preference_offset=bool(preference_offset),
            incremental=incremental,
            margin=float(margin),
            objective=objective,
            top_k=int(top_k),
            method=method,
            seed=seed,
            num_threads=num_threads,
            behavior_field=behavior_field,
            segment_field=bool(segment_field),
            benefit_level=bool(benefit_level),
        )
        self._state: Optional[dict] = None
        self._segment_asof = None  # the last fit's (checkpoint seconds, segments per checkpoint)

    # --- fitting ---------------------------------------------------------------------------
    @renamed_keywords(users="user_table")
    def fit(
        self,
        events,
        catalog,
        user_table=None,
        cut_time=None,
        *,
        behavior=None,
        progress: ProgressArg = False,
    ) -> "BenefitPlanner":
        """Learns the plan's inputs from ``events`` (an EventLog), ``catalog`` and optionally
        ``user_table`` (a UserTable of the log's members; ``users`` is its deprecated name; without it the FM uses no member
        attributes and the policy no attribute rules). The redemption model sees only the
        events before ``cut_time`` (default: the log's last ``DEFAULT_CUT_DAYS`` days are held
        out); the issues after it serve early stopping and the shrinkage. ``progress``: True
        draws the FM's and the preference model's progress bars on stderr, a callable
        ``(stage, done, total)`` receives them. ``behavior``: (BehaviorLog, ItemCatalog,
        BenefitItems) of the same members and benefits: the FM gets ``behavior_field`` and the
        model file keeps the three (see the module docstring). The fit runs in C++
        (``perkrec::fit_benefit_planner``) with the GIL released; data that cannot be fitted
        (no issues before ``cut_time``, none after it for early stopping / the shrinkage / the
        benefit levels / the pooled effects, ``weighting="ipw"`` without logged propensities,
        ``incremental="control"`` without the control flag, sizes other than the log's, a
        user-table column of another type than the default field that reads it, e.g. a numeric
        ``tier``, a behaviour log with a member map other than the log's) raises InputError
        naming the field before anything is fitted. Returns self."""
        from .data import Catalog, EventLog, UserTable

        if not isinstance(events, EventLog):
            raise _input_error(
                f"BenefitPlanner.fit: events must be a perkrec.EventLog (got {type(events).__name__})"
            )
        if not isinstance(catalog, Catalog):
            raise _input_error(
                f"BenefitPlanner.fit: catalog must be a perkrec.Catalog (got {type(catalog).__name__})"
            )
        if user_table is not None and not isinstance(user_table, UserTable):
            raise _input_error(
                f"BenefitPlanner.fit: user_table must be a perkrec.UserTable or None (got "
                f"{type(user_table).__name__})"
            )
        behavior = self._check_behavior(behavior)
        t_cut = _core.NO_TIME if cut_time is None else time_seconds(cut_time, "cut_time")
        parts = (None, None, None) if behavior is None else tuple(b._impl for b in behavior)
        # The whole fit in C++ (decide/benefit_planner_fit.hpp), the GIL released.
        file, (times, segments), unclipped = _core.fit_benefit_planner(
            events._impl,
            catalog._impl,
            None if user_table is None else user_table._impl,
            t_cut,
            *parts,
            json.dumps(self._fit_config()),
            resolve_progress(progress),
        )
        state = type(self)._wrap(file)._state
        # the objects given to fit (the file holds equal copies)
        state.update(events=events, catalog=catalog, user_table=user_table, behavior=behavior)
        state["preference_weight_unclipped"] = unclipped  # the fit's, not in the file
        self._state = state
        self._segment_asof = (
            (times, [np.asarray(s, dtype=object) for s in segments])
            if self.params["segment_field"]
            else None
        )
        return self

    def _fit_config(self) -> dict:
        """The parameters as the C++ fit reads them (BenefitPlannerFitParams::from_config)."""
        return {
            "policy": json.loads(self.planner.policy.to_json()),
            "params": self.params,
            "fm_params": self.fm_params,
            "preference_params": self.preference_params,
        }

    def _segment_checkpoints(self, events, catalog, user_table, t_end: Optional[int] = None):
        """(checkpoint times in seconds, each member's default segment as of each): preference
        models fitted on the events strictly before each checkpoint, every
        SEGMENT_CHECKPOINT_DAYS days from the log's start, strictly before its end (C++:
        benefit_planner_segment_checkpoints; ``t_end`` is the log's end, kept for callers)."""
        times, segments = _core.benefit_planner_segment_checkpoints(
            events._impl,
            catalog._impl,
            None if user_table is None else user_table._impl,
            json.dumps(self._fit_config()),
        )
        return times, [np.asarray(s, dtype=object) for s in segments]

    def with_member_segment(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` (redemption samples: user, timestamp, ...) with the member's segment as of
        each row's time in ``member_segment``, as the training rows have it, after ``fit`` with
        ``segment_field`` (the checkpoints are kept in memory, not in the model file); else
        ``rows`` unchanged. For scoring logged issues with ``encoder`` and ``fm``. InputError
        when ``rows`` is not a DataFrame with ``user`` and ``timestamp`` columns."""
        if not isinstance(rows, pd.DataFrame) or not {"user", "timestamp"} <= set(rows.columns):
            raise _input_error(
                "BenefitPlanner.with_member_segment: rows must be a DataFrame with columns "
                f"'user' and 'timestamp' (got {type(rows).__name__})"
            )
        return self._with_segment(rows)

    def _with_segment(self, rows: pd.DataFrame) -> pd.DataFrame:
        if self._segment_asof is None:
            return rows
        times, segments = self._segment_asof
        which = np.searchsorted(times, rows["timestamp"].to_numpy(), side="right") - 1
        users = rows["user"].to_numpy()
        out = np.full(len(rows), "none", dtype=object)
        for i, seg in enumerate(segments):
            sel = (which == i) & (users >= 0) & (users < len(seg))
            out[sel] = seg[users[sel]]
        rows = rows.copy()
        rows[MEMBER_SEGMENT] = out
        return rows

    def _check_behavior(self, behavior):
        """``behavior`` as a tuple after its type check, or None. The C++ fit checks it against
        the event log (sizes, member map; InputError naming what differs) and a
        ``behavior_field`` without it."""
        from .behavior import _behavior_triple

        if behavior is None:
            return None
        _behavior_triple(behavior, "BenefitPlanner.fit")
        return tuple(behavior)

    # --- the fitted parts ------------------------------------------------------------------
    def _require_fitted(self, method: str) -> dict:
        if self._state is None:
            raise _input_error(
                f"BenefitPlanner.{method}: not fitted (call fit or BenefitPlanner.load first)"
            )
        return self._state

    @property
    def fitted(self) -> bool:
        return self._state is not None

    @property
    def fm(self):
        """The redemption FM (its ``encoder`` attached)."""
        return self._require_fitted("fm")["fm"]

    @property
    def encoder(self):
        return self.fm.encoder

    @property
    def preference(self):
        return self._require_fitted("preference")["preference"]

    @property
    def catalog(self):
        return self._require_fitted("catalog")["catalog"]

    @property
    def events(self):
        return self._require_fitted("events")["events"]

    @property
    def user_table(self):
        """The UserTable given to fit, or None."""
        return self._require_fitted("user_table")["user_table"]

    users = renamed_property("user_table", "BenefitPlanner.users")

    @property
    def behavior(self):
        """(BehaviorLog, ItemCatalog, BenefitItems) given to fit, or None."""
        return self._require_fitted("behavior").get("behavior")

    @property
    def order_value(self) -> np.ndarray:
        return self._require_fitted("order_value")["order_value"]

    @property
    def pooled_effects(self):
        """The fitted pooled member effects (intercept, slope, member, attribute_effect, ...;
        C++ PooledMemberEffects), or None without ``pooled``."""
        return self._require_fitted("pooled_effects").get("pooled")

    @property
    def benefit_level(self) -> Optional[np.ndarray]:
        """The per-benefit level factors multiplying P (``benefit_level``), None when off."""
        return self._require_fitted("benefit_level").get("benefit_level")

    @property
    def preference_weight(self) -> Optional[float]:
        """The fitted weight of the preference offset (in [0, 1]), or None without
        ``preference_offset``."""
        return self._require_fitted("preference_weight").get("preference_weight")

    @property
    def cut_time(self) -> pd.Timestamp:
        return pd.Timestamp(self._require_fitted("cut_time")["cut_time"], unit="s", tz="UTC")

    @property
    def end_time(self) -> pd.Timestamp:
        return pd.Timestamp(self._require_fitted("end_time")["end_time"], unit="s", tz="UTC")

    # --- planning ---------------------------------------------------------------------------
    def _core(self) -> "_core.BenefitPlannerCore":
        """The C++ BenefitPlanner (decide/benefit_planner.hpp) over the fitted parts, built once."""
        state = self._require_fitted("plan")
        if state.get("core") is None:
            file = state.get("file") or self._file("plan")
            state["core"] = _core.BenefitPlannerCore(file, -1)
        return state["core"]

    def _time(self, at) -> int:
        state = self._require_fitted("plan")
        return state["end_time"] if at is None else time_seconds(at, "at")

    def _events_impl(self, events, method: str):
        """A newer EventLog of the same members and benefits (None: the fitted log)."""
        from .data import EventLog

        if events is None:
            return None
        if not isinstance(events, EventLog):
            raise _input_error(
                f"BenefitPlanner.{method}: events must be a perkrec.EventLog or None (got "
                f"{type(events).__name__})"
            )
        return events._impl

    def _behavior_impl(self, behavior, method: str):
        """A newer BehaviorLog of the stored items (None: the stored one)."""
        from .behavior import BehaviorLog

        if behavior is None:
            return None
        if not isinstance(behavior, BehaviorLog):
            raise _input_error(
                f"BenefitPlanner.{method}: behavior must be a perkrec.BehaviorLog or None (got "
                f"{type(behavior).__name__})"
            )
        self._require_fitted(method)
        return behavior._impl  # its member map is checked in C++ (plan, prepare)

    def inputs(self, at=None, *, events=None, behavior=None) -> PlanInputs:
        """The planner's inputs at ``at`` (default: the end of the log) as dense members x
        benefits matrices: the FM's P for every (member, benefit), shrunk when fitted with
        ``shrink`` (scored in C++, block by block), the incremental share and the order
        values. ``events``, ``behavior``: newer logs for the features (see :meth:`plan`)."""
        from .plan import incremental_share

        state = self._require_fitted("inputs")
        t = self._time(at)
        core, log = self._core(), self._events_impl(events, "inputs")
        P, _ = core.redemption_probability(t, log, self._behavior_impl(behavior, "inputs"))
        if self.params["incremental"] == "control":
            S = state["incremental_share"].reshape(P.shape)
        else:
            S = incremental_share(self.preference, self.catalog)
        return PlanInputs(P, S, state["order_value"])

    def plan(
        self,
        at=None,
        *,
        budget: Optional[float] = None,
        inputs: Optional[PlanInputs] = None,
        events=None,
        behavior=None,
        users=None,
        user_ids=None,
        level=None,
    ):
        """The budgeted :class:`~perkrec.Plan` at ``at`` (default: the end of the log) under the
        policy (``budget`` overrides its budget).

        A pilot wave (README, "A pilot wave"): ``users`` (a boolean mask over the fitted
        members, or their row indices) or ``user_ids`` (their ids, as the plan's ``member``
        column shows them) plans for some members only (the others get no candidate), and
        ``level`` (finite, > 0) multiplies their P (after the benefit levels, capped at 1),
        e.g. :func:`perkrec.pilot_level` of a pilot's redemptions. Both apply in C++ to the P
        of the whole plan (a member's P before the level is the same as in a plan of
        everyone); InputError naming ``users`` / ``user_ids`` (a mask of another length, an
        index out of range, an unknown id, both given) or ``level`` before any work.

        The whole step runs in C++ with the GIL released (decide/benefit_planner.hpp): every
        (member, benefit) row at ``at`` encoded and scored by the FM block by block, the
        interaction shrinkage, the incremental share, the compiled policy and the Planner; no
        members x benefits float64 matrix. ``events``: a newer EventLog of the same members and
        benefits (e.g. the fitted log plus the events since) whose history the features and the
        caps read, without refitting. ``behavior``: likewise a newer BehaviorLog over the fitted
        item catalog's items (fitted with behaviour) for the behaviour features and the reasons.
        ``inputs``: precomputed :meth:`inputs` at the same time
        (then planned through :class:`perkrec.Planner`; ``plan.info["inputs"]`` keeps them)."""
        from .data import UserTable
        from .plan import _plan_from_result
        from .policy import CompiledPolicy

        self._require_fitted("plan")
        t = self._time(at)
        log = self._events_impl(events, "plan")
        behavior_log = self._behavior_impl(behavior, "plan")
        user_table = self.user_table
        if user_table is None:
            user_table = UserTable(self.events.user_ids)
        flags = self._user_flags(users, user_ids, user_table)
        if level is not None and (
            isinstance(level, (bool, np.bool_))
            or not isinstance(level, (int, float, np.integer, np.floating))
        ):
            raise _input_error(f"BenefitPlanner.plan: level must be a number (got {level!r})")
        if inputs is not None:
            if flags is not None or level is not None:
                raise _input_error(
                    "BenefitPlanner.plan: users, user_ids and level apply to the C++ plan path "
                    "(got them with inputs=; pass the scoped P to perkrec.Planner instead)"
                )
            if not isinstance(inputs, PlanInputs):
                raise _input_error(
                    f"BenefitPlanner.plan: inputs must be a PlanInputs (got {type(inputs).__name__})"
                )
            pref = self.preference
            plan = self.planner.plan(
                self.catalog,
                user_table,
                t,
                redemption_probability=inputs.redemption_probability,
                incremental_share=inputs.incremental_share,
                order_value=inputs.order_value,
                segments=pref.segments(),
                history=self.events if events is None else events,
                preference=pref,
                budget=budget,
                behavior=(
                    self.behavior
                    if behavior is None or self.behavior is None
                    else (behavior,) + tuple(self.behavior[1:])
                ),
            )
            plan.info["inputs"] = inputs
            return plan
        compiled, result, slope = self._core().plan(
            t,
            float("nan") if budget is None else float(budget),
            log,
            behavior_log,
            flags,
            1.0 if level is None else float(level),
        )
        compiled = CompiledPolicy(compiled, [str(b) for b in self.catalog.ids.ids], user_table)
        plan = _plan_from_result(compiled, self.catalog, user_table, result)
        plan.info["slope"] = slope
        return plan

    def _user_flags(self, users, user_ids, user_table) -> Optional[np.ndarray]:
        """``plan``'s ``users`` / ``user_ids`` as one uint8 flag per fitted member (None:
        every member)."""
        if users is not None and user_ids is not None:
            raise _input_error("BenefitPlanner.plan: give users or user_ids, not both")
        n = self.events.n_users
        if users is not None:
            values = np.asarray(users)
            if values.dtype == np.bool_:
                if values.shape != (n,):
                    raise _input_error(
                        f"BenefitPlanner.plan: users: a boolean mask needs one flag per fitted "
                        f"member (got shape {values.shape}, expected ({n},))"
                    )
                return np.ascontiguousarray(values, dtype=np.uint8)
            index = int_array(values, np.int64, "BenefitPlanner.plan: users")
            bad = np.flatnonzero((index < 0) | (index >= n))
            if len(bad):
                raise _input_error(
                    f"BenefitPlanner.plan: users[{bad[0]}] must be a member index in [0, {n}) "
                    f"(got {index[bad[0]]})"
                )
            uniq, counts = np.unique(index, return_counts=True)
            if len(uniq) < len(index):
                raise _input_error(
                    f"BenefitPlanner.plan: users: member index {uniq[counts > 1][0]} is repeated "
                    "(users takes distinct member indices or a boolean mask; for 0/1 arms, e.g. "
                    "assign_holdout's, pass arms == 1)"
                )
        elif user_ids is not None:
            try:
                index = user_table.user_ids.lookup(np.asarray(user_ids).ravel())
            except _core.InputError as exc:
                raise _input_error(f"BenefitPlanner.plan: user_ids: {exc}") from None
        else:
            return None
        flags = np.zeros(n, dtype=np.uint8)
        flags[index] = 1
        return flags

    @renamed_keywords(member="user")
    def answer(self, user, at=None, *, n: int = 1) -> dict:
        """One member's decision at ``at`` (default: the end of the log), as a server answers a
        request: the member's eligible benefits ranked as the plan ranks them (top ``n``), each
        with its probability, value, cost, send time, validity and reasons (JSON text), from
        the C++ BenefitPlanner::answer with the shrinkage measured at ``at``. ``user``: the
        member's row index (``member`` is its deprecated name). Returns {"benefits": [...], "blocked": reason name or "none"}."""
        t = self._time(at)
        core = self._core()
        state = self._require_fitted("answer")
        cache = state.get("answer_state")
        if cache is None or cache.time != t:
            cache = state["answer_state"] = core.prepare(t)
        benefits, blocked, _ = core.answer(
            cache, int_scalar(user, "user"), t, int_scalar(n, "n", 1)
        )
        ids = [str(b) for b in self.catalog.ids.ids]
        for b in benefits:
            b["benefit_id"] = ids[b["benefit"]]
        return {"benefits": benefits, "blocked": blocked}

    # --- files -----------------------------------------------------------------------------
    def _file(self, method: str) -> _core.BenefitPlannerFile:
        """The fitted pipeline's model file (what fit produced or load read)."""
        return self._require_fitted(method)["file"]

    def to_bytes(self) -> bytes:
        """The fitted pipeline as model-file bytes (what save writes and pickle uses)."""
        return self._file("to_bytes").to_bytes()

    def save(self, path) -> None:
        """Writes the fitted pipeline as one model file (kind "BenefitPlanner"): the policy,
        the parameters, the FM with its encoder, the preference model, the catalog, the event
        log, the user table, the behaviour given to fit and the per-member / held-out arrays."""
        import os

        self._file("save").save(os.fspath(path))

    @classmethod
    def _wrap(cls, impl: _core.BenefitPlannerFile) -> "BenefitPlanner":
        from .behavior import BehaviorLog, BenefitItems, ItemCatalog
        from .data import Catalog, EventLog, UserTable
        from .fm import FM
        from .preference import PreferenceModel

        config = json.loads(impl.config_json)
        try:
            params = dict(config["params"])
            fm_params = dict(config["fm_params"])
            kwargs = dict(
                factors=fm_params["factors"],
                epochs=fm_params["epochs"],
                reg_linear=fm_params["reg_linear"],
                reg_factors=fm_params["reg_factors"],
                learning_rate=fm_params["learning_rate"],
                early_stopping=params["early_stopping"],
                early_stopping_rounds=fm_params["early_stopping_rounds"],
                fm_threads=fm_params["num_threads"],
                weighting=params["weighting"],
                shrink=params["shrink"],
                # files written before these options have neither key
                pooled=params.get("pooled", False),
                preference_offset=params.get("preference_offset", False),
                incremental=params["incremental"],
                margin=params["margin"],
                preference_params=config["preference_params"],
                objective=params["objective"],
                top_k=params["top_k"],
                method=params["method"],
                seed=params["seed"],
                num_threads=params["num_threads"],
                behavior_field=params.get("behavior_field"),
                segment_field=params.get("segment_field", False),
                benefit_level=params.get("benefit_level", False),
            )
            obj = cls(config["policy"], **kwargs)
            share = impl.incremental_share
            if (params["incremental"] == "control") != (len(share) > 0):
                raise ValueError(
                    f"incremental {params['incremental']!r} with {len(share)} stored shares"
                )
            if params["shrink"] and len(impl.holdout_user) == 0:
                raise ValueError("shrink without held-out issues")
            if obj.params["pooled"] != (impl.pooled is not None):
                raise ValueError(f"pooled {obj.params['pooled']} with stored effects {impl.pooled}")
            levels = impl.benefit_level
            if obj.params["benefit_level"] != (len(levels) > 0):
                raise ValueError(
                    f"benefit_level {obj.params['benefit_level']} with {len(levels)} stored levels"
                )
            if obj.params["preference_offset"] != (impl.preference_weight is not None):
                raise ValueError(
                    f"preference_offset {obj.params['preference_offset']} with stored weight "
                    f"{impl.preference_weight}"
                )
            cut_time, end_time = int(config["cut_time"]), int(config["end_time"])
        except (
            KeyError,
            TypeError,
            ValueError,
        ) as exc:  # ConfigError and InputError are ValueErrors
            error = _core.ModelFormatError(f"BenefitPlanner.load: inconsistent config: {exc}")
            error.code = "invalid_content"
            raise error from exc
        weight = impl.holdout_weight
        user_table = impl.users
        holdout = {
            "user": impl.holdout_user,
            "benefit": impl.holdout_benefit,
            "predicted": impl.holdout_predicted,
            "redeemed": impl.holdout_redeemed,
            "weight": weight if len(weight) else None,
        }
        if not params["shrink"]:
            holdout = {k: None for k in holdout}
        obj._state = {
            "fm": FM._wrap(impl.fm),
            "preference": PreferenceModel._wrap(impl.preference),
            "catalog": Catalog._wrap(impl.catalog),
            "events": EventLog._wrap(impl.events),
            "user_table": None if user_table is None else UserTable._wrap(user_table),
            "order_value": impl.order_value,
            "holdout": holdout,
            "incremental_share": share if len(share) else None,
            "cut_time": cut_time,
            "end_time": end_time,
            "pooled": impl.pooled,
            "preference_weight": impl.preference_weight,
            "preference_weight_unclipped": None,
            "benefit_level": levels if len(levels) else None,
            "behavior": None,
            "file": impl,
        }
        stored = impl.behavior
        fields = obj._state["fm"].encoder.fields if obj._state["fm"].encoder is not None else []
        if stored is None and any(f.get("kind") == "behavior" for f in fields):
            error = _core.ModelFormatError(
                "BenefitPlanner.load: the encoder's behaviour field needs the stored behaviour "
                "(the file has none)"
            )
            error.code = "invalid_content"
            raise error
        if stored is not None:
            log, items, applies = stored
            obj._state["behavior"] = (
                BehaviorLog._wrap(log),
                ItemCatalog._wrap(items),
                BenefitItems._wrap(applies),
            )
        return obj

    @classmethod
    def from_bytes(cls, data: bytes) -> "BenefitPlanner":
        from .io import loads

        obj = loads(data)
        if not isinstance(obj, cls):
            error = _core.ModelFormatError(
                f"BenefitPlanner.from_bytes: the bytes hold a {type(obj).__name__}"
            )
            error.code = "wrong_kind"
            raise error
        return obj

    @classmethod
    def load(cls, path) -> "BenefitPlanner":
        """The pipeline saved at ``path``; ModelFormatError for a damaged or foreign file."""
        from .io import _read_file

        return cls.from_bytes(_read_file(path, "BenefitPlanner.load"))

    def __reduce__(self):
        from .io import loads

        return (loads, (self.to_bytes(),))

    def __repr__(self) -> str:
        if self._state is None:
            return "BenefitPlanner(not fitted)"
        return (
            f"BenefitPlanner({self.events.n_users} members, {len(self.catalog)} benefits, cut "
            f"{self.cut_time:%Y-%m-%d}, end {self.end_time:%Y-%m-%d})"
        )


_register_kind(
    _core.BenefitPlannerFile, BenefitPlanner
)  # perkrec.load reads a saved BenefitPlanner
