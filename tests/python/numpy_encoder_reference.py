"""The numpy FeatureEncoder perkrec shipped before the C++ one (python/perkrec/fm.py before
issue 14), kept verbatim as the reference for the parity test and bench/encoder.py. Not part of
the package: the package's FeatureEncoder wraps perkrec::FeatureEncoder and must give identical
matrices."""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perkrec import _core
from perkrec.fm import _face_value_band

# ---------------------------------------------------------------------------------------------
# Leak-safe history aggregates

_HISTORY_TYPES = ("issued", "claimed", "redeemed")


def _event_arrays(events) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from perkrec.data import EventLog

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


def _counts_before(
    ev_key: np.ndarray, ev_time: np.ndarray, key: np.ndarray, time: np.ndarray
) -> np.ndarray:
    """For each (key[i], time[i]): the number of events with the same key and a time strictly
    before time[i]. One sort of the events, then two binary searches per sample."""
    if len(ev_key) == 0:
        return np.zeros(len(key), dtype=np.int64)
    all_times = np.concatenate([ev_time, time])
    uniq = np.unique(all_times)
    span = len(uniq) + 1
    ev_c = ev_key * span + np.searchsorted(uniq, ev_time)
    ev_c.sort()
    s_rank = np.searchsorted(uniq, time)
    upper = np.searchsorted(ev_c, key * span + s_rank, side="left")  # time < sample time
    lower = np.searchsorted(ev_c, key * span, side="left")
    return (upper - lower).astype(np.int64)


