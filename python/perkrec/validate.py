"""Checks a program's input files before anything is fitted: every problem with its file, row
and column, not only the first (what ``perkrec validate`` prints).

    from perkrec.validate import validate_files
    problems = validate_files(events="events.csv", catalog="catalog.csv", users="users.csv",
                              policy="policy.json")
    for p in problems:
        print(p)            # events.csv:17:timestamp: not a time ('2026-13-45')

Files: CSV or Parquet (by extension; ``.parquet`` / ``.pq`` need pyarrow), the policy as JSON.
Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is 2 (a
Parquet file's first row is 1). Each kind of problem lists at most ``max_per_kind`` rows, then
says how many more. The checks are those the loaders make (``EventLog.from_frame``,
``Catalog.from_frame``, ``UserTable.from_frame``, ``Policy``), run on every row; where a loader
still refuses the file after the row checks, its message is reported too, so a file without
problems here loads.

:func:`load_files` runs the same checks and returns the loaded objects (what ``perkrec fit`` and
``perkrec plan`` read), or raises :class:`FileProblems` carrying every problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import _core

__all__ = ["FileProblems", "LoadedFiles", "Problem", "load_files", "read_table", "validate_files"]

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class Problem:
    """One problem: the file, the row (None: the whole file or column), the column (None: the
    row or file) and what is wrong."""

    file: str
    row: Optional[int]
    column: Optional[str]
    message: str

    def __str__(self) -> str:
        where = ":".join(str(x) for x in (self.file, self.row, self.column) if x is not None)
        return f"{where}: {self.message}"


def read_table(path: PathLike, columns: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame (by extension; anything else is read as CSV), with
    only ``columns`` when given (Parquet reads no other column). Raises InputError naming the
    file when it cannot be read, and the column when one of ``columns`` is missing."""
    path = Path(path)
    parquet = path.suffix.lower() in (".parquet", ".pq")
    try:
        if columns is not None:
            if parquet:
                import pyarrow.parquet as pq

                present = set(pq.read_schema(path).names)
            else:
                present = set(pd.read_csv(path, nrows=0).columns)
            missing = [c for c in columns if c not in present]
            if missing:
                raise _core.InputError(f"{path}: missing column {missing[0]!r}")
            columns = list(columns)
        if parquet:
            return pd.read_parquet(path, columns=columns)
        return pd.read_csv(path, low_memory=False, usecols=columns)
    except FileNotFoundError:
        raise _core.InputError(f"{path}: no such file") from None
    except ImportError as exc:
        raise _core.InputError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow): {exc}"
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise _core.InputError(f"{path}: cannot be read as a table: {exc}") from None


class _Collector:
    def __init__(self, max_per_kind: int):
        self.problems: List[Problem] = []
        self.max_per_kind = max_per_kind

    def add(self, file: str, row: Optional[int], column: Optional[str], message: str) -> None:
        self.problems.append(Problem(file, row, column, message))

    def rows(
        self, file: str, frame: pd.DataFrame, mask: np.ndarray, column: str, message, first_row: int
    ) -> None:
        """One problem per row where ``mask`` holds (``message(value)``), at most max_per_kind."""
        bad = np.flatnonzero(np.asarray(mask, dtype=bool))
        for i in bad[: self.max_per_kind]:
            value = frame[column].iloc[i] if column in frame.columns else None
            if isinstance(value, np.generic):
                value = value.item()
            self.add(file, int(i) + first_row, column, message(value))
        if len(bad) > self.max_per_kind:
            self.add(
                file, None, column, f"... and {len(bad) - self.max_per_kind:,} more rows like these"
            )


def id_text(ids: pd.Series) -> pd.Series:
    """Ids as the text a catalog keys them by (a CSV reads ids 7 and 7.0 as numbers: "7")."""
    if pd.api.types.is_float_dtype(
        ids
    ):  # a column of whole numbers with empty rows reads as floats
        out = ids.astype(object).astype(str)
        v = ids.to_numpy(np.float64)
        whole = np.isfinite(v) & (v == np.floor(v))
        out[whole] = ids[whole].astype(np.int64).astype(str)
        return out
    if ids.dtype != object:  # integers, text
        return ids.astype(str)
    return ids.map(
        lambda v: str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v)
    )


def _first_row(path: Path) -> int:
    return 1 if path.suffix.lower() in (".parquet", ".pq") else 2


