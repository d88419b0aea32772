"""Loading any saved perkrec object: the model-file container names its kind."""

from __future__ import annotations

import os
from typing import BinaryIO, Union

from . import _core


def _wrappers():
    from .data import Catalog, EventLog, IdMap, UserTable
    from .fm import FM
    from .models import ALS, BPR, ItemKNN, Popularity
    from .preference import PreferenceModel
    from .uplift import UpliftModel
    from .clv import CLVModel
    from .pipeline import BenefitPlanner

    return {
        _core.IdMap: IdMap,
        _core.Catalog: Catalog,
        _core.UserTable: UserTable,
        _core.EventLog: EventLog,
        _core.Popularity: Popularity,
        _core.FM: FM,
        _core.ALS: ALS,
        _core.BPR: BPR,
        _core.ItemKNN: ItemKNN,
        _core.PreferenceModel: PreferenceModel,
        _core.UpliftModel: UpliftModel,
        _core.CLVModel: CLVModel,
        _core.BenefitPlannerFile: BenefitPlanner,
    }


def _container_bytes(data, context: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        error = _core.ModelFormatError(f"{context}: expected the bytes of a saved object (got {type(data).__name__})")
        error.code = "io_error"
        raise error
    return bytes(data)


def _read_file(path, context: str) -> bytes:
    """The bytes at ``path`` (str or os.PathLike; a bool or int is not a path), or a binary
    file object's contents; unreadable files raise ModelFormatError(code='io_error')."""
    if hasattr(path, "read"):
        return _container_bytes(path.read(), context)
    if not isinstance(path, (str, os.PathLike)):
        error = _core.ModelFormatError(f"{context}: expected a path or a binary file (got {type(path).__name__})")
        error.code = "io_error"
        raise error
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, ValueError) as exc:
        error = _core.ModelFormatError(f"{context}: cannot read {os.fspath(path)!r}: {getattr(exc, 'strerror', None) or exc}")
        error.code = "io_error"
        raise error from exc


def loads(data: bytes):
    """The object stored in container bytes (what ``to_bytes`` and pickle produce)."""
    impl = _core.load_any(_container_bytes(data, "loads"))
    return _wrappers()[type(impl)]._wrap(impl)


def load(path: Union[str, os.PathLike, BinaryIO]):
    """The object saved at ``path`` (or in a binary file object) by any ``save``; its kind is
    read from the file.

    Raises ModelFormatError (with ``.code``) for a damaged, truncated or foreign file.
    """
    return loads(_read_file(path, "load"))


def info(path_or_bytes) -> dict:
    """Kind, library version and content description of a saved object, after verification."""
    import json

    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    else:
        data = _read_file(path_or_bytes, "info")
    out = _core.container_info(data)
    out["content"] = json.loads(out["content"])
    return out
