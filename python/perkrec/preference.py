"""Member preference vectors over benefit attributes, named segments, and when to send.

    wide_table(log, catalog, cut)        one row of behavioural aggregates per member
    PreferenceModel().fit(log, catalog, cut, user_table=users)   (users: optional attributes)
        .preferences()                   members x dimensions lifts (1 = like the population)
        .intervals()                     (lower, upper) credible bounds, same shape
        .segments(rules=None)            named segments by editable JSON rules
        .clusters(k)                     seeded k-means++ clusters with descriptions
        .timing()                        best send slot, next purchase, send date, validity
        .score / .recommend              a content-based recommender (the _Recommender contract)

See include/perkrec/models/preference.hpp for the estimators.
"""

from __future__ import annotations

import json
from typing import Union

import numpy as np
import pandas as pd

from . import _core
from ._progress import ProgressArg, resolve_progress
from ._util import (
    int_scalar,
    renamed_function,
    renamed_keywords,
    renamed_property,
    time_seconds,
)
from .data import Catalog, EventLog, UserTable, _expect
from .models import _Recommender

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _member_index(obj) -> pd.Index:
    ids = obj.user_ids
    if ids is not None:
        return pd.Index(ids.to_external(np.arange(obj.n_users, dtype=np.int32)), name="user")
    return pd.RangeIndex(obj.n_users, name="user")


def wide_table(
    log: EventLog,
    catalog: Catalog,
    cut_time,
    *,
    face_value_edges=(10.0, 30.0),
    threshold_edges=(100.0, 300.0),
    typical_basket: float = 60.0,
    num_threads: int = 0,
) -> pd.DataFrame:
    """One row per member with aggregates of the events strictly before ``cut_time`` (seconds
    or anything pandas reads as a time; naive means UTC). Columns are documented in
    include/perkrec/features/wide_table.hpp: counts, claim / redemption / expiry rates overall
    and per benefit dimension ("claim_rate:kind:points"), median days from claim to
    redemption, stacked-order share, recency / frequency / monetary value, activity, tenure,
    inter-order regularity, points earned and redeemed. Members without events before the cut
    get zero counts and NaN rates."""
    _expect(log, EventLog, "log", "wide_table")
    _expect(catalog, Catalog, "catalog", "wide_table")
    params = {
        "face_value_edges": list(map(float, face_value_edges)),
        "threshold_edges": list(map(float, threshold_edges)),
        "typical_basket": float(typical_basket),
        "num_threads": int(num_threads),
    }
    names, columns = _core.wide_table(
        log._impl, catalog._impl, time_seconds(cut_time, "cut_time"), json.dumps(params)
    )
    return pd.DataFrame(dict(zip(names, columns)), index=_member_index(log))


def default_segment_rules(absolute: bool = False, thresholds: bool = False) -> dict:
    """The documented default segment rules (a dict in the JSON schema of
    include/perkrec/models/segments.hpp); edit and pass to ``PreferenceModel.segments``.
    new_member is a tenure rule; dormant, threshold_discount_sensitive, points_redemption_active
    and high_face_value_seeker are scored segments (weights on log ratios of member features
    and preference lifts to the program's medians; the highest score wins, the default
    discount_indifferent_loyal scores 0), so they carry over to programs with other activity
    levels. ``rules["calibration"] = {"strength": 1.0, "iterations": 1}`` calibrates the
    scores per program by the model's latent classes (an option, off in the defaults and
    when the key is absent: on programs not used for choosing it, it moved agreement with the
    planted archetypes by -0.006 to +0.007; BENCHMARKS.md). ``thresholds=True`` gives the relative threshold rules that were the defaults
    before (multiples of the median active member's value), ``absolute=True`` the absolute
    rules before those (tuned on one simulated program)."""
    if absolute and thresholds:
        raise _core.ConfigError(
            "default_segment_rules: give absolute=True or thresholds=True, not both"
        )
    if absolute:
        return json.loads(_core.absolute_segment_rules())
    if thresholds:
        return json.loads(_core.threshold_segment_rules())
    return json.loads(_core.default_segment_rules())


def _rules_json(rules) -> str:
    if rules is None:
        return _core.default_segment_rules()
    text = rules if isinstance(rules, str) else json.dumps(rules)
    return _core.check_segment_rules(text)


