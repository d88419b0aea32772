"""What members buy and browse: the items (products) with their hierarchy, the behaviour log
(purchases, views, carts, searches, ... per member), which items each benefit applies to, and
leak-safe behaviour aggregates for redemption models.

>>> items = ItemCatalog.from_frame(products, id="product_id")          # levels: every text column
>>> log = BehaviorLog.from_frame(transactions, user_ids=user_ids, items=items, user="household_id",
...                              item="product_id", time="transaction_timestamp",
...                              quantity="quantity", amount="sales_value", basket="basket_id")
>>> applies = BenefitItems.from_frame(coupons, catalog=benefit_ids, items=items,
...                                   benefit="coupon_upc", item="product_id")
>>> raw = behavior_features(samples, log, items, applies, levels=["product_category"])
>>> enc = FeatureEncoder([{"name": "buying", "kind": "behavior", "levels": ["product_category"]}])
>>> X = enc.fit(samples, behavior=(log, items, applies)).transform(samples, behavior=(log, items, applies))

Every aggregate counts only events STRICTLY BEFORE each sample's time (features/behavior_features.hpp
gives the definitions). Thin wrappers over the C++ classes in include/perkrec/data/item_catalog.hpp,
data/behavior_log.hpp and features/behavior_features.hpp.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

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
    time_range_error,
)
from .data import IdMap, _expect, _Serializable

BEHAVIOR_AGGREGATES: Tuple[str, ...] = tuple(_core.BEHAVIOR_AGGREGATES)
#: days_since_last / member_days_since_last when the member has no earlier event.
BEHAVIOR_NEVER_DAYS: float = float(_core.BEHAVIOR_NEVER_DAYS)
_UNKNOWN = ("drop", "raise")

__all__ = [
    "BEHAVIOR_AGGREGATES",
    "BEHAVIOR_NEVER_DAYS",
    "BehaviorLog",
    "BenefitItems",
    "ItemCatalog",
    "behavior_features",
]


def _check_unknown(unknown: str, context: str) -> None:
    if unknown not in _UNKNOWN:
        raise _core.ConfigError(f"{context}: unknown must be 'drop' or 'raise' (got {unknown!r})")


def _require_columns(frame, names, context: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise _core.InputError(f"{context}: expected a DataFrame (got {type(frame).__name__})")
    for name in names:
        if name is not None and name not in frame.columns:
            raise _core.InputError(
                f"{context}: missing column {name!r} (have {list(frame.columns)})"
            )


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)


def _integer_ids(id_map: IdMap, values) -> Optional[np.ndarray]:
    """``values`` as contiguous int64 ids (no copy of an int64 column) when they are integers
    to look up in a map of integers row by row in the core, else None."""
    dtype = getattr(values, "dtype", None)
    if (
        id_map.key_type == "integer"
        and isinstance(dtype, np.dtype)
        and dtype.kind in "iu"
        and np.ndim(values) == 1
    ):
        return np.ascontiguousarray(np.asarray(values), dtype=np.int64)
    return None


def _lookup(id_map: IdMap, values) -> np.ndarray:
    """Dense indices (int32, -1 = unknown) of ``values`` in ``id_map``; integer-valued ids are
    looked up as strings in a map of strings. Integer ids in a map of integers go to the core's
    parallel lookup row by row (no factorize, no copy of an int64 column)."""
    ids = _integer_ids(id_map, values)
    if ids is not None:
        return id_map._impl.lookup_integers(ids, "minus_one")
    if id_map.key_type == "string" and pd.api.types.is_numeric_dtype(pd.Series(values).dtype):
        values = pd.Series(values).astype(np.int64).astype(str)
    return id_map.lookup(values, missing="minus_one")


def _action_codes(col: pd.Series, context: str) -> Tuple[np.ndarray, List[str]]:
    """(int32 codes, vocabulary): the vocabulary is the sorted distinct values as strings, each
    row's code the position of its string. Categorical columns use their codes; other columns
    are factorized once (no per-row string conversion)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = np.asarray(col.cat.codes)
        uniques = list(col.cat.categories)
    else:
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        uniques = list(uniques)
    if codes.size and codes.min() < 0:
        row = int(np.flatnonzero(codes < 0)[0])
        raise _core.InputError(f"{context}: row {row}: action is missing")
    used = np.zeros(len(uniques), dtype=bool)
    used[codes] = True
    text = [str(u) for u in uniques]
    names = sorted({t for t, u in zip(text, used) if u})
    if not names:
        return np.zeros(0, dtype=np.int32), ["purchase"]
    position = {name: i for i, name in enumerate(names)}
    remap = np.array([position.get(t, -1) for t in text], dtype=np.int32)
    return np.ascontiguousarray(remap[codes]), names


