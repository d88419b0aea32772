"""The benefit data model: id maps, the benefit catalog, member attributes, the event log and
train/test splits. Every class wraps its C++ counterpart; conversions to and from pandas and
numpy are vectorized (no per-row Python loops)."""

from __future__ import annotations

import json
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _core
from ._serializable import _Serializable  # noqa: F401 (re-exported for the model modules)
from ._util import (
    _one_dimensional,
    categorical_codes,
    float_array,
    frame_arg,
    int_array,
    int_scalar,
    renamed_keywords,
    renamed_property,
    seconds,
    sequence_arg,
    text_arg,
    time_seconds,
)

EVENT_TYPES: Tuple[str, ...] = tuple(_core.EVENT_TYPES)
BENEFIT_KINDS: Tuple[str, ...] = tuple(_core.BENEFIT_KINDS)
SCOPES: Tuple[str, ...] = tuple(_core.SCOPES)


def _is_integer_like(values: np.ndarray) -> bool:
    return values.dtype.kind in "iu"


def _id_values(values: np.ndarray) -> np.ndarray:
    """Ids as given, except floats (how pandas holds an integer column with missing values),
    which must be integral and become int64; a fractional id raises InputError."""
    if values.dtype.kind == "f":
        return int_array(values, np.int64, "ids")
    return values


# ---------------------------------------------------------------------------------------------
class IdMap(_Serializable):
    """External ids (strings or 64-bit integers) to dense indices 0..n-1 and back.

    >>> users = IdMap(["ann", "bob"])
    >>> users.lookup(["bob", "ann", "bob"])
    array([1, 0, 1], dtype=int32)
    """

    _core_class = _core.IdMap

    def __init__(self, ids: Optional[Iterable] = None):
        if ids is None:
            self._impl = _core.IdMap()
            return
        values = _id_values(
            np.asarray(list(ids) if not isinstance(ids, (np.ndarray, pd.Series, pd.Index)) else ids)
        )
        if _is_integer_like(values):
            self._impl = _core.IdMap.from_integers(np.ascontiguousarray(values, dtype=np.int64))
        else:
            self._impl = _core.IdMap.from_strings([str(v) for v in values.tolist()])

    @classmethod
    def range(cls, n: int) -> "IdMap":
        """The map of integer ids 0..n-1."""
        return cls._wrap(_core.IdMap.range(int_scalar(n, "IdMap.range: n", 0, 2**31 - 1)))

    def __len__(self) -> int:
        return len(self._impl)

    def __eq__(self, other) -> bool:
        return isinstance(other, IdMap) and self._impl == other._impl

    def __repr__(self) -> str:
        return f"IdMap({len(self)} {self.key_type} ids)"

    @property
    def key_type(self) -> str:
        """'integer', 'string' or 'empty'."""
        return self._impl.key_type

    @property
    def ids(self) -> np.ndarray:
        """The external ids in index order (int64, or object for strings)."""
        if self.key_type == "string":
            return np.asarray(self._impl.strings(), dtype=object)
        return self._impl.integers()

    def _split(self, ids):
        """(unique values, codes) of the input, so each distinct id is looked up once."""
        sequence_arg(ids, "IdMap.lookup: ids")
        values = (
            ids if isinstance(ids, (pd.Series, pd.Index, np.ndarray)) else np.asarray(list(ids))
        )
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        if (codes < 0).any():
            i = int(np.flatnonzero(codes < 0)[0])
            raise _core.InputError(f"IdMap.lookup: missing id at position {i}")
        return np.asarray(uniques), codes

    def _lookup_unique(self, uniques: np.ndarray, missing: str, add: bool) -> np.ndarray:
        uniques = _id_values(uniques)
        if self.key_type == "string" or (
            self.key_type == "empty" and not _is_integer_like(uniques)
        ):
            strings = [str(v) for v in uniques.tolist()]
            if add:
                return self._impl.lookup_or_add_strings(strings)
            return self._impl.lookup_strings(strings, missing)
        if not _is_integer_like(uniques):
            raise _core.InputError(
                f"IdMap.lookup: this map holds integer ids (got values of dtype {uniques.dtype})"
            )
        arr = np.ascontiguousarray(uniques, dtype=np.int64)
        if add:
            return self._impl.lookup_or_add_integers(arr)
        return self._impl.lookup_integers(arr, missing)

    def lookup(self, ids, missing: str = "raise") -> np.ndarray:
        """Dense indices (int32) of ``ids``. ``missing='raise'`` raises InputError naming the
        first unknown id and its row; ``'minus_one'`` returns -1 for it."""
        if missing not in ("raise", "minus_one"):
            raise _core.ConfigError(
                f"IdMap.lookup: missing must be 'raise' or 'minus_one' (got {missing!r})"
            )
        uniques, codes = self._split(ids)
        out = np.ascontiguousarray(
            self._lookup_unique(uniques, "minus_one", add=False)[codes], dtype=np.int32
        )
        if missing == "raise" and (out < 0).any():
            i = int(np.flatnonzero(out < 0)[0])
            value = uniques[codes[i]]
            value = value.item() if hasattr(value, "item") else value
            raise _core.InputError(
                f"IdMap.lookup: unknown id {value!r} at row {i} (the map holds {len(self)} ids)"
            )
        return out

    def lookup_or_add(self, ids) -> np.ndarray:
        """Dense indices of ``ids``, assigning new indices to ids not yet present."""
        uniques, codes = self._split(ids)
        mapped = self._lookup_unique(uniques, "raise", add=True)
        return np.ascontiguousarray(mapped[codes], dtype=np.int32)

    def to_external(self, indices) -> np.ndarray:
        """External ids of dense ``indices`` (InputError for out-of-range indices)."""
        idx = int_array(indices, np.int64, "indices")
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = int(np.flatnonzero((idx < 0) | (idx >= len(self)))[0])
            raise _core.InputError(
                f"IdMap.to_external: index out of range at position {bad} (got {idx[bad]}, expected 0 <= index < {len(self)})"
            )
        return self.ids[idx]


