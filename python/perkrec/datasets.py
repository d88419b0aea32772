"""Loaders for the public benchmark datasets kept (read-only) in ``shared/data/<folder>/``.

Every loader takes the dataset folder as its first argument and returns a :class:`Dataset`:

    name      the folder's dataset name
    frame     a typed pandas DataFrame of the dataset's main table (or None)
    events    an :class:`~perkrec.EventLog` with external ids attached (or None)
    catalog   a :class:`~perkrec.Catalog` of the benefits (or None)
    users     a :class:`~perkrec.UserTable` of member attributes (or None)
    extra     further tables and counts (documented per loader)

    ds = load_movielens_100k("/work/shared/data/movielens-100k", min_rating=4)
    ds.events    # EventLog(55375 events, 943 members, 1682 benefits)
    ds.users     # UserTable(943 members, columns ['age', 'gender', 'occupation', 'zip'])

Files may be stored as ``name`` or ``name.gz`` (both are looked for). A missing folder or
file, a missing column or a malformed value raises :class:`perkrec.InputError` naming the file,
the column and the bad value. Everything is vectorized pandas/numpy; the only Python loops run
over tiny tables (a 10-offer portfolio, 30 campaigns, 10 coupon types).

Time: several datasets only give relative times (hours or day indices since the start of a
study). Their event timestamps are those offsets counted from the Unix epoch (1970-01-01 UTC),
so the origin is arbitrary; only differences between timestamps mean anything.

Licensing differs per dataset (see each folder's SOURCE.md): ml-100k may not be redistributed,
dunnhumby, Tianchi and the Starbucks course data carry competition or course terms. None of
the data is copied into this repository.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from . import _core
from ._util import seconds as _times
from .data import EVENT_TYPES, Catalog, EventLog, IdMap, UserTable, parse_discounts

__all__ = [
    "Dataset",
    "LOADERS",
    "load_bank_marketing",
    "load_dunnhumby",
    "load_hillstrom",
    "load_in_vehicle_coupon",
    "load_movielens_100k",
    "load_movielens_latest_small",
    "load_starbucks",
    "load_tianchi_o2o",
]

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_HOUR = 3_600
_TYPE_CODE = {name: np.uint8(i) for i, name in enumerate(EVENT_TYPES)}


@dataclass(repr=False)
class Dataset:
    """A loaded benchmark dataset; which parts are present depends on the dataset."""

    name: str
    frame: Optional[pd.DataFrame] = None
    events: Optional[EventLog] = None
    catalog: Optional[Catalog] = None
    users: Optional[UserTable] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = [repr(self.name)]
        if self.frame is not None:
            parts.append(f"frame={self.frame.shape[0]}x{self.frame.shape[1]}")
        for name in ("events", "catalog", "users"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        if self.extra:
            parts.append(f"extra=[{', '.join(map(str, self.extra))}]")
        return f"Dataset({', '.join(parts)})"


# ---------------------------------------------------------------------------------------------
# File access and validation helpers.


def _error(message: str) -> Exception:
    return _core.InputError(message)


def _folder(path) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise _error(f"dataset folder {str(folder)!r} does not exist or is not a directory")
    return folder


def _file(folder: Path, name: str) -> Path:
    """``folder/name`` or ``folder/name.gz``, whichever exists."""
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    raise _error(f"{folder / name}: file not found (also looked for {name}.gz)")


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], file: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise _error(
            f"{file}: missing column(s) {', '.join(map(repr, missing))} "
            f"(the file has {', '.join(map(str, frame.columns))})"
        )


def _read_csv(file: Path, required: Sequence[str] = (), **kwargs) -> pd.DataFrame:
    """pandas.read_csv (compression inferred) with read errors and missing columns as InputError."""
    try:
        frame = pd.read_csv(file, **kwargs)
    except (
        ValueError,
        OSError,
        EOFError,
        zlib.error,
    ) as exc:  # ParserError, EmptyDataError, bad gzip
        raise _error(f"{file}: cannot read as CSV ({type(exc).__name__}: {exc})") from exc
    _require_columns(frame, required, file)
    return frame


def _read_json_lines(file: Path, required: Sequence[str] = ()) -> pd.DataFrame:
    try:
        frame = pd.read_json(file, lines=True, dtype=False)
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise _error(f"{file}: cannot read as JSON lines ({type(exc).__name__}: {exc})") from exc
    _require_columns(frame, required, file)
    return frame


def _bad_row(
    file: Path, column: str, mask: np.ndarray, values: pd.Series, expected: str
) -> Exception:
    i = int(np.flatnonzero(mask)[0])
    return _error(
        f"{file}: column {column!r}, data row {i + 1}: expected {expected} (got {values.iloc[i]!r}; "
        f"{int(mask.sum())} bad value(s) in all)"
    )


def _numeric(
    frame: pd.DataFrame,
    column: str,
    file: Path,
    *,
    integer: bool = False,
    allow_missing: bool = False,
    dtype=None,
    low: Optional[float] = None,
    high: Optional[float] = None,
) -> pd.Series:
    """The column as numbers; InputError naming the first non-numeric / missing / non-integral /
    out-of-range value."""
    raw = frame[column]
    values = (
        raw
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw)
        else pd.to_numeric(raw, errors="coerce")
    )
    values = values.astype(np.float64)
    missing_in = raw.isna().to_numpy()
    num = values.to_numpy()
    bad = np.isnan(num) & ~missing_in
    if bad.any():
        raise _bad_row(file, column, bad, raw, "a number")
    if not allow_missing and missing_in.any():
        raise _bad_row(file, column, missing_in, raw, "a value (it is missing)")
    present = ~np.isnan(num)
    checks = []
    if integer:
        checks.append((present & (num != np.floor(num)), "an integer"))
    if low is not None:
        checks.append((present & (num < low), f"a number >= {low:g}"))
    if high is not None:
        checks.append((present & (num > high), f"a number <= {high:g}"))
    for mask, what in checks:
        if mask.any():
            raise _bad_row(file, column, mask, raw, what)
    if dtype is not None:
        exact = (
            raw.to_numpy() if pd.api.types.is_integer_dtype(raw) else num
        )  # ids above 2**53 stay exact
        return pd.Series(exact.astype(dtype), index=raw.index, name=column)
    return pd.Series(num, index=raw.index, name=column)


def _categorical(
    frame: pd.DataFrame,
    column: str,
    file: Path,
    categories: Optional[Sequence] = None,
    ordered: bool = False,
    allow_missing: bool = True,
) -> pd.Categorical:
    """The column as a categorical; with fixed ``categories`` unknown values raise InputError."""
    raw = frame[column]
    if not (pd.api.types.is_string_dtype(raw) or raw.dtype == object):
        raw = raw.astype("str")  # numbers as their text, NaN stays missing
    if categories is None:
        categories = sorted(map(str, raw.dropna().unique()))
        cat = pd.Categorical(raw, categories=categories, ordered=ordered)
    else:
        unknown = ~raw.isin(list(categories)).to_numpy() & raw.notna().to_numpy()
        if unknown.any():
            raise _bad_row(file, column, unknown, raw, f"one of {', '.join(map(str, categories))}")
        cat = pd.Categorical(raw, categories=list(categories), ordered=ordered)
    if not allow_missing:
        missing = raw.isna().to_numpy()
        if missing.any():
            raise _bad_row(file, column, missing, raw, "a value (it is missing)")
    return cat


def _flag(frame: pd.DataFrame, column: str, file: Path) -> pd.Series:
    """A 0/1 column as int8."""
    return _numeric(frame, column, file, integer=True, low=0, high=1, dtype=np.int8)


def _yes_no(frame: pd.DataFrame, column: str, file: Path) -> pd.Series:
    cat = _categorical(frame, column, file, categories=["no", "yes"], allow_missing=False)
    return pd.Series(np.asarray(cat.codes, dtype=np.int8), index=frame.index, name=column)


def _lookup(ids: IdMap, values, file: Path, column: str) -> np.ndarray:
    try:
        return ids.lookup(values)
    except _core.InputError as exc:
        raise _error(f"{file}: column {column!r}: {exc}") from exc


def _catalog(
    file: Path, records: Optional[Sequence[dict]] = None, frame: Optional[pd.DataFrame] = None
) -> Catalog:
    """Catalog.from_records / from_frame with the source file named in errors."""
    try:
        return Catalog.from_records(records) if records is not None else Catalog.from_frame(frame)
    except _core.InputError as exc:
        raise _error(f"{file}: {exc}") from exc


def _event_log(
    user_ids: IdMap, benefit_ids: IdMap, user, benefit, event_type, timestamp
) -> EventLog:
    """An EventLog from dense indices, type codes and int64 seconds, with external ids attached."""
    log = EventLog.from_arrays(
        np.ascontiguousarray(user, dtype=np.int32),
        np.ascontiguousarray(benefit, dtype=np.int32),
        np.ascontiguousarray(event_type, dtype=np.uint8),
        np.ascontiguousarray(timestamp, dtype=np.int64),
        n_users=len(user_ids),
        n_benefits=len(benefit_ids),
    )
    log.set_ids(user_ids, benefit_ids)
    return log


def _types(name: str, n: int) -> np.ndarray:
    return np.full(n, _TYPE_CODE[name], dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# 1. UCI in-vehicle coupon recommendation.

_FREQUENCY = ["never", "less1", "1~3", "4~8", "gt8"]
_IVC_ORDERED = {
    "time": ["7AM", "10AM", "2PM", "6PM", "10PM"],
    "expiration": ["2h", "1d"],
    "age": ["below21", "21", "26", "31", "36", "41", "46", "50plus"],
    "income": [
        "Less than $12500",
        "$12500 - $24999",
        "$25000 - $37499",
        "$37500 - $49999",
        "$50000 - $62499",
        "$62500 - $74999",
        "$75000 - $87499",
        "$87500 - $99999",
        "$100000 or More",
    ],
    **{
        c: _FREQUENCY
        for c in ("Bar", "CoffeeHouse", "CarryAway", "RestaurantLessThan20", "Restaurant20To50")
    },
}
_IVC_CATEGORIES = {
    "destination": ["No Urgent Place", "Home", "Work"],
    "passanger": ["Alone", "Friend(s)", "Kid(s)", "Partner"],
    "weather": ["Sunny", "Rainy", "Snowy"],
    "coupon": [
        "Coffee House",
        "Restaurant(<20)",
        "Carry out & Take away",
        "Bar",
        "Restaurant(20-50)",
    ],
    "gender": ["Female", "Male"],
}
_IVC_FREE_TEXT = ["maritalStatus", "education", "occupation", "car"]
_IVC_FLAGS = [
    "has_children",
    "toCoupon_GEQ5min",
    "toCoupon_GEQ15min",
    "toCoupon_GEQ25min",
    "direction_same",
    "direction_opp",
]
_IVC_COLUMNS = [
    "destination",
    "passanger",
    "weather",
    "temperature",
    "time",
    "coupon",
    "expiration",
    "gender",
    "age",
    "maritalStatus",
    "has_children",
    "education",
    "occupation",
    "income",
    "car",
    "Bar",
    "CoffeeHouse",
    "CarryAway",
    "RestaurantLessThan20",
    "Restaurant20To50",
    "toCoupon_GEQ5min",
    "toCoupon_GEQ15min",
    "toCoupon_GEQ25min",
    "direction_same",
    "direction_opp",
    "Y",
]


def load_in_vehicle_coupon(path) -> Dataset:
    """UCI "in-vehicle coupon recommendation" (12,684 survey scenarios, Y=1 on 7,210).

    Returns a Dataset with

    * ``frame``: the 26 original columns, typed: the survey answers as categoricals (ordered for
      ``time``, ``expiration``, ``age``, ``income`` and the visit-frequency columns ``Bar`` …
      ``Restaurant20To50``: never < less1 < 1~3 < 4~8 < gt8), ``temperature`` as int64 (°F),
      the 0/1 flags as int8, the label ``Y`` as int8; plus ``benefit``, a categorical naming
      the offered coupon as "<coupon>|<expiration>" (e.g. "Coffee House|1d").
    * ``catalog``: one benefit per (coupon, expiration) pair, in the order of ``frame.benefit``'s
      categories: kind "discount" (the survey gives no amount, so face_value is 0),
      validity_days 1 (also for the "2h" expiration, which a whole-day field cannot express;
      the tag "expiration:2h" keeps it), tags "venue:<coupon>" and "expiration:<2h|1d>".
    * ``events`` and ``users``: None. The survey has no respondent ids (one respondent answers
      several consecutive rows, but no column says which), so there is no member to attach
      events or attributes to.

    Caveats (SOURCE.md): the copy was converted from ';' to ',' delimiters; ``car`` is blank on
    12,576 rows; the visit-frequency columns have a few blanks (NaN here); the "passanger"
    spelling is the original's. CC BY 4.0 (UCI).
    """
    folder = _folder(path)
    file = _file(folder, "in-vehicle-coupon-recommendation.csv")
    raw = _read_csv(file, _IVC_COLUMNS)
    frame = pd.DataFrame(index=raw.index)
    for column in _IVC_COLUMNS:
        if column in _IVC_ORDERED:
            frame[column] = _categorical(raw, column, file, _IVC_ORDERED[column], ordered=True)
        elif column in _IVC_CATEGORIES:
            frame[column] = _categorical(
                raw, column, file, _IVC_CATEGORIES[column], allow_missing=False
            )
        elif column in _IVC_FREE_TEXT:
            frame[column] = _categorical(raw, column, file)
        elif column in _IVC_FLAGS:
            frame[column] = _flag(raw, column, file)
        elif column == "temperature":
            frame[column] = _numeric(raw, column, file, integer=True, dtype=np.int64)
        elif column == "Y":
            frame[column] = _flag(raw, column, file)
    for column in ("coupon", "expiration"):
        if frame[column].isna().any():
            raise _bad_row(
                file,
                column,
                frame[column].isna().to_numpy(),
                raw[column],
                "a value (it is missing)",
            )

    coupons, expirations = _IVC_CATEGORIES["coupon"], _IVC_ORDERED["expiration"]
    ids = [f"{c}|{e}" for c in coupons for e in expirations]
    codes = np.asarray(frame["coupon"].cat.codes, dtype=np.int64) * len(expirations) + np.asarray(
        frame["expiration"].cat.codes, dtype=np.int64
    )
    frame["benefit"] = pd.Categorical.from_codes(codes, categories=ids)
    catalog = Catalog.from_records(
        [
            {
                "id": f"{c}|{e}",
                "kind": "discount",
                "validity_days": 1,
                "tags": [f"venue:{c}", f"expiration:{e}"],
            }
            for c in coupons
            for e in expirations
        ]
    )
    return Dataset(name="uci-in-vehicle-coupon", frame=frame, catalog=catalog)


# ---------------------------------------------------------------------------------------------
# 2. Starbucks rewards-app offers.

_SB_HONEST = [
    "customer_id",
    "offer_received_time",
    "offer_id",
    "reward",
    "difficulty",
    "duration",
    "offer_type",
    "num_channels",
    "ch_web",
    "ch_email",
    "ch_mobile",
    "ch_social",
    "age",
    "days_registered",
    "income",
]
_SB_LABELS = ["offer_completed", "offer_completed_time"]
# Honest but redundant encodings of columns the frame already has (offer type one-hots, the
# offer_type-reward-difficulty-duration string, gender one-hots with "O" folded into
# "Missing", quantile codes of age / days_registered / income).
_SB_REDUNDANT = [
    "type_bogo",
    "type_informational",
    "type_discount",
    "offer_type_v2",
    "gender_F",
    "gender_M",
    "gender_Missing",
    "age_quantile_label_enc",
    "days_reg_quantile_label_enc",
    "income_quantile_label_enc",
]
_SB_CHANNELS = ["web", "email", "mobile", "social"]
_SB_OFFER_TYPES = ["bogo", "discount", "informational"]


def load_starbucks(path) -> Dataset:
    """Starbucks rewards-app offers (Udacity capstone; simulated data, course terms).

    Returns a Dataset with

    * ``catalog``: the 10 offers of portfolio.json (ids: the hex offer ids, file order). bogo and
      discount offers are kind "threshold_discount" with threshold = difficulty (minimum spend,
      $), face_value = cost = reward ($); informational offers are kind "service" with
      face_value 0. validity_days = duration (days); channel "" with tags "channel:<web|email|
      mobile|social>" for each channel and "offer_type:<bogo|discount|informational>".
    * ``users``: a UserTable of the 17,000 customers of profile.json (file order): gender
      categorical (M/F/O, missing on 2,175), age (118 in the file = missing -> NaN), income
      (NaN when missing), became_member_on (a date; numeric seconds in the UserTable).
      ``extra["profile"]`` holds the same table as a DataFrame with the date as datetime64.
    * ``events``: from the third-party derived tables (train + test): one "issued" event per
      row at offer_received_time and one "redeemed" event per row with offer_completed = 1 at
      offer_completed_time. Those times are hours since the start of the 30-day test; the
      timestamps are ``hours * 3600`` seconds since the Unix epoch, so the origin (1970-01-01)
      is arbitrary. Member indices are those of ``users`` (every customer appears there).
    * ``frame``: the 76,358 derived rows restricted to honest columns: customer_id,
      offer_received_time (h), offer_id, the offer attributes (reward, difficulty, duration in
      HOURS, offer_type, num_channels, ch_web/ch_email/ch_mobile/ch_social), age,
      days_registered, income, gender, then the labels offer_completed (int8) and
      offer_completed_time (h; NaN when not completed, the file's -1) and ``split``
      ("train"/"test", the author's split by customer).

    Caveats (SOURCE.md and checks of the files):

    * The raw event log transcript.json is absent; the events are rebuilt from the derived
      tables, so there are no "viewed" events and no transactions.
    * The customer-level aggregates of the derived tables (37 columns: num_offer_completed,
      offer_completion_rate, transaction_*, ...) are computed over the whole 30-day window,
      target offer included: they leak the label. They are left out of ``frame`` and listed in
      ``extra["leaky_columns"]`` (every column that is neither honest, a label nor a redundant
      encoding counts as leaky). Redundant encodings (one-hots, quantile codes) are listed in
      ``extra["redundant_columns"]``.
    * The derived tables impute age and income for the 2,175 customers whose profile has them
      missing, and fold gender "O" into "Missing". ``frame`` takes age, income and gender from
      profile.json instead, so they are NaN where the publisher has no value;
      ``extra["imputed_rows"]`` counts the derived rows whose demographics were imputed.
      days_registered is days from became_member_on to 2018-07-26.
    * 81 rows repeat a (customer, offer, received time) with different completion times (join
      duplication in the author's pipeline; 76,358 rows against 76,277 raw "offer received"
      events). They are kept, and each gives an event; ``extra["duplicate_rows"]`` counts them.
    * How offer_completed is defined for informational offers is the author's choice (it is 0
      on every informational row).
    """
    folder = _folder(path)

    # Catalog (10 rows: a Python loop over the portfolio is fine).
    pfile = _file(folder, "portfolio.json")
    portfolio = _read_json_lines(
        pfile, ["id", "offer_type", "difficulty", "reward", "duration", "channels"]
    )
    offer_type = _categorical(portfolio, "offer_type", pfile, _SB_OFFER_TYPES, allow_missing=False)
    difficulty = _numeric(portfolio, "difficulty", pfile, low=0)
    reward = _numeric(portfolio, "reward", pfile, low=0)
    duration = _numeric(portfolio, "duration", pfile, integer=True, low=1)
    records = []
    for i in range(len(portfolio)):
        channels = portfolio["channels"].iloc[i]
        if not isinstance(channels, list) or any(c not in _SB_CHANNELS for c in channels):
            raise _error(
                f"{pfile}: column 'channels', data row {i + 1}: expected a list of "
                f"{', '.join(_SB_CHANNELS)} (got {channels!r})"
            )
        kind = str(offer_type[i])
        record = {
            "id": str(portfolio["id"].iloc[i]),
            "validity_days": int(duration.iloc[i]),
            "channel": "",
            "tags": [f"channel:{c}" for c in channels] + [f"offer_type:{kind}"],
        }
        if kind == "informational":
            record.update(kind="service", face_value=0.0)
        else:
            record.update(
                kind="threshold_discount",
                threshold=float(difficulty.iloc[i]),
                face_value=float(reward.iloc[i]),
                cost=float(reward.iloc[i]),
            )
        records.append(record)
    catalog = _catalog(pfile, records=records)

    # Members.
    ufile = _file(folder, "profile.json")
    raw_profile = _read_json_lines(ufile, ["id", "gender", "age", "became_member_on", "income"])
    age = _numeric(raw_profile, "age", ufile, low=0)
    member_since = pd.to_datetime(
        raw_profile["became_member_on"].astype(str), format="%Y%m%d", errors="coerce"
    )
    if member_since.isna().any():
        raise _bad_row(
            ufile,
            "became_member_on",
            member_since.isna().to_numpy(),
            raw_profile["became_member_on"],
            "a date YYYYMMDD",
        )
    profile = pd.DataFrame(
        {
            "gender": _categorical(raw_profile, "gender", ufile, ["F", "M", "O"]),
            "age": age.where(age != 118),
            "income": _numeric(raw_profile, "income", ufile, allow_missing=True, low=0),
            "became_member_on": member_since,
        }
    )
    profile.index = pd.Index(
        raw_profile["id"].astype(str).to_numpy(dtype=object), name="customer_id"
    )
    if profile.index.has_duplicates:
        raise _error(
            f"{ufile}: duplicate customer id {profile.index[profile.index.duplicated()][0]!r}"
        )
    users = UserTable.from_frame(profile)
    user_ids = users.user_ids

    # Derived per-offer rows.
    parts = []
    leaky: list = []
    redundant: list = []
    for split in ("train", "test"):
        dfile = _file(folder / "derived_do-y-lee", f"{split}_v3_starbucks.csv")
        part = _read_csv(dfile, _SB_HONEST + _SB_LABELS)
        for column in part.columns:
            if column in _SB_REDUNDANT:
                target = redundant
            elif column in _SB_HONEST or column in _SB_LABELS:
                continue
            else:
                target = leaky
            if column not in target:
                target.append(column)
        out = pd.DataFrame(
            {
                "customer_id": part["customer_id"].astype(str),
                "offer_received_time": _numeric(
                    part, "offer_received_time", dfile, integer=True, low=0, dtype=np.int64
                ),
                "offer_id": part["offer_id"].astype(str),
            }
        )
        for column in ("reward", "difficulty", "duration"):
            out[column] = _numeric(part, column, dfile, integer=True, low=0, dtype=np.int64)
        out["offer_type"] = _categorical(
            part, "offer_type", dfile, _SB_OFFER_TYPES, allow_missing=False
        )
        out["num_channels"] = _numeric(
            part, "num_channels", dfile, integer=True, low=0, dtype=np.int64
        )
        for column in ("ch_web", "ch_email", "ch_mobile", "ch_social"):
            out[column] = _flag(part, column, dfile)
        out["age"] = _numeric(part, "age", dfile, allow_missing=True)
        out["days_registered"] = _numeric(
            part, "days_registered", dfile, integer=True, dtype=np.int64
        )
        out["income"] = _numeric(part, "income", dfile, allow_missing=True)
        completed = _flag(part, "offer_completed", dfile)
        done_at = _numeric(part, "offer_completed_time", dfile, allow_missing=True)
        bad = (completed.to_numpy() == 1) & ~(done_at.to_numpy() >= 0)
        if bad.any():
            raise _bad_row(
                dfile,
                "offer_completed_time",
                bad,
                part["offer_completed_time"],
                "a completion time >= 0 on a completed offer",
            )
        out["offer_completed"] = completed
        out["offer_completed_time"] = done_at.where(completed == 1)
        out["split"] = split
        parts.append((dfile, out))

    frame = pd.concat([p for _, p in parts], ignore_index=True)
    frame["split"] = pd.Categorical(frame["split"], categories=["train", "test"])
    row_users = np.concatenate(
        [_lookup(user_ids, p["customer_id"], f, "customer_id") for f, p in parts]
    )
    row_offers = np.concatenate(
        [_lookup(catalog.ids, p["offer_id"], f, "offer_id") for f, p in parts]
    )

    # Demographics from the profile (the derived tables impute them).
    imputed = profile["age"].isna().to_numpy()[row_users]
    frame["age"] = profile["age"].to_numpy()[row_users]
    frame["income"] = profile["income"].to_numpy()[row_users]
    frame.insert(
        frame.columns.get_loc("income") + 1,
        "gender",
        pd.Categorical.from_codes(
            np.asarray(profile["gender"].cat.codes)[row_users],
            categories=profile["gender"].cat.categories,
        ),
    )

    # Events: issued at receipt, redeemed at completion.
    done = frame["offer_completed"].to_numpy() == 1
    hours_issued = frame["offer_received_time"].to_numpy(dtype=np.int64)
    hours_done = frame["offer_completed_time"].to_numpy()[done]
    n, m = len(frame), int(done.sum())
    events = _event_log(
        user_ids,
        catalog.ids,
        np.concatenate([row_users, row_users[done]]),
        np.concatenate([row_offers, row_offers[done]]),
        np.concatenate([_types("issued", n), _types("redeemed", m)]),
        np.concatenate(
            [
                hours_issued * _SECONDS_PER_HOUR,
                np.round(hours_done * _SECONDS_PER_HOUR).astype(np.int64),
            ]
        ),
    )

    key = ["customer_id", "offer_id", "offer_received_time"]
    extra = {
        "leaky_columns": leaky,
        "redundant_columns": redundant,
        "profile": profile,
        "imputed_rows": int(imputed.sum()),
        "duplicate_rows": int(frame.duplicated(key).sum()),
        "time_unit": "hours since the start of the test; event timestamps = hours * 3600 s since the Unix epoch",
    }
    return Dataset(
        name="starbucks-rewards-offers",
        frame=frame,
        events=events,
        catalog=catalog,
        users=users,
        extra=extra,
    )


# ---------------------------------------------------------------------------------------------
# 3. dunnhumby "The Complete Journey" (campaign and coupon tables).

_DH_TYPES = ["TypeA", "TypeB", "TypeC"]
_DH_DEMOGRAPHICS = [
    "AGE_DESC",
    "MARITAL_STATUS_CODE",
    "INCOME_DESC",
    "HOMEOWNER_DESC",
    "HH_COMP_DESC",
    "HOUSEHOLD_SIZE_DESC",
    "KID_CATEGORY_DESC",
]
_DH_ORDERED = {
    "AGE_DESC": ["19-24", "25-34", "35-44", "45-54", "55-64", "65+"],
    "INCOME_DESC": [
        "Under 15K",
        "15-24K",
        "25-34K",
        "35-49K",
        "50-74K",
        "75-99K",
        "100-124K",
        "125-149K",
        "150-174K",
        "175-199K",
        "200-249K",
        "250K+",
    ],
    "HOUSEHOLD_SIZE_DESC": ["1", "2", "3", "4", "5+"],
}


def load_dunnhumby(path) -> Dataset:
    """dunnhumby "The Complete Journey": campaigns, targetings, coupon redemptions, households.

    Returns a Dataset with

    * ``catalog``: one benefit per campaign (30), ordered by campaign number, id "C<n>", kind
      "discount" (the coupons' values are not in the data, so face_value is 0), validity_days =
      END_DAY - START_DAY + 1, tags "campaign_type:<TypeA|TypeB|TypeC>".
    * ``users``: a UserTable aligned with ``events``'s members (same IdMap, same indices), every
      column categorical ("Unknown" / "None/Unknown" are kept as categories). Only the 801
      households of hh_demographic.csv have values; the others' are missing. The typed
      demographics alone (ordered categories for age, income and household size) are in
      ``extra["households"]``.
    * ``events``: one "issued" event per (household, campaign) targeting of campaign_table.csv
      at the campaign's START_DAY, and one "redeemed" event per coupon_redempt.csv row (one per
      coupon redeemed) at its DAY. Timestamps are ``day index * 86400`` seconds since the Unix
      epoch (day 1 = 1970-01-02): the study's calendar dates are not published, so the origin is
      arbitrary. Members: every household that was targeted, redeemed or has demographics (integer ids,
      sorted; 41 described households were never targeted).
    * ``frame``: one row per targeted (household, campaign) pair, in file order: household_key,
      campaign, campaign_type, start_day, end_day, redeemed (int8 0/1), n_redemptions (coupons
      redeemed by that household in that campaign), first_redemption_day (NaN if none).

    ``extra``: "campaigns" (campaign_desc typed), "coupons" (coupon.csv: which products each
    coupon UPC covers, when the file is present), "untargeted_redemptions" and
    "untargeted_pairs" (redemptions whose (household, campaign) is not in campaign_table; they
    are kept in ``events``; 0 in the shipped data), "redemptions_outside_window" (redemption
    day outside the campaign's start..end; 0 in the shipped data) and "duplicate_targetings"
    (repeated campaign_table rows, dropped from ``frame`` and ``events``).

    Caveats (SOURCE.md): transactions, products and causal data are absent, so only coupon
    redemptions are visible, not purchases. Research / internal-test use only (dunnhumby terms).
    """
    folder = _folder(path)
    dfile = _file(folder, "campaign_desc.csv")
    desc = _read_csv(dfile, ["DESCRIPTION", "CAMPAIGN", "START_DAY", "END_DAY"])
    campaigns = pd.DataFrame(
        {
            "campaign": _numeric(desc, "CAMPAIGN", dfile, integer=True, low=0, dtype=np.int64),
            "campaign_type": _categorical(
                desc, "DESCRIPTION", dfile, _DH_TYPES, allow_missing=False
            ),
            "start_day": _numeric(desc, "START_DAY", dfile, integer=True, low=0, dtype=np.int64),
            "end_day": _numeric(desc, "END_DAY", dfile, integer=True, low=0, dtype=np.int64),
        }
    )
    if campaigns["campaign"].duplicated().any():
        dup = campaigns["campaign"][campaigns["campaign"].duplicated()].iloc[0]
        raise _error(f"{dfile}: campaign {dup} is listed twice")
    bad = (campaigns["end_day"] < campaigns["start_day"]).to_numpy()
    if bad.any():
        raise _bad_row(dfile, "END_DAY", bad, desc["END_DAY"], "END_DAY >= START_DAY")
    campaigns = campaigns.sort_values("campaign", ignore_index=True)
    catalog = _catalog(
        dfile,
        frame=pd.DataFrame(
            {
                "id": "C" + campaigns["campaign"].astype(str),
                "kind": "discount",
                "validity_days": campaigns["end_day"] - campaigns["start_day"] + 1,
                "tags": "campaign_type:" + campaigns["campaign_type"].astype(str),
            }
        ),
    )
    campaign_index = pd.Index(campaigns["campaign"])

    # Targetings.
    tfile = _file(folder, "campaign_table.csv")
    table = _read_csv(tfile, ["DESCRIPTION", "household_key", "CAMPAIGN"])
    target_household = _numeric(table, "household_key", tfile, integer=True, low=0, dtype=np.int64)
    target_campaign = _numeric(table, "CAMPAIGN", tfile, integer=True, dtype=np.int64)
    target_pos = campaign_index.get_indexer(target_campaign)
    if (target_pos < 0).any():
        raise _bad_row(
            tfile, "CAMPAIGN", target_pos < 0, table["CAMPAIGN"], f"a campaign of {dfile.name}"
        )
    target_type = _categorical(table, "DESCRIPTION", tfile, _DH_TYPES, allow_missing=False)
    mismatch = (
        np.asarray(target_type.codes)
        != np.asarray(campaigns["campaign_type"].cat.codes)[target_pos]
    )
    if mismatch.any():
        raise _bad_row(
            tfile,
            "DESCRIPTION",
            mismatch,
            table["DESCRIPTION"],
            f"the campaign's type in {dfile.name}",
        )
    targets = pd.DataFrame({"household_key": target_household, "campaign": target_campaign})
    duplicated = targets.duplicated().to_numpy()
    targets = targets[~duplicated].reset_index(drop=True)
    target_pos = target_pos[~duplicated]

    # Redemptions.
    rfile = _file(folder, "coupon_redempt.csv")
    redeem = _read_csv(rfile, ["household_key", "DAY", "COUPON_UPC", "CAMPAIGN"])
    red = pd.DataFrame(
        {
            "household_key": _numeric(
                redeem, "household_key", rfile, integer=True, low=0, dtype=np.int64
            ),
            "day": _numeric(redeem, "DAY", rfile, integer=True, low=0, dtype=np.int64),
            "campaign": _numeric(redeem, "CAMPAIGN", rfile, integer=True, dtype=np.int64),
        }
    )
    red_pos = campaign_index.get_indexer(red["campaign"])
    if (red_pos < 0).any():
        raise _bad_row(
            rfile, "CAMPAIGN", red_pos < 0, redeem["CAMPAIGN"], f"a campaign of {dfile.name}"
        )
    per_pair = red.groupby(["household_key", "campaign"], sort=False)["day"].agg(["size", "min"])

    frame = targets.copy()
    frame["campaign_type"] = pd.Categorical.from_codes(
        np.asarray(campaigns["campaign_type"].cat.codes)[target_pos], categories=_DH_TYPES
    )
    frame["start_day"] = campaigns["start_day"].to_numpy()[target_pos]
    frame["end_day"] = campaigns["end_day"].to_numpy()[target_pos]
    joined = per_pair.reindex(pd.MultiIndex.from_frame(targets))
    n_red = joined["size"].fillna(0).to_numpy(dtype=np.int64)
    frame["redeemed"] = (n_red > 0).astype(np.int8)
    frame["n_redemptions"] = n_red
    frame["first_redemption_day"] = joined["min"].to_numpy(dtype=np.float64)

    targeted = pd.MultiIndex.from_frame(targets)
    untargeted = ~pd.MultiIndex.from_frame(red[["household_key", "campaign"]]).isin(targeted)
    outside = (red["day"].to_numpy() < campaigns["start_day"].to_numpy()[red_pos]) | (
        red["day"].to_numpy() > campaigns["end_day"].to_numpy()[red_pos]
    )

    # Households.
    hfile = _file(folder, "hh_demographic.csv")
    demo = _read_csv(
        hfile, _DH_DEMOGRAPHICS + ["household_key"], dtype={c: str for c in _DH_DEMOGRAPHICS}
    )
    households = pd.DataFrame(
        {
            column: _categorical(
                demo, column, hfile, _DH_ORDERED.get(column), ordered=column in _DH_ORDERED
            )
            for column in _DH_DEMOGRAPHICS
        }
    )
    households.index = pd.Index(
        _numeric(demo, "household_key", hfile, integer=True, low=0, dtype=np.int64).to_numpy(),
        name="household_key",
    )
    if households.index.has_duplicates:
        raise _error(
            f"{hfile}: duplicate household_key {households.index[households.index.duplicated()][0]}"
        )
    # Events.
    # Members: every household targeted, redeeming or described, so that the UserTable rows
    # line up with the event log's member indices.
    user_ids = IdMap(
        np.unique(
            np.concatenate(
                [
                    targets["household_key"].to_numpy(),
                    red["household_key"].to_numpy(),
                    households.index.to_numpy(),
                ]
            )
        )
    )
    n_t, n_r = len(targets), len(red)
    events = _event_log(
        user_ids,
        catalog.ids,
        np.concatenate(
            [user_ids.lookup(targets["household_key"]), user_ids.lookup(red["household_key"])]
        ),
        np.concatenate([target_pos, red_pos]),
        np.concatenate([_types("issued", n_t), _types("redeemed", n_r)]),
        np.concatenate([frame["start_day"].to_numpy(), red["day"].to_numpy()]) * _SECONDS_PER_DAY,
    )
    users = UserTable.from_frame(households, user_ids=user_ids)

    extra: Dict[str, Any] = {
        "campaigns": campaigns,
        "untargeted_redemptions": int(untargeted.sum()),
        "untargeted_pairs": int(
            red.loc[untargeted, ["household_key", "campaign"]].drop_duplicates().shape[0]
        ),
        "redemptions_outside_window": int(outside.sum()),
        "duplicate_targetings": int(duplicated.sum()),
        "households": households,
        "time_unit": "day index of the study; event timestamps = day * 86400 s since the Unix epoch",
    }
    try:
        cfile = _file(folder, "coupon.csv")
    except _core.InputError:
        cfile = None
    if cfile is not None:
        coupons = _read_csv(cfile, ["COUPON_UPC", "PRODUCT_ID", "CAMPAIGN"])
        extra["coupons"] = pd.DataFrame(
            {
                "coupon_upc": _numeric(coupons, "COUPON_UPC", cfile, integer=True, dtype=np.int64),
                "product_id": _numeric(coupons, "PRODUCT_ID", cfile, integer=True, dtype=np.int64),
                "campaign": _numeric(coupons, "CAMPAIGN", cfile, integer=True, dtype=np.int64),
            }
        )
    return Dataset(
        name="dunnhumby-complete-journey-coupons",
        frame=frame,
        events=events,
        catalog=catalog,
        users=users,
        extra=extra,
    )


# ---------------------------------------------------------------------------------------------
# 4. Hillstrom e-mail uplift.

_HILLSTROM_ARMS = {
    "Mens E-Mail": "mens_email",
    "Womens E-Mail": "womens_email",
    "No E-Mail": "control",
}


def load_hillstrom(path) -> Dataset:
    """Hillstrom / MineThatData e-mail challenge (2008): a randomized three-arm e-mail test.

    Returns a Dataset whose ``frame`` has the 12 original columns, typed: recency (int64,
    months), history_segment (ordered categorical "1) $0 - $100" < … < "7) $1,000 +"), history
    (float $), mens / womens / newbie / visit / conversion (int8 0/1), zip_code (categorical;
    "Surburban" is the original's spelling), channel (categorical Phone/Web/Multichannel),
    segment (categorical, the arm as written in the file), spend (float $); plus ``treatment``
    (categorical "mens_email" / "womens_email" / "control") and ``control`` (bool, the
    no-e-mail arm). 64,000 customers, about 21,300 per arm; outcomes over two weeks.
    ``events``, ``catalog`` and ``users`` are None: a one-shot randomized test is better
    modelled as a table (uplift, A/B analysis) than as an event log.

    Caveats: CRLF line endings and no final newline (handled). Free public use; no formal
    license stated.
    """
    folder = _folder(path)
    file = _file(folder, "hillstrom.csv")
    columns = [
        "recency",
        "history_segment",
        "history",
        "mens",
        "womens",
        "zip_code",
        "newbie",
        "channel",
        "segment",
        "visit",
        "conversion",
        "spend",
    ]
    raw = _read_csv(file, columns)
    frame = pd.DataFrame(index=raw.index)
    frame["recency"] = _numeric(raw, "recency", file, integer=True, low=0, dtype=np.int64)
    segments = raw["history_segment"]
    frame["history_segment"] = _categorical(
        raw,
        "history_segment",
        file,
        sorted(segments.dropna().unique().tolist()),
        ordered=True,
        allow_missing=False,
    )
    frame["history"] = _numeric(raw, "history", file, low=0)
    for column in ("mens", "womens"):
        frame[column] = _flag(raw, column, file)
    frame["zip_code"] = _categorical(
        raw, "zip_code", file, ["Urban", "Surburban", "Rural"], allow_missing=False
    )
    frame["newbie"] = _flag(raw, "newbie", file)
    frame["channel"] = _categorical(
        raw, "channel", file, ["Phone", "Web", "Multichannel"], allow_missing=False
    )
    frame["segment"] = _categorical(
        raw, "segment", file, list(_HILLSTROM_ARMS), allow_missing=False
    )
    for column in ("visit", "conversion"):
        frame[column] = _flag(raw, column, file)
    frame["spend"] = _numeric(raw, "spend", file, low=0)
    frame["treatment"] = pd.Categorical.from_codes(
        np.asarray(frame["segment"].cat.codes), categories=list(_HILLSTROM_ARMS.values())
    )
    frame["control"] = (frame["treatment"] == "control").to_numpy()
    return Dataset(name="hillstrom-email-uplift", frame=frame)


# ---------------------------------------------------------------------------------------------
# 5./6. MovieLens.


def _ratings_events(
    frame: pd.DataFrame, user_ids: IdMap, item_ids: IdMap, file: Path, min_rating: Optional[float]
) -> EventLog:
    keep = (
        np.ones(len(frame), dtype=bool)
        if min_rating is None
        else (frame["rating"].to_numpy() >= float(min_rating))
    )
    sub = frame[keep]
    seconds = _times(sub["timestamp"], "timestamp")
    return _event_log(
        user_ids,
        item_ids,
        _lookup(user_ids, sub["user"], file, "user"),
        _lookup(item_ids, sub["item"], file, "item"),
        _types("claimed", len(sub)),
        seconds,
    )


def _timestamps(raw: pd.DataFrame, column: str, file: Path) -> pd.Series:
    secs = _numeric(raw, column, file, integer=True, low=0, dtype=np.int64)
    return pd.Series(
        pd.to_datetime(secs.to_numpy(), unit="s", utc=True), index=raw.index, name="timestamp"
    )


def load_movielens_100k(path, min_rating: Optional[float] = None) -> Dataset:
    """MovieLens 100K: 100,000 ratings (1-5) from 943 users on 1,682 movies (Sep 1997 - Apr 1998).

    Returns a Dataset with

    * ``frame``: the ratings of u.data in file order: user, item (int64 ids), rating (int8),
      timestamp (datetime64, UTC).
    * ``events``: one "claimed" event per rating (only ratings >= ``min_rating`` when given),
      at the rating's time; members are the 943 users of u.user and benefits the 1,682 movies
      of u.item (integer external ids, file order), whether or not they keep an event.
    * ``users``: a UserTable of u.user on the same member map: age (numeric), gender,
      occupation and zip (categorical; zip is text, a few are Canadian codes).
    * ``catalog``: None (movies are items, not benefits).
    * ``extra["items"]``: u.item (Latin-1) as a DataFrame: item, title, release_date (datetime,
      NaT when blank), imdb_url, the 19 genre flags (int8, named from u.genre) and ``genres``
      (list of genre names). video_release_date is blank throughout and left out.

    Caveats (SOURCE.md): GroupLens terms forbid redistributing ml-100k without permission,
    so keep it out of public repositories; research use only, cite Harper & Konstan 2015.
    The shipped u.data had 3 prepended bogus lines removed by the data curator. Use
    ``perkrec.split_*`` or the official u1..u5 / ua / ub files for splits.
    """
    folder = _folder(path)
    # Users.
    ufile = _file(folder, "u.user")
    raw_users = _read_csv(
        ufile,
        sep="|",
        header=None,
        names=["user", "age", "gender", "occupation", "zip"],
        dtype={"gender": str, "occupation": str, "zip": str},
        encoding="latin-1",
    )
    user_id = _numeric(raw_users, "user", ufile, integer=True, low=0, dtype=np.int64)
    users_frame = pd.DataFrame(
        {
            "age": _numeric(raw_users, "age", ufile, low=0),
            "gender": _categorical(raw_users, "gender", ufile, ["F", "M"]),
            "occupation": _categorical(raw_users, "occupation", ufile),
            "zip": _categorical(raw_users, "zip", ufile),
        }
    )
    users_frame.index = pd.Index(user_id.to_numpy(), name="user")
    if users_frame.index.has_duplicates:
        raise _error(
            f"{ufile}: duplicate user id {users_frame.index[users_frame.index.duplicated()][0]}"
        )
    users = UserTable.from_frame(users_frame)

    # Items.
    gfile = _file(folder, "u.genre")
    genres = _read_csv(gfile, sep="|", header=None, names=["genre", "code"], encoding="latin-1")
    genres = genres.dropna(subset=["genre"])
    codes = _numeric(genres, "code", gfile, integer=True, dtype=np.int64)
    genre_names = (
        genres["genre"].astype(str).to_numpy()[np.argsort(codes.to_numpy(), kind="stable")].tolist()
    )
    ifile = _file(folder, "u.item")
    item_columns = ["item", "title", "release_date", "video_release_date", "imdb_url"] + genre_names
    raw_items = _read_csv(
        ifile,
        sep="|",
        header=None,
        names=item_columns,
        encoding="latin-1",
        dtype={"title": str, "release_date": str, "video_release_date": str, "imdb_url": str},
    )
    items = pd.DataFrame(
        {
            "item": _numeric(raw_items, "item", ifile, integer=True, low=0, dtype=np.int64),
            "title": raw_items["title"],
            "release_date": pd.to_datetime(
                raw_items["release_date"], format="%d-%b-%Y", errors="coerce"
            ),
            "imdb_url": raw_items["imdb_url"],
        }
    )
    bad_date = (
        items["release_date"].isna().to_numpy() & raw_items["release_date"].notna().to_numpy()
    )
    if bad_date.any():
        raise _bad_row(
            ifile, "release_date", bad_date, raw_items["release_date"], "a date like 01-Jan-1995"
        )
    for name in genre_names:
        items[name] = _flag(raw_items, name, ifile)
    flags = items[genre_names].to_numpy(dtype=bool)
    joined = np.full(len(items), "", dtype=object)
    for j, name in enumerate(genre_names):  # 19 genres
        joined = joined + np.where(flags[:, j], name + "|", "").astype(object)
    items["genres"] = pd.Series(joined, index=items.index, dtype=object).str.findall(r"[^|]+")
    if items["item"].duplicated().any():
        raise _error(
            f"{ifile}: duplicate movie id {items['item'][items['item'].duplicated()].iloc[0]}"
        )
    item_ids = IdMap(items["item"].to_numpy())

    # Ratings.
    rfile = _file(folder, "u.data")
    raw = _read_csv(rfile, sep="\t", header=None, names=["user", "item", "rating", "timestamp"])
    frame = pd.DataFrame(
        {
            "user": _numeric(raw, "user", rfile, integer=True, low=0, dtype=np.int64),
            "item": _numeric(raw, "item", rfile, integer=True, low=0, dtype=np.int64),
            "rating": _numeric(raw, "rating", rfile, integer=True, low=1, high=5, dtype=np.int8),
            "timestamp": _timestamps(raw, "timestamp", rfile),
        }
    )
    events = _ratings_events(frame, users.user_ids, item_ids, rfile, min_rating)
    return Dataset(
        name="movielens-100k", frame=frame, events=events, users=users, extra={"items": items}
    )


def load_movielens_latest_small(path, min_rating: Optional[float] = None) -> Dataset:
    """MovieLens latest-small (2018): 100,836 ratings (0.5-5 in half stars) from 610 users on
    9,724 of 9,742 movies, Mar 1996 - Sep 2018.

    Returns a Dataset with

    * ``frame``: ratings.csv in file order: user, item (int64 ids), rating (float32),
      timestamp (datetime64, UTC).
    * ``events``: one "claimed" event per rating (only ratings >= ``min_rating`` when given);
      members are the users with ratings (sorted ids), benefits the 9,742 movies of movies.csv
      (file order), rated or not.
    * ``users``: None (the dataset has no demographics). ``catalog``: None.
    * ``extra["items"]``: movies.csv: item, title, genres (list of names split on "|"; empty for
      "(no genres listed)").

    Caveats (SOURCE.md): a *development* dataset (GroupLens): quote ml-100k / ml-1m numbers when
    comparing with published results. Redistribution is allowed under the same license
    conditions; no commercial use without permission. tags.csv and links.csv are not loaded.
    """
    folder = _folder(path)
    mfile = _file(folder, "movies.csv")
    movies = _read_csv(mfile, ["movieId", "title", "genres"], dtype={"title": str, "genres": str})
    genres = movies["genres"].fillna("").astype(str)
    items = pd.DataFrame(
        {
            "item": _numeric(movies, "movieId", mfile, integer=True, low=0, dtype=np.int64),
            "title": movies["title"],
            "genres": genres.where(genres != "(no genres listed)", "").str.findall(r"[^|]+"),
        }
    )
    if items["item"].duplicated().any():
        raise _error(
            f"{mfile}: duplicate movieId {items['item'][items['item'].duplicated()].iloc[0]}"
        )
    item_ids = IdMap(items["item"].to_numpy())

    rfile = _file(folder, "ratings.csv")
    raw = _read_csv(rfile, ["userId", "movieId", "rating", "timestamp"])
    frame = pd.DataFrame(
        {
            "user": _numeric(raw, "userId", rfile, integer=True, low=0, dtype=np.int64),
            "item": _numeric(raw, "movieId", rfile, integer=True, low=0, dtype=np.int64),
            "rating": _numeric(raw, "rating", rfile, low=0.5, high=5, dtype=np.float32),
            "timestamp": _timestamps(raw, "timestamp", rfile),
        }
    )
    user_ids = IdMap(np.unique(frame["user"].to_numpy()))
    events = _ratings_events(frame, user_ids, item_ids, rfile, min_rating)
    return Dataset(
        name="movielens-latest-small", frame=frame, events=events, extra={"items": items}
    )


# ---------------------------------------------------------------------------------------------
# 7. Tianchi O2O coupons (test file only).

_O2O_VALIDITY_DAYS = 15


def load_tianchi_o2o(path) -> Dataset:
    """Tianchi O2O coupon usage prediction: the unlabeled offline test file (113,640 coupons
    received by 76,309 users in July 2016; 2,050 coupon ids; 111,074 threshold coupons).

    Returns a Dataset with

    * ``frame``: one row per received coupon, file order: user_id, merchant_id, coupon_id
      (int64), discount_rate (the raw string: "x:y" = spend x get y off, or a rate such as
      "0.95" = pay 95%), the parsed discount: kind (categorical over perkrec.BENEFIT_KINDS;
      "threshold_discount" or "percent_off" here), threshold, face_value, fraction_off (0.05 for "0.95"; parse_discounts'
      discount_rate) and fixed_price; distance (float 0-10 in 500 m buckets, NaN for "null"),
      distance_m_max (upper bound of the distance in metres = (distance + 1) * 500; inf for
      bucket 10, which means "over 5 km"; NaN when unknown) and date_received (datetime64, UTC
      midnight).
    * ``catalog``: one benefit per coupon id (id = str(coupon_id), in order of first
      appearance), kind / threshold / face_value / discount_rate from the discount string,
      validity_days 15 (the competition counts a coupon as used within 15 days of receipt),
      tags "merchant:<merchant_id>". A coupon id seen with two discount strings or two
      merchants raises InputError naming it (none does in the shipped file).
    * ``events``: one "issued" event per row at date_received (members: user ids, sorted).
    * ``users``: None.

    Caveats (SOURCE.md): only the test file is here (no Date column, so no labels): this is a
    parser/feature test set, not a benchmark. Competition / research use; no redistribution
    license stated.
    """
    folder = _folder(path)
    file = _file(folder, "ccf_offline_stage1_test_revised.csv")
    columns = ["User_id", "Merchant_id", "Coupon_id", "Discount_rate", "Distance", "Date_received"]
    raw = _read_csv(
        file,
        columns,
        dtype={"Discount_rate": str, "Distance": str, "Date_received": str},
        keep_default_na=False,
        na_values={
            "Distance": ["null", ""],
            "Discount_rate": ["null", ""],
            "Date_received": ["null", ""],
        },
    )
    frame = pd.DataFrame(
        {
            "user_id": _numeric(raw, "User_id", file, integer=True, low=0, dtype=np.int64),
            "merchant_id": _numeric(raw, "Merchant_id", file, integer=True, low=0, dtype=np.int64),
            "coupon_id": _numeric(raw, "Coupon_id", file, integer=True, low=0, dtype=np.int64),
            "discount_rate": raw["Discount_rate"],
        }
    )
    missing = raw["Discount_rate"].isna().to_numpy()
    if missing.any():
        raise _bad_row(
            file, "Discount_rate", missing, raw["Discount_rate"], "a discount (it is missing)"
        )
    parsed = parse_discounts(raw["Discount_rate"], errors="coerce")
    bad = parsed["kind"].isna().to_numpy()
    if bad.any():
        raise _bad_row(
            file,
            "Discount_rate",
            bad,
            raw["Discount_rate"],
            'a discount such as "150:20" or "0.95"',
        )
    frame["kind"] = parsed["kind"]
    frame["threshold"] = parsed["threshold"].to_numpy()
    frame["face_value"] = parsed["face_value"].to_numpy()
    frame["fraction_off"] = parsed["discount_rate"].to_numpy()
    frame["fixed_price"] = parsed["fixed_price"].to_numpy()
    distance = _numeric(raw, "Distance", file, integer=True, allow_missing=True, low=0, high=10)
    frame["distance"] = distance
    frame["distance_m_max"] = np.where(
        distance.to_numpy() >= 10, np.inf, (distance.to_numpy() + 1) * 500.0
    )
    received = pd.to_datetime(raw["Date_received"], format="%Y%m%d", errors="coerce", utc=True)
    if received.isna().any():
        raise _bad_row(
            file,
            "Date_received",
            received.isna().to_numpy(),
            raw["Date_received"],
            "a date YYYYMMDD",
        )
    frame["date_received"] = received

    per_coupon = frame.groupby("coupon_id", sort=False).agg(
        discount=("discount_rate", "first"),
        n_discounts=("discount_rate", "nunique"),
        merchant=("merchant_id", "first"),
        n_merchants=("merchant_id", "nunique"),
    )
    for count, what in (("n_discounts", "discount strings"), ("n_merchants", "merchants")):
        multi = per_coupon[count] > 1
        if multi.any():
            coupon = per_coupon.index[multi.to_numpy()][0]
            column = "discount_rate" if count == "n_discounts" else "merchant_id"
            seen = sorted(map(str, frame.loc[frame["coupon_id"] == coupon, column].unique()))
            raise _error(
                f"{file}: coupon id {coupon} appears with {int(per_coupon[count][coupon])} {what} "
                f"({', '.join(seen)}); expected one per coupon"
            )
    catalog = _catalog(
        file,
        frame=pd.DataFrame(
            {
                "id": per_coupon.index.astype(str),
                "discount": per_coupon["discount"].astype(str).to_numpy(),
                "validity_days": _O2O_VALIDITY_DAYS,
                "tags": ("merchant:" + per_coupon["merchant"].astype(str)).to_numpy(dtype=object),
            }
        ),
    )
    user_ids = IdMap(np.unique(frame["user_id"].to_numpy()))
    benefit = _lookup(catalog.ids, frame["coupon_id"].astype(str), file, "Coupon_id")
    seconds = _times(received, "received")
    events = _event_log(
        user_ids,
        catalog.ids,
        user_ids.lookup(frame["user_id"]),
        benefit,
        _types("issued", len(frame)),
        seconds,
    )
    return Dataset(name="tianchi-o2o-coupon", frame=frame, events=events, catalog=catalog)


# ---------------------------------------------------------------------------------------------
# 8. UCI bank marketing.

_BANK_NUMERIC = {
    "age": True,
    "duration": True,
    "campaign": True,
    "pdays": True,
    "previous": True,
    "emp.var.rate": False,
    "cons.price.idx": False,
    "cons.conf.idx": False,
    "euribor3m": False,
    "nr.employed": False,
}
_BANK_CATEGORICAL = [
    "job",
    "marital",
    "education",
    "default",
    "housing",
    "loan",
    "contact",
    "month",
    "day_of_week",
    "poutcome",
]
_BANK_ORDERED = {
    "month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    "day_of_week": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
}


def load_bank_marketing(path) -> Dataset:
    """UCI Bank Marketing (bank-additional-full): 41,188 telemarketing contacts, May 2008 - Nov
    2010 in time order; y = yes (subscribed a term deposit) on 4,640.

    Returns a Dataset whose ``frame`` has the 21 original columns in file order: the integer
    columns (age, duration, campaign, pdays, previous) as int64, the macro indicators as
    float, the text columns as categoricals (month and day_of_week ordered by the calendar;
    "unknown" is kept as a category), and the label ``y`` as int8 (1 = yes).
    ``extra["leaky_columns"]`` = ["duration"]: the call's length is only known after the call
    (and duration 0 implies y = 0), so leave it out of predictive models. pdays = 999 means
    "not previously contacted". ``events``, ``catalog`` and ``users`` are None (no client ids).

    The file is ';'-separated with quoted strings. CC BY 4.0 (UCI); cite Moro, Cortez & Rita,
    Decision Support Systems 2014.
    """
    folder = _folder(path)
    file = _file(folder, "bank-additional-full.csv")
    columns = [
        "age",
        "job",
        "marital",
        "education",
        "default",
        "housing",
        "loan",
        "contact",
        "month",
        "day_of_week",
        "duration",
        "campaign",
        "pdays",
        "previous",
        "poutcome",
        "emp.var.rate",
        "cons.price.idx",
        "cons.conf.idx",
        "euribor3m",
        "nr.employed",
        "y",
    ]
    raw = _read_csv(file, columns, sep=";", dtype={c: str for c in _BANK_CATEGORICAL + ["y"]})
    frame = pd.DataFrame(index=raw.index)
    for column in columns:
        if column in _BANK_NUMERIC:
            integer = _BANK_NUMERIC[column]
            frame[column] = _numeric(
                raw, column, file, integer=integer, dtype=np.int64 if integer else np.float64
            )
        elif column in _BANK_ORDERED:
            frame[column] = _categorical(
                raw, column, file, _BANK_ORDERED[column], ordered=True, allow_missing=False
            )
        elif column == "y":
            frame[column] = _yes_no(raw, column, file)
        else:
            frame[column] = _categorical(raw, column, file, allow_missing=False)
    return Dataset(name="uci-bank-marketing", frame=frame, extra={"leaky_columns": ["duration"]})


# ---------------------------------------------------------------------------------------------
LOADERS: Dict[str, Callable[..., Dataset]] = {
    "uci-in-vehicle-coupon": load_in_vehicle_coupon,
    "starbucks-rewards-offers": load_starbucks,
    "dunnhumby-complete-journey-coupons": load_dunnhumby,
    "hillstrom-email-uplift": load_hillstrom,
    "movielens-100k": load_movielens_100k,
    "movielens-latest-small": load_movielens_latest_small,
    "tianchi-o2o-coupon": load_tianchi_o2o,
    "uci-bank-marketing": load_bank_marketing,
}
"""Shared-data folder name -> loader."""
