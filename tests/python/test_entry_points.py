"""Every public entry point answers bad values with perkrec's own typed errors: walking
``perkrec.__all__``, each callable is called with its required arguments set to one bad value
at a time (None, NaN, a negative number, a string, an array of NaN, an empty list, a bool, a
huge integer). The only acceptable exception is a perkrec.Error subclass, whose message is
valid UTF-8."""

import inspect
import warnings

import numpy as np
import pandas as pd
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


def _required(fn):
    sig = inspect.signature(fn)
    return [
        p
        for p in sig.parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _escapes(fn, required, label: str):
    """Calls ``fn`` with every required argument set to each bad value in turn; returns the
    calls that raised anything but a perkrec.Error (whose message must be valid UTF-8)."""
    escaped = []
    for bad in BAD:
        args = [bad for p in required if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        kwargs = {p.name: bad for p in required if p.kind == p.KEYWORD_ONLY}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fn(*args, **kwargs)
            except perkrec.Error as e:
                str(e).encode("utf-8")
            except Exception as e:  # noqa: BLE001 - what the test looks for
                escaped.append(f"{label}({bad!r:.20}): {type(e).__name__}: {str(e)[:100]}")
    return escaped


@pytest.mark.parametrize(
    "name,obj", list(_entry_points()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_bad_values_raise_perkrec_errors(name, obj):
    escaped = _escapes(obj, _required(obj), name)
    assert not escaped, "\n".join(escaped)


# ---------------------------------------------------------------------------------------------
# Methods: every public method of a working instance of each public class, with its required
# arguments set to one bad value at a time. Besides the error type, a fitted model must come out
# unchanged (its bytes are compared before and after).


def _instances():
    """name -> a ready instance (fitted where fitting applies), built on a tiny simulated program."""
    import scipy.sparse as sp

    prog = perkrec.simulate(n_users=300, n_benefits=12, days=60, seed=3)
    log, catalog, users = prog.events, prog.catalog, prog.users
    rng = np.random.default_rng(0)
    inter = sp.random(60, 20, density=0.2, format="csr", random_state=1, dtype=np.float32)
    X = sp.random(200, 30, density=0.1, format="csr", random_state=2, dtype=np.float32)
    y = (rng.random(200) < 0.4).astype(np.float32)
    t = (rng.random(200) < 0.5).astype(np.int8)
    out = {}
    for name in ("ALS", "BPR", "ItemKNN", "Popularity"):
        kw = {"factors": 4, "iterations": 2} if name in ("ALS", "BPR") else {}
        out[name] = getattr(perkrec, name)(**kw, num_threads=1).fit(inter)
    out["FM"] = perkrec.FM(factors=2, epochs=2).fit(X, y)
    out["FFM"] = perkrec.FFM(factors=2, epochs=2).fit(X, y, feature_fields=np.arange(30) % 3)
    out["UpliftModel"] = perkrec.UpliftModel(factors=0).fit(X, y, t)
    out["PreferenceModel"] = perkrec.PreferenceModel(
        latent_classes=2, em_iterations=2, num_threads=1
    ).fit(log, catalog)
    out["CLVModel"] = perkrec.CLVModel().fit(log)
    out["EventLog"], out["Catalog"], out["UserTable"] = log, catalog, users
    out["IdMap"] = perkrec.IdMap(["a", "b", "c"])
    out["Policy"] = perkrec.Policy()
    out["IsotonicCalibrator"] = perkrec.IsotonicCalibrator().fit(
        rng.random(100), rng.random(100) < 0.5
    )
    out["PlattCalibrator"] = perkrec.PlattCalibrator().fit(rng.random(100), rng.random(100) < 0.5)
    out["FeatureEncoder"] = perkrec.FeatureEncoder()
    out["Planner"] = perkrec.Planner()
    out["ScoreBlend"] = perkrec.ScoreBlend()
    out["Pacer"] = perkrec.Pacer(start=0, end=100, budget=10.0)
    out["CompiledPolicy"] = perkrec.Policy().compile(catalog, users, int(log._impl.max_time))
    items = perkrec.ItemCatalog.from_frame(
        pd.DataFrame(
            {"item_id": ["i1", "i2", "i3"], "category": ["a", "a", "b"], "price": [1.0, 2.0, 3.0]}
        )
    )
    out["ItemCatalog"] = items
    out["BehaviorLog"] = perkrec.BehaviorLog.from_frame(
        pd.DataFrame(
            {
                "user_id": log.user_ids.ids[:3],
                "item_id": ["i1", "i2", "i3"],
                "timestamp": [1767225600] * 3,
                "action": ["purchase"] * 3,
            }
        ),
        user_ids=log.user_ids,
        items=items,
    )
    out["InterestModel"] = perkrec.InterestModel().fit(out["BehaviorLog"], items)
    out["BenefitItems"] = perkrec.BenefitItems.from_frame(
        pd.DataFrame({"benefit_id": catalog.ids.ids[:2], "item_id": ["i1", "i3"]}),
        catalog=catalog,
        items=items,
    )
    return out


# Methods whose purpose is to change or write their object, or that take no data.
_MUTATORS = {
    "fit",
    "partial_fit",
    "partial_fit_users",
    "partial_fit_benefits",
    "set_ids",
    "set_params",
    "set_num_threads",
    "fit_transform",
    "fold_in",
    "lookup_or_add",
    "set_weights",
    "add_source",
    "attach",
    "fit_summary",
}


@pytest.fixture(scope="module")
def instances():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _instances()


def _methods():
    names = [
        "ALS",
        "BPR",
        "ItemKNN",
        "Popularity",
        "FM",
        "FFM",
        "UpliftModel",
        "PreferenceModel",
        "CLVModel",
        "EventLog",
        "Catalog",
        "UserTable",
        "IdMap",
        "Policy",
        "IsotonicCalibrator",
        "PlattCalibrator",
        "FeatureEncoder",
        "Planner",
        "ScoreBlend",
        "Pacer",
        "CompiledPolicy",
        "ItemCatalog",
        "BehaviorLog",
        "BenefitItems",
        "InterestModel",
    ]
    for cls_name in names:
        cls = getattr(perkrec, cls_name)
        for m, fn in inspect.getmembers(cls):
            if m.startswith("_") or not callable(fn) or inspect.isclass(fn):
                continue
            yield cls_name, m


@pytest.mark.parametrize("cls_name,method", list(_methods()), ids=lambda x: x)
def test_bad_values_to_methods_raise_perkrec_errors_and_change_nothing(
    cls_name, method, instances, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a bad path that happens to be writable lands here
    obj = instances[cls_name]
    fn = getattr(obj, method)
    try:
        required = _required(fn)
    except (TypeError, ValueError):
        pytest.skip("no signature")
    if not required:
        pytest.skip("no required arguments")
    before = obj.to_bytes() if hasattr(obj, "to_bytes") and method not in _MUTATORS else None
    escaped = _escapes(fn, required, f"{cls_name}.{method}")
    assert not escaped, "\n".join(escaped)
    if before is not None:
        assert obj.to_bytes() == before, f"{cls_name}.{method} changed the object on bad input"