class _Indexed:
    """An object indexed by dense member and benefit indices, with optional external ids."""

    @property
    def n_users(self) -> int:
        return self._impl.n_users

    @property
    def n_benefits(self) -> int:
        return self._impl.n_benefits

    @property
    def user_ids(self) -> Optional[IdMap]:
        """Member ids (index i names member i), or None when none are attached."""
        ids = IdMap._wrap(self._impl.user_ids)
        return ids if len(ids) else None

    @property
    def benefit_ids(self) -> Optional[IdMap]:
        """Benefit ids (index i names benefit i), or None when none are attached."""
        ids = IdMap._wrap(self._impl.benefit_ids)
        return ids if len(ids) else None

    @renamed_keywords(users="user_ids", benefits="benefit_ids")
    def set_ids(
        self, user_ids: Optional[IdMap] = None, benefit_ids: Optional[IdMap] = None
    ) -> None:
        """Attaches external ids; each map must be None/empty or hold exactly one id per member
        (benefit). Raises InputError otherwise. (``users`` / ``benefits`` are the deprecated
        names of ``user_ids`` / ``benefit_ids``.)"""
        for name, ids in (("user_ids", user_ids), ("benefit_ids", benefit_ids)):
            if ids is not None:
                _expect(ids, IdMap, name, f"{type(self).__name__}.set_ids")
        self._impl.set_ids((user_ids or IdMap())._impl, (benefit_ids or IdMap())._impl)


# ---------------------------------------------------------------------------------------------
def parse_discounts(texts, errors: str = "raise") -> pd.DataFrame:
    """Parses discount notations ("150:20", "0.9", "15%", "20", "fixed") into columns kind,
    threshold, face_value, discount_rate, fixed_price. With ``errors='coerce'`` unparsable
    entries give kind NaN instead of raising InputError (which names the row and text)."""
    if errors not in ("raise", "coerce"):
        raise _core.ConfigError(
            f"parse_discounts: errors must be 'raise' or 'coerce' (got {errors!r})"
        )
    series = pd.Series(texts, copy=False)
    index = series.index
    values = series.astype(object).where(series.notna(), "").astype(str).tolist()
    parsed = _core.parse_discounts(values, errors == "coerce")
    codes = parsed["kind"].astype(np.int64)
    kind = pd.Categorical.from_codes(np.where(codes < 0, -1, codes), categories=list(BENEFIT_KINDS))
    return pd.DataFrame(
        {
            "kind": kind,
            "threshold": parsed["threshold"],
            "face_value": parsed["face_value"],
            "discount_rate": parsed["discount_rate"],
            "fixed_price": parsed["fixed_price"].astype(bool),
        },
        index=index,
    )


