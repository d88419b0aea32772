"""Every ``>>>`` example in the perkrec docstrings runs as written, in order (issue 17).

Each docstring's examples run under doctest with the names they read but do not define (their
inputs: ``log``, ``train_matrix``, ``X`` ...) built from small real inputs: the README examples'
simulated program and builders (tests/python/test_examples.py, README_INPUTS) plus a few more
below. The examples are written as after ``from perkrec import *``. An example that shows output
must print exactly that; one that shows none only has to run without error.
"""

import doctest
import importlib

import numpy as np
import pandas as pd
import pytest

import perkrec
from test_examples import README_INPUTS, _build_inputs, _free_names, _program


class _Checker(doctest.OutputChecker):
    """Shown output must match; an example that shows none may return anything."""

    def check_output(self, want, got, optionflags):
        return want == "" or super().check_output(want, got, optionflags)


def _behaviour_products(need):
    products = README_INPUTS["products"](need)
    return products.rename(columns={"category": "product_category"})


def _samples_split(need):
    program = _program()
    samples = perkrec.redemption_samples(program.events, program.catalog, program.users)
    before = samples["timestamp"] < need("cut").value // 10**9
    return samples[before].reset_index(drop=True), samples[~before].reset_index(drop=True)


def _fm_encoded(need):
    program = _program()
    enc = perkrec.FeatureEncoder(perkrec.fm.DEFAULT_FIELDS).fit(
        need("train_samples"), events=program.events, catalog=program.catalog
    )
    return (
        enc,
        enc.transform(need("train_samples"), events=program.events),
        enc.transform(need("test_samples"), events=program.events),
    )


def _uplift_data(need):
    """One row per member: two features from before the cut (log order revenue, ordered at
    all), visited (redeemed after the cut) and the arm (0 = control)."""
    frame = need("frame")
    before = frame["revenue_before"].to_numpy(float)
    X = np.column_stack([np.log1p(before), (before > 0).astype(float)])
    return X, frame["redeemed"].to_numpy(), frame["arm"].to_numpy()


DOCSTRING_INPUTS = {
    **README_INPUTS,
    # behaviour data (perkrec.behavior): the README's products, baskets and coupon rows under
    # the column names of the example
    "products": _behaviour_products,
    "transactions": lambda need: README_INPUTS["basket_lines"](need).rename(
        columns={"timestamp": "transaction_timestamp"}
    ),
    "user_ids": lambda need: need("log").user_ids,
    "coupons": lambda need: README_INPUTS["coupon_products"](need).rename(
        columns={"coupon_id": "coupon_upc"}
    ),
    "benefit_ids": lambda need: need("catalog").ids,
    # a year of orders to mid-2026 (perkrec.clv: calibration from 2026-01-01 needs history
    # before it)
    "clv_log": lambda need: perkrec.simulate(
        n_users=300, days=365, start="2025-07-01", seed=5
    ).events,
    # an event frame (perkrec.data.EventLog)
    "df": lambda need: need("log").to_frame(),
    # redemption samples before / after the cut and their encodings (perkrec.fm)
    "train_samples": lambda need: _samples_split(need)[0],
    "test_samples": lambda need: _samples_split(need)[1],
    "enc": lambda need: _fm_encoded(need)[0],
    "fm_X": lambda need: _fm_encoded(need)[1],
    "fm_y": lambda need: need("train_samples")["label"],
    "X_test": lambda need: _fm_encoded(need)[2],
    # the training interaction matrix and ten members (perkrec.models)
    "train_matrix": lambda need: perkrec.interaction_matrix(need("train")),
    "model_user_ids": lambda need: np.arange(10),
    # one member's external id (perkrec.preference)
    "user": lambda need: need("log").user_ids.ids[0],
    # ranking (perkrec.ranking): the README's inputs, the preference model under its name
    "pref_model": lambda need: need("pref"),
    # uplift (perkrec.uplift): one row per member
    "uplift_X": lambda need: _uplift_data(need)[0],
    "visited": lambda need: _uplift_data(need)[1],
    "treatment": lambda need: _uplift_data(need)[2],
    "X_new": lambda need: _uplift_data(need)[0][:20],
}

