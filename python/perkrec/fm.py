"""Redemption models from features: a leak-safe FeatureEncoder, factorization machines (FM and
field-aware FFM), probability calibration (Platt, isotonic) and reliability curves.

>>> samples = redemption_samples(program.events, program.catalog, program.users)
>>> enc = FeatureEncoder(DEFAULT_FIELDS).fit(train_samples, events=program.events, catalog=program.catalog)
>>> X = enc.transform(train_samples, events=program.events)
>>> model = FM(factors=8, epochs=10).fit(X, train_samples["label"], encoder=enc)
>>> p = model.predict(enc.transform(test_samples, events=program.events))
>>> chosen = FMCV(factors=8).fit(X, train_samples["label"], encoder=enc)  # LR or FM, by CV

History aggregates (a member's past issues, claims and redemptions, overall, per benefit kind,
per face-value band and per benefit channel, where views count too; a benefit's past redemption
rate) only count events strictly before each sample's timestamp: an event at the same second as
the sample is not visible.
"""

from __future__ import annotations

import json
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import _blas, _core
from ._estimator import _Estimator, _Threaded
from ._progress import ProgressArg, resolve_progress
from ._util import (
    csr_parts,
    float_array,
    int_array,
    int_scalar,
    renamed_keywords,
    seconds,
    text_arg,
    time_seconds,
)
from ._serializable import _Serializable

__all__ = [
    "DEFAULT_FIELDS",
    "FFM",
    "FM",
    "FMCV",
    "FeatureEncoder",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "redemption_samples",
    "reliability_curve",
]

# ---------------------------------------------------------------------------------------------
# Samples from the data model

FACE_VALUE_BANDS = tuple(_core.FACE_VALUE_BANDS)  # features/feature_encoder.hpp: kFaceValueBands


def _face_value_band(values) -> np.ndarray:
    return np.searchsorted(
        np.asarray(FACE_VALUE_BANDS), np.asarray(values, dtype=np.float64), side="right"
    )


_CATALOG_BUILTINS = frozenset(
    (
        "id",
        "kind",
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
    )
)
_SAMPLE_ATTRIBUTES = (
    "kind",
    "face_value",
    "threshold",
    "discount_rate",
    "validity_days",
    "scope",
    "channel",
)
_GENERATED = frozenset(
    (
        "user",
        "benefit",
        "timestamp",
        "label",
        "event",
        "face_value_band",
        "tenure_days",
        "weekday",
        "hour",
        "day_of_month",
    )
)
_UNKNOWN_CHOICES = ("raise", "drop", "keep")


def _catalog_frame(catalog) -> pd.DataFrame:
    if isinstance(catalog, pd.DataFrame):
        return catalog
    if hasattr(catalog, "to_frame"):
        return catalog.to_frame()
    raise _core.InputError(
        f"redemption_samples: catalog must be a perkrec.Catalog or a DataFrame (got {type(catalog).__name__})"
    )


def _users_frame(users) -> pd.DataFrame:
    return users.to_frame() if not isinstance(users, pd.DataFrame) else users


def _resolve_unknown(
    kind: str, index: np.ndarray, values, unknown: str, keep_mask: np.ndarray, counts: dict
) -> None:
    """Applies the unknown-id choice to ``index`` (-1 = unknown): raise naming the first one, or
    count it and drop (clear keep_mask) or keep it (index stays -1)."""
    bad = index < 0
    counts[f"unknown_{kind}s"] = int(bad.sum())
    if not bad.any():
        return
    if unknown == "raise":
        i = int(np.flatnonzero(bad)[0])
        value = values[i]
        value = value.item() if hasattr(value, "item") else value
        raise _core.InputError(
            f"redemption_samples: unknown {kind} id {value!r} at row {i} ({int(bad.sum())} rows "
            f"have unknown {kind} ids; unknown='drop' or 'keep' accepts them)"
        )
    if unknown == "drop":
        keep_mask &= ~bad