def _float_column(col: pd.Series, name: str) -> np.ndarray:
    """float64 values of a column (missing = NaN, which the core rejects naming the row); a
    float64 column is passed without a copy."""
    if isinstance(col.dtype, np.dtype) and col.dtype == np.float64:
        return float_array(col.to_numpy(), np.float64, name)
    return float_array(col.to_numpy(dtype=np.float64, na_value=np.nan), np.float64, name)


def _basket_column(col: pd.Series, name: str) -> np.ndarray:
    """int64 basket ids (missing = -1); an int64 column is passed without a copy."""
    if isinstance(col.dtype, np.dtype) and col.dtype == np.int64:
        return np.ascontiguousarray(col.to_numpy())
    return int_array(col.fillna(-1).to_numpy(), np.int64, name)


# ---------------------------------------------------------------------------------------------
class ItemCatalog(_Serializable):
    """The items members buy and browse, with any number of named hierarchy / attribute levels
    (department, category, brand, manufacturer, ...) and numeric attributes (price, size).

    Levels hold one value per item (missing allowed); ``level_codes(name)`` gives int32 codes
    into ``level_values(name)`` (-1 = missing). Unknown names raise InputError naming them.
    ``save`` / ``load`` / pickle keep the item ids, levels and numeric attributes.
    """

    _core_class = _core.ItemCatalog

    def __init__(self, items: Optional[IdMap] = None):
        self._impl = _core.ItemCatalog((items or IdMap())._impl)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        id: str = "item_id",
        levels: Optional[Sequence[str]] = None,
        numeric: Optional[Sequence[str]] = None,
    ) -> "ItemCatalog":
        """One row per item. ``levels``: the hierarchy / attribute columns (default: every
        non-numeric column except ``id``); ``numeric``: numeric attribute columns (default:
        every numeric or boolean column except ``id`` and the levels). Level values are kept as
        their strings (missing stays missing). A missing or duplicate id raises InputError."""
        frame_arg(frame, "ItemCatalog.from_frame: frame")
        context = "ItemCatalog.from_frame"
        _require_columns(frame, [id], context)
        others = [c for c in frame.columns if c != id]
        if levels is None:
            levels = [
                c
                for c in others
                if not _is_numeric(frame[c]) and (numeric is None or c not in numeric)
            ]
        if numeric is None:
            numeric = [c for c in others if _is_numeric(frame[c]) and c not in levels]
        _require_columns(frame, list(levels) + list(numeric), context)
        ids = frame[id]
        if ids.isna().any():
            row = int(np.flatnonzero(ids.isna().to_numpy())[0])
            raise _core.InputError(f"{context}: row {row}: {id} is missing")
        catalog = cls(IdMap(ids.to_numpy()))
        for name in levels:
            codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
            catalog._impl.add_level(
                str(name), np.ascontiguousarray(codes, dtype=np.int32), [str(u) for u in uniques]
            )
        for name in numeric:
            catalog._impl.add_numeric(
                str(name),
                float_array(
                    frame[name].to_numpy(dtype=np.float64, na_value=np.nan), np.float64, str(name)
                ),
            )
        return catalog

    @classmethod
    def _wrap(cls, impl) -> "ItemCatalog":
        obj = cls.__new__(cls)
        obj._impl = impl
        return obj

    def __len__(self) -> int:
        return len(self._impl)

    def __eq__(self, other) -> bool:
        return isinstance(other, ItemCatalog) and self._impl == other._impl

    def __repr__(self) -> str:
        return f"ItemCatalog({len(self)} items, levels {self.levels}, numeric {self.numeric_names})"

    @property
    def items(self) -> IdMap:
        """The item ids (index i names item i)."""
        return IdMap._wrap(self._impl.items)

    @property
    def levels(self) -> List[str]:
        return list(self._impl.level_names())

    @property
    def numeric_names(self) -> List[str]:
        return list(self._impl.numeric_names())

    def level_codes(self, name: str) -> np.ndarray:
        return self._impl.level_codes(str(name))

    def level_values(self, name: str) -> List[str]:
        return list(self._impl.level_values(str(name)))

    def numeric(self, name: str) -> np.ndarray:
        return self._impl.numeric(str(name))

    def to_frame(self) -> pd.DataFrame:
        """One row per item, indexed by item id; levels as categoricals."""
        data = {
            name: pd.Categorical.from_codes(self.level_codes(name), self.level_values(name))
            for name in self.levels
        }
        data.update({name: self.numeric(name) for name in self.numeric_names})
        return pd.DataFrame(data, index=pd.Index(self.items.ids, name="item"))