def _times_ok(series: pd.Series) -> np.ndarray:
    """Per row: is the value a time under perkrec's rule (numbers = epoch seconds, strings and
    datetimes as pandas reads them, inside years 1900-2199)."""
    if pd.api.types.is_bool_dtype(series):
        return np.zeros(len(series), dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        v = series.to_numpy(np.float64)
        return np.isfinite(v) & (v >= _core.MIN_TIME) & (v < _core.MAX_TIME)
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
        parsed = pd.to_datetime(series, utc=True)
    else:
        # As the loader reads them (one format, inferred from the data): a row it cannot read is NaT.
        parsed = pd.to_datetime(series, utc=True, errors="coerce")
    ok = parsed.notna().to_numpy()
    secs = np.where(
        ok, parsed.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64), 0
    )
    return ok & (secs >= _core.MIN_TIME) & (secs < _core.MAX_TIME)


def _check_catalog(c: _Collector, path: Path, frame: pd.DataFrame, id_column: str):
    """The loaded Catalog (None when it does not load), every problem collected."""
    from .data import Catalog

    name, first = str(path), _first_row(path)
    if id_column not in frame.columns:
        c.add(name, None, id_column, f"missing id column (have {list(frame.columns)})")
        return None
    ids = frame[id_column]
    c.rows(name, frame, ids.isna().to_numpy(), id_column, lambda v: "missing benefit id", first)
    dup = ids.notna() & ids.duplicated(keep="first")
    c.rows(name, frame, dup.to_numpy(), id_column, lambda v: f"duplicate benefit id {v!r}", first)
    try:
        return Catalog.from_frame(frame, id_column=id_column)
    except _core.Error:
        pass
    # The loader refuses the file: find every row it refuses (catalogs are small).
    for i in range(len(frame)):
        if pd.isna(ids.iloc[i]) or dup.iloc[i]:
            continue
        try:
            Catalog.from_frame(frame.iloc[[i]], id_column=id_column)
        except _core.Error as exc:
            message = re.sub(r"^[\w:.]+: row 0: (benefit '[^']*': )?", "", str(exc))
            column = next(
                (
                    col
                    for col in frame.columns
                    if re.search(rf"(^|[\s'(]){re.escape(str(col))}([\s')]|$)", message)
                ),
                None,
            )
            c.add(name, i + first, column, message)
    return None


def _check_users(c: _Collector, path: Path, frame: pd.DataFrame, id_column: str):
    """The member ids (None when the table has problems), every problem collected."""
    from .data import UserTable

    name, first = str(path), _first_row(path)
    if id_column not in frame.columns:
        c.add(name, None, id_column, f"missing id column (have {list(frame.columns)})")
        return None
    ids = frame[id_column]
    c.rows(name, frame, ids.isna().to_numpy(), id_column, lambda v: "missing member id", first)
    dup = ids.notna() & ids.duplicated(keep="first")
    c.rows(name, frame, dup.to_numpy(), id_column, lambda v: f"duplicate member id {v!r}", first)
    if ids.isna().any() or dup.any():
        return None
    try:
        return UserTable.from_frame(frame, id_column=id_column).user_ids
    except _core.Error as exc:
        c.add(name, None, None, str(exc))
    return None


