"""bench/plan_vs_oracle.py --decompose: the Shapley split of the gap to the oracle, the
calibration swap and the spend matching, on hand-made cases (the bench's figures in
BENCHMARKS.md rest on them)."""

import importlib.util
import itertools
import math

import numpy as np
import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "plan_vs_oracle", REPO / "bench" / "plan_vs_oracle.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake(values, spend=lambda budget: budget):
    """A stand-in for the bench's `run`: % of the oracle per set of true inputs, true cost as a
    function of the budget (for the estimated inputs)."""
    calls = []

    def run(parts, budget, **swap):
        calls.append((parts, budget))
        key = "".join(c for c in "PSV" if c in parts)
        return None, {"ret": values[key], "true_cost": spend(budget) if not parts else budget}

    return run, calls


def pct(ev):
    return ev["ret"]


def test_shapley_shares_sum_to_the_gap_and_split_an_interaction_evenly(bench):
    # P alone +10, S alone +6, V nothing, P and S together +30 (an interaction of 14)
    values = {"": 60.0, "P": 70.0, "S": 66.0, "V": 60.0, "PS": 90.0, "PV": 70.0, "SV": 66.0}
    values["PSV"] = 100.0  # the oracle: V adds 10 only when P and S are true
    run, _ = fake(values)
    out = bench._decompose(run, pct, {"ret": 60.0, "true_cost": 100.0}, 100.0, {})
    total = out["shapley_P"] + out["shapley_S"] + out["shapley_V"]
    assert total == pytest.approx(100.0 - 60.0)
    # brute force over the 6 orders of swapping
    expected = {x: 0.0 for x in "PSV"}
    for order in itertools.permutations("PSV"):
        have = ""
        for x in order:
            key = lambda s: "".join(c for c in "PSV" if c in s)  # noqa: E731
            expected[x] += (values[key(have + x)] - values[key(have)]) / 6
            have += x
    for x in "PSV":
        assert out[f"shapley_{x}"] == pytest.approx(expected[x])
    assert out["shapley_P"] == pytest.approx(10 / 3 + 10 / 6 + 24 / 6 + 34 / 3)
    assert out["pct_true_PS"] == 90.0 and out["pct_true_V"] == 60.0


def test_spend_matching_rescales_the_budget_until_the_true_spend_equals_it(bench):
    values = dict.fromkeys(["", "P", "S", "V", "PS", "PV", "SV", "PSV"], 50.0)
    run, calls = fake(values, spend=lambda budget: 0.8 * budget)  # true spend 80% of any budget
    out = bench._decompose(run, pct, {"ret": 50.0, "true_cost": 80.0}, 100.0, {})
    assert out["budget_scale"] == pytest.approx(1.25)
    assert out["spend_matched_budget"] == pytest.approx(1.0)
    # a budget that does not bind (the spend stays) is left after one try
    run, calls = fake(values, spend=lambda budget: 57.0)
    out = bench._decompose(run, pct, {"ret": 50.0, "true_cost": 57.0}, 100.0, {})
    assert out["spend_matched_budget"] == pytest.approx(0.57)
    assert sum(1 for parts, _ in calls if parts == "") == 1


def test_binned_truth_keeps_the_ranking_and_takes_the_truth_level(bench):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(200, 10)).astype(np.float32)
    y = 0.5 * x + 0.1  # the truth: the same order, another level
    out = bench._binned_truth(x, y, bins=20)
    order = np.argsort(x.ravel())
    assert np.all(np.diff(out.ravel()[order]) >= -1e-7)  # monotone in x
    assert math.isclose(out.mean(), y.mean(), rel_tol=1e-4)
    assert np.abs(out - y).max() < 0.5 * 0.05 + 1e-3  # within one bin's width of y


def test_preference_offset_adds_the_centred_kind_preference_on_the_logit_scale(bench):
    import pandas as pd

    class Pref:
        def preferences(self):
            return pd.DataFrame({"kind:gift": [2.0, 1.0], "kind:points": [0.5, 1.0]})

    class Cat:
        def to_frame(self):
            return pd.DataFrame({"kind": ["gift", "points", "gift"]})

    P = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype=np.float32)
    out = bench.preference_offset(P, Pref(), Cat(), weight=0.5)
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    lift = np.log(np.array([[2.0, 0.5, 2.0], [1.0, 1.0, 1.0]]))
    lift -= lift.mean(1, keepdims=True)
    np.testing.assert_allclose(
        logit(out.astype(np.float64)), logit(P.astype(np.float64)) + 0.5 * lift, atol=1e-5
    )
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[1], P[1], atol=1e-7)  # no preference between kinds: unchanged
