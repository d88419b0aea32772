"""The save/load vocabulary of the Python wrappers, and the registry of kinds.

``_Serializable`` gives a wrapper class save / load / to_bytes / from_bytes / pickle through
the model-file container. Each wrapper class with a ``_core_class`` registers itself here when
its module is imported (``__init_subclass__``); a wrapper that is not a ``_Serializable``
(``BenefitPlanner``) calls :func:`register`. :func:`loads` reads any container and looks the
kind up in the registry, so this module imports no wrapper module (no import cycle: data.py,
fm.py, models.py, ... import this module, never the other way round).
"""

from __future__ import annotations

import importlib
import os
from typing import Dict

from . import _core
from ._util import bytes_arg, path_arg

# _core class -> Python wrapper class, filled as the wrapper modules are imported.
_REGISTRY: Dict[type, type] = {}


def register(core_class: type, wrapper: type) -> None:
    """Makes ``loads`` wrap a loaded ``core_class`` object in ``wrapper`` (its ``_wrap``)."""
    if _REGISTRY.get(core_class, wrapper) is not wrapper:
        raise TypeError(
            f"{core_class.__name__} is already registered to {_REGISTRY[core_class].__name__}"
        )
    _REGISTRY[core_class] = wrapper


def registered() -> Dict[type, type]:
    """A copy of the registry: _core class -> wrapper class."""
    return dict(_REGISTRY)


def _wrapper_of(impl) -> type:
    wrapper = _REGISTRY.get(type(impl))
    if wrapper is None:
        # The wrappers register when their modules are imported; importing the package imports
        # them all (only reached when this module was imported on its own).
        importlib.import_module(__name__.rpartition(".")[0])
        wrapper = _REGISTRY.get(type(impl))
    if wrapper is None:
        error = _core.ModelFormatError(
            f"loads: no Python wrapper for the kind {type(impl).__name__}"
        )
        error.code = "wrong_kind"
        raise error
    return wrapper


def _container_bytes(data, context: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        error = _core.ModelFormatError(
            f"{context}: expected the bytes of a saved object (got {type(data).__name__})"
        )
        error.code = "io_error"
        raise error
    return bytes(data)


def _read_file(path, context: str) -> bytes:
    """The bytes at ``path`` (str or os.PathLike; a bool or int is not a path), or a binary
    file object's contents; unreadable files raise ModelFormatError(code='io_error')."""
    if hasattr(path, "read"):
        return _container_bytes(path.read(), context)
    if not isinstance(path, (str, os.PathLike)):
        error = _core.ModelFormatError(
            f"{context}: expected a path or a binary file (got {type(path).__name__})"
        )
        error.code = "io_error"
        raise error
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, ValueError) as exc:
        error = _core.ModelFormatError(
            f"{context}: cannot read {os.fspath(path)!r}: {getattr(exc, 'strerror', None) or exc}"
        )
        error.code = "io_error"
        raise error from exc


def loads(data: bytes):
    """The object stored in container bytes (what ``to_bytes`` and pickle produce)."""
    impl = _core.load_any(_container_bytes(data, "loads"))
    return _wrapper_of(impl)._wrap(impl)


class _Serializable:
    """save / load / to_bytes / from_bytes / pickle through the model-file container.

    A subclass that sets ``_core_class`` (a _core class, not None) is registered for
    :func:`loads`."""

    _impl = None
    _core_class = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        core_class = cls.__dict__.get("_core_class")
        if core_class is not None:
            register(core_class, cls)

    def to_bytes(self) -> bytes:
        """The object as model-file container bytes."""
        return self._impl.to_bytes()

    def save(self, path_or_file) -> None:
        """Saves to a path (atomically: a temporary file renamed into place) or to a binary
        file object."""
        if hasattr(path_or_file, "write"):
            path_or_file.write(self.to_bytes())
        else:
            self._impl.save(path_arg(path_or_file, f"{type(self).__name__}.save: path"))

    @classmethod
    def from_bytes(cls, data: bytes):
        return cls._wrap(
            cls._core_class.from_bytes(bytes_arg(data, f"{cls.__name__}.from_bytes: data"))
        )

    @classmethod
    def load(cls, path_or_file):
        """Loads from a path or a binary file object; a file of another kind raises
        ModelFormatError with code 'wrong_kind'."""
        if hasattr(path_or_file, "read"):
            return cls.from_bytes(path_or_file.read())
        return cls._wrap(cls._core_class.load(path_arg(path_or_file, f"{cls.__name__}.load: path")))

    @classmethod
    def _wrap(cls, impl):
        obj = cls.__new__(cls)
        obj._impl = impl
        return obj

    def __reduce__(self):
        return (loads, (self.to_bytes(),))