def _list_column(series: pd.Series) -> List[List[str]]:
    """A column of lists, or of '|'-separated strings, as lists of strings."""
    out = []
    for v in series.tolist():  # catalogs are small; this is a conversion, not compute
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append([])
        elif isinstance(v, str):
            out.append([p for p in v.split("|") if p])
        else:
            out.append([str(p) for p in v])
    return out


class Catalog(_Serializable):
    """The benefits a program can issue, with typed attributes.

    Build it from JSON (``Catalog.from_json``, schema in include/perkrec/data/catalog.hpp),
    from records (``Catalog.from_records([{...}, ...])``) or from a DataFrame
    (``Catalog.from_frame``); ``to_frame()`` returns one row per benefit.
    """

    _core_class = _core.Catalog

    def __init__(self):
        self._impl = _core.Catalog()

    @classmethod
    def from_json(cls, text: str) -> "Catalog":
        return cls._wrap(_core.Catalog.from_json(text_arg(text, "Catalog.from_json: text")))

    @classmethod
    def from_records(cls, records: Sequence[dict]) -> "Catalog":
        """From a list of dicts with the JSON schema's keys."""
        return cls.from_json(
            json.dumps({"benefits": list(sequence_arg(records, "Catalog.from_records: records"))})
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, id_column: str = "id") -> "Catalog":
        """From a DataFrame with an id column and any of: kind, discount (a notation such as
        "150:20"), face_value, threshold, discount_rate, cost, validity_days, scope,
        scope_value, scenarios, channel, inventory, tags. List columns (scenarios, tags) hold
        lists or '|'-separated strings.

        Every other column (brand, category, campaign, ...) is kept as a free attribute of each
        benefit: numeric and boolean columns as numbers, anything else as text; a missing value
        (None, NaN) leaves that benefit without the attribute. Attributes come back as columns
        of ``to_frame()`` and of ``redemption_samples``.

        ``kind`` is optional: a benefit with neither a kind nor a discount notation is a
        ``"discount"`` (a fixed amount off, face_value 0 unless given — the C++ ``Benefit``
        default). Unknown kinds or scopes, missing or duplicate ids and bad values raise
        InputError naming the row and field.
        """
        frame_arg(frame, "Catalog.from_frame: frame")
        if id_column not in frame.columns:
            raise _core.InputError(f"Catalog.from_frame: missing id column {id_column!r}")
        known = {
            "kind",
            "discount",
            "face_value",
            "threshold",
            "discount_rate",
            "cost",
            "validity_days",
            "scope",
            "scope_value",
            "scenarios",
            "channel",
            "inventory",
            "tags",
            id_column,
        }
        id_col = frame[id_column]
        if id_col.isna().any():
            row = int(np.flatnonzero(id_col.isna().to_numpy())[0])
            raise _core.InputError(
                f"Catalog.from_frame: row {row}: {id_column} is missing (got {id_col.iloc[row]!r})"
            )
        text_attributes, numeric_attributes = {}, {}
        for name in frame.columns:
            if name in known:
                continue
            if not isinstance(name, str) or not name:
                raise _core.InputError(
                    f"Catalog.from_frame: attribute column names must be non-empty strings (got {name!r})"
                )
            col = frame[name]
            if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
                numeric_attributes[name] = np.ascontiguousarray(
                    col.to_numpy(dtype=np.float64, na_value=np.nan)
                )
            else:
                text_attributes[name] = [
                    None
                    if v is None
                    or (isinstance(v, float) and np.isnan(v))
                    or v is pd.NA
                    or v is pd.NaT
                    else str(v)
                    for v in col.tolist()
                ]

        def strings(name):
            if name not in frame.columns:
                return None
            col = frame[name]
            return col.astype(object).where(col.notna(), "").astype(str).tolist()

        def numbers(name, dtype):
            if name not in frame.columns:
                return None
            return (
                float_array(frame[name], np.float64, name)
                if dtype == np.float64
                else int_array(frame[name], dtype, name)
            )

        impl = _core.Catalog.from_columns(
            frame[id_column].astype(str).tolist(),
            strings("kind"),
            strings("discount"),
            numbers("face_value", np.float64),
            numbers("threshold", np.float64),
            numbers("discount_rate", np.float64),
            numbers("cost", np.float64),
            numbers("validity_days", np.int32),
            strings("scope"),
            strings("scope_value"),
            _list_column(frame["scenarios"]) if "scenarios" in frame.columns else None,
            strings("channel"),
            numbers("inventory", np.int64),
            _list_column(frame["tags"]) if "tags" in frame.columns else None,
            text_attributes,
            numeric_attributes,
        )
        return cls._wrap(impl)

    def to_json(self, indent: int = 2) -> str:
        return self._impl.to_json(indent)

    def to_records(self) -> List[dict]:
        return json.loads(self.to_json(-1))["benefits"]

    def to_frame(self) -> pd.DataFrame:
        """One row per benefit; kind and scope are categoricals; then one column per free
        attribute (text: None where a benefit lacks it; numeric: NaN)."""
        cols = self._impl.columns()
        text = cols.pop("attributes")
        numeric = cols.pop("numeric_attributes")
        frame = pd.DataFrame(cols)
        for name in sorted(set(text) | set(numeric)):
            frame[name] = pd.Series(text[name], dtype=object) if name in text else numeric[name]
        frame["kind"] = pd.Categorical(frame["kind"], categories=list(BENEFIT_KINDS))
        frame["scope"] = pd.Categorical(frame["scope"], categories=list(SCOPES))
        return frame

    @property
    def ids(self) -> IdMap:
        """Benefit ids (strings) to indices."""
        return IdMap._wrap(self._impl.ids)

    def find(self, benefit_id: str) -> int:
        """Index of a benefit id, or -1."""
        return self._impl.find(str(benefit_id))

    def dimensions(self) -> Tuple[List[str], np.ndarray]:
        """Preference dimension names and the benefits x dimensions 0/1 matrix."""
        dims = _core.BenefitDimensions.for_catalog(self._impl)
        return list(dims.names), dims.encode(self._impl)

    def __len__(self) -> int:
        return len(self._impl)

    def __eq__(self, other) -> bool:
        return isinstance(other, Catalog) and self._impl == other._impl

    def __repr__(self) -> str:
        return f"Catalog({len(self)} benefits)"


