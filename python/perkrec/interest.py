"""Which categories (brands, departments, any item level) each member is most interested in.

``InterestModel`` wraps the C++ model (include/perkrec/models/interest.hpp): each member's
shares of activity over the values of an ItemCatalog level, from a BehaviorLog's events before
``cut_time``, shrunk towards the population's shares by a Dirichlet prior whose strength is
fitted by empirical Bayes, with intervals::

    >>> import pandas as pd, perkrec
    >>> lines = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": ["a", "a", "b", "b"],
    ...                       "timestamp": pd.to_datetime(["2026-03-01"] * 4, utc=True)})
    >>> items = perkrec.ItemCatalog.from_frame(
    ...     pd.DataFrame({"item_id": ["a", "b"], "category": ["pizza", "salad"]}))
    >>> behavior = perkrec.BehaviorLog.from_frame(lines, items=items)
    >>> model = perkrec.InterestModel(level="category", prior_strength=1.0)
    >>> model.fit(behavior, items, cut_time="2026-04-01").top(n=1)["category"].tolist()
    ['pizza', 'salad']
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pandas as pd

from . import _core
from ._estimator import _Estimator, _Threaded
from ._progress import ProgressArg, resolve_progress
from ._util import int_array, int_scalar, sequence_arg, time_seconds
from .behavior import BehaviorLog, ItemCatalog
from .data import IdMap, _expect, _Serializable

__all__ = ["InterestModel"]


class InterestModel(_Serializable, _Estimator, _Threaded):
    """Each member's interest in the values of one item level ("category", "brand", ...).

    A member's activity in a value is the sum over their events strictly before ``cut_time``
    (of the counted ``actions``; empty = every action) of ``measure`` ("count": 1, "quantity",
    "spend": the amount), each weighted by 2^(-age / ``half_life_days``) (0 = no decay). Shares
    of activity get a Dirichlet prior centred on the population's shares with strength
    ``prior_strength`` (0 = fitted by empirical Bayes, the Dirichlet-multinomial marginal
    likelihood); the posterior share over the population's share is the **lift** (1 = as
    interested as the average member; a member with little activity stays near 1).
    ``top(n)`` lists each member's n values of highest lift with equal-tailed intervals of the
    posterior at ``level``. ``fit`` needs exclusive access; the rest is safe from several
    threads (GIL released).
    """

    _core_class = _core.InterestModel

    def __init__(
        self,
        level: str = "category",
        actions: Sequence[str] = (),
        measure: str = "count",
        half_life_days: float = 90.0,
        prior_strength: float = 0.0,
        num_threads: int = 0,
    ):
        if isinstance(actions, str):
            raise _core.ConfigError(
                "InterestModel: actions must be a sequence of action names, not one string"
            )
        params = {
            "level": level,
            "actions": list(actions),
            "measure": measure,
            "half_life_days": half_life_days,
            "prior_strength": prior_strength,
            "num_threads": num_threads,
        }
        try:
            text = json.dumps(params)
        except (TypeError, ValueError) as exc:
            raise _core.ConfigError(f"InterestModel: parameters must be JSON values ({exc})")
        self._impl = _core.InterestModel(text)

    @classmethod
    def _wrap(cls, impl):
        obj = cls.__new__(cls)
        obj._impl = impl
        return obj

    @property
    def params(self) -> dict:
        """Every hyper-parameter in effect."""
        return json.loads(self._impl.get_params())

    def fit(
        self,
        behavior: BehaviorLog,
        items: ItemCatalog,
        cut_time=None,
        *,
        progress: ProgressArg = False,
    ) -> "InterestModel":
        """Learns each member's interest from ``behavior``'s events strictly before
        ``cut_time`` (default: after the last event); ``items`` is the ItemCatalog the log's
        items index. On error the model is unchanged."""
        _expect(behavior, BehaviorLog, "behavior", "InterestModel.fit")
        _expect(items, ItemCatalog, "items", "InterestModel.fit")
        if cut_time is None:
            cut = int(behavior._impl.max_time) + 1 if len(behavior) else 1
        else:
            cut = time_seconds(cut_time, "cut_time")
        self._impl.fit(behavior._impl, items._impl, cut, resolve_progress(progress))
        ids = behavior.user_ids
        if ids is not None and len(ids) == self._impl.n_users:
            self._impl.set_user_ids(ids._impl)
        return self

    # --- results -----------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self._impl.fitted

    def _require_fitted(self, method: str) -> None:
        if not self._impl.fitted:
            raise _core.InputError(f"InterestModel.{method}: the model is not fitted")

    @property
    def prior_strength_(self) -> float:
        """The Dirichlet concentration in use (fitted or given)."""
        self._require_fitted("prior_strength_")
        return float(self._impl.prior_strength)

    @property
    def values(self) -> list:
        """The level's values, in code order."""
        self._require_fitted("values")
        return list(self._impl.value_names)

    @property
    def population_share(self) -> pd.Series:
        """The population's share of activity in each value (sums to 1)."""
        self._require_fitted("population_share")
        return pd.Series(
            self._impl.population_share(), index=pd.Index(self.values, name=self._level)
        )

    @property
    def missing_value_events(self) -> int:
        """Counted events before the cut whose item had no value at the level (skipped)."""
        self._require_fitted("missing_value_events")
        return int(self._impl.missing_value_events)

    @property
    def _level(self) -> str:
        return self.params["level"]

    def _users(self, users, method: str) -> np.ndarray:
        if users is None:
            return np.arange(self._impl.n_users, dtype=np.int32)
        return int_array(users, np.int32, f"InterestModel.{method}: users")

    def _index(self, users: np.ndarray) -> pd.Index:
        ids = IdMap._wrap(self._impl.user_ids)
        if len(ids):
            return pd.Index(ids.to_external(users), name="user")
        return pd.Index(users, name="user")

    @property
    def user_ids(self):
        """The member ids (an IdMap) the model was fitted with; None without ids."""
        ids = IdMap._wrap(self._impl.user_ids)
        return ids if len(ids) else None

    def _member_index(self, user, method: str) -> int:
        """Dense index of one member: its external id when ids are stored, else the index."""
        ids = IdMap._wrap(self._impl.user_ids)
        if len(ids):
            found = ids.lookup([user], missing="minus_one")[0]
            if found < 0:
                raise _core.InputError(
                    f"{method}: the InterestModel has no member {user!r:.40} "
                    f"(it holds {len(ids)} members)"
                )
            return int(found)
        return int_scalar(user, f"{method}: user", 0, max(self._impl.n_users - 1, 0))

    def lifts(self, users=None) -> pd.DataFrame:
        """Members x values: each member's posterior lift (rows: ``users``, member indices;
        None = every member), indexed by member id."""
        self._require_fitted("lifts")
        u = self._users(users, "lifts")
        return pd.DataFrame(
            self._impl.lifts(u),
            index=self._index(u),
            columns=pd.Index(self.values, name=self._level),
        )

    def top(self, n: int = 5, users=None, level: float = 0.9) -> pd.DataFrame:
        """Each member's ``n`` values of highest posterior lift, best first: columns ``user``
        (member id), ``rank`` (1 = most interested), the level's value, ``share`` (posterior
        share of the member's activity), ``lift``, ``lower`` / ``upper`` (the interval at
        ``level``, lift units) and ``activity`` (the member's decayed activity there)."""
        self._require_fitted("top")
        u = self._users(users, "top")
        n = int_scalar(n, "InterestModel.top: n", 1, 2**31 - 1)
        if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
            raise _core.InputError(
                f"InterestModel.top: level must be a number in (0, 1) (got {level!r})"
            )
        raw = self._impl.top(u, n, float(level))
        values = np.asarray(self.values, dtype=object)
        frame = pd.DataFrame(
            {
                "user": self._index(raw["user"]),
                "rank": raw["rank"],
                self._level: values[raw["value"]] if len(raw["value"]) else [],
                "share": raw["share"],
                "lift": raw["lift"],
                "lower": raw["lower"],
                "upper": raw["upper"],
                "activity": raw["activity"],
            }
        )
        return frame

    def by_segment(self, segments, n: int = 5) -> pd.DataFrame:
        """Each segment's ``n`` values of highest mean lift over its members: what the
        threshold-discount-sensitive members (or any grouping) are most interested in.
        ``segments``: one label per member — a Series indexed by member id (as
        ``PreferenceModel.segments()["segment"]``; members it lacks belong to no segment) or a
        sequence in member order. Columns ``segment``, ``rank``, the level's value,
        ``mean_lift``, ``members``."""
        self._require_fitted("by_segment")
        n = int_scalar(n, "InterestModel.by_segment: n", 1, 2**31 - 1)
        n_users = self._impl.n_users
        if isinstance(segments, pd.Series) and len(IdMap._wrap(self._impl.user_ids)):
            if segments.index.has_duplicates:
                raise _core.InputError(
                    "InterestModel.by_segment: segments: a member id appears twice in the index"
                )
            index = self._index(np.arange(n_users, dtype=np.int32))
            labels = segments.reindex(index).to_numpy(dtype=object)
        elif isinstance(segments, pd.Series):
            labels = segments.to_numpy(
                dtype=object
            )  # no stored ids: one label per member, in order
        else:
            segments = sequence_arg(segments, "InterestModel.by_segment: segments")
            labels = np.asarray(list(segments), dtype=object)
        if len(labels) != n_users:
            raise _core.InputError(
                f"InterestModel.by_segment: segments has {len(labels)} labels "
                f"(expected one per member, {n_users})"
            )
        missing = pd.isna(labels)
        names, codes = np.unique(labels[~missing].astype(str), return_inverse=True)
        group = np.full(n_users, -1, dtype=np.int32)
        group[~missing] = codes
        # Per segment its values by mean lift, in C++ (models/interest.hpp: group_top).
        raw = self._impl.group_top(group, len(names), n)
        values = np.asarray(self.values, dtype=object)
        return pd.DataFrame(
            {
                "segment": names[raw["group"]] if len(raw["group"]) else [],
                "rank": raw["rank"].astype(np.int64),
                self._level: values[raw["value"]] if len(raw["value"]) else [],
                "mean_lift": raw["mean_lift"],
                "members": raw["members"].astype(np.int64),
            },
            columns=["segment", "rank", self._level, "mean_lift", "members"],
        )
