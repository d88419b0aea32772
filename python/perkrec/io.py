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
    }


def loads(data: bytes):
    """The object stored in container bytes (what ``to_bytes`` and pickle produce)."""
    impl = _core.load_any(bytes(data))
    return _wrappers()[type(impl)]._wrap(impl)


def load(path: Union[str, os.PathLike, BinaryIO]):
    """The object saved at ``path`` (or in a binary file object) by any ``save``; its kind is
    read from the file.

    Raises ModelFormatError (with ``.code``) for a damaged, truncated or foreign file.
    """
    if hasattr(path, "read"):
        return loads(path.read())
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        error = _core.ModelFormatError(f"load: cannot read {os.fspath(path)!r}: {exc.strerror}")
        error.code = "io_error"
        raise error from exc
    return loads(data)


def info(path_or_bytes) -> dict:
    """Kind, library version and content description of a saved object, after verification."""
    import json

    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    out = _core.container_info(data)
    out["content"] = json.loads(out["content"])
    return out