# ---------------------------------------------------------------------------------------------
class UserTable(_Serializable):
    """Member attributes, one row per member of ``user_ids`` (an IdMap): numeric columns
    (NaN = missing) and categorical ones (codes into category names, -1 = missing)."""

    _core_class = _core.UserTable

    unknown_users = 0  # members added or dropped by from_frame (see there)

    @renamed_keywords(users="user_ids")
    def __init__(self, user_ids: IdMap):
        _expect(user_ids, IdMap, "user_ids", "UserTable")
        self._impl = _core.UserTable(user_ids._impl)

    @classmethod
    @renamed_keywords(users="user_ids")
    def from_frame(
        cls,
        frame: pd.DataFrame,
        id_column: Optional[str] = None,
        user_ids: Optional[IdMap] = None,
        unknown: str = "add",
    ) -> "UserTable":
        """From a DataFrame with one row per member. Ids come from ``id_column`` (default: the
        index). Numbers and booleans become numeric columns, datetimes numeric seconds since the
        epoch, everything else categorical.

        Without ``user_ids`` the map is built from the ids in row order. With ``user_ids``
        (usually ``log.user_ids``) the rows are aligned to that map: its members keep their indices and
        those absent from the frame get missing values. Members of the frame that the map lacks
        (real programs have members without events) follow ``unknown``:

        - ``"add"`` (default): appended to a copy of the map, in frame order, at indices
          ``len(user_ids)``, ``len(user_ids) + 1``, ...; event-log indices stay valid, and the
          table's ``user_ids`` is the grown map (the caller's map is not changed);
        - ``"drop"``: left out;
        - ``"raise"``: InputError naming the first unknown id.

        ``table.unknown_users`` holds how many were added or dropped (0 without ``user_ids``).
        (``users`` is the deprecated name of ``user_ids``.)
        """
        frame_arg(frame, "UserTable.from_frame: frame")
        if unknown not in ("add", "drop", "raise"):
            raise _core.ConfigError(
                f"UserTable.from_frame: unknown must be 'add', 'drop' or 'raise' (got {unknown!r})"
            )
        ids = frame.index if id_column is None else frame[id_column]
        if pd.Index(ids).has_duplicates:
            dup = pd.Index(ids)[pd.Index(ids).duplicated()][0]
            raise _core.InputError(f"UserTable.from_frame: duplicate member id {dup!r}")
        unknown_count = 0
        users = user_ids
        if users is None:
            users = IdMap(np.asarray(ids))
            rows = np.arange(len(frame))
        else:
            _expect(users, IdMap, "user_ids", "UserTable.from_frame")
            rows = users.lookup(ids, missing="raise" if unknown == "raise" else "minus_one")
            missing_rows = rows < 0
            unknown_count = int(missing_rows.sum())
            if unknown_count and unknown == "add":
                users = IdMap.from_bytes(users.to_bytes())  # grow a copy, never the caller's map
                rows = users.lookup_or_add(ids)
            elif unknown_count:
                frame = frame[~missing_rows]
                rows = rows[~missing_rows]
        table = cls(users)
        n = len(users)
        for name in frame.columns:
            if name == id_column:
                continue
            col = frame[name]
            if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
                values = np.full(n, np.nan)
                values[rows] = col.to_numpy(dtype=np.float64, na_value=np.nan)
                table._impl.add_numeric(str(name), values)
            elif pd.api.types.is_datetime64_any_dtype(col):
                values = np.full(n, np.nan)
                valid = col.notna().to_numpy()
                values[rows[valid]] = seconds(col[valid], str(name)).astype(np.float64)
                table._impl.add_numeric(str(name), values)
            else:
                cat = pd.Categorical(col.astype(object).where(col.notna(), None))
                codes = np.full(n, -1, dtype=np.int32)
                codes[rows] = np.asarray(cat.codes, dtype=np.int32)
                table._impl.add_categorical(str(name), codes, [str(c) for c in cat.categories])
        table.unknown_users = unknown_count
        return table

    def to_frame(self) -> pd.DataFrame:
        """One row per member, indexed by external id; categorical columns as categoricals."""
        data = {}
        for name in self._impl.names():
            if self._impl.type(name) == "numeric":
                data[name] = self._impl.numeric(name)
            else:
                data[name] = pd.Categorical.from_codes(
                    self._impl.codes(name), self._impl.categories(name)
                )
        return pd.DataFrame(data, index=pd.Index(self.user_ids.ids, name="user"))

    @property
    def user_ids(self) -> IdMap:
        """The member map: row i of the table is member i of this IdMap."""
        return IdMap._wrap(self._impl.users)

    users = renamed_property("user_ids", "UserTable.users")

    @property
    def columns(self) -> List[str]:
        return list(self._impl.names())

    def __len__(self) -> int:
        return len(self._impl)

    def __eq__(self, other) -> bool:
        return isinstance(other, UserTable) and self._impl == other._impl

    def __repr__(self) -> str:
        return f"UserTable({len(self)} members, columns {self.columns})"


