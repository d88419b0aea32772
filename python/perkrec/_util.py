"""Conversions between pandas/numpy/scipy inputs and the exact arrays the core expects.

The compiled core accepts only C-contiguous arrays of the exact dtype; every conversion
happens here, explicitly, so the bindings never convert silently.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Callable, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from . import _core


# --- renamed names (ARCHITECTURE.md section 3 vocabulary): old names kept for one release ----------


def warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    """The DeprecationWarning of every renamed keyword, method, property and function."""
    warnings.warn(
        f"{old} is renamed {new}; the old name still works for one release and then goes",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_keywords(**old_to_new: str) -> Callable:
    """Decorator: each old keyword (``member="user"``) is still accepted as a deprecated alias
    of the new one, with a DeprecationWarning; both at once are an InputError. The signature
    (``inspect.signature``) shows only the new names."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def renamed(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise _core.InputError(
                            f"{fn.__qualname__}: give {new}= only ({old}= is its deprecated name)"
                        )
                    warn_renamed(f"{fn.__qualname__}({old}=)", f"{new}=")
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        renamed.renamed_keywords = dict(old_to_new)
        return renamed

    return wrap


def renamed_function(new: Callable, old_name: str) -> Callable:
    """A deprecated alias named ``old_name`` of the function or method ``new``: warns, then
    calls ``new`` with the same arguments (same result, same errors)."""

    @functools.wraps(new)
    def alias(*args, **kwargs):
        warn_renamed(old_name, new.__name__)
        return new(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name.rsplit(".", 1)[-1]
    alias.__doc__ = f"Deprecated alias of ``{new.__name__}`` (kept for one release)."
    return alias


def renamed_property(new_name: str, old_name: str) -> property:
    """A deprecated read-only property ``old_name`` returning the property ``new_name``."""

    def get(self):
        warn_renamed(old_name, new_name)
        return getattr(self, new_name)

    return property(get, doc=f"Deprecated alias of ``{new_name}`` (kept for one release).")


def _one_dimensional(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise _core.InputError(f"{name}: expected a 1-D array (got {arr.ndim} dimensions)")
    return arr


def int_array(values, dtype, name: str) -> np.ndarray:
    """Integer array of ``dtype``; rejects non-integral, non-finite or out-of-range values."""
    arr = _one_dimensional(values, name)
    if arr.dtype == dtype:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "b":
        return np.ascontiguousarray(arr.astype(dtype))
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _core.InputError(f"{name}: row {i}: expected an integer (got {arr[i]!r})")
    elif arr.dtype.kind not in "iu":
        raise _core.InputError(f"{name}: expected integers (got dtype {arr.dtype})")
    info = np.iinfo(dtype)
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            i = int(np.flatnonzero((arr < info.min) | (arr > info.max))[0])
            raise _core.InputError(
                f"{name}: row {i}: value {arr[i]!r} does not fit in {np.dtype(dtype).name}"
            )
    return np.ascontiguousarray(arr.astype(dtype))


def int_scalar(value, name: str, low: int = 0, high: int = 2**31 - 1) -> int:
    """A Python int in [low, high]; bools, floats with a fraction and anything else raise
    InputError naming ``name`` (a binding would raise TypeError or overflow)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if (
            isinstance(value, (float, np.floating))
            and np.isfinite(value)
            and float(value).is_integer()
        ):
            value = int(value)
        else:
            raise _core.InputError(f"{name}: expected an integer (got {value!r})")
    value = int(value)
    if value < low or value > high:
        raise _core.InputError(f"{name}: expected {low} <= {name} <= {high} (got {value})")
    return value


def bytes_arg(data, name: str) -> bytes:
    """``data`` as bytes when it is bytes-like (bytes, bytearray, memoryview); anything else
    raises InputError naming ``name`` (bytes(-1) or bytes("text") would mean something else)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise _core.InputError(f"{name}: expected bytes (got {type(data).__name__})")


def path_arg(path, name: str) -> str:
    """A file-system path (str or os.PathLike) as str; anything else raises InputError, so
    save(None) never writes a file called 'None'."""
    if isinstance(path, (str, os.PathLike)):
        out = os.fspath(path)
        if isinstance(out, str) and out:
            return out
    raise _core.InputError(
        f"{name}: expected a path (str or os.PathLike, got {type(path).__name__} {path!r:.40})"
    )


def text_arg(text, name: str) -> str:
    """JSON or other text given as str or UTF-8 bytes; anything else raises InputError."""
    if isinstance(text, (bytes, bytearray)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _core.InputError(
                f"{name}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
    if isinstance(text, str):
        return text
    raise _core.InputError(f"{name}: expected text (str, got {type(text).__name__})")


def frame_arg(frame, name: str):
    """``frame`` when it is a pandas DataFrame; anything else raises InputError naming it."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise _core.InputError(f"{name}: expected a pandas DataFrame (got {type(frame).__name__})")
    return frame


def sequence_arg(values, name: str):
    """``values`` when it holds several values (array, Series, list, tuple, ...); a scalar or a
    string raises InputError naming ``name``."""
    if isinstance(values, (str, bytes)) or np.ndim(values) == 0 and not hasattr(values, "__iter__"):
        raise _core.InputError(
            f"{name}: expected a sequence of values (got {type(values).__name__} {values!r:.40})"
        )
    return values


def float_array(values, dtype, name: str) -> np.ndarray:
    """Floating array of ``dtype`` (finiteness is checked by the core, which names the row)."""
    arr = _one_dimensional(values, name)
    if arr.dtype.kind not in "fiub":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise _core.InputError(f"{name}: expected numbers (got dtype {arr.dtype})") from exc
    return np.ascontiguousarray(arr, dtype=dtype)


def _canonical(csr: sp.csr_matrix) -> sp.csr_matrix:
    """``csr`` with indices sorted within rows and duplicates summed, checked on the arrays
    themselves: scipy's ``has_canonical_format`` flag goes stale when indices are edited in
    place, and a stale flag must not let duplicates be fitted twice."""
    ptr, ind = np.asarray(csr.indptr), np.asarray(csr.indices)
    nnz = ind.size
    if (
        ptr.size != csr.shape[0] + 1
        or (ptr.size and (ptr[0] != 0 or ptr[-1] != nnz))
        or (np.diff(ptr) < 0).any()
    ):
        return csr  # malformed: the core names the problem
    if nnz < 2:
        return csr
    increasing = np.diff(ind) > 0
    boundary = ptr[1:-1]
    increasing[boundary[(boundary > 0) & (boundary < nnz)] - 1] = True  # a new row may restart
    if increasing.all():
        return csr
    fixed = sp.csr_matrix((np.array(csr.data), np.array(ind), np.array(ptr)), shape=csr.shape)
    fixed.has_canonical_format = False  # make scipy do the work whatever it believes
    fixed.sum_duplicates()
    return fixed


def csr_parts(matrix, name: str, shape: Optional[Tuple[int, int]] = None) -> tuple:
    """A scipy sparse matrix as the core's CSR tuple (indptr int64, indices int32, data float32,
    rows, cols), with sorted indices and duplicates summed."""
    if not sp.issparse(matrix):
        raise _core.InputError(
            f"{name}: expected a scipy.sparse matrix (got {type(matrix).__name__})"
        )
    csr = matrix.tocsr()
    if shape is not None and csr.shape != tuple(shape):
        raise _core.InputError(f"{name}: expected shape {tuple(shape)} (got {csr.shape})")
    csr = _canonical(csr)
    rows, cols = csr.shape
    if rows > np.iinfo(np.int32).max or cols > np.iinfo(np.int32).max:
        raise _core.InputError(f"{name}: shape {csr.shape} exceeds 2^31 - 1")
    return (
        np.ascontiguousarray(csr.indptr, dtype=np.int64),
        np.ascontiguousarray(csr.indices, dtype=np.int32),
        np.ascontiguousarray(csr.data, dtype=np.float32),
        int(rows),
        int(cols),
    )


def csr_from_parts(parts) -> sp.csr_matrix:
    """The core's CSR tuple as a scipy CSR matrix (int32 index arrays when they fit)."""
    indptr, indices, data, rows, cols = parts
    if indptr.size and indptr[-1] <= np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    return sp.csr_matrix((data, indices, indptr), shape=(rows, cols))


def time_range_error(name: str, row: int, value) -> Exception:
    """The InputError for a time outside [MIN_TIME, MAX_TIME) at ``row`` of ``name``."""
    return _core.InputError(
        f"{name}: row {row}: time {value} s is outside the supported range "
        f"[{_core.MIN_TIME}, {_core.MAX_TIME}) (years 1900 to 2199)"
    )


def _check_time_range(arr: np.ndarray, name: str) -> np.ndarray:
    bad = (arr < _core.MIN_TIME) | (arr >= _core.MAX_TIME)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise time_range_error(name, i, arr[i])
    return arr


def seconds(values, name: str) -> np.ndarray:
    """Timestamps as int64 seconds since the Unix epoch (UTC), under perkrec's one rule for
    times (see ``time_seconds``): integer or float numbers are epoch seconds; datetime64 and
    pandas datetimes (naive = UTC) and strings as pandas reads them; booleans are refused.
    Every time must lie in [MIN_TIME, MAX_TIME) (years 1900 to 2199).
    """
    import pandas as pd

    arr = values
    if isinstance(arr, (pd.Series, pd.Index)) and isinstance(arr.dtype, pd.DatetimeTZDtype):
        arr = (
            arr.dt.tz_convert("UTC").dt.tz_localize(None)
            if isinstance(arr, pd.Series)
            else arr.tz_convert("UTC").tz_localize(None)
        )
    arr = np.asarray(arr)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.dtype.kind in "OUS":
        try:
            arr = np.asarray(pd.to_datetime(pd.Series(arr.ravel()), utc=True).dt.tz_localize(None))
        except (ValueError, TypeError, OverflowError) as exc:
            raise _core.InputError(
                f"{name}: expected times (epoch seconds, datetimes or date strings): {exc}"
            ) from exc
    if arr.dtype.kind == "b":
        raise _core.InputError(f"{name}: booleans are not times")
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            i = int(np.flatnonzero(np.isnat(arr))[0])
            raise _core.InputError(f"{name}: row {i}: missing timestamp")
        return _check_time_range(
            np.ascontiguousarray(arr.astype("datetime64[s]").astype(np.int64)), name
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _core.InputError(f"{name}: row {i}: non-finite timestamp (got {arr[i]!r})")
        out_of_range = (arr < _core.MIN_TIME) | (arr >= _core.MAX_TIME)
        if out_of_range.any():
            _check_time_range(
                np.where(out_of_range, np.clip(arr, -(2.0**62), 2.0**62), _core.MIN_TIME).astype(
                    np.int64
                ),
                name,
            )
        return np.ascontiguousarray(np.floor(arr).astype(np.int64))
    return _check_time_range(int_array(arr, np.int64, name), name)


def time_seconds(value, name: str) -> int:
    """One time as int epoch seconds (UTC): perkrec's one rule for every function that takes
    a time. int or float = epoch seconds (fractions floored); strings, ``datetime``/``date``,
    numpy ``datetime64`` and pandas ``Timestamp`` as pandas reads them, naive = UTC; a bool,
    NaN, NaT or anything else raises InputError naming ``name``, and so does a time outside
    [MIN_TIME, MAX_TIME) (years 1900 to 2199).

    >>> time_seconds(1775001600, "t"), time_seconds(1775001600.5, "t"), time_seconds("2026-04-01", "t")
    (1775001600, 1775001600, 1775001600)
    """
    import datetime
    import math

    import pandas as pd

    if isinstance(value, (bool, np.bool_)):
        raise _core.InputError(f"{name}: a bool is not a time (got {value!r})")
    if isinstance(value, (int, np.integer)):
        out = int(value)
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise _core.InputError(
                f"{name}: expected a finite time in epoch seconds (got {value!r})"
            )
        out = math.floor(value)
    elif isinstance(value, (str, datetime.date, np.datetime64, pd.Timestamp)):
        try:
            ts = pd.Timestamp(value)
            if ts is pd.NaT:
                raise _core.InputError(f"{name}: missing time (got {value!r})")
            if ts.tzinfo is None:
                ts = ts.tz_localize("UTC")
            out = math.floor(ts.timestamp())
        except (ValueError, TypeError, OverflowError) as exc:
            if isinstance(exc, _core.Error):
                raise
            raise _core.InputError(f"{name}: cannot read {value!r} as a time ({exc})") from exc
    else:
        raise _core.InputError(
            f"{name}: expected a time: epoch seconds, a datetime or a date string "
            f"(got {type(value).__name__})"
        )
    if not _core.MIN_TIME <= out < _core.MAX_TIME:
        raise _core.InputError(
            f"{name}: time {value!r} is outside the supported range "
            f"[{_core.MIN_TIME}, {_core.MAX_TIME}) s (years 1900 to 2199)"
        )
    return out


def categorical_codes(values, categories, name: str, allow_missing: bool = False):
    """Codes of ``values`` in the fixed list ``categories`` (-1 = missing when allowed).

    Unknown values raise InputError naming the first bad row and value.
    """
    import pandas as pd

    series = pd.Series(values, copy=False)
    missing_input = series.isna().to_numpy()
    codes = pd.Index(list(categories)).get_indexer(
        series.astype(object).where(~missing_input, None)
    )
    unknown = (codes < 0) & ~missing_input
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        value = np.asarray(values, dtype=object)[i]
        raise _core.InputError(
            f"{name}: row {i}: unknown value {value!r} (expected one of {', '.join(map(str, categories))})"
        )
    if not allow_missing and missing_input.any():
        i = int(np.flatnonzero(missing_input)[0])
        raise _core.InputError(f"{name}: row {i}: missing value")
    return codes
