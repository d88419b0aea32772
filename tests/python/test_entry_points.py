"""Every public entry point answers bad values with perkrec's own typed errors: walking
``perkrec.__all__``, each callable is called with its required arguments set to one bad value
at a time (None, NaN, a negative number, a string, an array of NaN, an empty list, a bool, a
huge integer). The only acceptable exception is a perkrec.Error subclass, whose message is
valid UTF-8."""

import inspect
import warnings

import numpy as np
import pytest

import perkrec

BAD = [None, float("nan"), -1, "garbage", np.array([np.nan]), [], True, 10**30]
# Returned by Policy.compile, never built by users; demo and simulate are exercised elsewhere.
NOT_USER_BUILT = {"CompiledPolicy", "demo"}


def _entry_points():
    for name in sorted(perkrec.__all__):
        obj = getattr(perkrec, name)
        if name in NOT_USER_BUILT or not callable(obj):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue
        try:
            inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        yield name, obj


@pytest.mark.parametrize("name,obj", list(_entry_points()), ids=lambda x: x if isinstance(x, str) else "")
def test_bad_values_raise_perkrec_errors(name, obj):
    sig = inspect.signature(obj)
    required = [p for p in sig.parameters.values()
                if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    escaped = []
    for bad in BAD:
        args = [bad for p in required if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        kwargs = {p.name: bad for p in required if p.kind == p.KEYWORD_ONLY}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                obj(*args, **kwargs)
            except perkrec.Error as e:
                str(e).encode("utf-8")
            except Exception as e:  # noqa: BLE001 - what the test looks for
                escaped.append(f"{name}({bad!r:.20}): {type(e).__name__}: {str(e)[:80]}")
    assert not escaped, "\n".join(escaped)