# ---------------------------------------------------------------------------------------------
class EventLog(_Serializable, _Indexed):
    """The benefit event log: columnar, sorted by member then time, indexed by member.

    Event types: issued, viewed, claimed, redeemed, expired, ordered. Only 'ordered' events
    may lack a benefit. Timestamps are int64 seconds since the Unix epoch (UTC).

    >>> log = EventLog.from_frame(df)   # columns user, benefit, event_type, timestamp, ...
    >>> train, test = split_by_time(log, "2026-06-01")
    """

    _core_class = _core.EventLog

    def __init__(self):
        self._impl = _core.EventLog()

    @classmethod
    def from_arrays(
        cls,
        user,
        benefit,
        event_type,
        timestamp,
        *,
        channel=None,
        order_amount=None,
        propensity=None,
        control=None,
        n_users: Optional[int] = None,
        n_benefits: Optional[int] = None,
        channel_names: Sequence[str] = (),
        num_threads: int = 0,
    ) -> "EventLog":
        """From dense index arrays. ``benefit`` is -1 for orders without a benefit;
        ``event_type`` holds codes (0..5) or names; ``channel`` codes index ``channel_names``
        (-1 = unknown). ``n_users``/``n_benefits`` default to the largest index + 1. Bad rows
        raise InputError naming the row and value."""
        types = (
            event_type
            if isinstance(event_type, (pd.Series, pd.Categorical))
            else _one_dimensional(event_type, "event_type")
        )
        if types.dtype.kind in "OUS" or isinstance(
            getattr(types, "dtype", None), pd.CategoricalDtype
        ):
            types = categorical_codes(types, EVENT_TYPES, "event_type")
        impl = _core.EventLog.from_arrays(
            int_array(user, np.int32, "user"),
            int_array(benefit, np.int32, "benefit"),
            int_array(types, np.uint8, "event_type"),
            seconds(timestamp, "timestamp"),
            None if channel is None else int_array(channel, np.int16, "channel"),
            None if order_amount is None else float_array(order_amount, np.float32, "order_amount"),
            None if propensity is None else float_array(propensity, np.float32, "propensity"),
            None if control is None else int_array(control, np.uint8, "control"),
            -1 if n_users is None else int(n_users),
            -1 if n_benefits is None else int(n_benefits),
            list(channel_names),
            int(num_threads),
        )
        return cls._wrap(impl)

    @classmethod
    @renamed_keywords(users="user_ids")
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        user: str = "user",
        benefit: str = "benefit",
        event_type: str = "event_type",
        timestamp: str = "timestamp",
        channel: Optional[str] = "channel",
        order_amount: Optional[str] = "order_amount",
        propensity: Optional[str] = "propensity",
        control: Optional[str] = "control",
        user_ids: Optional[IdMap] = None,
        benefits: Union[IdMap, "Catalog", None] = None,
        num_threads: int = 0,
    ) -> "EventLog":
        """From a DataFrame of events with external ids.

        Member ids are mapped through ``user_ids`` (an IdMap; unknown ids raise InputError) or a
        new map in order of first appearance (``users`` is its deprecated name); benefit ids through ``benefits`` (an IdMap or a Catalog) or
        a new map. A missing benefit (NaN/None) is allowed for 'ordered' events, a missing
        order_amount for events other than 'ordered' and 'redeemed'. Optional columns that are
        absent from the frame are skipped."""
        frame_arg(frame, "EventLog.from_frame: frame")
        for name in (user, benefit, event_type, timestamp):
            if name not in frame.columns:
                raise _core.InputError(f"EventLog.from_frame: missing column {name!r}")
        if user_ids is not None:
            _expect(user_ids, IdMap, "user_ids", "EventLog.from_frame")
        user_map = IdMap() if user_ids is None else user_ids
        if user_ids is None:
            user_idx = user_map.lookup_or_add(frame[user])
        else:
            user_idx = user_map.lookup(frame[user])
        benefit_map = (
            benefits.ids
            if isinstance(benefits, Catalog)
            else (IdMap() if benefits is None else benefits)
        )
        bcol = frame[benefit]
        present = bcol.notna().to_numpy()
        benefit_idx = np.full(len(frame), -1, dtype=np.int32)
        if present.any():
            values = bcol[present]
            if benefit_map.key_type == "string" and pd.api.types.is_numeric_dtype(values):
                values = values.astype(np.int64).astype(str)
            mapped = (
                benefit_map.lookup_or_add(values)
                if benefits is None
                else benefit_map.lookup(values)
            )
            benefit_idx[present] = mapped

        def optional(name):
            return frame[name] if name is not None and name in frame.columns else None

        channel_codes, channel_names = None, []
        ch = optional(channel)
        if ch is not None:
            codes, names = pd.factorize(ch, use_na_sentinel=True)
            channel_codes, channel_names = codes, [str(n) for n in names]
        types = np.asarray(frame[event_type].to_numpy())
        if types.dtype.kind in "OUS":
            types = categorical_codes(types, EVENT_TYPES, "event_type")
        amounts = None
        if optional(order_amount) is not None:
            # A missing amount means "no order" and is only allowed on events without one.
            amounts = float_array(optional(order_amount), np.float64, order_amount)
            missing = np.isnan(amounts)
            with_order = np.isin(
                types, [EVENT_TYPES.index("ordered"), EVENT_TYPES.index("redeemed")]
            )
            if (missing & with_order).any():
                i = int(np.flatnonzero(missing & with_order)[0])
                raise _core.InputError(
                    f"EventLog.from_frame: row {i}: order_amount is missing on a "
                    f"'{EVENT_TYPES[int(types[i])]}' event"
                )
            amounts = np.where(missing, 0.0, amounts)
        log = cls.from_arrays(
            user_idx,
            benefit_idx,
            types,
            frame[timestamp],
            channel=channel_codes,
            order_amount=amounts,
            propensity=None if optional(propensity) is None else optional(propensity).to_numpy(),
            control=None if optional(control) is None else optional(control).to_numpy(),
            n_users=len(user_map),
            n_benefits=len(benefit_map),
            channel_names=channel_names,
            num_threads=num_threads,
        )
        log.set_ids(user_map, benefit_map)
        return log

    def to_frame(self, external_ids: bool = True) -> pd.DataFrame:
        """The events as a DataFrame (user, benefit, event_type, timestamp, channel,
        order_amount[, propensity][, control]); benefit is -1/None for orders without one."""
        users = self._impl.users()
        benefits = self._impl.benefits()
        if external_ids and self.user_ids is not None:
            users = self.user_ids.ids[users]
        if external_ids and self.benefit_ids is not None:
            ids = self.benefit_ids.ids
            out = np.empty(len(benefits), dtype=ids.dtype if ids.dtype != object else object)
            has = benefits >= 0
            out[has] = ids[benefits[has]]
            if ids.dtype == object:
                out[~has] = None
            else:
                out = np.where(has, out, -1)
            benefits = out
        data = {
            "user": users,
            "benefit": benefits,
            "event_type": pd.Categorical.from_codes(
                self._impl.types().astype(np.int64), list(EVENT_TYPES)
            ),
            "timestamp": pd.to_datetime(self._impl.timestamps(), unit="s", utc=True),
            "channel": pd.Categorical.from_codes(
                self._impl.channels().astype(np.int64), self.channel_names
            )
            if self.channel_names
            else np.full(len(self), None, dtype=object),
            "order_amount": self._impl.order_amounts(),
        }
        if self.has_propensity:
            data["propensity"] = self._impl.propensities()
        if self.has_control:
            data["control"] = self._impl.control().astype(bool)
        return pd.DataFrame(data)

    # Read-only, zero-copy column views.
    @property
    def users(self) -> np.ndarray:
        return self._impl.users()

    @property
    def benefits(self) -> np.ndarray:
        return self._impl.benefits()

    @property
    def event_types(self) -> np.ndarray:
        return self._impl.types()

    @property
    def timestamps(self) -> np.ndarray:
        return self._impl.timestamps()

    @property
    def channels(self) -> np.ndarray:
        return self._impl.channels()

    @property
    def order_amounts(self) -> np.ndarray:
        return self._impl.order_amounts()

    @property
    def propensities(self) -> np.ndarray:
        return self._impl.propensities()

    @property
    def control(self) -> np.ndarray:
        return self._impl.control()

    @property
    def user_offsets(self) -> np.ndarray:
        """Member u's events are rows user_offsets[u]:user_offsets[u + 1]."""
        return self._impl.user_offsets()

    @property
    def channel_names(self) -> List[str]:
        return list(self._impl.channel_names)

    @property
    def has_propensity(self) -> bool:
        return self._impl.has_propensity

    @property
    def has_control(self) -> bool:
        return self._impl.has_control

    @property
    def time_range(self) -> Tuple[pd.Timestamp, pd.Timestamp]:
        return (
            pd.Timestamp(self._impl.min_time, unit="s", tz="UTC"),
            pd.Timestamp(self._impl.max_time, unit="s", tz="UTC"),
        )

    def counts_by_type(self) -> pd.Series:
        return pd.Series(self._impl.count_by_type(), index=list(EVENT_TYPES), name="events")

    def filter(self, keep, num_threads: int = 0) -> "EventLog":
        """The events where ``keep`` (one boolean per event, in log order) is true."""
        mask = np.asarray(keep)
        if mask.dtype.kind != "b":
            raise _core.InputError(
                f"EventLog.filter: keep must be booleans, one per event (got dtype {mask.dtype})"
            )
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        return EventLog._wrap(self._impl.filter(mask, int(num_threads)))

    def __len__(self) -> int:
        return len(self._impl)

    def __repr__(self) -> str:
        return f"EventLog({len(self)} events, {self.n_users} members, {self.n_benefits} benefits)"


