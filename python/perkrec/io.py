"""Loading any saved perkrec object: the model-file container names its kind, and the
registry of perkrec._serializable (filled by each wrapper class) gives its Python class."""

from __future__ import annotations

import os
from typing import BinaryIO, Union

from . import _core
from ._serializable import _container_bytes, _read_file, loads  # noqa: F401 (perkrec.loads; BenefitPlanner reads files)


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