def _check_events(
    c: _Collector,
    path: Path,
    frame: pd.DataFrame,
    catalog,
    catalog_ids: Optional[set],
    columns: Dict[str, str],
    user_ids=None,
):
    """The loaded EventLog (None when the file has problems), every problem collected. ``user_ids``:
    the member table's ids; the log's members are those first, then the log's other members in
    order of first appearance."""
    from .data import EVENT_TYPES, EventLog, IdMap

    name, first = str(path), _first_row(path)
    user, benefit, etype, ts = (columns[k] for k in ("user", "benefit", "event_type", "timestamp"))
    missing = [col for col in (user, benefit, etype, ts) if col not in frame.columns]
    for col in missing:
        c.add(name, None, col, f"missing column (have {list(frame.columns)})")
    if missing:
        return None
    before = len(c.problems)
    c.rows(name, frame, frame[user].isna().to_numpy(), user, lambda v: "missing member id", first)
    types = frame[etype]
    known = (
        types.astype(str).isin(EVENT_TYPES).to_numpy()
        if not pd.api.types.is_numeric_dtype(types)
        else (types.notna() & (types >= 0) & (types < len(EVENT_TYPES))).to_numpy()
    )
    c.rows(
        name,
        frame,
        ~known,
        etype,
        lambda v: f"unknown event type {v!r} (expected one of {list(EVENT_TYPES)})",
        first,
    )
    c.rows(
        name,
        frame,
        ~_times_ok(frame[ts]),
        ts,
        lambda v: f"not a time {v!r} (epoch seconds, or a date / datetime pandas reads; years 1900-2199)",
        first,
    )
    is_order = (
        types.astype(str).isin(["ordered"]).to_numpy()
        if not pd.api.types.is_numeric_dtype(types)
        else (types == EVENT_TYPES.index("ordered")).to_numpy()
    )
    c.rows(
        name,
        frame,
        frame[benefit].isna().to_numpy() & ~is_order,
        benefit,
        lambda v: "missing benefit id (only 'ordered' events may have none)",
        first,
    )
    if catalog_ids is not None:
        ids = catalog_ids
        present = frame[benefit].notna().to_numpy()
        as_text = id_text(frame[benefit])
        unknown = present & ~as_text.isin(ids).to_numpy()
        c.rows(
            name, frame, unknown, benefit, lambda v: f"benefit {v!r} is not in the catalog", first
        )
    amount = columns.get("order_amount")
    if amount and amount in frame.columns:
        values = pd.to_numeric(frame[amount], errors="coerce")
        not_number = frame[amount].notna().to_numpy() & values.isna().to_numpy()
        c.rows(name, frame, not_number, amount, lambda v: f"not a number {v!r}", first)
        needs = types.astype(str).isin(["ordered", "redeemed"]).to_numpy()
        c.rows(
            name,
            frame,
            needs & frame[amount].isna().to_numpy(),
            amount,
            lambda v: "missing on an 'ordered' / 'redeemed' event",
            first,
        )
        v = values.to_numpy(np.float64)
        c.rows(
            name, frame, np.isfinite(v) & (v < 0), amount, lambda v: f"negative amount {v!r}", first
        )
        c.rows(name, frame, np.isinf(v), amount, lambda v: f"infinite amount {v!r}", first)
    prop = columns.get("propensity")
    if prop and prop in frame.columns:
        p = pd.to_numeric(frame[prop], errors="coerce").to_numpy(np.float64)
        missing_p = np.isnan(p)
        c.rows(
            name,
            frame,
            missing_p,
            prop,
            lambda v: "missing propensity (with the column, every row needs one: 1 on events other than issues)",
            first,
        )
        c.rows(
            name,
            frame,
            ~missing_p & ~((p > 0) & (p <= 1)),
            prop,
            lambda v: f"propensity must be in (0, 1] (got {v!r})",
            first,
        )
    if len(c.problems) > before or (catalog_ids is not None and catalog is None):
        return None
    try:
        members = None
        if user_ids is not None:
            members = IdMap.from_bytes(user_ids.to_bytes())  # grown with the log's other members
            members.lookup_or_add(frame[user])
        return EventLog.from_frame(
            frame,
            user=user,
            benefit=benefit,
            event_type=etype,
            timestamp=ts,
            user_ids=members,
            benefits=catalog,
            channel=columns.get("channel"),
            order_amount=columns.get("order_amount"),
            propensity=columns.get("propensity"),
            control=columns.get("control"),
        )
    except _core.Error as exc:
        c.add(name, None, None, str(exc))
    return None