def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[index], with a missing value where index is -1."""
    out = values[np.maximum(index, 0)] if len(values) else np.full(len(index), np.nan)
    if (index < 0).any():
        out = out.astype(np.float64) if out.dtype.kind in "iub" else out.astype(object)
        out[index < 0] = np.nan if out.dtype.kind == "f" else None
    return out


@renamed_keywords(users="user_table")
def redemption_samples(
    events=None,
    catalog=None,
    user_table=None,
    *,
    offers: Optional[pd.DataFrame] = None,
    window_days: Optional[float] = None,
    keep: Sequence[str] = (),
    unknown: str = "raise",
) -> pd.DataFrame:
    """Samples for a redemption model: one row per offer of a benefit to a member, with its label.

    **From an event log** (``offers`` None): one row per ``issued`` event of ``events``, labelled
    1 when the member redeemed that benefit at or after the issue and within the window: the
    benefit's ``validity_days`` from the catalog, or ``window_days`` for every row when given
    (``float("inf")``: any later redemption counts). A benefit without a validity (a DataFrame
    catalog without the column, or NaN) raises InputError naming it unless ``window_days`` is
    given: the window decides labels, so it is never guessed. ``frame.attrs["redeemed_after_window"]``
    counts the rows labelled 0 although the member redeemed that benefit later;
    ``frame.attrs["open_at_end"]`` the rows labelled 0 whose window had not ended by the log's
    last event (a label that may still turn 1: samples from a log cut at a training date call
    every issue still open at the cut 0, which teaches a model that recent issues redeem less;
    label them from a longer log, as BenefitPlanner does, or leave them out). Column ``event``
    is the row id: the issue event's position in ``events``; ``keep`` names event columns
    carried through (``channel``, ``order_amount``, ``propensity``, ``control`` of an EventLog,
    any column of a DataFrame).

    **From labelled offers** (``offers``: a DataFrame with ``user``, ``benefit``, ``timestamp``,
    ``label`` columns and any others): labels are taken as given (0/1 or bool; missing raises),
    no events are needed or invented. Member ids are looked up in ``user_table`` (a UserTable: its
    member map) or else in ``events.user_ids``; benefit ids in the catalog. The frame's index is
    kept (the row id) and every other column (campaign, ...) is carried through; those columns
    win over generated ones of the same name.

    ``unknown``: what to do with member or benefit ids that the maps, the catalog or ``user_table``
    lack: ``"raise"`` (InputError naming the first), ``"drop"`` the rows, or ``"keep"`` them
    with index -1 and missing attributes. ``frame.attrs["unknown_users"]`` and
    ``["unknown_benefits"]`` count them either way.

    Columns: user, benefit (indices), timestamp (epoch seconds), label, [event], benefit
    attributes (kind, face_value, face_value_band, threshold, discount_rate, validity_days,
    scope, channel and the catalog's free attributes such as brand or category), member
    attributes from ``user_table`` (a UserTable or a DataFrame indexed by member id;
    ``users`` is its deprecated name; signup_time becomes tenure_days), context (weekday, hour,
    day_of_month), then the kept columns.
    """
    if unknown not in _UNKNOWN_CHOICES:
        raise _core.ConfigError(
            f"redemption_samples: unknown must be one of {_UNKNOWN_CHOICES} (got {unknown!r})"
        )
    if catalog is None:
        raise _core.InputError("redemption_samples: catalog is required")
    cat = _catalog_frame(catalog)
    attributes = [c for c in cat.columns if c not in _CATALOG_BUILTINS]
    clash = [c for c in attributes if c in _GENERATED]
    if clash:
        raise _core.InputError(
            f"redemption_samples: catalog attribute {clash[0]!r} clashes with a sample column "
            f"(rename it; reserved: {', '.join(sorted(_GENERATED))})"
        )
    if window_days is not None:
        window = float(window_days)
        if not window > 0:
            raise _core.InputError(
                f"redemption_samples: window_days must be > 0 (got {window_days!r})"
            )
    counts = {"unknown_users": 0, "unknown_benefits": 0}
    n_users = None
    if user_table is not None:
        n_users = len(user_table if isinstance(user_table, pd.DataFrame) else user_table.user_ids)
    if offers is None:
        if events is None:
            raise _core.InputError(
                "redemption_samples: give events (labels from redemptions) or offers (labels given)"
            )
        user, benefit, types, secs = _label_arrays(events)
        n_b = max(int(benefit.max(initial=0)) + 1, len(cat))
        if window_days is not None:
            per_benefit = np.full(n_b, window)
        else:
            if "validity_days" not in cat.columns:
                raise _core.InputError(
                    "redemption_samples: the catalog has no validity_days column; give window_days= "
                    "(the redemption window that defines a label) or the catalog's validity"
                )
            per_benefit = pd.to_numeric(cat["validity_days"], errors="coerce").to_numpy(
                dtype=np.float64
            )
        # Labels in C++ (features/redemption_labels.hpp). A window that is not > 0 is checked
        # below on the rows kept (naming the benefit id); rows with it are dropped before then.
        labelled = _core.redemption_labels(
            user, benefit, types, secs, np.where(per_benefit > 0, per_benefit, np.nan)
        )
        issued = labelled["event"]
        time_i = secs[issued]
        b = benefit[issued].astype(np.int64)
        u = user[issued].astype(np.int64)
        b = np.where(b < len(cat), b, -1)
        if n_users is not None:
            u = np.where(u < n_users, u, -1)
        keep_mask = np.ones(len(issued), dtype=bool)
        _resolve_unknown("user", u, user[issued], unknown, keep_mask, counts)
        _resolve_unknown("benefit", b, benefit[issued], unknown, keep_mask, counts)
        if window_days is None:
            windows = _take(per_benefit, b).astype(np.float64)
            bad = keep_mask & (b >= 0) & ~(windows > 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                bid = cat["id"].iloc[b[i]] if "id" in cat.columns else b[i]
                raise _core.InputError(
                    f"redemption_samples: validity_days of benefit {bid!r} is missing or not > 0 "
                    f"(got {windows[i]!r}); give window_days= or fix the catalog"
                )
        label = labelled["label"]
        out = pd.DataFrame(
            {
                "user": u,
                "benefit": b,
                "timestamp": time_i,
                "label": label,
                "event": issued.astype(np.int64),
            }
        )
        extra = None
        if keep:
            ev = (
                events.to_frame(external_ids=False)
                if not isinstance(events, pd.DataFrame)
                else events
            )
            missing = [c for c in keep if c not in ev.columns]
            if missing:
                raise _core.InputError(
                    f"redemption_samples: keep names unknown event column {missing[0]!r} "
                    f"(have {list(ev.columns)})"
                )
            extra = ev[list(keep)].iloc[issued].reset_index(drop=True)
        counts["redeemed_after_window"] = int((labelled["late"].astype(bool) & keep_mask).sum())
        counts["open_at_end"] = int((labelled["open"].astype(bool) & keep_mask).sum())
        out = out[keep_mask].reset_index(drop=True)
        if extra is not None:
            extra = extra[keep_mask].reset_index(drop=True)
    else:
        if not isinstance(offers, pd.DataFrame):
            raise _core.InputError(
                f"redemption_samples: offers must be a DataFrame (got {type(offers).__name__})"
            )
        if keep:
            raise _core.InputError(
                "redemption_samples: keep applies to events; every column of offers is kept"
            )
        missing = [c for c in ("user", "benefit", "timestamp", "label") if c not in offers.columns]
        if missing:
            raise _core.InputError(
                f"redemption_samples: offers lacks column {missing[0]!r} "
                "(needs user, benefit, timestamp, label)"
            )
        if user_table is not None and not isinstance(user_table, pd.DataFrame):
            user_map = user_table.user_ids
        elif events is not None and hasattr(events, "user_ids") and events.user_ids is not None:
            user_map = events.user_ids
        else:
            raise _core.InputError(
                "redemption_samples: offers need a member map: give user_table (a UserTable) "
                "or events (an EventLog with user_ids)"
            )
        from .data import IdMap

        bmap = (
            catalog.ids if not isinstance(catalog, pd.DataFrame) else IdMap(cat["id"].astype(str))
        )
        user_values = offers["user"].to_numpy()
        benefit_values = offers["benefit"].to_numpy()
        if pd.isna(offers["user"]).any() or pd.isna(offers["benefit"]).any():
            col = "user" if pd.isna(offers["user"]).any() else "benefit"
            i = int(np.flatnonzero(pd.isna(offers[col]).to_numpy())[0])
            raise _core.InputError(f"redemption_samples: offers row {i}: {col} is missing")
        u = user_map.lookup(user_values, missing="minus_one").astype(np.int64)
        b = bmap.lookup(
            benefit_values.astype(str) if bmap.key_type == "string" else benefit_values,
            missing="minus_one",
        ).astype(np.int64)
        raw = offers["label"]
        if pd.api.types.is_bool_dtype(raw):
            label = raw.to_numpy().astype(np.uint8)
        else:
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isin(values, (0.0, 1.0))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise _core.InputError(
                    f"redemption_samples: offers row {i}: label must be 0 or 1 (got {raw.iloc[i]!r})"
                )
            label = values.astype(np.uint8)
        time_i = seconds(offers["timestamp"], "redemption_samples: offers timestamp")
        keep_mask = np.ones(len(offers), dtype=bool)
        _resolve_unknown("user", u, user_values, unknown, keep_mask, counts)
        _resolve_unknown("benefit", b, benefit_values, unknown, keep_mask, counts)
        out = pd.DataFrame(
            {"user": u, "benefit": b, "timestamp": time_i, "label": label}, index=offers.index
        )
        extra = offers.drop(columns=["user", "benefit", "timestamp", "label"])
        out, extra = out[keep_mask], extra[keep_mask]
    b = out["benefit"].to_numpy()
    for col in list(_SAMPLE_ATTRIBUTES) + attributes:
        if col in cat.columns:
            out[col] = _take(cat[col].to_numpy(), b)
    if "face_value" in cat.columns:
        out["face_value_band"] = np.where(
            b >= 0, _face_value_band(np.nan_to_num(out["face_value"].to_numpy(np.float64))), -1
        )
    time_out = out["timestamp"].to_numpy()
    if user_table is not None:
        uf = _users_frame(user_table)
        rows = out["user"].to_numpy()
        for col in uf.columns:
            values = _take(uf[col].to_numpy(), rows)
            if col == "signup_time":
                out["tenure_days"] = (time_out - values.astype(np.float64)) / 86400.0
            else:
                out[col] = values
    stamp = pd.to_datetime(time_out, unit="s", utc=True)
    out["weekday"] = np.asarray(stamp.day_of_week)
    out["hour"] = np.asarray(stamp.hour)
    out["day_of_month"] = np.asarray(stamp.day)
    if extra is not None:
        for col in extra.columns:
            out[col] = extra[col].to_numpy()
    out.attrs.update(counts)
    return out


# ---------------------------------------------------------------------------------------------
# Leak-safe history aggregates

_HISTORY_TYPES = ("issued", "claimed", "redeemed")


def _event_arrays(events) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from .data import EventLog

    if not isinstance(events, (EventLog, pd.DataFrame)):
        raise _core.InputError(
            f"events must be a perkrec.EventLog or a DataFrame (got {type(events).__name__})"
        )
    ev = events.to_frame(external_ids=False) if not isinstance(events, pd.DataFrame) else events
    missing = [c for c in ("user", "benefit", "event_type", "timestamp") if c not in ev]
    if missing:
        raise _core.InputError(f"events: missing columns {missing}")
    t = ev["timestamp"]
    if t.dtype.kind == "M":
        stamps = pd.to_datetime(t, utc=True)
        seconds = (
            ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1))
            .to_numpy()
            .astype(np.int64)
        )
    else:
        seconds = np.asarray(t, dtype=np.int64)
    return (
        ev["user"].to_numpy().astype(np.int64),
        ev["benefit"].to_numpy().astype(np.int64),
        ev["event_type"].astype(str).to_numpy(),
        seconds,
    )


def _label_arrays(events) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(users int32, benefits int32, EventType codes uint8, int64 seconds) of an EventLog (its
    columns) or an event frame (as _event_arrays reads it; event types it does not know are
    other events), for the C++ labels."""
    from .data import EVENT_TYPES, EventLog

    if isinstance(events, EventLog):
        return events.users, events.benefits, events.event_types, events.timestamps
    user, benefit, etype, secs = _event_arrays(events)
    codes = pd.Categorical(etype, categories=list(EVENT_TYPES)).codes
    return (
        int_array(user, np.int32, "events: user"),
        int_array(benefit, np.int32, "events: benefit"),
        np.where(codes >= 0, codes, len(EVENT_TYPES)).astype(np.uint8),
        np.ascontiguousarray(secs, dtype=np.int64),
    )


def _event_log(events):
    """The C++ EventLog of ``events`` (a perkrec.EventLog, or an event frame with dense user and
    benefit indices as ``EventLog.to_frame(external_ids=False)`` gives)."""
    from .data import EventLog

    if isinstance(events, EventLog):
        return events._impl
    if not isinstance(events, pd.DataFrame):
        raise _core.InputError(
            f"events must be a perkrec.EventLog or a DataFrame (got {type(events).__name__})"
        )
    missing = [c for c in ("user", "benefit", "event_type", "timestamp") if c not in events]
    if missing:
        raise _core.InputError(f"events: missing columns {missing}")
    return EventLog.from_arrays(
        events["user"].to_numpy(),
        events["benefit"].to_numpy(),
        events["event_type"].to_numpy(),
        events["timestamp"],
    )._impl


def _sample_keys(samples: pd.DataFrame) -> list:
    """The samples' user / benefit indices and timestamp (epoch seconds, under perkrec's one
    rule for times: datetimes and date strings are converted, never read as raw nanoseconds)
    as int64 columns (those present)."""
    keys = []
    for c in ("user", "benefit"):
        if c in samples.columns:
            keys.append((c, np.ascontiguousarray(np.asarray(samples[c], dtype=np.int64))))
    if "timestamp" in samples.columns:
        keys.append(("timestamp", seconds(samples["timestamp"], "timestamp")))
    return keys


def history_features(
    samples: pd.DataFrame,
    events,
    benefit_kind: np.ndarray,
    benefit_band: np.ndarray,
    benefit_channel: Optional[np.ndarray] = None,
) -> pd.DataFrame:
    """The history aggregates (HISTORY_AGGREGATES) of each sample (user, benefit, timestamp)
    from events strictly before its timestamp. ``benefit_kind`` / ``benefit_band`` /
    ``benefit_channel`` (optional; None = one channel) map a benefit index to integer codes.
    Computed by perkrec::FeatureEncoder::history."""
    impl = _core.FeatureEncoder('{"fields": []}')
    impl.set_benefit_codes(
        np.asarray(benefit_kind, np.int64).tolist(),
        np.asarray(benefit_band, np.int64).tolist(),
        [] if benefit_channel is None else np.asarray(benefit_channel, np.int64).tolist(),
    )
    cols = dict(
        impl.history(
            len(samples), _sample_keys(samples), _event_log(events), list(HISTORY_AGGREGATES)
        )
    )
    order = (
        [
            f"{s}_{t}"
            for t in _HISTORY_TYPES
            for s in ("member", "member_kind", "member_band", "benefit")
        ]
        + ["member_ordered"]
        + [
            f"{s}_{r}"
            for s in ("member", "member_kind", "member_band", "benefit")
            for r in ("redemption_rate", "claim_rate")
        ]
        + [f"member_channel_{t}" for t in ("issued", "viewed", "claimed", "redeemed")]
        + [f"member_channel_{r}" for r in ("view_rate", "claim_rate", "redemption_rate")]
    )
    return pd.DataFrame(
        {
            name: cols[name].astype(np.int64) if not name.endswith("_rate") else cols[name]
            for name in order
        },
        index=samples.index,
    )


# ---------------------------------------------------------------------------------------------
# FeatureEncoder

HISTORY_AGGREGATES = tuple(_core.HISTORY_AGGREGATES)

#: The FM's default fields (ids, benefit and member attributes, weekday and hour, the member's
#: and the benefit's history): BenefitPlanner's, from C++ (decide/benefit_planner_fit.hpp:
#: benefit_planner_default_fields), the one definition.
DEFAULT_FIELDS: List[dict] = json.loads(_core.BENEFIT_PLANNER_DEFAULT_FIELDS_JSON)


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise _core.ConfigError(
        f"FeatureEncoder: a field holds {type(value).__name__} {value!r} (expected JSON values)"
    )


def _field_times(field: dict) -> dict:
    """A behavior_cf field's ``as_of`` as epoch seconds (perkrec's one rule for times)."""
    if field.get("kind") == "behavior_cf" and field.get("as_of") is not None:
        field["as_of"] = time_seconds(
            field["as_of"], f"FeatureEncoder: field {field.get('name')!r}: as_of"
        )
    return field


def _categorical_column(series: pd.Series):
    """(int32 codes, strings, missing flags) of a column for the C++ encoder: one string per
    distinct value as pandas' astype(str) writes it; a value that astype(str) keeps missing is
    flagged (vocabulary fields: "other") and carries numpy's astype(str) string ("nan", "None"),
    which hashed fields hash."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    strings = pd.Series(uniques).astype(str)
    missing = strings.isna().to_numpy()
    if missing.any():
        raw = np.asarray(np.asarray(uniques, dtype=object).astype(str), dtype=object)
        strings = strings.astype(object).where(~missing, pd.Series(raw, index=strings.index))
    return codes.astype(np.int32), strings.tolist(), missing.astype(np.uint8).tolist()


def _is_integer(series: pd.Series) -> bool:
    return (
        isinstance(series.dtype, np.dtype)
        and series.dtype.kind in "iu"
        and series.dtype != np.uint64
    )


class FeatureEncoder:
    """Turns sample rows (a DataFrame; see ``redemption_samples``) into sparse FM rows: one field
    per declared field, features numbered globally. A thin wrapper over the C++
    ``perkrec::FeatureEncoder`` (features/feature_encoder.hpp), which a C++ service can read
    back from an FM model file.

    Field kinds (a list of dicts, strict: unknown keys or kinds raise ConfigError naming the
    JSON pointer, e.g. ``/fields/3/bins``):
      * ``categorical`` / ``id``: one-hot over values seen at least ``min_count`` times in fit
        (default 1); rarer, unseen and missing values share the field's "other" feature (a
        field with one value on every fit row keeps none: all rows encode "other", so a value
        never seen in fit, e.g. a plan at another hour than every logged issue, changes nothing).
        With ``hash_buckets`` > 0 values are hashed into that many features instead.
      * ``numeric``: ``transform="quantile"`` (default) one-hot of ``bins`` quantile buckets
        (plus a missing bucket), or ``"standardize"`` (one feature, value (x - mean) / std;
        NaN raises InputError).
      * ``history``: the listed ``aggregates`` (see HISTORY_AGGREGATES), computed from
        ``events`` strictly before each sample's timestamp, each quantile-bucketed into ``bins``
        one-hot features (``bins=0``: log1p counts / rates as numeric values).
      * ``behavior``: aggregates of what the member bought or browsed strictly before each
        sample's time, matched to the benefit's items and to the item ``levels`` (see
        perkrec.behavior_features and BEHAVIOR_AGGREGATES); keys ``aggregates``, ``levels``,
        ``actions`` (default ["purchase"]), ``half_life_days`` (28), ``bins`` (6; 0 = log1p).
        Needs ``behavior=(BehaviorLog, ItemCatalog, BenefitItems)`` in fit and transform.
      * ``behavior_cf``: item-level collaborative signal (see perkrec.behavior_cf_features):
        fit trains implicit ALS on the member x item matrix of the ``actions`` events strictly
        before ``as_of``, which defaults to the earliest fit sample's time (so no behaviour at
        or after any training sample enters the item factors; a later ``as_of`` is an
        InputError), and each sample gets ``cf_dot`` and ``cf_cosine`` between the benefit's
        items and the items the member touched strictly before its time, as two continuous
        features (as ``continuous: True`` below; ``bins`` > 0 adds quantile buckets). Keys
        ``actions``, ``factors`` (16), ``iterations`` (10), ``regularization`` (0.1), ``alpha``
        (1), ``cg_steps`` (3), ``half_life_days`` (28), ``weight_half_life_days`` (0), ``seed``
        (42), ``as_of`` (any time perkrec reads), ``bins`` (0). The item factors are stored
        with the encoder. Needs ``behavior=`` like behavior fields.
      * ``continuous: True`` (history and behavior fields): each aggregate also gets one feature
        of value (sign(x) log1p(|x|) - mean) / std after its buckets (mean and std of the fit
        samples, stored with the encoder; with ``bins=0`` it replaces the raw log1p value): the
        buckets give the shape, the value orders samples that share a bucket.
    Any field may say ``"optional": True``: fit drops it (listed in ``dropped_fields``) when its
    column is absent. ``FeatureEncoder()`` uses DEFAULT_FIELDS with every field optional, so it
    fits a frame from any program; fields given explicitly must find their columns.
    ``num_threads``: 0 = all cores; the output never depends on it.
    """

    def __init__(self, fields: Optional[Sequence[dict]] = None, *, num_threads: int = 0):
        if fields is None:
            fields = [dict(f, optional=True) for f in DEFAULT_FIELDS]
        if isinstance(fields, (str, bytes, dict)) or not all(isinstance(f, dict) for f in fields):
            raise _config_error(f"FeatureEncoder: fields must be a list of dicts (got {fields!r})")
        self.fields = [_field_times(dict(f)) for f in fields]
        self._declared = self.fields
        self._impl = _core.FeatureEncoder(
            json.dumps({"fields": self.fields}, default=_json_default),
            int_scalar(num_threads, "num_threads"),
        )

    @classmethod
    def _wrap(cls, impl) -> "FeatureEncoder":
        enc = cls.__new__(cls)
        enc._impl = impl
        enc.fields = json.loads(impl.fields_json)
        enc._declared = enc.fields
        return enc

    # -- conversion ------------------------------------------------------------------------
    def _columns(self, frame: pd.DataFrame, names: Optional[set]):
        """The C++ sample columns of the fields in ``names`` (all when None) that ``frame``
        has; a missing column is reported by the C++ encoder, naming the field."""
        if not isinstance(frame, pd.DataFrame):
            raise _input_error(
                f"FeatureEncoder: samples must be a DataFrame (got {type(frame).__name__})"
            )
        integers = dict(_sample_keys(frame))
        numerics, categoricals = {}, {}
        for f in self._declared if names is None else self.fields:
            if (names is not None and f["name"] not in names) or f["kind"] in (
                "history",
                "behavior",
                "behavior_cf",
            ):
                continue
            col = f.get("column", f["name"])
            if col not in frame.columns:
                continue
            series = frame[col]
            if f["kind"] == "numeric":
                numerics[col] = np.ascontiguousarray(
                    np.asarray(series.to_numpy(), dtype=np.float64)
                )
            elif _is_integer(series):
                integers.setdefault(
                    col, np.ascontiguousarray(series.to_numpy().astype(np.int64, copy=False))
                )
            elif col not in categoricals:
                categoricals[col] = (col,) + _categorical_column(series)
        return (
            len(frame),
            list(integers.items()),
            list(numerics.items()),
            list(categoricals.values()),
        )

    def _prepare_history(self, frame, events, catalog, selected: Optional[set]):
        history = [
            f
            for f in self.fields
            if f["kind"] == "history" and (selected is None or f["name"] in selected)
        ]
        if catalog is not None and history:
            cat = catalog.to_frame() if not isinstance(catalog, pd.DataFrame) else catalog
            self._impl.set_benefits(
                cat["kind"].astype(str).tolist(),
                np.ascontiguousarray(np.asarray(cat["face_value"], dtype=np.float64)),
                cat["channel"].astype(str).tolist() if "channel" in cat.columns else [],
            )
        if not history:
            return None
        if events is None:
            raise _input_error(
                "FeatureEncoder: history fields need events= (an EventLog or event frame)"
            )
        return _event_log(events)

    @staticmethod
    def _behavior(behavior) -> dict:
        """The binding's keyword arguments for ``behavior`` = (BehaviorLog, ItemCatalog,
        BenefitItems), or none."""
        if behavior is None:
            return {}
        from .behavior import _behavior_triple

        log, items, applies = _behavior_triple(behavior, "FeatureEncoder")
        return {"behavior_log": log, "items": items, "benefit_items": applies}

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self, frame: pd.DataFrame, *, events=None, catalog=None, behavior=None
    ) -> "FeatureEncoder":
        """Learns vocabularies, quantile edges and scalings from ``frame`` (the training samples).
        History fields need ``events`` and, on the first fit, ``catalog`` (benefit kinds and
        face values). Behavior fields need ``behavior=(BehaviorLog, ItemCatalog, BenefitItems)``
        (an optional behavior field is dropped without it)."""
        columns = self._columns(frame, None)
        log = self._prepare_history(frame, events, catalog, None)
        self._impl.fit(*columns, log, **self._behavior(behavior))
        self.fields = json.loads(self._impl.fields_json)
        return self

    # -- transforming ----------------------------------------------------------------------
    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def field_sizes(self) -> List[int]:
        return list(self._impl.field_sizes)

    @property
    def n_features(self) -> int:
        return int(self._impl.n_features)

    @property
    def feature_fields(self) -> np.ndarray:
        """The field of every feature column (int32)."""
        return self._impl.feature_fields

    def field_offsets(self) -> np.ndarray:
        return self._impl.field_offsets

    @property
    def dropped_fields(self) -> List[str]:
        """Optional fields that fit dropped because the frame lacked their column."""
        return list(self._impl.dropped_fields)

    def transform(
        self,
        frame: pd.DataFrame,
        *,
        events=None,
        catalog=None,
        fields: Optional[Sequence[str]] = None,
        behavior=None,
    ) -> sp.csr_matrix:
        """Sparse rows (scipy CSR float32, n_samples x n_features). ``fields`` restricts the
        output to some fields (e.g. the benefit fields for score_candidates); columns keep
        their global numbering. ``behavior``: as in ``fit``, when a behavior field is selected."""
        if not self._impl.fitted:
            raise _input_error("FeatureEncoder: not fitted")
        names = None if fields is None else [str(f) for f in fields]
        selected = None if names is None else set(names)
        log = self._prepare_history(frame, events, catalog, selected)
        indptr, indices, data, rows, cols = self._impl.transform(
            *self._columns(frame, selected), log, names, **self._behavior(behavior)
        )
        return sp.csr_matrix((data, indices, indptr), shape=(rows, cols))

    def fit_transform(
        self, frame: pd.DataFrame, *, events=None, catalog=None, behavior=None
    ) -> sp.csr_matrix:
        return self.fit(frame, events=events, catalog=catalog, behavior=behavior).transform(
            frame, events=events, catalog=catalog, behavior=behavior
        )

    # -- persistence -----------------------------------------------------------------------
    def to_json(self) -> str:
        if not self._impl.fitted:
            raise _input_error("FeatureEncoder: not fitted")
        return self._impl.to_json()

    @classmethod
    def from_json(cls, text: str) -> "FeatureEncoder":
        return cls._wrap(
            _core.FeatureEncoder.from_json(text_arg(text, "FeatureEncoder.from_json: text"))
        )

    def __repr__(self) -> str:
        state = f"{self.n_features} features" if self._impl.fitted else "not fitted"
        return f"FeatureEncoder({self.n_fields} fields, {state})"


def _config_error(message: str):
    return _core.ConfigError(message)


def _input_error(message: str):
    return _core.InputError(message)


# ---------------------------------------------------------------------------------------------
# Models


def _csr(X, n_features: Optional[int] = None):
    if isinstance(X, np.ndarray) and X.ndim == 2:
        X = sp.csr_matrix(X.astype(np.float32))
    shape = None if n_features is None else (X.shape[0], n_features)
    return csr_parts(X, "X", shape)


def _f32(values, name: str, n: int) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(values, dtype=np.float32).ravel())
    if len(a) != n:
        raise _input_error(f"FM: {name} has {len(a)} entries (expected {n})")
    return a


def _fit_inputs(X, y, sample_weight, feature_fields, n_fields, encoder):
    """The training arrays of FM / FFM / FMCV ``fit``: CSR parts of ``X``, float32 labels and
    weights (length-checked), each feature's field (default: ``encoder.feature_fields``, else
    one field) and the field count."""
    if encoder is not None:
        if feature_fields is None:
            feature_fields = encoder.feature_fields
        n_fields = encoder.n_fields if n_fields is None else n_fields
    X = _csr(X)
    n = X[3]
    if feature_fields is None:
        feature_fields = np.zeros(X[4], np.int32)
        n_fields = 1 if n_fields is None else n_fields
    ff = np.ascontiguousarray(np.asarray(feature_fields), dtype=np.int32)
    if n_fields is None:
        n_fields = int(ff.max(initial=-1)) + 1
    yy = _f32(y, "y", n)
    w = None if sample_weight is None else _f32(sample_weight, "sample_weight", n)
    return X, yy, w, ff, int(n_fields)


def _group_codes(groups, n: int) -> Optional[np.ndarray]:
    """Per-row group labels (any hashable values) as int32 codes in [0, number of groups), in
    the order of the sorted distinct labels; None stays None. InputError naming ``groups`` on a
    length mismatch or a missing label."""
    if groups is None:
        return None
    values = groups.to_numpy() if isinstance(groups, pd.Series) else np.asarray(groups).ravel()
    if len(values) != n:
        raise _input_error(f"FMCV: groups has {len(values)} entries (expected one per row: {n})")
    codes, _ = pd.factorize(values, sort=True)
    if (codes < 0).any():
        bad = int(np.argmax(codes < 0))
        raise _input_error(f"FMCV: groups at position {bad} is missing (got {values[bad]!r})")
    return np.ascontiguousarray(codes, dtype=np.int32)


class FM(_Serializable, _Estimator, _Threaded):
    """Factorization machine: bias + linear + factorized pairwise interactions over sparse rows.

    ``loss``: ``"logistic"`` (labels 0/1; ``predict`` gives probabilities), ``"squared"``
    (real targets) or ``"bpr"`` (pairwise ranking within ``groups``). ``optimizer``: ``"sgd"``
    or ``"adagrad"``. ``shuffle``: ``"blocks"`` (256-row blocks in random order, shuffled
    within; cache-friendly) or ``"rows"`` (a full random permutation per epoch). A diverging
    run raises DivergenceError and keeps the last finite model.

    Reproducible by default: ``seed=42`` and ``num_threads=1`` make two fits on the same data
    give bit-identical models and predictions. ``num_threads=0`` (all cores) or any count > 1
    trains lock-free ("Hogwild"): concurrent updates race, so results differ slightly from run
    to run, in exchange for speed where memory bandwidth allows (on 2 cores it gains little).
    Scoring and the exact ``factors=0`` solver give identical results for any count.

    ``factors=0`` is exact logistic regression (bias + linear; ridge regression with
    ``loss="squared"``): a deterministic full-batch Newton solver in C++ reaches the optimum of
    ``mean log-loss + reg_bias/2 * bias**2 + reg_linear/2 * |w|**2`` (sample weights weight the
    mean), identical for any ``num_threads``; ``epochs``, ``learning_rate``, ``optimizer``,
    ``init_std`` and ``shuffle`` are unused and ``early_stopping_rounds`` must be 0. It equals
    scikit-learn's ``LogisticRegression(C=1 / (reg_linear * n_rows))`` with ``reg_bias=0``.

    >>> fm = FM(factors=8, epochs=10).fit(X, y, feature_fields=enc.feature_fields)
    >>> p = fm.predict(X_test)
    """

    _core_class = _core.FM
    _field_aware = False

    def __init__(
        self,
        factors: int = 8,
        loss: str = "logistic",
        optimizer: str = "adagrad",
        learning_rate: float = 0.05,
        init_std: float = 0.01,
        reg_bias: float = 0.0,
        reg_linear: float = 1e-5,
        reg_factors: float = 1e-5,
        epochs: int = 10,
        early_stopping_rounds: int = 0,
        shuffle: str = "blocks",
        num_threads: int = 1,
        seed: int = 42,
    ):
        params = dict(
            field_aware=self._field_aware,
            factors=factors,
            loss=loss,
            optimizer=optimizer,
            learning_rate=learning_rate,
            init_std=init_std,
            reg_bias=reg_bias,
            reg_linear=reg_linear,
            reg_factors=reg_factors,
            epochs=epochs,
            early_stopping_rounds=early_stopping_rounds,
            shuffle=shuffle,
            num_threads=num_threads,
            seed=seed,
        )
        self._impl = _core.FM(json.dumps(params))
        self._encoder: Optional[FeatureEncoder] = None

    @classmethod
    def _wrap(cls, impl):
        field_aware = json.loads(impl.get_params())["field_aware"]
        obj = (FFM if field_aware else FM).__new__(FFM if field_aware else FM)
        obj._impl = impl
        meta = json.loads(impl.metadata)
        obj._encoder = (
            FeatureEncoder.from_json(json.dumps(meta["encoder"])) if "encoder" in meta else None
        )
        return obj

    def _train(
        self,
        method,
        X,
        y,
        sample_weight,
        groups,
        feature_fields,
        n_fields,
        validation,
        encoder,
        progress,
    ):
        X, yy, w, ff, n_fields = _fit_inputs(X, y, sample_weight, feature_fields, n_fields, encoder)
        g = None if groups is None else np.ascontiguousarray(np.asarray(groups), dtype=np.int32)
        vX = vy = vw = vg = None
        if validation is not None:
            vX = _csr(validation[0])
            vy = _f32(validation[1], "validation y", vX[3])
            if len(validation) > 2 and validation[2] is not None:
                vg = np.ascontiguousarray(np.asarray(validation[2]), dtype=np.int32)
        if encoder is not None:
            self._encoder = encoder
            self._impl.set_metadata(json.dumps({"encoder": json.loads(encoder.to_json())}))
        with _blas.limited(1):
            method(X, yy, w, g, ff, int(n_fields), vX, vy, vw, vg, resolve_progress(progress))
        return self

    def fit(
        self,
        X,
        y,
        *,
        sample_weight=None,
        groups=None,
        feature_fields=None,
        n_fields: Optional[int] = None,
        validation: Optional[tuple] = None,
        encoder: Optional[FeatureEncoder] = None,
        progress: ProgressArg = False,
    ):
        """Trains on rows ``X`` (scipy sparse, n x n_features) and labels ``y``.

        ``feature_fields``: field of each feature (default: ``encoder.feature_fields``, else one
        field). ``validation``: ``(X_val, y_val[, groups_val])`` for the per-epoch validation loss
        and early stopping. ``groups``: per-row group ids for ``loss="bpr"``. ``encoder`` is saved
        with the model (``model.encoder`` after load).
        """
        return self._train(
            self._impl.fit,
            X,
            y,
            sample_weight,
            groups,
            feature_fields,
            n_fields,
            validation,
            encoder,
            progress,
        )

    def partial_fit(
        self,
        X,
        y,
        *,
        sample_weight=None,
        groups=None,
        feature_fields=None,
        n_fields: Optional[int] = None,
        validation: Optional[tuple] = None,
        progress: ProgressArg = False,
    ):
        """Continues training on new rows (same feature space) for ``epochs`` more epochs."""
        if feature_fields is None and self._impl.fitted:
            feature_fields = self._impl.feature_fields()
            n_fields = self._impl.n_fields
        return self._train(
            self._impl.partial_fit,
            X,
            y,
            sample_weight,
            groups,
            feature_fields,
            n_fields,
            validation,
            None,
            progress,
        )

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) probabilities of label 0 and 1 (logistic loss only): scikit-learn's
        classifier protocol, so an FM sits in a ``Pipeline`` or ``GridSearchCV``."""
        if json.loads(self._impl.get_params())["loss"] != "logistic":
            raise _config_error(f"{type(self).__name__}.predict_proba: needs loss='logistic'")
        p = self.predict(X).astype(np.float64)
        return np.column_stack([1.0 - p, p])

    @property
    def classes_(self) -> np.ndarray:
        """The labels of the logistic loss, [0, 1] (scikit-learn's classifier protocol)."""
        if not self.fitted:
            raise AttributeError("classes_: the model is not fitted")
        return np.array([0, 1])

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        loss = json.loads(self._impl.get_params())["loss"]
        kind = {"logistic": "classifier", "squared": "regressor"}.get(loss)
        return Tags(
            estimator_type=kind,
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(multi_class=False) if kind == "classifier" else None,
            regressor_tags=RegressorTags() if kind == "regressor" else None,
            input_tags=InputTags(sparse=True),
        )

    def decision_function(self, X) -> np.ndarray:
        """Raw scores (log-odds for the logistic loss), float32."""
        return self._impl.score(_csr(X), False)

    def predict(self, X) -> np.ndarray:
        """Probabilities for the logistic loss, raw scores otherwise."""
        return self._impl.score(_csr(X), True)

    def score(self, X) -> np.ndarray:
        """Same as decision_function (the shared model vocabulary)."""
        return self.decision_function(X)

    def score_candidates(self, base, candidates) -> np.ndarray:
        """Raw scores of every (base row, candidate row) pair as a (n_base, n_candidates) array:
        a base row holds a member's (and context's) features, a candidate row a benefit's. Costs
        O(candidates x factors) per base row for FM; GIL released; thread-safe."""
        return self._impl.score_candidates(_csr(base), _csr(candidates))

    def loss(self, X, y, *, sample_weight=None, groups=None) -> float:
        X = _csr(X)
        w = None if sample_weight is None else _f32(sample_weight, "sample_weight", X[3])
        g = None if groups is None else np.ascontiguousarray(np.asarray(groups), dtype=np.int32)
        return self._impl.loss(X, _f32(y, "y", X[3]), w, g)

    @property
    def history(self) -> pd.DataFrame:
        """Per-epoch training and validation loss (validation_loss NaN when none)."""
        h = pd.DataFrame(self._impl.history(), columns=["epoch", "train_loss", "validation_loss"])
        h.loc[h["validation_loss"] < 0, "validation_loss"] = np.nan
        return h

    @property
    def encoder(self) -> Optional[FeatureEncoder]:
        return self._encoder

    @property
    def selection(self) -> Optional[dict]:
        """How :class:`FMCV` chose this model (its ``selection_``), or None for a model that was
        not chosen by FMCV. Kept in the model file."""
        meta = json.loads(self._impl.metadata)
        return meta["selection"]["report"] if "selection" in meta else None

    @property
    def fitted(self) -> bool:
        return self._impl.fitted

    @property
    def n_features(self) -> int:
        return self._impl.n_features

    @property
    def bias(self) -> float:
        return self._impl.bias

    @property
    def linear(self) -> np.ndarray:
        return self._impl.linear()

    @property
    def factors(self) -> np.ndarray:
        f = self._impl.factors()
        k = self.get_params()["factors"]
        return (
            f.reshape(self.n_features, self._impl.n_fields, k)
            if self._field_aware
            else f.reshape(self.n_features, k)
        )

    def __repr__(self) -> str:
        state = f"{self.n_features} features" if self.fitted else "not fitted"
        return f"{type(self).__name__}({self.get_params()}, {state})"


