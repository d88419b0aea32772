"""The planner without a members x benefits matrix: probabilities from factors and the
incremental share from order rates, scored in C++ on eligible pairs only."""

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.plan import (
    Planner,
    ProbabilityFactors,
    TimingShare,
    incremental_share,
    incremental_share_factors,
)


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=800, seed=11)


def test_timing_share_factors_match_the_matrix(program):
    end = program.events.time_range[1]
    pref = perkrec.PreferenceModel().fit(program.events, program.catalog, end)
    factors = incremental_share_factors(pref, program.catalog)
    assert isinstance(factors, TimingShare)
    np.testing.assert_array_equal(factors.matrix(), incremental_share(pref, program.catalog))


def test_factored_inputs_give_the_dense_plan(program):
    end = program.events.time_range[1]
    n, nb = program.truth.redemption_probability.shape
    rng = np.random.default_rng(0)
    user = rng.normal(0, 0.7, (n, 1)).astype(np.float32)
    benefit = rng.normal(0, 0.7, (nb, 1)).astype(np.float32)
    bias = rng.uniform(-3, -1, nb).astype(np.float32)
    dense_p = (
        1
        / (
            1
            + np.exp(
                -(
                    bias.astype(np.float64)[None, :]
                    + user.astype(np.float64) @ benefit.astype(np.float64).T
                )
            )
        )
    ).astype(np.float32)
    share = TimingShare(
        rng.gamma(1.0, 0.03, n), program.catalog.to_frame()["validity_days"].to_numpy()
    )
    value = np.full(n, 20.0, np.float32)
    policy = {"budget": 150.0, "issue_cost": 0.05}
    dense = Planner(policy).plan(
        program.catalog,
        program.users,
        end,
        redemption_probability=dense_p,
        incremental_share=share.matrix(),
        order_value=value,
    )
    factored = Planner(policy).plan(
        program.catalog,
        program.users,
        end,
        redemption_probability=ProbabilityFactors(user, benefit, bias),
        incremental_share=share,
        order_value=value,
    )
    assert len(dense.frame) > 50
    pd.testing.assert_frame_equal(
        dense.frame.drop(columns=["reasons", "probability", "value", "cost"]),
        factored.frame.drop(columns=["reasons", "probability", "value", "cost"]),
    )
    np.testing.assert_allclose(dense.frame["value"], factored.frame["value"], rtol=1e-6)
    assert factored.expected_cost <= 150.0 + 1e-6


def test_factored_inputs_reject_bad_shapes(program):
    with pytest.raises(perkrec.InputError, match="same number of columns"):
        ProbabilityFactors(np.zeros((5, 2)), np.zeros((3, 3)))
    end = program.events.time_range[1]
    n, nb = program.truth.redemption_probability.shape
    short = ProbabilityFactors(np.zeros((n - 1, 2)), np.zeros((nb, 2)))
    with pytest.raises(perkrec.InputError):
        Planner(objective="redemption").plan(
            program.catalog, program.users, end, redemption_probability=short
        )
    with pytest.raises(perkrec.ConfigError, match="budget"):
        Planner(objective="redemption").plan(
            program.catalog,
            program.users,
            end,
            redemption_probability=ProbabilityFactors(np.zeros((n, 1)), np.zeros((nb, 1))),
            budget=-1.0,
        )