class FileProblems(_core.InputError):
    """The files do not load: ``problems`` lists every problem (what ``perkrec validate``
    prints). An InputError (and a ValueError)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the input files; first: {self.problems[0]}"
        )


@dataclass(frozen=True)
class LoadedFiles:
    """What :func:`load_files` read: the EventLog, Catalog, UserTable and Policy (None for a
    file not given). With a member table, the log's members are the table's rows in order,
    then members with events but no row (their attributes missing), so ``users`` lines up
    with ``events`` index for index."""

    events: object = None
    catalog: object = None
    users: object = None
    policy: object = None


_EVENT_ROLES = (
    "user",
    "benefit",
    "event_type",
    "timestamp",
    "channel",
    "order_amount",
    "propensity",
    "control",
)


def _check(
    events,
    catalog,
    users,
    policy,
    catalog_id: str,
    user_id: str,
    event_columns: Optional[Dict[str, str]],
    max_per_kind: int,
):
    if int(max_per_kind) < 1:
        raise _core.InputError(f"validate_files: max_per_kind must be >= 1 (got {max_per_kind})")
    columns = {role: role for role in _EVENT_ROLES}
    unknown = sorted(set(event_columns or {}) - set(columns))
    if unknown:
        raise _core.InputError(
            f"validate_files: unknown event roles {unknown} (known: {sorted(columns)})"
        )
    columns.update(event_columns or {})
    c = _Collector(int(max_per_kind))
    tables = {}
    for role, path in (("catalog", catalog), ("users", users), ("events", events)):
        if path is None:
            continue
        try:
            tables[role] = read_table(path)
        except _core.InputError as exc:
            c.add(str(path), None, None, str(exc).replace(f"{Path(path)}: ", "", 1))
    loaded = {}
    catalog_ids = None
    if "catalog" in tables:
        loaded["catalog"] = _check_catalog(c, Path(catalog), tables["catalog"], catalog_id)
        if catalog_id in tables["catalog"].columns:
            catalog_ids = set(map(str, tables["catalog"][catalog_id].dropna()))
    user_ids = None
    if "users" in tables:
        user_ids = _check_users(c, Path(users), tables["users"], user_id)
    if "events" in tables:
        loaded["events"] = _check_events(
            c, Path(events), tables["events"], loaded.get("catalog"), catalog_ids, columns, user_ids
        )
    if user_ids is not None:
        from .data import UserTable

        log = loaded.get("events")
        try:
            loaded["users"] = UserTable.from_frame(
                tables["users"], id_column=user_id, user_ids=None if log is None else log.user_ids
            )
        except _core.Error as exc:  # e.g. text member ids here, numbers in the events
            c.add(str(users), None, user_id, str(exc))
    if policy is not None:
        from .policy import Policy

        try:
            loaded["policy"] = Policy.from_path(policy)
        except FileNotFoundError:
            c.add(str(policy), None, None, "no such file")
        except _core.Error as exc:
            c.add(str(policy), None, _json_pointer(str(exc)), str(exc))
        except (OSError, UnicodeDecodeError) as exc:
            c.add(str(policy), None, None, f"cannot be read: {exc}")
    return c.problems, loaded


def _json_pointer(message: str) -> Optional[str]:
    """The JSON pointer a policy error names (``/rules/0/effect``), if any."""
    found = re.search(r"(?<![\w/])(/[^\s:,()'\"]*)", message)
    return found.group(1) if found else None


def validate_files(
    events: Optional[PathLike] = None,
    catalog: Optional[PathLike] = None,
    users: Optional[PathLike] = None,
    policy: Optional[PathLike] = None,
    *,
    catalog_id: str = "id",
    user_id: str = "user",
    event_columns: Optional[Dict[str, str]] = None,
    max_per_kind: int = 20,
) -> List[Problem]:
    """Every problem found in the given files (an empty list: they load). ``catalog_id`` /
    ``user_id``: the id columns of the catalog and the member table; ``event_columns`` maps
    the event roles (user, benefit, event_type, timestamp, channel, order_amount, propensity,
    control) to column names where they differ. Benefit ids of the events are checked against
    the catalog when both are given."""
    return _check(events, catalog, users, policy, catalog_id, user_id, event_columns, max_per_kind)[
        0
    ]


def load_files(
    events: Optional[PathLike] = None,
    catalog: Optional[PathLike] = None,
    users: Optional[PathLike] = None,
    policy: Optional[PathLike] = None,
    *,
    catalog_id: str = "id",
    user_id: str = "user",
    event_columns: Optional[Dict[str, str]] = None,
    max_per_kind: int = 20,
) -> LoadedFiles:
    """The files loaded, after the checks of :func:`validate_files` (same arguments); raises
    :class:`FileProblems` listing every problem when any file has one."""
    problems, loaded = _check(
        events, catalog, users, policy, catalog_id, user_id, event_columns, max_per_kind
    )
    if problems:
        raise FileProblems(problems)
    return LoadedFiles(**loaded)


def summarize(paths: Sequence[Optional[PathLike]]) -> str:
    """One line per readable file: its rows and columns (what validate prints when all is well)."""
    lines = []
    for path in paths:
        if path is None or Path(path).suffix.lower() == ".json":
            continue
        frame = read_table(path)
        lines.append(f"{path}: {len(frame):,} rows, columns {list(frame.columns)}")
    return "\n".join(lines)