def history_features(
    samples: pd.DataFrame,
    events,
    benefit_kind: np.ndarray,
    benefit_band: np.ndarray,
    benefit_channel: Optional[np.ndarray] = None,
) -> pd.DataFrame:
    """The history aggregates of each sample (user, benefit, timestamp) from events strictly
    before its timestamp. ``benefit_kind`` / ``benefit_band`` map a benefit index to integer
    codes."""
    e_user, e_benefit, e_type, e_time = _event_arrays(events)
    s_user = samples["user"].to_numpy().astype(np.int64)
    s_benefit = samples["benefit"].to_numpy().astype(np.int64)
    s_time = np.asarray(samples["timestamp"], dtype=np.int64)
    has_benefit = e_benefit >= 0
    ek = np.where(has_benefit, benefit_kind[np.clip(e_benefit, 0, None)], -1)
    eb = np.where(has_benefit, benefit_band[np.clip(e_benefit, 0, None)], -1)
    sk = benefit_kind[s_benefit]
    sb = benefit_band[s_benefit]
    n_k = int(max(benefit_kind.max(initial=0), 0)) + 2
    n_bd = int(max(benefit_band.max(initial=0), 0)) + 2
    out: Dict[str, np.ndarray] = {}
    for etype in _HISTORY_TYPES:
        m = (e_type == etype) & has_benefit
        out[f"member_{etype}"] = _counts_before(e_user[m], e_time[m], s_user, s_time)
        out[f"member_kind_{etype}"] = _counts_before(
            e_user[m] * n_k + ek[m], e_time[m], s_user * n_k + sk, s_time
        )
        out[f"member_band_{etype}"] = _counts_before(
            e_user[m] * n_bd + eb[m], e_time[m], s_user * n_bd + sb, s_time
        )
        out[f"benefit_{etype}"] = _counts_before(e_benefit[m], e_time[m], s_benefit, s_time)
    m = e_type == "ordered"
    out["member_ordered"] = _counts_before(e_user[m], e_time[m], s_user, s_time)
    channel = (
        np.zeros(len(benefit_kind), np.int64)
        if benefit_channel is None
        else np.asarray(benefit_channel, np.int64)
    )
    n_ch = int(max(channel.max(initial=0), 0)) + 2
    ec = np.where(has_benefit, channel[np.clip(e_benefit, 0, None)], -1)
    sc = channel[s_benefit]
    for etype in ("issued", "viewed", "claimed", "redeemed"):
        m = (e_type == etype) & has_benefit
        out[f"member_channel_{etype}"] = _counts_before(
            e_user[m] * n_ch + ec[m], e_time[m], s_user * n_ch + sc, s_time
        )
    # Order timing: the first and the last order strictly before each sample (the member's
    # orders sorted by time; `orders` of them come before the sample), in whole minutes.
    om = e_type == "ordered"
    key = np.lexsort((e_time[om], e_user[om]))
    o_user, o_time = e_user[om][key], e_time[om][key]
    orders = out["member_ordered"]
    if len(o_time):
        start = np.searchsorted(o_user, s_user, side="left")
        top = len(o_time) - 1
        first = o_time[np.clip(start, 0, top)]
        last = o_time[np.clip(start + orders - 1, 0, top)]
    else:
        first = last = np.zeros_like(s_time)
    since = np.where(orders > 0, ((s_time - last) // 60) / 1440.0, 100000.0)
    interval = np.where(
        orders > 1, ((last - first) // 60) / 1440.0 / np.maximum(orders - 1, 1), 100000.0
    )
    out_timing = {
        "order_days_since": since,
        "order_interval_days": interval,
        "order_overdue": np.where(orders > 1, since / np.maximum(interval, 1.0 / 24.0), 0.0),
    }
    frame = pd.DataFrame(out, index=samples.index)
    for scope in ("member", "member_kind", "member_band", "benefit"):
        issued = frame[f"{scope}_issued"].to_numpy(np.float64)
        frame[f"{scope}_redemption_rate"] = (
            frame[f"{scope}_redeemed"].to_numpy(np.float64) + 0.1
        ) / (issued + 1.0)
        frame[f"{scope}_claim_rate"] = (frame[f"{scope}_claimed"].to_numpy(np.float64) + 0.1) / (
            issued + 1.0
        )
    issued = frame["member_channel_issued"].to_numpy(np.float64)
    for rate, count in (
        ("view_rate", "viewed"),
        ("claim_rate", "claimed"),
        ("redemption_rate", "redeemed"),
    ):
        frame[f"member_channel_{rate}"] = (
            frame[f"member_channel_{count}"].to_numpy(np.float64) + 0.1
        ) / (issued + 1.0)
    for name, values in out_timing.items():
        frame[name] = values
    return frame


# ---------------------------------------------------------------------------------------------
# FeatureEncoder

_FIELD_KEYS = {
    "categorical": {"name", "kind", "column", "min_count", "hash_buckets"},
    "id": {"name", "kind", "column", "min_count", "hash_buckets"},
    "numeric": {"name", "kind", "column", "transform", "bins"},
    "history": {"name", "kind", "bins", "aggregates"},
}

HISTORY_AGGREGATES = tuple(
    [
        f"{s}_{t}"
        for s in ("member", "member_kind", "member_band", "benefit")
        for t in _HISTORY_TYPES
    ]
    + ["member_ordered"]
    + [
        f"{s}_{r}"
        for s in ("member", "member_kind", "member_band", "benefit")
        for r in ("redemption_rate", "claim_rate")
    ]
    + [f"member_channel_{t}" for t in ("issued", "viewed", "claimed", "redeemed")]
    + [f"member_channel_{r}" for r in ("view_rate", "claim_rate", "redemption_rate")]
    + ["order_days_since", "order_interval_days", "order_overdue"]
)

# The package's default fields (data, not logic: both encoders read the same specification).
from perkrec.fm import DEFAULT_FIELDS  # noqa: E402,F401


def _config_error(message: str):
    return _core.ConfigError(message)


def _input_error(message: str):
    return _core.InputError(message)


def _hash_codes(values: np.ndarray, buckets: int) -> np.ndarray:
    hashed = pd.util.hash_array(
        np.asarray(values, dtype=object).astype(str).astype(object), categorize=True
    )
    return (hashed % np.uint64(buckets)).astype(np.int64)


class FeatureEncoder:
    """Turns sample rows (a DataFrame; see ``redemption_samples``) into sparse FM rows: one field
    per declared field, features numbered globally.

    Field kinds (a list of dicts, strict: unknown keys or kinds raise ConfigError):
      * ``categorical`` / ``id``: one-hot over values seen at least ``min_count`` times in fit
        (default 1); rarer and unseen values share the field's "other" feature. With
        ``hash_buckets`` > 0 values are hashed into that many features instead.
      * ``numeric``: ``transform="quantile"`` (default) one-hot of ``bins`` quantile buckets
        (plus a missing bucket), or ``"standardize"`` (one feature, value (x - mean) / std;
        NaN raises InputError).
      * ``history``: the listed ``aggregates`` (see HISTORY_AGGREGATES), computed from
        ``events`` strictly before each sample's timestamp, each quantile-bucketed into ``bins``
        one-hot features (``bins=0``: log1p counts / rates as numeric values).
    """

    def __init__(self, fields: Sequence[dict] = tuple(DEFAULT_FIELDS)):
        self.fields = [dict(f) for f in fields]
        names = set()
        for i, f in enumerate(self.fields):
            if not isinstance(f, dict) or "name" not in f or "kind" not in f:
                raise _config_error(
                    f"FeatureEncoder: /fields/{i}: needs 'name' and 'kind' (got {f!r})"
                )
            kind = f["kind"]
            if kind not in _FIELD_KEYS:
                raise _config_error(
                    f"FeatureEncoder: /fields/{i}/kind: unknown kind (got {kind!r}, expected one "
                    f"of {sorted(_FIELD_KEYS)})"
                )
            unknown = set(f) - _FIELD_KEYS[kind]
            if unknown:
                raise _config_error(
                    f"FeatureEncoder: /fields/{i}: unknown keys {sorted(unknown)} for kind {kind!r}"
                )
            if f["name"] in names:
                raise _config_error(
                    f"FeatureEncoder: /fields/{i}/name: duplicate field {f['name']!r}"
                )
            names.add(f["name"])
            if kind == "numeric" and f.get("transform", "quantile") not in (
                "quantile",
                "standardize",
            ):
                raise _config_error(
                    f"FeatureEncoder: /fields/{i}/transform: expected 'quantile' or 'standardize' "
                    f"(got {f['transform']!r})"
                )
            if kind == "history":
                bad = [
                    a
                    for a in f.get("aggregates", HISTORY_AGGREGATES)
                    if a not in HISTORY_AGGREGATES
                ]
                if bad:
                    raise _config_error(f"FeatureEncoder: /fields/{i}/aggregates: unknown {bad}")
            for key in ("min_count", "hash_buckets", "bins"):
                if key in f and (not isinstance(f[key], (int, np.integer)) or f[key] < 0):
                    raise _config_error(
                        f"FeatureEncoder: /fields/{i}/{key}: expected an integer >= 0 (got {f[key]!r})"
                    )
        self.state: Optional[List[dict]] = None
        self.benefit_kind: Optional[np.ndarray] = None
        self.benefit_band: Optional[np.ndarray] = None

    # -- fitting ---------------------------------------------------------------------------
    def _history(self, frame: pd.DataFrame, events, catalog) -> Optional[pd.DataFrame]:
        if not any(f["kind"] == "history" for f in self.fields):
            return None
        if events is None:
            raise _input_error(
                "FeatureEncoder: history fields need events= (an EventLog or event frame)"
            )
        for col in ("user", "benefit", "timestamp"):
            if col not in frame.columns:
                raise _input_error(
                    f"FeatureEncoder: history fields need column {col!r} in the samples"
                )
        if catalog is not None:
            cat = catalog.to_frame() if not isinstance(catalog, pd.DataFrame) else catalog
            kinds = pd.Categorical(cat["kind"].astype(str))
            self.benefit_kind = kinds.codes.astype(np.int64)
            self.benefit_band = _face_value_band(cat["face_value"]).astype(np.int64)
            self.benefit_channel = (
                pd.Categorical(cat["channel"].astype(str)).codes.astype(np.int64)
                if "channel" in cat.columns
                else None
            )
        if self.benefit_kind is None:
            raise _input_error("FeatureEncoder: history fields need catalog= when fitting")
        b = frame["benefit"].to_numpy()
        if len(b) and (b.min() < 0 or b.max() >= len(self.benefit_kind)):
            raise _input_error(
                f"FeatureEncoder: benefit index out of range (got {b.min()}..{b.max()}, expected "
                f"0 <= benefit < {len(self.benefit_kind)})"
            )
        return history_features(
            frame,
            events,
            self.benefit_kind,
            self.benefit_band,
            getattr(self, "benefit_channel", None),
        )

    def _column(self, frame: pd.DataFrame, hist: Optional[pd.DataFrame], name: str) -> np.ndarray:
        if hist is not None and name in hist.columns:
            return hist[name].to_numpy()
        if name not in frame.columns:
            raise _input_error(
                f"FeatureEncoder: missing column {name!r} (have {list(frame.columns)})"
            )
        return frame[name].to_numpy()

    def fit(self, frame: pd.DataFrame, *, events=None, catalog=None) -> "FeatureEncoder":
        """Learns vocabularies, quantile edges and scalings from ``frame`` (the training samples)."""
        hist = self._history(frame, events, catalog)
        state = []
        for f in self.fields:
            kind = f["kind"]
            if kind in ("categorical", "id"):
                if f.get("hash_buckets", 0) > 0:
                    state.append({"size": int(f["hash_buckets"])})
                    continue
                values = pd.Series(self._column(frame, hist, f.get("column", f["name"]))).astype(
                    str
                )
                counts = values.value_counts()
                keep = sorted(counts[counts >= f.get("min_count", 1)].index.tolist())
                if len(counts) == 1 and int(counts.iloc[0]) == len(values):
                    keep = []  # one value on every row: a constant, encoded as "other
                state.append({"vocab": keep, "size": len(keep) + 1})
            elif kind == "numeric":
                x = np.asarray(
                    self._column(frame, hist, f.get("column", f["name"])), dtype=np.float64
                )
                if f.get("transform", "quantile") == "standardize":
                    if not np.all(np.isfinite(x)):
                        raise _input_error(
                            f"FeatureEncoder.fit: column {f['name']!r} has non-finite values"
                        )
                    sd = float(x.std()) or 1.0
                    state.append({"mean": float(x.mean()), "std": sd, "size": 1})
                else:
                    edges = self._edges(x, f.get("bins", 8))
                    state.append({"edges": edges, "size": len(edges) + 2})
            else:
                aggs = list(f.get("aggregates", HISTORY_AGGREGATES))
                bins = f.get("bins", 6)
                st = {"aggregates": aggs, "bins": bins}
                if bins > 0:
                    st["edges"] = [self._edges(np.asarray(hist[a], np.float64), bins) for a in aggs]
                    st["offsets"] = list(
                        np.cumsum([0] + [len(e) + 2 for e in st["edges"]]).tolist()
                    )
                    st["size"] = st["offsets"][-1]
                else:
                    st["size"] = len(aggs)
                state.append(st)
        self.state = state
        return self

    @staticmethod
    def _edges(x: np.ndarray, bins: int) -> List[float]:
        x = x[np.isfinite(x)]
        if len(x) == 0 or bins <= 1:
            return []
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
        return [float(e) for e in edges]

    # -- transforming ----------------------------------------------------------------------
    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def field_sizes(self) -> List[int]:
        self._require_fitted()
        return [s["size"] for s in self.state]

    @property
    def n_features(self) -> int:
        return int(sum(self.field_sizes))

    @property
    def feature_fields(self) -> np.ndarray:
        """The field of every feature column (int32)."""
        return np.repeat(np.arange(self.n_fields, dtype=np.int32), self.field_sizes)

    def field_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.field_sizes)]).astype(np.int64)

    def _require_fitted(self):
        if self.state is None:
            raise _input_error("FeatureEncoder: not fitted")

    def transform(
        self,
        frame: pd.DataFrame,
        *,
        events=None,
        catalog=None,
        fields: Optional[Sequence[str]] = None,
    ) -> sp.csr_matrix:
        """Sparse rows (scipy CSR float32, n_samples x n_features). ``fields`` restricts the
        output to some fields (e.g. the benefit fields for score_candidates); columns keep
        their global numbering."""
        self._require_fitted()
        selected = (
            set(self.fields[i]["name"] for i in range(self.n_fields))
            if fields is None
            else set(fields)
        )
        unknown = selected - {f["name"] for f in self.fields}
        if unknown:
            raise _input_error(f"FeatureEncoder.transform: unknown fields {sorted(unknown)}")
        need_hist = any(f["kind"] == "history" and f["name"] in selected for f in self.fields)
        hist = self._history(frame, events, catalog) if need_hist else None
        n = len(frame)
        offsets = self.field_offsets()
        cols, vals = [], []
        for i, (f, st) in enumerate(zip(self.fields, self.state)):
            if f["name"] not in selected:
                continue
            base = offsets[i]
            kind = f["kind"]
            if kind in ("categorical", "id"):
                raw = self._column(frame, hist, f.get("column", f["name"]))
                if "vocab" in st:
                    codes = (
                        pd.Index(st["vocab"], dtype=object)
                        .get_indexer(pd.Series(raw).astype(str).to_numpy(object))
                        .astype(np.int64)
                        + 1
                    )
                else:
                    codes = _hash_codes(raw, st["size"])
                cols.append(base + codes)
                vals.append(np.ones(n, np.float32))
            elif kind == "numeric":
                x = np.asarray(
                    self._column(frame, hist, f.get("column", f["name"])), dtype=np.float64
                )
                if "mean" in st:
                    if not np.all(np.isfinite(x)):
                        raise _input_error(
                            f"FeatureEncoder.transform: column {f['name']!r} has non-finite values"
                        )
                    cols.append(np.full(n, base, np.int64))
                    vals.append(((x - st["mean"]) / st["std"]).astype(np.float32))
                else:
                    cols.append(base + self._bucket(x, st["edges"]))
                    vals.append(np.ones(n, np.float32))
            else:
                for j, a in enumerate(st["aggregates"]):
                    x = np.asarray(hist[a], np.float64)
                    if st["bins"] > 0:
                        cols.append(base + st["offsets"][j] + self._bucket(x, st["edges"][j]))
                        vals.append(np.ones(n, np.float32))
                    else:
                        cols.append(np.full(n, base + j, np.int64))
                        vals.append(np.log1p(x).astype(np.float32))
        if not cols:
            return sp.csr_matrix((n, self.n_features), dtype=np.float32)
        c = np.stack(cols, axis=1).ravel()
        v = np.stack(vals, axis=1).ravel()
        indptr = np.arange(0, n * len(cols) + 1, len(cols), dtype=np.int64)
        return sp.csr_matrix((v, c.astype(np.int32), indptr), shape=(n, self.n_features))

    @staticmethod
    def _bucket(x: np.ndarray, edges: List[float]) -> np.ndarray:
        b = np.searchsorted(np.asarray(edges, np.float64), x, side="right").astype(np.int64)
        return np.where(np.isfinite(x), b, len(edges) + 1)

    def fit_transform(self, frame: pd.DataFrame, *, events=None, catalog=None) -> sp.csr_matrix:
        return self.fit(frame, events=events, catalog=catalog).transform(
            frame, events=events, catalog=catalog
        )

    # -- persistence -----------------------------------------------------------------------
    def to_json(self) -> str:
        self._require_fitted()
        return json.dumps(
            {
                "fields": self.fields,
                "state": self.state,
                "benefit_kind": None if self.benefit_kind is None else self.benefit_kind.tolist(),
                "benefit_band": None if self.benefit_band is None else self.benefit_band.tolist(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "FeatureEncoder":
        d = json.loads(text)
        unknown = set(d) - {"fields", "state", "benefit_kind", "benefit_band"}
        if unknown:
            raise _core.ModelFormatError(
                f"FeatureEncoder.from_json: unknown keys {sorted(unknown)}"
            )
        enc = cls(d["fields"])
        enc.state = d["state"]
        if d.get("benefit_kind") is not None:
            enc.benefit_kind = np.asarray(d["benefit_kind"], np.int64)
            enc.benefit_band = np.asarray(d["benefit_band"], np.int64)
        return enc

    def __repr__(self) -> str:
        state = f"{self.n_features} features" if self.state is not None else "not fitted"
        return f"FeatureEncoder({self.n_fields} fields, {state})"