# ---------------------------------------------------------------------------------------------
def _user_map(user_ids):
    """(IdMap, fixed): the member map of ``user_ids`` (an IdMap, or a UserTable or an EventLog
    whose ``user_ids`` is one, or None for a new map)."""
    if user_ids is None:
        return IdMap(), False
    if isinstance(user_ids, IdMap):
        return user_ids, True
    if isinstance(getattr(user_ids, "user_ids", None), IdMap):
        return user_ids.user_ids, True
    raise _core.InputError(
        "BehaviorLog.from_frame: user_ids must be an IdMap, a UserTable or an EventLog with ids "
        f"(got {type(user_ids).__name__})"
    )


class BehaviorLog(_Serializable):
    """What members bought and browsed: columnar, sorted by member then time, indexed by member.

    Member indices are those of ``user_ids`` (the IdMap shared with the EventLog, UserTable and the
    samples), item indices those of the ItemCatalog. ``unknown_items`` / ``unknown_users``
    count the rows dropped because their item / member id was unknown.

    ``save`` / ``load`` / pickle keep every column, the action names and the member ids, so a
    service can refresh the behaviour a fitted planner reads without refitting
    (``BenefitPlanner.plan(at, behavior=BehaviorLog.load(path))``); the item indices are those
    of the ItemCatalog the log was built with (save that too).
    """

    _core_class = _core.BehaviorLog

    def __init__(self):
        self._impl = _core.BehaviorLog()

    @property
    def user_ids(self) -> Optional[IdMap]:
        """The member ids (index i names member i), or None when the log was built from index
        arrays (it is then indexed as the caller's other tables)."""
        ids = IdMap._wrap(self._impl.user_ids)
        return ids if len(ids) else None

    @user_ids.setter
    def user_ids(self, ids: Optional[IdMap]) -> None:
        if ids is not None and not isinstance(ids, IdMap):
            raise _core.InputError(
                f"BehaviorLog.user_ids: expected a perkrec.IdMap or None (got {type(ids).__name__})"
            )
        self._impl.set_user_ids((ids or IdMap())._impl)

    @classmethod
    @renamed_keywords(member="user", users="user_ids")
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        user_ids=None,
        items: ItemCatalog,
        user: str = "user_id",
        item: str = "item_id",
        action: Optional[str] = None,
        time: str = "timestamp",
        quantity: Optional[str] = None,
        amount: Optional[str] = None,
        basket: Optional[str] = None,
        unknown: str = "drop",
        num_threads: int = 0,
    ) -> "BehaviorLog":
        """From a DataFrame of behaviour events with external ids.

        ``user``, ``item``: the id columns (``member`` is the deprecated name of ``user``).
        ``user_ids``: the member map (an IdMap, or a UserTable or EventLog: its user_ids) — rows
        of members it lacks are unknown; None builds a new map in order of first appearance
        (``log.user_ids``); ``users`` is its deprecated name. ``items``: the ItemCatalog. ``action``: a column of action names
        (purchase, view, cart, search, like, share, ...; the vocabulary is their sorted distinct
        values), or None: every row is a "purchase". ``time``: epoch seconds, datetimes or date
        strings (naive = UTC). ``quantity`` (default 1), ``amount`` (default 0) and ``basket``
        (default none) are optional columns. ``unknown``: rows whose member or item id is unknown
        are dropped and counted ("drop") or raise InputError naming the first ("raise"). NaN or
        negative amounts or quantities raise InputError naming the row, field and value.

        Speed and memory: integer ids in a map of integer ids are looked up by the core in
        one parallel pass with the range check of int64 times (through a dense array where a
        map's ids span a compact range, e.g. database keys; else its hash); int64 times, float64
        quantities and amounts, int64 baskets and categorical actions are read without copies,
        so the build holds the log's columns (33 bytes per event) plus the two index columns
        (8 bytes per event) and the sort's 6 bytes per event.
        """
        frame_arg(frame, "BehaviorLog.from_frame: frame")
        context = "BehaviorLog.from_frame"
        _check_unknown(unknown, context)
        if not isinstance(items, ItemCatalog):
            raise _core.InputError(
                f"{context}: items must be a perkrec.ItemCatalog (got {type(items).__name__})"
            )
        _require_columns(frame, [user, item, time, action, quantity, amount, basket], context)
        user_map, fixed = _user_map(user_ids)
        threads = int_scalar(num_threads, "num_threads")
        # Integer ids in integer maps and int64 times go through one parallel pass in the core
        # (both lookups, dense arrays where the ids span a compact range, and the times' range
        # check); other kinds of column are converted and looked up on their own.
        user_ints = _integer_ids(user_map, frame[user]) if fixed else None
        item_ints = _integer_ids(items.items, frame[item])
        times = frame[time]
        raw_times = isinstance(times.dtype, np.dtype) and times.dtype == np.int64
        stamp = np.ascontiguousarray(times.to_numpy()) if raw_times else seconds(times, time)
        user_idx, item_idx, bad_time = _core.lookup_behavior_ids(
            user_ints,
            user_map._impl,
            item_ints,
            items.items._impl,
            stamp if raw_times else None,
            threads,
        )
        if bad_time >= 0:
            raise time_range_error(time, bad_time, stamp[bad_time])
        if user_ints is None:
            user_idx = (
                _lookup(user_map, frame[user]) if fixed else user_map.lookup_or_add(frame[user])
            )
        if item_ints is None:
            item_idx = _lookup(items.items, frame[item])
        action_codes, action_names = None, ["purchase"]
        if action is not None:
            action_codes, action_names = _action_codes(frame[action], context)

        def optional(name, convert):
            return None if name is None else convert(frame[name], name)

        impl = _core.BehaviorLog.from_arrays(
            int_array(user_idx, np.int32, "user"),
            int_array(item_idx, np.int32, "item"),
            stamp,
            action_codes,
            optional(quantity, _float_column),
            optional(amount, _float_column),
            optional(basket, _basket_column),
            len(user_map),
            len(items),
            list(action_names),
            unknown,
            threads,
        )
        log = cls._wrap(impl)
        log.user_ids = user_map
        return log

    @classmethod
    def from_file(
        cls,
        path,
        *,
        items: ItemCatalog,
        user: str = "user_id",
        item: str = "item_id",
        action: Optional[str] = None,
        time: str = "timestamp",
        quantity: Optional[str] = None,
        amount: Optional[str] = None,
        basket: Optional[str] = None,
        **kwargs,
    ) -> "BehaviorLog":
        """From a Parquet (``.parquet`` / ``.pq``) or CSV file (any other extension): reads only
        the named columns (a Parquet file's other columns are never loaded), then
        :meth:`from_frame` with the same arguments (``user_ids``, ``unknown``, ``num_threads``
        through ``kwargs``). InputError naming the file when it cannot be read, or the column
        when a named one is missing."""
        from .validate import read_table

        if not isinstance(items, ItemCatalog):
            raise _core.InputError(
                f"BehaviorLog.from_file: items must be a perkrec.ItemCatalog (got "
                f"{type(items).__name__})"
            )
        names = [c for c in (user, item, action, time, quantity, amount, basket) if c is not None]
        frame = read_table(path, columns=list(dict.fromkeys(names)))
        return cls.from_frame(
            frame,
            items=items,
            user=user,
            item=item,
            action=action,
            time=time,
            quantity=quantity,
            amount=amount,
            basket=basket,
            **kwargs,
        )

    @classmethod
    def _wrap(cls, impl) -> "BehaviorLog":
        obj = cls.__new__(cls)
        obj._impl = impl
        return obj

    def __len__(self) -> int:
        return len(self._impl)

    def __repr__(self) -> str:
        return (
            f"BehaviorLog({len(self)} events, {self.n_users} members, {self.n_items} items, "
            f"actions {self.action_names})"
        )

    @property
    def n_users(self) -> int:
        return self._impl.n_users

    @property
    def n_items(self) -> int:
        return self._impl.n_items

    @property
    def unknown_items(self) -> int:
        """Rows dropped because their item id was unknown."""
        return self._impl.unknown_items

    @property
    def unknown_users(self) -> int:
        """Rows dropped because their member id was unknown (and their item known)."""
        return self._impl.unknown_users

    @property
    def action_names(self) -> List[str]:
        return list(self._impl.action_names)

    @property
    def user_offsets(self) -> np.ndarray:
        """Member u's events are rows user_offsets[u]:user_offsets[u + 1], in time order."""
        return self._impl.user_offsets()

    def to_frame(self) -> pd.DataFrame:
        """The events in log order: user, item (indices), action, timestamp, quantity, amount[, basket]."""
        data = {
            "user": self._impl.users(),
            "item": self._impl.items(),
            "action": pd.Categorical.from_codes(
                self._impl.actions().astype(np.int64), self.action_names
            ),
            "timestamp": pd.to_datetime(self._impl.timestamps(), unit="s", utc=True),
            "quantity": self._impl.quantities(),
            "amount": self._impl.amounts(),
        }
        if self._impl.has_baskets:
            data["basket"] = self._impl.baskets()
        return pd.DataFrame(data)