# ---------------------------------------------------------------------------------------------
def _expect(obj, cls, name: str, context: str):
    """``obj`` when it is a ``cls``; otherwise InputError naming the argument."""
    if not isinstance(obj, cls):
        raise _core.InputError(
            f"{context}: {name} must be a perkrec.{cls.__name__} (got {type(obj).__name__})"
        )
    return obj


@renamed_keywords(cut="cut_time")
def split_by_time(log: EventLog, cut_time, num_threads: int = 0) -> Tuple[EventLog, EventLog]:
    """(train, test): events before ``cut_time`` (seconds, or anything pandas reads as a time;
    naive means UTC) and events at or after it."""
    _expect(log, EventLog, "log", "split_by_time")
    train, test = _core.split_by_time(
        log._impl,
        time_seconds(cut_time, "cut_time"),
        int_scalar(num_threads, "num_threads", -(2**31)),
    )
    return EventLog._wrap(train), EventLog._wrap(test)


def split_leave_last_k(
    log: EventLog,
    k: int = 1,
    target_types: Sequence[str] = ("claimed", "redeemed"),
    num_threads: int = 0,
) -> Tuple[EventLog, EventLog]:
    """(train, test): per member, the last ``k`` target events and everything at or after the
    earliest of them go to test. Members with ``k`` or fewer targets stay in train."""
    _expect(log, EventLog, "log", "split_leave_last_k")
    if isinstance(target_types, str) or not isinstance(target_types, (list, tuple)):
        raise _core.InputError(
            f"split_leave_last_k: target_types must be a list of event types (got {target_types!r})"
        )
    mask = 0
    for t in target_types:
        if t not in EVENT_TYPES:
            raise _core.InputError(f"split_leave_last_k: unknown event type {t!r}")
        mask |= 1 << EVENT_TYPES.index(t)
    train, test = _core.split_leave_last_k(
        log._impl, int_scalar(k, "k"), mask, int_scalar(num_threads, "num_threads", -(2**31))
    )
    return EventLog._wrap(train), EventLog._wrap(test)


def split_random_users(
    log: EventLog, test_fraction: float = 0.2, seed: int = 42, num_threads: int = 0
) -> Tuple[EventLog, EventLog]:
    """(train, test): each member goes wholly to test with probability ``test_fraction``."""
    _expect(log, EventLog, "log", "split_random_users")
    if isinstance(test_fraction, bool) or not isinstance(
        test_fraction, (int, float, np.integer, np.floating)
    ):
        raise _core.InputError(
            f"split_random_users: test_fraction must be a number (got {test_fraction!r})"
        )
    train, test = _core.split_random_users(
        log._impl,
        float(test_fraction),
        int_scalar(seed, "seed", 0, 2**63 - 1),
        int_scalar(num_threads, "num_threads", -(2**31)),
    )
    return EventLog._wrap(train), EventLog._wrap(test)
