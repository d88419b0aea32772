"""scikit-learn's estimator protocol, declared once for every perkrec model.

A class that derives from ``_Estimator`` records the keywords its constructor was called with
(the signature's defaults filled in), so that ``get_params`` returns exactly those objects —
what ``sklearn.base.clone`` checks — and ``set_params`` rebuilds the model with new values.
A model loaded from a file (built without its constructor) reports the hyper-parameters stored
in it, restricted to the constructor's names. No scikit-learn import happens here: the
protocol is plain methods, and ``__sklearn_tags__`` imports scikit-learn only when scikit-learn
itself asks for the tags.
"""

from __future__ import annotations

import functools
import inspect
import json

from . import _core
from ._util import int_scalar


def _record_init(init):
    sig = inspect.signature(init)
    names = [
        n
        for n, p in sig.parameters.items()
        if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]

    renames = getattr(init, "renamed_keywords", {})  # deprecated keyword -> its new name

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        bound = sig.bind(self, *args, **{renames.get(k, k): v for k, v in kwargs.items()})
        bound.apply_defaults()
        # The outermost constructor records last, so a subclass's keywords win.
        self._init_params = {n: bound.arguments[n] for n in names}

    wrapped._perkrec_param_names = names
    return wrapped


class _Estimator:
    """get_params(deep=True) / set_params(**params) from the constructor's signature."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not hasattr(init, "_perkrec_param_names"):
            cls.__init__ = _record_init(init)

    @classmethod
    def _param_names(cls):
        return list(getattr(cls.__init__, "_perkrec_param_names", []))

    def _stored_params(self) -> dict:
        """Hyper-parameters stored in the C++ model (for a model built by load)."""
        return json.loads(self._impl.get_params())

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's keywords, as given (defaults filled in): scikit-learn's protocol
        (``sklearn.base.clone``, ``Pipeline``, ``GridSearchCV``). A loaded model gives the
        values stored in its file under the same names."""
        recorded = getattr(self, "_init_params", None)
        if recorded is not None:
            return dict(recorded)
        stored = self._stored_params()
        defaults = {
            n: p.default
            for n, p in inspect.signature(type(self).__init__.__wrapped__).parameters.items()
        }
        out = {}
        for n in self._param_names():
            if n in stored:
                v = stored[n]
                out[n] = (
                    tuple(v) if isinstance(defaults.get(n), tuple) and isinstance(v, list) else v
                )
        return out

    def _repr_html_(self) -> str:
        """A compact summary for Jupyter: the model, whether it is fitted, its parameters."""
        import html

        fitted = self.__sklearn_is_fitted__()
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(repr(v))}</td></tr>"
            for k, v in self.get_params().items()
        )
        return (
            f"<div><b>perkrec.{html.escape(type(self).__name__)}</b> "
            f"({'fitted' if fitted else 'not fitted'})<table>{rows}</table></div>"
        )

    def __sklearn_is_fitted__(self) -> bool:
        """scikit-learn's check_is_fitted asks this."""
        impl = getattr(self, "_impl", None)
        return bool(getattr(impl, "fitted", False))

    def _set_recorded(self, name: str, value) -> None:
        """Keeps a recorded constructor keyword in step with a setter (set_num_threads)."""
        recorded = getattr(self, "_init_params", None)
        if recorded is not None and name in recorded:
            recorded[name] = value

    def set_params(self, **params):
        """Rebuilds the model with these constructor keywords changed (it becomes unfitted).
        An unknown name raises ConfigError naming it and the accepted names."""
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise _core.ConfigError(
                f"{type(self).__name__}.set_params: unknown parameter(s) {unknown} "
                f"(accepted: {names})"
            )
        if not params:
            return self
        type(self).__init__(self, **{**self.get_params(), **params})
        return self


class _Threaded:
    """``set_num_threads`` for the models whose C++ side keeps a thread count."""

    def set_num_threads(self, num_threads: int):
        """Threads of later calls (0 = the OpenMP default, at most perkrec's MAX_THREADS): a
        loaded model keeps the count it was saved with until you set your own. Returns the
        model."""
        self._impl.set_num_threads(int_scalar(num_threads, "num_threads", -(2**31), 2**31 - 1))
        self._set_recorded("num_threads", num_threads)
        return self