# ---------------------------------------------------------------------------------------------
class BenefitItems(_Serializable):
    """Which items each benefit applies to (many-to-many; each benefit's items sorted and
    distinct). ``unknown_items`` counts the pairs dropped because the item id was unknown.
    ``save`` / ``load`` / pickle keep the mapping (benefit and item indices: those of the
    Catalog and the ItemCatalog it was built with)."""

    _core_class = _core.BenefitItems

    def __init__(self):
        self._impl = _core.BenefitItems()

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        catalog,
        items: ItemCatalog,
        benefit: str = "benefit_id",
        item: str = "item_id",
        unknown: str = "drop",
    ) -> "BenefitItems":
        """From (benefit id, item id) rows. ``catalog``: the benefits (a perkrec.Catalog or its
        IdMap); every benefit id must be in it (InputError naming the row otherwise). ``items``:
        the ItemCatalog; pairs naming an unknown item are dropped and counted (``"drop"``) or
        raise InputError (``"raise"``)."""
        frame_arg(frame, "BenefitItems.from_frame: frame")
        context = "BenefitItems.from_frame"
        _check_unknown(unknown, context)
        if not isinstance(items, ItemCatalog):
            raise _core.InputError(
                f"{context}: items must be a perkrec.ItemCatalog (got {type(items).__name__})"
            )
        benefit_map = catalog if isinstance(catalog, IdMap) else getattr(catalog, "ids", None)
        if not isinstance(benefit_map, IdMap):
            raise _core.InputError(
                f"{context}: catalog must be a perkrec.Catalog or an IdMap (got {type(catalog).__name__})"
            )
        _require_columns(frame, [benefit, item], context)
        b = _lookup(benefit_map, frame[benefit])
        if (b < 0).any():
            row = int(np.flatnonzero(b < 0)[0])
            raise _core.InputError(
                f"{context}: row {row}: unknown benefit id {frame[benefit].iloc[row]!r} "
                f"(the catalog holds {len(benefit_map)} benefits)"
            )
        i = _lookup(items.items, frame[item])
        impl = _core.BenefitItems.from_pairs(
            np.ascontiguousarray(b, dtype=np.int32),
            np.ascontiguousarray(i, dtype=np.int32),
            len(benefit_map),
            len(items),
            unknown,
        )
        return cls._wrap(impl)

    @classmethod
    def from_pairs(
        cls, benefit, item, n_benefits: int, n_items: int, unknown: str = "drop"
    ) -> "BenefitItems":
        """From dense index arrays (item -1 = unknown)."""
        _check_unknown(unknown, "BenefitItems.from_pairs")
        return cls._wrap(
            _core.BenefitItems.from_pairs(
                int_array(benefit, np.int32, "benefit"),
                int_array(item, np.int32, "item"),
                int_scalar(n_benefits, "BenefitItems.from_pairs: n_benefits"),
                int_scalar(n_items, "BenefitItems.from_pairs: n_items"),
                unknown,
            )
        )

    @classmethod
    def _wrap(cls, impl) -> "BenefitItems":
        obj = cls.__new__(cls)
        obj._impl = impl
        return obj

    def __len__(self) -> int:
        return len(self._impl)

    def __repr__(self) -> str:
        return f"BenefitItems({self.n_benefits} benefits, {len(self)} pairs, {self.n_items} items)"

    @property
    def n_benefits(self) -> int:
        return self._impl.n_benefits

    @property
    def n_items(self) -> int:
        return self._impl.n_items

    @property
    def unknown_items(self) -> int:
        return self._impl.unknown_items

    def items_of(self, benefit: int) -> np.ndarray:
        """Item indices of benefit index ``benefit``."""
        b = int_scalar(benefit, "benefit", 0, self.n_benefits - 1)
        offsets = self._impl.offsets()
        return self._impl.indices()[offsets[b] : offsets[b + 1]]

    def level_values(self, catalog: ItemCatalog, level: str) -> List[List[str]]:
        """Each benefit's distinct values of ``level`` (e.g. the categories of its items)."""
        _expect(catalog, ItemCatalog, "catalog", "BenefitItems.level_values")
        offsets, codes = self._impl.level_values(catalog._impl, str(level))
        values = np.asarray(catalog.level_values(level), dtype=object)
        return [list(values[codes[offsets[b] : offsets[b + 1]]]) for b in range(self.n_benefits)]