# (doctest name, its inputs in order of use, name -> builder where they differ, examples)
DOCSTRINGS = [
    ("perkrec._util.time_seconds", [], {}, 1),
    (
        "perkrec.behavior",
        ["products", "transactions", "user_ids", "coupons", "benefit_ids", "samples"],
        {},
        6,
    ),
    ("perkrec.causal.pilot_level", [], {}, 2),
    ("perkrec.clv", ["log"], {"log": "clv_log"}, 7),
    ("perkrec.data.EventLog", ["df"], {}, 2),
    ("perkrec.data.IdMap", [], {}, 2),
    ("perkrec.fm", ["program", "train_samples", "test_samples"], {}, 6),
    ("perkrec.fm.FM", ["X", "y", "enc", "X_test"], {"X": "fm_X", "y": "fm_y"}, 2),
    ("perkrec.fm.FMCV", ["X", "y", "enc"], {"X": "fm_X", "y": "fm_y"}, 2),
    ("perkrec.models.ALS", ["train_matrix", "user_ids"], {"user_ids": "model_user_ids"}, 3),
    ("perkrec.models.BPR", ["train_matrix"], {}, 1),
    ("perkrec.models.ItemKNN", ["train_matrix"], {}, 1),
    ("perkrec.models.Popularity", ["train_matrix", "user_ids"], {"user_ids": "model_user_ids"}, 2),
    ("perkrec.preference.PreferenceModel", ["cut", "program", "user"], {}, 4),
    (
        "perkrec.ranking",
        [
            "fm_probs",
            "als",
            "users",
            "benefits",
            "redeemed",
            "compiled",
            "margin",
            "catalog",
            "plan_time",
            "pref_model",
        ],
        {"users": "issue_users"},
        6,
    ),
    ("perkrec.uplift", ["X", "visited", "treatment", "X_new"], {"X": "uplift_X"}, 2),
]

MODULES = [
    "_util",
    "behavior",
    "causal",
    "clv",
    "data",
    "fm",
    "models",
    "preference",
    "ranking",
    "uplift",
]


def _docstring_tests():
    found = {}
    for name in MODULES:
        module = importlib.import_module(f"perkrec.{name}")
        for test in doctest.DocTestFinder(exclude_empty=True).find(module):
            if test.examples:
                found[test.name] = test
    return found


def test_every_docstring_example_is_covered():
    found = _docstring_tests()
    assert sorted(found) == sorted(case[0] for case in DOCSTRINGS)
    assert {name: len(found[name].examples) for name in found} == {
        case[0]: case[3] for case in DOCSTRINGS
    }


def test_checker_compares_shown_output():
    """Output an example shows must match; none shown accepts anything."""
    checker, flags = _Checker(), doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    assert checker.check_output("", "anything\n", flags)
    assert checker.check_output("array([1, 0])\n", "array([1,   0])\n", flags)
    assert not checker.check_output("array([1, 0])\n", "array([0, 1])\n", flags)


def _star_names():
    return {k: v for k, v in vars(perkrec).items() if not k.startswith("_")}


@pytest.mark.parametrize("case", DOCSTRINGS, ids=[case[0] for case in DOCSTRINGS])
def test_docstring_examples_run(case, tmp_path, monkeypatch):
    """The docstring's examples run in order with exactly its inputs (the names its lines read
    before binding them, beyond its module's and ``from perkrec import *``'s names)."""
    name, expected_inputs, aliases, n_examples = case
    test = _docstring_tests()[name]
    module = importlib.import_module(test.name.split(".")[0] + "." + test.name.split(".")[1])
    known = {**_star_names(), **vars(module), "perkrec": perkrec, "np": np, "pd": pd}
    code = "\n".join(example.source for example in test.examples)
    inputs_used = [n for n in _free_names(code) if n not in known]
    assert inputs_used == expected_inputs, f"{name}: the examples' inputs changed"

    test.globs = {**known, **_build_inputs(inputs_used, aliases, DOCSTRING_INPUTS)}
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(
        checker=_Checker(), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    messages = []
    result = runner.run(test, out=messages.append, clear_globs=False)
    assert result.attempted == n_examples > 0
    assert result.failed == 0, "".join(messages)