class FFM(FM):
    """Field-aware factorization machine: one factor vector per (feature, other field). Same
    API as FM; costs O(nnz^2 x factors) per row."""

    _field_aware = True


class FMCV(_Estimator, _Threaded):
    """A redemption model chosen by cross-validation on the training rows alone: an L2 logistic
    regression whose penalty is picked on a regularization path, or an FM warm-started from it
    when that lowers the cross-validated log-loss — so small sets get a tuned logistic
    regression and sets with interactions keep the FM's gain. The algorithm is C++
    (``include/perkrec/models/fm_cv.hpp``):

    1. ``folds`` stratified folds, deterministic from ``seed``; with ``groups`` (a member or
       household id per row) each group's rows stay in one fold (group k-fold: the penalty and
       the FM are then chosen for members the model has not seen), groups balanced over the
       folds by their positive rows;
    2. the exact logistic regression (``FM(factors=0)``) at every ``reg_linear`` of
       ``reg_linear_path`` (strongest first, warm starts along the path); the penalty with the
       lowest pooled held-out log-loss wins. Values are penalties of the final model on all rows
       (scikit-learn's ``C = 1 / (reg_linear * n_rows)``; folds keep the same C);
    3. with ``factors > 0``, for each ``reg_factors`` of ``reg_factors_grid`` an FM per fold
       starting from that fold's logistic regression (bias and linear weights; factors small
       random) trained epoch by epoch (AdaGrad), stopped ``patience`` epochs after the best
       pooled held-out log-loss;
    4. the FM when its CV log-loss is below the logistic regression's by more than
       ``min_improvement``, else the logistic regression;
    5. refit on all rows; the FM as the average of ``seeds`` FMs from different seeds
       (one FM with ``seeds * factors`` factors).

    After ``fit``, ``model_`` is the chosen :class:`FM` (``factors=0`` for logistic regression)
    and ``selection_`` / ``cv_results_`` say what was measured. ``predict``, ``predict_proba``,
    ``decision_function`` and ``score_candidates`` use ``model_``. ``save`` writes ``model_``
    with the selection in its metadata: ``FMCV.load`` gives this object back, ``perkrec.load``
    the FM. Results are bit-identical for any ``num_threads`` (folds run in parallel, each
    single-threaded); the GIL is released while fitting.

    >>> cv = FMCV(factors=8, folds=5).fit(X, y, feature_fields=enc.feature_fields)
    >>> cv.selection_["factorized"], cv.model_
    """

    def __init__(
        self,
        folds: int = 5,
        reg_linear_path: Sequence[float] = (
            1e-1,
            3e-2,
            1e-2,
            3e-3,
            1e-3,
            3e-4,
            1e-4,
            3e-5,
            1e-5,
            3e-6,
            1e-6,
        ),
        factors: int = 8,
        field_aware: bool = False,
        reg_factors_grid: Sequence[float] = (1e-4, 1e-3, 1e-2),
        learning_rate: float = 0.02,
        init_std: float = 0.01,
        max_epochs: int = 30,
        patience: int = 3,
        seeds: int = 1,
        min_improvement: float = 0.0,
        num_threads: int = 1,
        seed: int = 42,
    ):
        params = dict(
            folds=folds,
            reg_linear_path=[float(r) for r in _float_list(reg_linear_path, "reg_linear_path")],
            factors=factors,
            field_aware=field_aware,
            reg_factors_grid=[float(r) for r in _float_list(reg_factors_grid, "reg_factors_grid")],
            learning_rate=learning_rate,
            init_std=init_std,
            max_epochs=max_epochs,
            patience=patience,
            seeds=seeds,
            min_improvement=min_improvement,
            num_threads=num_threads,
            seed=seed,
        )
        self._impl = _core.FMCV(json.dumps(params))
        self._model: Optional[FM] = None
        self._selection: Optional[dict] = None

    def fit(
        self,
        X,
        y,
        *,
        sample_weight=None,
        groups=None,
        feature_fields=None,
        n_fields: Optional[int] = None,
        encoder: Optional[FeatureEncoder] = None,
        progress: ProgressArg = False,
    ):
        """Selects and refits on rows ``X`` (scipy sparse, n x n_features) and 0/1 labels
        ``y``. ``groups``: one label per row (any hashable values: member ids, household ids)
        whose rows stay in one fold; None: stratified folds of rows. ``feature_fields``: field
        of each feature (default: ``encoder.feature_fields``, else one field). ``encoder`` is
        saved with the model."""
        X, yy, w, ff, n_fields = _fit_inputs(X, y, sample_weight, feature_fields, n_fields, encoder)
        g = _group_codes(groups, X[3])
        with _blas.limited(1):
            self._impl.fit(X, yy, w, g, ff, int(n_fields), resolve_progress(progress))
        impl = self._impl.model()
        if encoder is not None:
            meta = json.loads(impl.metadata)
            meta["encoder"] = json.loads(encoder.to_json())
            impl.set_metadata(json.dumps(meta))
        self._model = FM._wrap(impl)
        self._selection = json.loads(self._impl.report())
        return self

    @staticmethod
    def fold_of(y, folds: int = 5, seed: int = 42, groups=None) -> np.ndarray:
        """The cross-validation fold of each row (int32 in [0, folds)), as ``fit`` assigns
        them: per label, the rows shuffled by a stream of ``seed`` and dealt round-robin; with
        ``groups``, each group's rows in one fold (groups shuffled, then placed largest
        positive count first in the fold with the fewest positives so far)."""
        yy = np.ascontiguousarray(np.asarray(y, dtype=np.float32).ravel())
        return _core.FMCV.fold_of(
            yy,
            int_scalar(folds, "folds", 1, 1 << 30),
            int_scalar(seed, "seed", 0, 2**64 - 1),
            _group_codes(groups, len(yy)),
        )

    def _require_fitted(self, what: str) -> FM:
        if self._model is None:
            raise _input_error(f"FMCV.{what}: the selection is not fitted")
        return self._model

    def __sklearn_is_fitted__(self) -> bool:
        return self._model is not None

    @property
    def model_(self) -> FM:
        """The chosen model refit on all rows: an FM (``factors=0``: logistic regression)."""
        return self._require_fitted("model_")

    @property
    def selection_(self) -> dict:
        """What was measured and chosen: ``factorized`` (the FM won), ``reg_linear`` and
        ``linear_loss``, ``reg_factors``, ``epochs``, ``seeds``, ``loss`` (the chosen model's CV
        log-loss), and the path: ``reg_linear_path`` / ``path_loss``, ``reg_factors_grid`` /
        ``factors_loss`` / ``factors_epochs`` (a diverged candidate's loss is None)."""
        self._require_fitted("selection_")
        return dict(self._selection)

    @property
    def cv_results_(self) -> pd.DataFrame:
        """One row per candidate: model ("logistic" or "fm"), reg_linear, reg_factors,
        epochs, cv_log_loss (pooled held-out log-loss), chosen."""
        s = self.selection_
        rows = [
            ("logistic", r, np.nan, 0, loss, not s["factorized"] and r == s["reg_linear"])
            for r, loss in zip(s["reg_linear_path"], s["path_loss"])
        ]
        rows += [
            (
                "fm",
                s["reg_linear"],
                r,
                e,
                np.nan if loss is None else loss,
                s["factorized"] and r == s["reg_factors"],
            )
            for r, loss, e in zip(s["reg_factors_grid"], s["factors_loss"], s["factors_epochs"])
        ]
        return pd.DataFrame(
            rows, columns=["model", "reg_linear", "reg_factors", "epochs", "cv_log_loss", "chosen"]
        )

    @property
    def fitted(self) -> bool:
        return self._model is not None

    @property
    def classes_(self) -> np.ndarray:
        """[0, 1] (scikit-learn's classifier protocol)."""
        if self._model is None:
            raise AttributeError("classes_: the selection is not fitted")
        return np.array([0, 1])

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(multi_class=False),
            input_tags=InputTags(sparse=True),
        )

    def predict(self, X) -> np.ndarray:
        """Redemption probabilities of the chosen model."""
        return self._require_fitted("predict").predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) probabilities of label 0 and 1."""
        return self._require_fitted("predict_proba").predict_proba(X)

    def decision_function(self, X) -> np.ndarray:
        """Raw scores (log-odds) of the chosen model, float32."""
        return self._require_fitted("decision_function").decision_function(X)

    def score(self, X) -> np.ndarray:
        """Same as decision_function (the shared model vocabulary)."""
        return self.decision_function(X)

    def score_candidates(self, base, candidates) -> np.ndarray:
        """The chosen model's :meth:`FM.score_candidates`."""
        return self._require_fitted("score_candidates").score_candidates(base, candidates)

    @property
    def encoder(self) -> Optional[FeatureEncoder]:
        return None if self._model is None else self._model.encoder

    def to_bytes(self) -> bytes:
        """The chosen FM as model-file bytes (the selection in its metadata)."""
        return self._require_fitted("to_bytes").to_bytes()

    def save(self, path_or_file) -> None:
        """Saves the chosen FM with the selection in its metadata (``FMCV.load`` reads it back
        as an FMCV, ``perkrec.load`` as the FM)."""
        self._require_fitted("save").save(path_or_file)

    @classmethod
    def _from_model(cls, model: FM) -> "FMCV":
        meta = json.loads(model._impl.metadata)
        if "selection" not in meta:
            error = _core.ModelFormatError(
                "FMCV.load: the file holds an FM without a selection (saved by FM, not FMCV; "
                "load it with perkrec.load or FM.load)"
            )
            error.code = "wrong_kind"
            raise error
        params = meta["selection"]["params"]
        obj = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
        obj._model = model
        obj._selection = meta["selection"]["report"]
        return obj

    @classmethod
    def load(cls, path_or_file) -> "FMCV":
        """Reads a file written by :meth:`save`; an FM saved without a selection raises
        ModelFormatError (code 'wrong_kind')."""
        return cls._from_model(FM.load(path_or_file))

    @classmethod
    def from_bytes(cls, data: bytes) -> "FMCV":
        return cls._from_model(FM.from_bytes(data))

    def __reduce__(self):
        if self._model is None:
            return (_fmcv_from_params, (self.get_params(),))
        return (FMCV.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        if self._model is None:
            return f"FMCV({self.get_params()}, not fitted)"
        chosen = "FM" if self._selection["factorized"] else "logistic regression"
        return f"FMCV({self.get_params()}, chose {chosen})"


def _fmcv_from_params(params: dict) -> FMCV:
    return FMCV(**params)


def _float_list(values, name: str) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise _config_error(f"FMCV: {name} must be a sequence of numbers (got {values!r})")
    out = list(values)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise _config_error(f"FMCV: {name} must hold numbers (got {v!r})")
    return out


# ---------------------------------------------------------------------------------------------
# Calibration


class _Calibrator:
    """fit / predict / to_json / from_json / pickle around one C++ calibrator (``_core_class``)."""

    _core_class = None

    def __init__(self):
        self._impl = self._core_class()

    def fit(self, scores, y):
        name = type(self).__name__
        self._impl.fit(
            float_array(scores, np.float64, f"{name}.fit: scores"),
            float_array(y, np.float64, f"{name}.fit: y"),
        )
        return self

    def predict(self, scores) -> np.ndarray:
        return self._impl.predict(
            float_array(scores, np.float64, f"{type(self).__name__}.predict: scores")
        )

    def to_json(self) -> str:
        return self._impl.to_json()

    @classmethod
    def from_json(cls, text):
        obj = cls.__new__(cls)
        obj._impl = cls._core_class.from_json(text_arg(text, f"{cls.__name__}.from_json: text"))
        return obj

    def __reduce__(self):
        return (type(self).from_json, (self.to_json(),))


class PlattCalibrator(_Calibrator):
    """Platt scaling: p = sigmoid(a * score + b), fitted by Newton's method on the log-loss with
    Platt's smoothed targets (C++ ``models/calibrators.hpp``). Fit on held-out scores (not the
    training rows); labels are 0 / 1."""

    _core_class = _core.PlattCalibrator

    @property
    def a(self) -> float:
        return float(self._impl.a)

    @property
    def b(self) -> float:
        return float(self._impl.b)


class IsotonicCalibrator(_Calibrator):
    """Isotonic regression (pool adjacent violators, C++ ``models/calibrators.hpp``): the best
    non-decreasing map from score to probability; predictions interpolate linearly between
    block ends and are constant beyond the fitted range."""

    _core_class = _core.IsotonicCalibrator

    @property
    def x(self) -> Optional[np.ndarray]:
        """Knot scores (None before fit)."""
        return self._impl.x if self._impl.fitted else None

    @property
    def y(self) -> Optional[np.ndarray]:
        """Knot probabilities (None before fit)."""
        return self._impl.y if self._impl.fitted else None


def reliability_curve(y, probabilities, bins: int = 10, strategy: str = "uniform") -> pd.DataFrame:
    """Reliability-diagram data: per probability bin the mean predicted probability, the observed
    positive fraction and the count (``strategy`` "uniform" or "quantile" bins). Also returns
    the expected calibration error in ``frame.attrs['ece']``."""
    try:
        y = np.asarray(y, np.float64).ravel()
        p = np.asarray(probabilities, np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise _input_error(
            f"reliability_curve: y and probabilities must be numbers ({exc})"
        ) from exc
    bins = int_scalar(bins, "bins", 1)
    if strategy not in ("uniform", "quantile"):
        raise _config_error(
            f"reliability_curve: strategy must be 'uniform' or 'quantile' (got {strategy!r})"
        )
    # Lengths, finiteness, bins, means and the ECE in C++ (eval/metrics.hpp: reliability_curve).
    raw = _core.reliability_curve(
        np.ascontiguousarray(y), np.ascontiguousarray(p), bins, strategy == "quantile"
    )
    ece = raw.pop("ece")
    raw["bin"] = raw["bin"].astype(np.int64)
    out = pd.DataFrame(
        raw, columns=["bin", "low", "high", "mean_predicted", "fraction_positive", "count"]
    )
    out.attrs["ece"] = float(ece)
    return out