# ---------------------------------------------------------------------------------------------
def _behavior_triple(behavior, context: str):
    """The C++ (log, items, benefit_items) of ``behavior`` = (BehaviorLog, ItemCatalog, BenefitItems)."""
    if not isinstance(behavior, (tuple, list)) or len(behavior) != 3:
        raise _core.InputError(
            f"{context}: behavior must be (BehaviorLog, ItemCatalog, BenefitItems)"
        )
    log, items, applies = behavior
    for obj, cls in ((log, BehaviorLog), (items, ItemCatalog), (applies, BenefitItems)):
        if not isinstance(obj, cls):
            raise _core.InputError(
                f"{context}: behavior must be (BehaviorLog, ItemCatalog, BenefitItems) "
                f"(got {type(obj).__name__} for a {cls.__name__})"
            )
    return log._impl, items._impl, applies._impl


def _behavior_dtype(dtype, context: str) -> str:
    """'float64' or 'float32' for ``dtype`` (a name or a numpy dtype-like); ConfigError else."""
    name: Optional[str] = None
    if dtype is not None and not isinstance(dtype, bool):
        try:
            name = np.dtype(dtype).name
        except (TypeError, ValueError):
            pass
    if name not in ("float64", "float32"):
        raise _core.ConfigError(f"{context}: dtype must be 'float64' or 'float32' (got {dtype!r})")
    return name