class PreferenceModel(_Recommender):
    """Empirical-Bayes preference vectors over benefit attribute dimensions, with credible
    intervals, segments, clusters and timing (include/perkrec/models/preference.hpp).

    >>> model = PreferenceModel().fit(program.events, program.catalog, cut, user_table=program.users)
    >>> model.preferences().loc[user, "kind:points"]        # 1.8 = 80% above the population
    >>> model.segments()                                    # DataFrame: segment, description
    >>> model.timing()                                      # best slot, next purchase, ...
    """

    _core_class = _core.PreferenceModel

    @renamed_keywords(member_time_columns="user_time_columns")
    def __init__(
        self,
        half_life_days: float = 365.0,
        prior_strength: float = 0.0,
        latent_classes: int = 8,
        em_iterations: int = 20,
        interval: float = 0.9,
        timing_prior_strength: float = 8.0,
        horizon_days: float = 30.0,
        response: str = "claimed",
        face_value_edges=(10.0, 30.0),
        threshold_edges=(100.0, 300.0),
        typical_basket: float = 60.0,
        user_time_columns=("signup_time",),
        seed: int = 42,
        num_threads: int = 0,
    ):
        params = {
            "half_life_days": float(half_life_days),
            "prior_strength": float(prior_strength),
            "latent_classes": int(latent_classes),
            "em_iterations": int(em_iterations),
            "interval": float(interval),
            "timing_prior_strength": float(timing_prior_strength),
            "horizon_days": float(horizon_days),
            "response": str(response),
            "face_value_edges": list(map(float, face_value_edges)),
            "threshold_edges": list(map(float, threshold_edges)),
            "typical_basket": float(typical_basket),
            "user_time_columns": [str(c) for c in user_time_columns],
            "seed": int(seed),
            "num_threads": int(num_threads),
        }
        self._impl = _core.PreferenceModel(json.dumps(params))

    @renamed_keywords(users="user_table")
    def fit(
        self,
        log: EventLog,
        catalog: Catalog,
        cut_time=None,
        user_table=None,
        *,
        progress: ProgressArg = False,
    ) -> "PreferenceModel":
        """Learns from the events of ``log`` strictly before ``cut_time`` (default: after the
        last event). Member and benefit ids of the log are attached to the model.

        ``user_table`` (optional; ``users`` is its deprecated name): the member table as of the
        cut, a UserTable or a DataFrame indexed by member id. Member attributes become covariates of the latent-class prior, so the
        mixing weights depend on the member (multinomial logistic on one-hot categorical and
        standardized numeric columns, refit in every EM sweep). Rows are matched to the log's
        members by id: rows of members the log does not know are ignored, members without a
        row get missing attributes (numeric: the mean plus a ``<column>:missing`` indicator;
        categorical: no category), and a row whose ``user_time_columns`` time (e.g.
        ``signup_time``) lies at or after the cut, a member who joined after the cut, is
        ignored, so attributes of future members never change the fit. Time columns enter as
        days before the cut. The counts are in ``user_table_report``. Without ``user_table`` the
        model is fitted exactly as before."""
        _expect(log, EventLog, "log", "PreferenceModel.fit")
        _expect(catalog, Catalog, "catalog", "PreferenceModel.fit")
        cut = (
            int(log._impl.max_time) + 1 if cut_time is None else time_seconds(cut_time, "cut_time")
        )
        if user_table is not None and not isinstance(user_table, pd.DataFrame):
            _expect(user_table, UserTable, "user_table", "PreferenceModel.fit")
        if isinstance(user_table, pd.DataFrame):
            user_table = UserTable.from_frame(user_table)
        progress = resolve_progress(progress)
        if user_table is None:
            self._impl.fit(log._impl, catalog._impl, cut, progress)
        else:
            self._impl.fit(log._impl, catalog._impl, cut, user_table._impl, progress)
        user_ids, benefit_ids = log.user_ids, log.benefit_ids
        if user_ids is not None or benefit_ids is not None:
            self.set_ids(user_ids, benefit_ids)
        return self

    @property
    def user_table_report(self) -> dict:
        """How the member table of the last fit lined up with the log: rows, matched,
        unknown_to_log (ignored), joined_after_cut (ignored), without_row (log members with
        missing attributes), missing_values (among the used rows). All zero without a table."""
        return dict(self._impl.user_table_report())

    member_table_report = renamed_property(
        "user_table_report", "PreferenceModel.member_table_report"
    )

    @property
    def covariate_names(self) -> list:
        """Covariate features of the class prior ("col" or "col=category"; empty without users)."""
        return list(self._impl.covariate_names)

    def covariate_weights(self) -> pd.DataFrame:
        """Class-prior weights [class x (intercept + covariates)]; empty without users."""
        self._require_fitted("covariate_weights")
        w = self._impl.covariate_weights()
        return pd.DataFrame(w, columns=(["intercept"] + self.covariate_names) if w.shape[1] else [])

    @renamed_keywords(users="user_table")
    def class_prior(self, user_table) -> np.ndarray:
        """Mixing weights pi_k(member) [rows of ``user_table`` (a UserTable; ``users`` is its
        deprecated name) x n_classes]."""
        self._require_fitted("class_prior")
        return self._impl.class_prior(
            _expect(user_table, UserTable, "user_table", "PreferenceModel.class_prior")._impl
        )

    # --- preferences -------------------------------------------------------------------------
    @property
    def dimension_names(self) -> list:
        return list(self._impl.dimension_names)

    @property
    def cut_time(self) -> pd.Timestamp:
        return pd.Timestamp(self._impl.cut_time, unit="s", tz="UTC")

    def _require_fitted(self, method: str) -> None:
        if not self._impl.fitted:
            raise _core.InputError(f"PreferenceModel.{method}: the model is not fitted")

    def _frame(self, values: np.ndarray, columns) -> pd.DataFrame:
        self._require_fitted("preferences")
        return pd.DataFrame(values, index=_member_index(self), columns=list(columns))

    def preferences(self) -> pd.DataFrame:
        """Members x dimensions: claim rate relative to the population (1 = average)."""
        return self._frame(self._impl.preferences(), self.dimension_names)

    def intervals(self, level=None):
        """(lower, upper) DataFrames of the credible interval at ``level`` (default: the
        model's ``interval``); any level in (0, 1), from the stored posterior sd."""
        if level is None:
            return (
                self._frame(self._impl.lower(), self.dimension_names),
                self._frame(self._impl.upper(), self.dimension_names),
            )
        self._require_fitted("intervals")
        lower, upper = self._impl.intervals(float(level))
        return self._frame(lower, self.dimension_names), self._frame(upper, self.dimension_names)

    def user_profile(self, user, interests=None, n: int = 5, level: float = 0.9) -> pd.DataFrame:
        """One member's preference, lower and upper bound per dimension (``user`` is a dense
        index, or an external id when ids are attached).

        ``interests``: a fitted ``InterestModel`` (or a sequence of them, one per item level:
        category, brand, ...) adds the member's ``n`` values of highest interest lift, best
        first, as rows named ``"<level>: <value>"`` next to the benefit dimensions: preference
        = the posterior share of the member's activity there, lower / upper = its interval at
        ``level``; column ``lift`` holds the share over the population's (NaN on the benefit
        dimensions). The member is found in each interest model by its external id (or its
        dense index when neither model holds ids); one it does not know is an InputError."""
        row = self._row(user)
        profile = pd.DataFrame(
            {
                "preference": self._impl.preferences()[row],
                "lower": self._impl.lower()[row],
                "upper": self._impl.upper()[row],
            },
            index=pd.Index(self.dimension_names, name="dimension"),
        )
        if interests is None:
            return profile
        from .interest import InterestModel

        models = [interests] if isinstance(interests, InterestModel) else list(interests)
        parts = [profile]
        ids = self.user_ids
        external = ids.to_external([row])[0] if ids is not None else row
        for model in models:
            if not isinstance(model, InterestModel):
                raise _core.InputError(
                    "PreferenceModel.user_profile: interests must be a fitted InterestModel "
                    f"or a sequence of them (got {type(model).__name__})"
                )
            top = model.top(n, users=[model._member_index(external, "user_profile")], level=level)
            name = model.params["level"]
            share = model.population_share.reindex(top[name]).to_numpy()
            parts.append(
                pd.DataFrame(
                    {
                        "preference": top["share"].to_numpy(),
                        "lower": top["lower"].to_numpy() * share,
                        "upper": top["upper"].to_numpy() * share,
                        "lift": top["lift"].to_numpy(),
                    },
                    index=pd.Index([f"{name}: {v}" for v in top[name]], name="dimension"),
                )
            )
        return pd.concat(parts)

    def segment_interests(self, interests, n: int = 5) -> pd.DataFrame:
        """What each preference segment is most interested in: ``interests.by_segment`` (a
        fitted ``InterestModel``) over this model's ``segments()`` — columns ``segment``,
        ``rank``, the level's value, ``mean_lift``, ``members``."""
        from .interest import InterestModel

        if not isinstance(interests, InterestModel):
            raise _core.InputError(
                "PreferenceModel.segment_interests: interests must be a fitted InterestModel "
                f"(got {type(interests).__name__})"
            )
        segments = self.segments()["segment"]
        if self.user_ids is None:
            segments = segments.to_numpy(dtype=object)
        return interests.by_segment(segments, n=n)

    member_profile = renamed_function(user_profile, "PreferenceModel.member_profile")

    def features(self) -> pd.DataFrame:
        """The member features segment rules can use (recency_days, claim_rate_lift, ...)."""
        return self._frame(self._impl.features(), self._impl.feature_names)

    def memberships(self) -> np.ndarray:
        """Members x latent classes posterior memberships of the pooled prior."""
        return self._impl.memberships()

    @property
    def population_rate(self) -> pd.Series:
        return pd.Series(
            self._impl.population_rate(), index=self.dimension_names, name="population_rate"
        )

    @property
    def prior_strength(self) -> pd.Series:
        return pd.Series(
            self._impl.prior_strength(), index=self.dimension_names, name="prior_strength"
        )

    @property
    def individual_spread(self) -> pd.DataFrame:
        """Variance of the members' claim rates around their latent class's rate (classes x
        dimensions, rate scale): the spread behind the credible intervals. Empty for a model
        saved before it was stored."""
        self._require_fitted("individual_spread")
        values = np.asarray(self._impl.individual_spread(), dtype=np.float64)
        if values.size == 0:
            return pd.DataFrame(columns=self.dimension_names)
        return pd.DataFrame(
            values.reshape(-1, len(self.dimension_names)), columns=self.dimension_names
        )

    def _row(self, user) -> int:
        """Dense index of ``user``: an external id when ids are attached, else an index."""
        if np.ndim(user) != 0 or isinstance(user, (bool, np.bool_)):
            raise _core.InputError(
                f"PreferenceModel: user must be one member id (got {user!r:.40})"
            )
        ids = self.user_ids
        if ids is not None:
            return int(ids.lookup([user])[0])
        return int_scalar(user, "user", 0, max(self.n_users - 1, 0))

    # --- segments and clusters ---------------------------------------------------------------
    def segments(self, rules: Union[None, str, dict] = None) -> pd.DataFrame:
        """Named segment per member under ``rules`` (a dict or JSON text in the schema of
        include/perkrec/models/segments.hpp; None = ``default_segment_rules()``). Columns:
        segment (categorical), description, confidence (the probability of that segment under
        the member's posterior; see PreferenceModel::segments). With ``min_confidence`` > 0 in
        the rules, members whose most probable segment falls below it get the ``uncertain``
        segment. ``frame.attrs["resolved_rules"]`` holds the rules with every relative
        threshold replaced by its value on this program."""
        names, descriptions, codes, confidence, resolved = self._impl.segments(_rules_json(rules))
        segment = pd.Categorical.from_codes(codes.astype(np.int64), list(names))
        desc = np.asarray(descriptions, dtype=object)[codes]
        frame = pd.DataFrame(
            {"segment": segment, "description": desc, "confidence": confidence},
            index=_member_index(self),
        )
        frame.attrs["resolved_rules"] = json.loads(resolved)
        return frame

    def segment_table(self, rules=None) -> pd.DataFrame:
        """Segment sizes, descriptions and mean preference per dimension (float32, NaN for a
        segment without members; the means in C++, ``PreferenceModel::group_preferences``)."""
        seg = self.segments(rules)
        segment = seg["segment"]
        names = segment.cat.categories
        codes = np.ascontiguousarray(segment.cat.codes.to_numpy(), dtype=np.int32)
        means = self._impl.group_preferences(codes, len(names))
        index = pd.CategoricalIndex(names, categories=names, name="segment")
        table = pd.DataFrame(
            means.astype(np.float32), index=index, columns=list(self.dimension_names)
        )
        members = np.bincount(codes[codes >= 0], minlength=len(names)).astype(np.int64)
        table.insert(0, "members", members)
        first = seg.drop_duplicates("segment").set_index("segment")["description"]
        table.insert(1, "description", first.reindex(table.index).fillna(""))
        return table

    def clusters(self, k: int = 6, max_iterations: int = 50):
        """Seeded k-means++ on the log preference vectors: (assignment Series, centroids
        DataFrame of lifts, descriptions list naming each cluster's most over-represented
        dimensions). Identical for any num_threads."""
        assignment, centroids, descriptions = self._impl.clusters(int(k), int(max_iterations))
        return (
            pd.Series(assignment, index=_member_index(self), name="cluster"),
            pd.DataFrame(np.exp(centroids), columns=self.dimension_names),
            list(descriptions),
        )

    # --- timing --------------------------------------------------------------------------------
    def timing(self) -> pd.DataFrame:
        """Per member: best_slot (hour of week, Monday 00:00 UTC = 0), best_weekday,
        best_hour, next_purchase (time), send_at (time), validity_days, p_alive and
        expected_purchases (BG/NBD over ``horizon_days``)."""
        self._require_fitted("timing")
        t = self._impl.timing()
        cut = self.cut_time
        slot = t["best_slot"]
        return pd.DataFrame(
            {
                "best_slot": slot,
                "best_weekday": pd.Categorical.from_codes(slot // 24, list(WEEKDAYS)),
                "best_hour": slot % 24,
                "next_purchase_days": t["next_purchase_days"],
                "next_purchase": cut
                + pd.to_timedelta(t["next_purchase_days"].astype(np.float64), unit="D"),
                "send_at": cut + pd.to_timedelta(t["send_in_days"].astype(np.float64), unit="D"),
                "validity_days": t["validity_days"],
                "p_alive": t["p_alive"],
                "expected_purchases": t["expected_purchases"],
            },
            index=_member_index(self),
        )

    def hour_of_week_profile(self, user=None) -> np.ndarray:
        """7 x 24 posterior profile of one member (rows Monday..Sunday, UTC hours), or the
        population's when ``user`` is None."""
        if user is None:
            return self._impl.population_hour_of_week().reshape(7, 24)
        return self._impl.hour_of_week_profile(self._row(user)).reshape(7, 24)

    @property
    def bgnbd_params(self) -> dict:
        r, alpha, a, b = self._impl.bgnbd()
        return {"r": r, "alpha": alpha, "a": a, "b": b}

    def __repr__(self) -> str:
        state = (
            f"{self.n_users} members x {self._impl.n_dimensions} dimensions"
            if self._impl.fitted
            else "not fitted"
        )
        return f"PreferenceModel({self.get_params()}, {state})"


def kmeans(data, k: int, seed: int = 42, max_iterations: int = 50, num_threads: int = 0):
    """Seeded k-means++ on a rows x dim array: (assignment, centroids, inertia). Identical for
    any ``num_threads``."""
    arr = np.ascontiguousarray(data, dtype=np.float32)
    assignment, centroids, inertia, _ = _core.kmeans(
        arr, int(k), int(seed), int(max_iterations), int(num_threads)
    )
    return assignment, centroids, inertia


def bgnbd_fit(x, t_x, T, num_threads: int = 0) -> dict:
    """Maximum-likelihood BG/NBD parameters from per-member (repeat purchases, days from first
    to last purchase, days from first purchase to the cut)."""
    arrays = [np.ascontiguousarray(v, dtype=np.float64) for v in (x, t_x, T)]
    r, alpha, a, b = _core.bgnbd_fit(*arrays, int(num_threads))
    return {"r": r, "alpha": alpha, "a": a, "b": b}


def bgnbd_log_likelihood(params: dict, x: float, t_x: float, T: float) -> float:
    """Log-likelihood of one member under BG/NBD ``params`` (keys r, alpha, a, b)."""
    return _core.bgnbd_log_likelihood(
        params["r"], params["alpha"], params["a"], params["b"], float(x), float(t_x), float(T)
    )