def behavior_features(
    samples: pd.DataFrame,
    log: BehaviorLog,
    items: ItemCatalog,
    benefit_items: BenefitItems,
    *,
    aggregates: Optional[Sequence[str]] = None,
    levels: Sequence[str] = (),
    actions: Sequence[str] = ("purchase",),
    half_life_days: float = 28.0,
    num_threads: int = 0,
    dtype: Union[str, type, np.dtype] = "float64",
) -> pd.DataFrame:
    """The raw behaviour aggregates of each sample (columns ``user``, ``benefit`` — indices —
    and ``timestamp``), from events strictly before its timestamp, for inspection.

    ``aggregates`` (default: all of BEHAVIOR_AGGREGATES), ``levels`` (ItemCatalog levels to
    match on), ``actions`` and ``half_life_days`` as in the encoder's behavior fields. Columns
    are named ``<action>_<scope>_<aggregate>`` (scope ``items`` or a level) and
    ``<action>_<aggregate>`` (member totals, popularity); the frame keeps the samples' index.

    ``dtype``: the columns' type, ``"float64"`` (default) or ``"float32"`` (``np.float32``
    also accepted): half the memory, each value exactly the float64 value rounded to the
    nearest float32 (computed in double, rounded as it is written: no float64 copy is made).
    float32 holds counts up to 2**24 exactly, larger values to a relative 2**-24. Anything
    else is a ConfigError, raised before any work.
    """
    context = "behavior_features"
    dtype = _behavior_dtype(dtype, context)
    if not isinstance(samples, pd.DataFrame):
        raise _core.InputError(
            f"{context}: samples must be a DataFrame (got {type(samples).__name__})"
        )
    _require_columns(samples, ["user", "benefit", "timestamp"], context)
    log_impl, items_impl, applies_impl = _behavior_triple((log, items, benefit_items), context)
    for name, value in (("aggregates", aggregates), ("levels", levels), ("actions", actions)):
        if isinstance(value, str):
            raise _core.ConfigError(f"{context}: {name} must be a list of names (got {value!r})")
    cols = _core.behavior_features(
        int_array(samples["user"].to_numpy(), np.int64, "user"),
        int_array(samples["benefit"].to_numpy(), np.int64, "benefit"),
        seconds(samples["timestamp"], "timestamp"),
        log_impl,
        items_impl,
        applies_impl,
        [] if aggregates is None else [str(a) for a in aggregates],
        [str(v) for v in levels],
        [str(a) for a in actions],
        float(half_life_days),
        int_scalar(num_threads, "num_threads"),
        dtype,
    )
    # copy=False: the columns are fresh arrays owned by nobody else; a consolidating copy would
    # hold the output twice.
    return pd.DataFrame(dict(cols), index=samples.index, copy=False)
